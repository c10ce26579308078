//! `chat-bench`: loadgen against several chatd builds side by side, for ratios that hold across
//! machines. Run it through `cargo xtask bench-compare`, which builds everything in release mode.
//!
//! For every rate, `--runs` times, every build in turn (the order alternates from run to run, so
//! that a drift of the machine does not favour one build) gets a fresh server: one chatd on its
//! embedded store (`--nodes 0`, the default), or N chatd nodes on FerretDB (PostgreSQL) and one
//! Redis. loadgen then drives the workload (`--scenario`: the room fan-out, rates in messages per
//! second, or a reconnect wave, `connect-storm`, rates in new connections per second, one node)
//! and prints its JSON report. A build is a chatd binary with, optionally, arguments of its own
//! (`--build NAME=CHATD[,ARG...]`: one binary with and without a setting). Before each
//! run the 1-minute load average is read (with `--max-load`, runs wait until it is below, polling
//! every `--poll`); it is recorded before and after every run.
//!
//! While loadgen runs, the CPU time of every server process (chatd, and FerretDB, PostgreSQL and
//! Redis for clusters, each with its process group and descendants) is sampled every 100 ms,
//! and the CPU each role used over loadgen's load phase (whose wall-clock bounds loadgen
//! reports) is taken from the samples.
//!
//! Output, in `--out`: `runs.jsonl` (one line per run: build, rate, load averages, loadgen's
//! report and each role's CPU seconds during the load) and `summary.md` (per rate and build the
//! medians, the ratios of the last build to the first, and the knee of each build: the highest
//! rate at which every run kept its latency bound with nothing lost or failed).
//!
//! # Layout
//! - this file: options, servers, CPU sampling and the runs, for any [`Workload`].
//! - `fanout`: the room fan-out's figures and summary.
//! - `storm`: the connect-storm's.
//! - `summary`: what both summaries share (medians, ratio rows, knees, failed runs).

mod fanout;
mod storm;
mod summary;

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::cluster::{ChatCluster, ClusterSpec, RedisKind, StoreKind};
use tests::process::tree_members;
use tests::relay::UdpRelay;

/// chatd's rate limits raised for a benchmark (loadgen registers every user from one address),
/// as in BENCHMARKS.md; every build compared accepts them.
const BENCH_ARGS: &[&str] = &[
    "--limit-send=100000/s burst 100000",
    "--limit-request=100000/s burst 100000",
    "--limit-address-request=1000000/s burst 1000000",
    "--limit-login-address=100000/s burst 100000",
    "--limit-login-account=1000/s burst 1000",
    "--log=warn",
];

/// Connection caps raised for a reconnect wave from one address, by environment: a build that
/// has no such caps ignores the variables, where it would refuse unknown flags.
const STORM_ENV: &[(&str, &str)] = &[
    ("CHATD_MAX_UNAUTHENTICATED_PER_ADDRESS", "20000"),
    ("CHATD_MAX_AUTHENTICATED_PER_ADDRESS", "100000"),
];

/// Extra settings for nodes on FerretDB: its latency while a thousand users register would trip
/// the storage breaker with the default timeout.
const CLUSTER_ARGS: &[&str] = &["--store-timeout=30s"];

const USAGE: &str = "usage: chat-bench --build NAME=CHATD[,ARG...] [--build ...] --loadgen PATH \\
    --out DIR [--scenario room-fanout|connect-storm] [--rates R1,R2,...] [--runs N] [--nodes N] \\
    [--users N] [--room-size K] [--connections-per-user C] [--payload BYTES] [--duration D] \\
    [--warmup D] [--connect-rate R] [--rtt MS] [--no-zero-rtt] [--max-load L] [--poll SECS]";

/// What loadgen drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Messages into rooms (`--rates` in messages per second).
    RoomFanout,
    /// A reconnect wave (`--rates` in new connections per second).
    ConnectStorm,
}

/// One chatd under comparison.
#[derive(Debug)]
struct Build {
    name: String,
    chatd: PathBuf,
    /// Arguments of this build's chatd besides the benchmark's.
    args: Vec<String>,
}

#[derive(Debug)]
struct Options {
    builds: Vec<Build>,
    scenario: Scenario,
    connections_per_user: u32,
    loadgen: PathBuf,
    out: PathBuf,
    rates: Vec<f64>,
    runs: usize,
    nodes: usize,
    users: u32,
    room_size: u32,
    payload: usize,
    duration: String,
    warmup: String,
    connect_rate: f64,
    /// A round-trip time to add between loadgen and one chatd (a relay delays each datagram by
    /// half of it each way): with it, latencies count round trips.
    rtt: Option<Duration>,
    /// loadgen's `--no-zero-rtt`: connections resume, but wait for the handshake.
    no_zero_rtt: bool,
    max_load: Option<f64>,
    poll: Duration,
}

/// The options, or `None` when asked for help (`--help`, `-h`).
fn parse() -> anyhow::Result<Option<Options>> {
    let mut o = Options {
        builds: Vec::new(),
        scenario: Scenario::RoomFanout,
        connections_per_user: 4,
        loadgen: PathBuf::new(),
        out: PathBuf::new(),
        rates: vec![500.0],
        runs: 3,
        nodes: 0,
        users: 1000,
        room_size: 100,
        payload: 128,
        duration: "20s".into(),
        warmup: "5s".into(),
        connect_rate: 200.0,
        rtt: None,
        no_zero_rtt: false,
        max_load: None,
        poll: Duration::from_secs(600),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value ({USAGE})"))
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--build" => o.builds.push(build(&value()?)?),
            "--scenario" => {
                o.scenario = match value()?.as_str() {
                    "room-fanout" => Scenario::RoomFanout,
                    "connect-storm" => Scenario::ConnectStorm,
                    other => bail!("--scenario {other:?}: room-fanout or connect-storm"),
                }
            }
            "--connections-per-user" => {
                o.connections_per_user = value()?.parse().context("--connections-per-user")?
            }
            "--loadgen" => o.loadgen = PathBuf::from(value()?),
            "--out" => o.out = PathBuf::from(value()?),
            "--rates" => {
                o.rates = value()?
                    .split(',')
                    .map(|r| r.trim().parse::<f64>())
                    .collect::<Result<_, _>>()
                    .context("--rates: numbers separated by commas")?
            }
            "--runs" => o.runs = value()?.parse().context("--runs")?,
            "--nodes" => o.nodes = value()?.parse().context("--nodes")?,
            "--users" => o.users = value()?.parse().context("--users")?,
            "--room-size" => o.room_size = value()?.parse().context("--room-size")?,
            "--payload" => o.payload = value()?.parse().context("--payload")?,
            "--duration" => o.duration = value()?,
            "--warmup" => o.warmup = value()?,
            "--connect-rate" => o.connect_rate = value()?.parse().context("--connect-rate")?,
            "--rtt" => {
                let ms: f64 = value()?.parse().context("--rtt: milliseconds")?;
                o.rtt = Some(Duration::from_secs_f64(ms / 1000.0));
            }
            "--no-zero-rtt" => o.no_zero_rtt = true,
            "--max-load" => o.max_load = Some(value()?.parse().context("--max-load")?),
            "--poll" => o.poll = Duration::from_secs(value()?.parse().context("--poll")?),
            other => bail!("unknown argument {other:?} ({USAGE})"),
        }
    }
    if o.builds.is_empty() || o.loadgen.as_os_str().is_empty() || o.out.as_os_str().is_empty() {
        bail!("--build, --loadgen and --out are required ({USAGE})");
    }
    if o.runs == 0 || o.rates.is_empty() {
        bail!("at least one run and one rate");
    }
    if o.scenario == Scenario::ConnectStorm && o.nodes > 0 {
        bail!("connect-storm runs against one node (--nodes 0)");
    }
    if o.rtt.is_some() && o.nodes > 0 {
        bail!("--rtt relays to one node (--nodes 0)");
    }
    Ok(Some(o))
}

/// `NAME=CHATD[,ARG...]`.
fn build(spec: &str) -> anyhow::Result<Build> {
    let (name, rest) = spec
        .split_once('=')
        .with_context(|| format!("--build {spec:?}: expected NAME=CHATD[,ARG...]"))?;
    let mut parts = rest.split(',');
    let chatd = PathBuf::from(parts.next().unwrap_or_default());
    Ok(Build {
        name: name.to_owned(),
        chatd,
        args: parts.map(str::to_owned).collect(),
    })
}

/// The 1-minute load average.
fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Waits (when asked to) until the machine is quiet enough to measure; returns the load then.
fn quiet(o: &Options) -> f64 {
    let Some(max) = o.max_load else {
        return load1();
    };
    loop {
        let load = load1();
        if load < max {
            return load;
        }
        eprintln!(
            "chat-bench: load average {load:.2} ≥ {max}: waiting {:?} for a quiet machine",
            o.poll
        );
        std::thread::sleep(o.poll);
    }
}

/// A server under test: what loadgen needs to reach it.
struct Target {
    servers: Vec<String>,
    metrics: Vec<String>,
    fingerprint: String,
    pids: Vec<(&'static str, u32)>,
    // Dropping stops it (the relay first, then the server).
    _relay: Option<Relay>,
    _running: Box<dyn std::any::Any>,
}

/// The delaying relay in front of one chatd, with the runtime it runs on.
struct Relay {
    relay: UdpRelay,
    _runtime: tokio::runtime::Runtime,
}

impl Relay {
    /// Relays to `server` with half of `rtt` each way.
    fn start(server: std::net::SocketAddr, rtt: Duration) -> anyhow::Result<Relay> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("relay runtime")?;
        let relay = runtime.block_on(UdpRelay::start(server, rtt / 2));
        Ok(Relay {
            relay,
            _runtime: runtime,
        })
    }
}

fn start(o: &Options, build: &Build) -> anyhow::Result<Target> {
    if o.nodes == 0 {
        let mut config = ChatdConfig::new()
            .binary(&build.chatd)
            .args(BENCH_ARGS)
            .args(&build.args);
        if o.scenario == Scenario::ConnectStorm {
            for (key, value) in STORM_ENV {
                config = config.env(key, value);
            }
        }
        let node = ChatdProcess::start(config);
        let relay = o
            .rtt
            .map(|rtt| Relay::start(node.addr(), rtt))
            .transpose()?;
        let server = relay.as_ref().map_or(node.addr(), |r| r.relay.addr());
        return Ok(Target {
            servers: vec![server.to_string()],
            metrics: vec![format!("http://{}/metrics", node.admin_addr())],
            fingerprint: node.fingerprint().to_owned(),
            pids: vec![("chatd", node.pid())],
            _relay: relay,
            _running: Box::new(node),
        });
    }
    let spec = ClusterSpec {
        nodes: o.nodes,
        redis: RedisKind::Standalone,
        store: StoreKind::FerretPostgres,
        args: BENCH_ARGS
            .iter()
            .chain(CLUSTER_ARGS)
            .map(|s| (*s).to_owned())
            .chain(build.args.iter().cloned())
            .collect(),
        chatd: Some(build.chatd.clone()),
    };
    let cluster = ChatCluster::start_with(spec);
    Ok(Target {
        servers: cluster.addrs().iter().map(|a| a.to_string()).collect(),
        metrics: (0..cluster.len())
            .map(|i| format!("http://{}/metrics", cluster.node(i).admin_addr()))
            .collect(),
        fingerprint: cluster.identity().fingerprint.clone(),
        pids: cluster.pids(),
        _relay: None,
        _running: Box::new(cluster),
    })
}

/// CPU seconds of each role at one moment: (unix ms, role → seconds).
type CpuSample = (u64, HashMap<&'static str, f64>);

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// CPU seconds used so far by every process in each server's process group and their
/// descendants (PostgreSQL's backends leave the group), by role.
fn cpu_by_role(pids: &[(&'static str, u32)]) -> HashMap<&'static str, f64> {
    let mut by_role: HashMap<&'static str, f64> = HashMap::new();
    for &(role, pid) in pids {
        let mut members = tree_members(pid);
        if !members.contains(&pid) {
            members.push(pid);
        }
        let used: f64 = members
            .iter()
            .filter_map(|&p| loadgen::procstat::process_cpu_time(p))
            .map(|d| d.as_secs_f64())
            .sum();
        *by_role.entry(role).or_default() += used;
    }
    by_role
}

/// Samples [`cpu_by_role`] every 100 ms until `stop` is set.
fn sample_cpu(pids: Vec<(&'static str, u32)>, stop: Arc<AtomicBool>) -> Vec<CpuSample> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        samples.push((unix_ms(), cpu_by_role(&pids)));
        std::thread::sleep(Duration::from_millis(100));
    }
    samples.push((unix_ms(), cpu_by_role(&pids)));
    samples
}

/// Each role's CPU seconds between `from` and `to` (unix ms), from the samples around them.
fn cpu_between(samples: &[CpuSample], from: u64, to: u64) -> BTreeMap<&'static str, f64> {
    let before = samples
        .iter()
        .rev()
        .find(|(t, _)| *t <= from)
        .or(samples.first());
    let after = samples.iter().find(|(t, _)| *t >= to).or(samples.last());
    let (Some((_, start)), Some((_, end))) = (before, after) else {
        return BTreeMap::new();
    };
    end.iter()
        .map(|(role, &used)| (*role, used - start.get(role).copied().unwrap_or(0.0)))
        .collect()
}

/// Runs loadgen against `target` with the workload's arguments; its JSON report.
fn loadgen(o: &Options, target: &Target, workload: &[String]) -> anyhow::Result<Value> {
    let mut cmd = Command::new(&o.loadgen);
    cmd.arg("run").arg("--json");
    for server in &target.servers {
        cmd.args(["--server", server]);
    }
    for url in &target.metrics {
        cmd.args(["--metrics-url", url]);
    }
    cmd.args(["--pin", &target.fingerprint]).args(workload);
    if o.no_zero_rtt {
        cmd.arg("--no-zero-rtt");
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", o.loadgen.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).with_context(|| {
        format!(
            "loadgen printed no report ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
/// What a workload measures and reports.
trait Workload {
    /// One run's figures.
    type Run;
    /// loadgen's arguments for the workload at `rate` (besides servers, metrics and pin).
    fn args(o: &Options, rate: f64) -> Vec<String>;
    /// A run's figures from loadgen's report and each role's CPU seconds during the load.
    fn figures(report: &Value, cpu: &BTreeMap<&'static str, f64>) -> Self::Run;
    /// One line about a run, for the progress output.
    fn line(run: &Self::Run) -> String;
    /// The summary: medians per rate and build, the ratios of the last build to the first, the
    /// knee of each build, and the failed runs.
    fn summarize(o: &Options, results: &Results<Self::Run>, failures: &[Failure]) -> String;
}

/// Runs by rate (see [`rate_key`]) and build.
type Results<R> = BTreeMap<String, BTreeMap<String, Vec<R>>>;

fn main() -> anyhow::Result<()> {
    let Some(o) = parse()? else {
        println!("{USAGE}");
        return Ok(());
    };
    match o.scenario {
        Scenario::RoomFanout => bench::<fanout::RoomFanout>(&o),
        Scenario::ConnectStorm => bench::<storm::ConnectStorm>(&o),
    }
}

/// Every run of every rate and build, then the summary.
fn bench<W: Workload>(o: &Options) -> anyhow::Result<()> {
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create {}", o.out.display()))?;
    let jsonl_path = o.out.join("runs.jsonl");
    let mut jsonl = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&jsonl_path)
        .with_context(|| format!("cannot open {}", jsonl_path.display()))?;
    let mut results: Results<W::Run> = BTreeMap::new();
    // A run that fails (loadgen cannot finish, its report is unreadable) is recorded and the
    // benchmark carries on: hours of other runs are worth keeping. The point it belongs to has
    // no knee, and the exit status says that runs failed.
    let mut failures: Vec<Failure> = Vec::new();
    for &rate in &o.rates {
        for run in 0..o.runs {
            let mut order: Vec<&Build> = o.builds.iter().collect();
            if run % 2 == 1 {
                order.reverse();
            }
            for build in order {
                let (name, chatd) = (&build.name, &build.chatd);
                let load_before = quiet(o);
                let target = start(o, build)?;
                let stop = Arc::new(AtomicBool::new(false));
                let sampler = {
                    let (pids, stop) = (target.pids.clone(), stop.clone());
                    std::thread::spawn(move || sample_cpu(pids, stop))
                };
                let report = loadgen(o, &target, &W::args(o, rate));
                stop.store(true, Ordering::Relaxed);
                let samples = sampler.join().unwrap_or_default();
                drop(target);
                let load_after = load1();
                let report = match report {
                    Ok(report) => report,
                    Err(e) => {
                        eprintln!(
                            "chat-bench: {name} rate {rate} run {}: FAILED: {e:#}",
                            run + 1
                        );
                        let line = serde_json::json!({
                            "build": name, "chatd": chatd, "rate": rate, "run": run + 1,
                            "nodes": o.nodes, "load_before": load_before,
                            "load_after": load_after, "error": format!("{e:#}"),
                        });
                        writeln!(jsonl, "{line}").context("write runs.jsonl")?;
                        failures.push(Failure {
                            rate: rate_key(rate),
                            build: name.clone(),
                            run: run + 1,
                            error: format!("{e:#}"),
                        });
                        continue;
                    }
                };
                let window = (
                    num(&report, &["loadgen", "cpu", "started_unix_ms"]).unwrap_or(0.0) as u64,
                    num(&report, &["loadgen", "cpu", "ended_unix_ms"]).unwrap_or(0.0) as u64,
                );
                let cpu = cpu_between(&samples, window.0, window.1);
                let figures = W::figures(&report, &cpu);
                eprintln!(
                    "chat-bench: {name} rate {rate} run {}: {}; load {load_before:.2} → {load_after:.2}",
                    run + 1,
                    W::line(&figures)
                );
                let line = serde_json::json!({
                    "build": name, "chatd": chatd, "args": build.args, "rate": rate,
                    "run": run + 1, "nodes": o.nodes, "load_before": load_before,
                    "load_after": load_after, "cpu_seconds_during_load": cpu, "report": report,
                });
                writeln!(jsonl, "{line}").context("write runs.jsonl")?;
                results
                    .entry(rate_key(rate))
                    .or_default()
                    .entry(name.clone())
                    .or_default()
                    .push(figures);
            }
        }
    }
    let summary = W::summarize(o, &results, &failures);
    std::fs::write(o.out.join("summary.md"), &summary).context("write summary.md")?;
    println!("{summary}");
    if !failures.is_empty() {
        bail!(
            "{} of the runs failed (see summary.md and runs.jsonl)",
            failures.len()
        );
    }
    Ok(())
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| !x.is_nan());
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len().is_multiple_of(2) {
        (xs[mid - 1] + xs[mid]) / 2.0
    } else {
        xs[mid]
    }
}

/// A run that did not produce a report.
struct Failure {
    /// The rate's key in the results (see [`rate_key`]).
    rate: String,
    build: String,
    run: usize,
    error: String,
}

/// A rate as a key that sorts like the number.
fn rate_key(rate: f64) -> String {
    format!("{rate:010.1}")
}
