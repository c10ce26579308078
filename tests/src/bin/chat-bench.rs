//! `chat-bench`: loadgen against several chatd builds side by side, for ratios that hold across
//! machines. Run it through `cargo xtask bench-compare`, which builds everything in release mode.
//!
//! For every rate, `--runs` times, every build in turn (the order alternates from run to run, so
//! that a drift of the machine does not favour one build) gets a fresh server: one chatd on its
//! embedded store (`--nodes 0`, the default), or N chatd nodes on FerretDB (PostgreSQL) and one
//! Redis. loadgen then drives the room fan-out workload and prints its JSON report. Before each
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
//! rate at which every run had p99 ≤ 50 ms and lost nothing).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::cluster::{ChatCluster, ClusterSpec, RedisKind, StoreKind};
use tests::process::tree_members;

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

/// Extra settings for nodes on FerretDB: its latency while a thousand users register would trip
/// the storage breaker with the default timeout.
const CLUSTER_ARGS: &[&str] = &["--store-timeout=30s"];

/// The p99 a rate must keep to count towards the knee (ms).
const KNEE_P99_MS: f64 = 50.0;

const USAGE: &str = "usage: chat-bench --build NAME=CHATD [--build NAME=CHATD ...] --loadgen PATH \\
    --out DIR [--rates R1,R2,...] [--runs N] [--nodes N] [--users N] [--room-size K] \\
    [--payload BYTES] [--duration D] [--warmup D] [--connect-rate R] [--max-load L] [--poll SECS]";

#[derive(Debug)]
struct Options {
    builds: Vec<(String, PathBuf)>,
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
    max_load: Option<f64>,
    poll: Duration,
}

fn parse() -> anyhow::Result<Options> {
    let mut o = Options {
        builds: Vec::new(),
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
            "--build" => {
                let v = value()?;
                let (name, path) = v
                    .split_once('=')
                    .with_context(|| format!("--build {v:?}: expected NAME=PATH"))?;
                o.builds.push((name.to_owned(), PathBuf::from(path)));
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
    Ok(o)
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
    // Dropping stops it.
    _running: Box<dyn std::any::Any>,
}

fn start(o: &Options, chatd: &Path) -> Target {
    if o.nodes == 0 {
        let node = ChatdProcess::start(ChatdConfig::new().binary(chatd).args(BENCH_ARGS));
        return Target {
            servers: vec![node.addr().to_string()],
            metrics: vec![format!("http://{}/metrics", node.admin_addr())],
            fingerprint: node.fingerprint().to_owned(),
            pids: vec![("chatd", node.pid())],
            _running: Box::new(node),
        };
    }
    let spec = ClusterSpec {
        nodes: o.nodes,
        redis: RedisKind::Standalone,
        store: StoreKind::FerretPostgres,
        args: BENCH_ARGS
            .iter()
            .chain(CLUSTER_ARGS)
            .map(|s| (*s).to_owned())
            .collect(),
        chatd: Some(chatd.to_path_buf()),
    };
    let cluster = ChatCluster::start_with(spec);
    Target {
        servers: cluster.addrs().iter().map(|a| a.to_string()).collect(),
        metrics: (0..cluster.len())
            .map(|i| format!("http://{}/metrics", cluster.node(i).admin_addr()))
            .collect(),
        fingerprint: cluster.identity().fingerprint.clone(),
        pids: cluster.pids(),
        _running: Box::new(cluster),
    }
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

/// Runs loadgen against `target` at `rate`; its JSON report.
fn loadgen(o: &Options, target: &Target, rate: f64) -> anyhow::Result<Value> {
    let mut cmd = Command::new(&o.loadgen);
    cmd.arg("run").arg("--json");
    for server in &target.servers {
        cmd.args(["--server", server]);
    }
    for url in &target.metrics {
        cmd.args(["--metrics-url", url]);
    }
    cmd.args(["--pin", &target.fingerprint])
        .args(["--users", &o.users.to_string()])
        .args(["--room-size", &o.room_size.to_string()])
        .args(["--payload", &o.payload.to_string()])
        .args(["--rate", &rate.to_string()])
        .args(["--duration", &o.duration, "--warmup", &o.warmup])
        .args(["--connect-rate", &o.connect_rate.to_string()]);
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

/// One run's figures.
#[derive(Debug, Clone, Default)]
struct Run {
    p50: f64,
    p99: f64,
    delivered_per_sec: f64,
    lost: f64,
    errors: f64,
    /// chatd's CPU seconds (all nodes) per million deliveries.
    server_cpu_per_m: f64,
    /// The database's CPU seconds (FerretDB and PostgreSQL) per million deliveries.
    store_cpu_per_m: f64,
    /// loadgen CPU seconds per million deliveries.
    loadgen_cpu_per_m: f64,
    /// Database commands per message.
    commands_per_message: Option<f64>,
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_f64()
}

fn figures(report: &Value, cpu: &BTreeMap<&'static str, f64>) -> Run {
    let role = |r: &str| cpu.get(r).copied();
    let store = match (role("ferretdb"), role("postgres")) {
        (None, None) => f64::NAN,
        (a, b) => a.unwrap_or(0.0) + b.unwrap_or(0.0),
    };
    let delivered = num(report, &["delivered"]).unwrap_or(0.0).max(1.0);
    let acked = num(report, &["acked"]).unwrap_or(0.0).max(1.0);
    Run {
        p50: num(report, &["latency_ms", "p50"]).unwrap_or(f64::NAN),
        p99: num(report, &["latency_ms", "p99"]).unwrap_or(f64::NAN),
        delivered_per_sec: num(report, &["delivered_per_sec"]).unwrap_or(0.0),
        lost: num(report, &["lost"]).unwrap_or(f64::NAN),
        errors: num(report, &["errors"]).unwrap_or(f64::NAN),
        server_cpu_per_m: role("chatd").unwrap_or(f64::NAN) * 1e6 / delivered,
        store_cpu_per_m: store * 1e6 / delivered,
        loadgen_cpu_per_m: num(report, &["loadgen", "cpu", "cpu_seconds"]).unwrap_or(f64::NAN)
            * 1e6
            / delivered,
        commands_per_message: num(report, &["server", "store_commands"])
            .filter(|c| *c > 0.0)
            .map(|c| c / acked),
    }
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

fn main() -> anyhow::Result<()> {
    let o = parse()?;
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create {}", o.out.display()))?;
    let jsonl_path = o.out.join("runs.jsonl");
    let mut jsonl = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&jsonl_path)
        .with_context(|| format!("cannot open {}", jsonl_path.display()))?;
    // results[rate][build] = runs
    let mut results: BTreeMap<String, BTreeMap<String, Vec<Run>>> = BTreeMap::new();
    // A run that fails (loadgen cannot finish, its report is unreadable) is recorded and the
    // benchmark carries on: hours of other runs are worth keeping. The point it belongs to has
    // no knee, and the exit status says that runs failed.
    let mut failures: Vec<Failure> = Vec::new();
    for &rate in &o.rates {
        for run in 0..o.runs {
            let mut order: Vec<&(String, PathBuf)> = o.builds.iter().collect();
            if run % 2 == 1 {
                order.reverse();
            }
            for (name, chatd) in order {
                let load_before = quiet(&o);
                let target = start(&o, chatd);
                let stop = Arc::new(AtomicBool::new(false));
                let sampler = {
                    let (pids, stop) = (target.pids.clone(), stop.clone());
                    std::thread::spawn(move || sample_cpu(pids, stop))
                };
                let report = loadgen(&o, &target, rate);
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
                let figures = figures(&report, &cpu);
                eprintln!(
                    "chat-bench: {name} rate {rate} run {}: p50 {:.2} ms p99 {:.2} ms, {:.0} delivered/s, lost {}, server {:.1} CPU s/M deliveries, loadgen {:.1}; load {load_before:.2} → {load_after:.2}",
                    run + 1,
                    figures.p50,
                    figures.p99,
                    figures.delivered_per_sec,
                    figures.lost,
                    figures.server_cpu_per_m,
                    figures.loadgen_cpu_per_m
                );
                let line = serde_json::json!({
                    "build": name, "chatd": chatd, "rate": rate, "run": run + 1,
                    "nodes": o.nodes, "load_before": load_before, "load_after": load_after,
                    "cpu_seconds_during_load": cpu, "report": report,
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
    let summary = summarize(&o, &results, &failures);
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

/// The summary table (medians per rate and build, ratios of the last build to the first) and
/// each build's knee.
fn summarize(
    o: &Options,
    results: &BTreeMap<String, BTreeMap<String, Vec<Run>>>,
    failures: &[Failure],
) -> String {
    let names: Vec<&str> = o.builds.iter().map(|(n, _)| n.as_str()).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} runs per point; {} users, rooms of {}, {} B payload, {} after {} warm-up, {}\n",
        o.runs,
        o.users,
        o.room_size,
        o.payload,
        o.duration,
        o.warmup,
        if o.nodes == 0 {
            "one node (embedded store)".to_owned()
        } else {
            format!("{} nodes on FerretDB (PostgreSQL) and Redis", o.nodes)
        }
    );
    let _ = writeln!(
        out,
        "| rate | build | delivered/s | p50 ms | p99 ms | lost (max) | chatd CPU s / M deliveries | loadgen CPU s / M deliveries | database CPU s / M deliveries | store commands / message |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let medians = |runs: &[Run], f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    for (rate, by_build) in results {
        let rate: f64 = rate.trim().parse().unwrap_or(f64::NAN);
        for name in &names {
            let Some(runs) = by_build.get(*name) else {
                continue;
            };
            let lost = runs.iter().map(|r| r.lost).fold(0.0, f64::max);
            let commands = medians(runs, |r| r.commands_per_message.unwrap_or(f64::NAN));
            let shown = |x: f64, digits: usize| {
                if x.is_nan() {
                    "–".to_owned()
                } else {
                    format!("{x:.digits$}")
                }
            };
            let _ = writeln!(
                out,
                "| {rate} | {name} | {:.0} | {:.2} | {:.2} | {lost} | {:.1} | {:.1} | {} | {} |",
                medians(runs, |r| r.delivered_per_sec),
                medians(runs, |r| r.p50),
                medians(runs, |r| r.p99),
                medians(runs, |r| r.server_cpu_per_m),
                medians(runs, |r| r.loadgen_cpu_per_m),
                shown(medians(runs, |r| r.store_cpu_per_m), 1),
                shown(commands, 2),
            );
        }
        if let (Some(first), Some(last)) = (
            names.first().and_then(|n| by_build.get(*n)),
            names.last().and_then(|n| by_build.get(*n)),
        ) && names.len() > 1
        {
            let ratio = |f: fn(&Run) -> f64| medians(last, f) / medians(first, f);
            let _ = writeln!(
                out,
                "| {rate} | **{} / {}** | | **{:.2}×** | **{:.2}×** | | **{:.2}×** | **{:.2}×** | | |",
                names.last().unwrap_or(&""),
                names.first().unwrap_or(&""),
                ratio(|r| r.p50),
                ratio(|r| r.p99),
                ratio(|r| r.server_cpu_per_m),
                ratio(|r| r.loadgen_cpu_per_m),
            );
        }
    }
    let _ = writeln!(out);
    let mut knees = Vec::new();
    for name in &names {
        let knee = results
            .iter()
            .filter(|(rate, _)| {
                !failures
                    .iter()
                    .any(|f| &f.rate == *rate && f.build == *name)
            })
            .filter_map(|(rate, by_build)| {
                let runs = by_build.get(*name)?;
                let ok = runs
                    .iter()
                    .all(|r| r.p99 <= KNEE_P99_MS && r.lost == 0.0 && r.errors == 0.0);
                let delivered = medians(runs, |r| r.delivered_per_sec);
                ok.then(|| (rate.trim().parse::<f64>().unwrap_or(0.0), delivered))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match knee {
            Some((rate, delivered)) => {
                let _ = writeln!(
                    out,
                    "- knee of {name} (every run p99 ≤ {KNEE_P99_MS} ms, nothing lost, no error): {rate} msg/s, {delivered:.0} deliveries/s"
                );
                knees.push(Some(delivered));
            }
            None => {
                let _ = writeln!(out, "- knee of {name}: none of the rates tried");
                knees.push(None);
            }
        }
    }
    if let (Some(Some(first)), Some(Some(last))) = (knees.first(), knees.last())
        && knees.len() > 1
    {
        let _ = writeln!(out, "- knee ratio (last / first): **{:.2}×**", last / first);
    }
    if !failures.is_empty() {
        let _ = writeln!(
            out,
            "\nFailed runs (left out of the medians; no knee at their rate):"
        );
        for f in failures {
            let rate: f64 = f.rate.trim().parse().unwrap_or(f64::NAN);
            let _ = writeln!(
                out,
                "- {} at {rate} msg/s, run {}: {}",
                f.build, f.run, f.error
            );
        }
    }
    out
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    fn options(builds: &[&str]) -> Options {
        Options {
            builds: builds
                .iter()
                .map(|b| ((*b).to_owned(), PathBuf::from(b)))
                .collect(),
            loadgen: PathBuf::new(),
            out: PathBuf::new(),
            rates: vec![100.0, 200.0],
            runs: 1,
            nodes: 0,
            users: 10,
            room_size: 5,
            payload: 16,
            duration: "1s".into(),
            warmup: "1s".into(),
            connect_rate: 10.0,
            max_load: None,
            poll: Duration::from_secs(1),
        }
    }

    fn good() -> Run {
        Run {
            p50: 1.0,
            p99: 5.0,
            delivered_per_sec: 1000.0,
            lost: 0.0,
            errors: 0.0,
            server_cpu_per_m: 10.0,
            store_cpu_per_m: f64::NAN,
            loadgen_cpu_per_m: 10.0,
            commands_per_message: None,
        }
    }

    #[test]
    fn a_failed_run_is_listed_and_its_rate_is_no_knee() {
        let o = options(&["new"]);
        let mut results: BTreeMap<String, BTreeMap<String, Vec<Run>>> = BTreeMap::new();
        for rate in [100.0, 200.0] {
            results
                .entry(rate_key(rate))
                .or_default()
                .insert("new".into(), vec![good()]);
        }
        let clean = summarize(&o, &results, &[]);
        assert!(clean.contains("knee of new (every run"), "{clean}");
        assert!(clean.contains(": 200 msg/s"), "{clean}");
        let failed = [Failure {
            rate: rate_key(200.0),
            build: "new".into(),
            run: 2,
            error: "loadgen exited with status 1".into(),
        }];
        let summary = summarize(&o, &results, &failed);
        assert!(summary.contains(": 100 msg/s"), "{summary}");
        assert!(
            summary.contains("- new at 200 msg/s, run 2: loadgen exited with status 1"),
            "{summary}"
        );
    }
}
