//! `chat-cluster`: a local multi-node chat service for benchmarks and manual runs, started with
//! the same launchers the cluster suites use: N chatd processes on one FerretDB (MongoDB wire
//! protocol; on a private PostgreSQL unless `--store sqlite`) and Redis (a 3-master Redis Cluster
//! unless `--redis standalone`), all on free loopback ports in a temporary directory. It prints
//! the addresses and a loadgen command line, then runs until Ctrl-C (or SIGTERM) and stops
//! everything it started.
//!
//! Run it through `cargo xtask cluster`, which installs the servers and builds in release mode;
//! arguments after `--` go to every chatd node (they win over the defaults).

use anyhow::{Context as _, bail};
use tests::cluster::{ChatCluster, ClusterSpec, RedisKind, StoreKind};

const USAGE: &str = "usage: chat-cluster [--nodes N] [--store postgres|sqlite] \
                     [--redis cluster|standalone] [-- CHATD_ARGS...]";

fn main() -> anyhow::Result<()> {
    let mut spec = ClusterSpec {
        store: StoreKind::FerretPostgres,
        ..ClusterSpec::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--nodes" => {
                let n = args.next().context("--nodes needs a number")?;
                spec.nodes = n
                    .parse()
                    .with_context(|| format!("--nodes: {n:?} is not a number"))?;
                if spec.nodes == 0 {
                    bail!("--nodes must be at least 1");
                }
            }
            "--store" => {
                spec.store = match args.next().as_deref() {
                    Some("postgres") => StoreKind::FerretPostgres,
                    Some("sqlite") => StoreKind::FerretSqlite,
                    other => bail!("--store: {other:?} is not postgres or sqlite"),
                }
            }
            "--redis" => {
                spec.redis = match args.next().as_deref() {
                    Some("cluster") => RedisKind::Cluster,
                    Some("standalone") => RedisKind::Standalone,
                    other => bail!("--redis: {other:?} is not cluster or standalone"),
                }
            }
            "--" => spec.args.extend(args.by_ref()),
            other => bail!("unknown argument {other:?} ({USAGE})"),
        }
    }
    let cluster = ChatCluster::start_with(spec.clone());
    let servers: Vec<String> = cluster
        .addrs()
        .iter()
        .map(|a| format!("--server {a}"))
        .collect();
    println!(
        "chat cluster up: {} chatd nodes, FerretDB ({:?}), Redis ({:?})",
        cluster.len(),
        spec.store,
        spec.redis
    );
    for i in 0..cluster.len() {
        let node = cluster.node(i);
        println!(
            "  node{i}: quic {}  metrics http://{}/metrics  data {}",
            node.addr(),
            node.admin_addr(),
            node.data_dir().display()
        );
    }
    println!(
        "  certificate fingerprint: {}",
        cluster.identity().fingerprint
    );
    println!(
        "loadgen:\n  target/release/loadgen run {} --pin {} --metrics-url http://{}/metrics ...",
        servers.join(" "),
        cluster.identity().fingerprint,
        cluster.node(0).admin_addr()
    );
    println!("Ctrl-C stops the cluster.");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("Ctrl-C handler"),
            _ = term.recv() => Ok(()),
        }
    })?;
    println!("stopping");
    drop(cluster);
    Ok(())
}
