//! The room fan-out workload (loadgen's `room-fanout`, the default): deliveries per second,
//! their latency, and the CPU each process spends per delivery.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::summary::{first_and_last, knee, medians, write_failures};
use crate::{Failure, Options, Results, Workload, num};

/// The p99 a rate must keep to count towards the knee (ms).
const KNEE_P99_MS: f64 = 50.0;

/// The room fan-out workload.
pub struct RoomFanout;

impl Workload for RoomFanout {
    type Run = Run;

    fn args(o: &Options, rate: f64) -> Vec<String> {
        [
            ("--users", o.users.to_string()),
            ("--room-size", o.room_size.to_string()),
            ("--payload", o.payload.to_string()),
            ("--rate", rate.to_string()),
            ("--duration", o.duration.clone()),
            ("--warmup", o.warmup.clone()),
            ("--connect-rate", o.connect_rate.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }

    fn figures(report: &Value, cpu: &BTreeMap<&'static str, f64>) -> Run {
        figures(report, cpu)
    }

    fn line(r: &Run) -> String {
        format!(
            "p50 {:.2} ms p99 {:.2} ms, {:.0} delivered/s, lost {}, server {:.1} CPU s/M deliveries, loadgen {:.1}",
            r.p50, r.p99, r.delivered_per_sec, r.lost, r.server_cpu_per_m, r.loadgen_cpu_per_m
        )
    }

    fn summarize(o: &Options, results: &Results<Run>, failures: &[Failure]) -> String {
        summarize(o, results, failures)
    }
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
pub struct Run {
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

/// The summary table (medians per rate and build, ratios of the last build to the first) and
/// each build's knee.
fn summarize(o: &Options, results: &Results<Run>, failures: &[Failure]) -> String {
    let names: Vec<&str> = o.builds.iter().map(|b| b.name.as_str()).collect();
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
        if let Some((first, last)) = first_and_last(&names, by_build) {
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
        let ok = |r: &Run| r.p99 <= KNEE_P99_MS && r.lost == 0.0 && r.errors == 0.0;
        let knee = knee(results, failures, name, ok, |r| r.delivered_per_sec);
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
    write_failures(&mut out, failures, "msg/s");
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::{Build, Scenario, rate_key};

    fn options(builds: &[&str]) -> Options {
        Options {
            builds: builds
                .iter()
                .map(|b| Build {
                    name: (*b).to_owned(),
                    chatd: PathBuf::from(b),
                    args: Vec::new(),
                })
                .collect(),
            scenario: Scenario::RoomFanout,
            connections_per_user: 1,
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
            rtt: None,
            no_zero_rtt: false,
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
