//! The reconnect wave (loadgen's `connect-storm`): new authenticated connections per second,
//! the time from a connection's due time to its first `sync` answer, and the CPU each process
//! spends per new connection. Every storm connection resumes its user's session the way the SDK
//! does (loadgen's `--no-zero-rtt` and chatd's `--resumption-tickets 0` take 0-RTT and
//! resumption away, as build arguments).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::summary::{first_and_last, knee, medians, write_failures};
use crate::{Failure, Options, Results, Workload, num};

/// The p99 from due to ready a rate must keep to count towards the knee (ms; issue 19's
/// target).
const KNEE_P99_MS: f64 = 200.0;

/// The connect-storm workload.
pub struct ConnectStorm;

/// One run's figures.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Connections established per second.
    per_sec: f64,
    /// Due → ready (handshake, hello, authenticate, first sync answer).
    p50: f64,
    p99: f64,
    /// Attempts that failed, and connections of the target never established.
    failed: f64,
    /// Share of the established connections served in 0-RTT.
    zero_rtt: f64,
    /// chatd's CPU microseconds per established connection.
    server_us: f64,
    /// loadgen's CPU microseconds per established connection.
    loadgen_us: f64,
}

impl Workload for ConnectStorm {
    type Run = Run;

    fn args(o: &Options, rate: f64) -> Vec<String> {
        [
            ("--scenario", "connect-storm".to_owned()),
            ("--users", o.users.to_string()),
            ("--connections-per-user", o.connections_per_user.to_string()),
            ("--connect-rate", rate.to_string()),
            ("--user-prefix", "storm_".to_owned()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }

    fn figures(report: &Value, cpu: &BTreeMap<&'static str, f64>) -> Run {
        let c = |k: &str| num(report, &["connections", k]);
        let established = c("established").unwrap_or(0.0);
        let per_connection =
            |seconds: Option<f64>| seconds.map_or(f64::NAN, |s| s * 1e6 / established.max(1.0));
        Run {
            per_sec: c("per_sec").unwrap_or(0.0),
            p50: num(report, &["connections", "connect_ms", "p50"]).unwrap_or(f64::NAN),
            p99: num(report, &["connections", "connect_ms", "p99"]).unwrap_or(f64::NAN),
            failed: c("failed").unwrap_or(f64::NAN)
                + (c("target").unwrap_or(0.0) - established - c("failed").unwrap_or(0.0)).max(0.0),
            zero_rtt: c("zero_rtt").unwrap_or(0.0) / established.max(1.0),
            server_us: per_connection(cpu.get("chatd").copied()),
            loadgen_us: per_connection(num(report, &["loadgen", "cpu", "cpu_seconds"])),
        }
    }

    fn line(r: &Run) -> String {
        format!(
            "{:.0} established/s, ready p50 {:.1} ms p99 {:.1} ms, failed {}, {:.0}% in 0-RTT, chatd {:.0} µs CPU / connection, loadgen {:.0}",
            r.per_sec,
            r.p50,
            r.p99,
            r.failed,
            r.zero_rtt * 100.0,
            r.server_us,
            r.loadgen_us
        )
    }

    fn summarize(o: &Options, results: &Results<Run>, failures: &[Failure]) -> String {
        summarize(o, results, failures)
    }
}

fn summarize(o: &Options, results: &Results<Run>, failures: &[Failure]) -> String {
    let names: Vec<&str> = o.builds.iter().map(|b| b.name.as_str()).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} runs per point; connect-storm: {} users × {} connections, one node{}\n",
        o.runs,
        o.users,
        o.connections_per_user,
        o.rtt
            .map(|rtt| format!(", {} ms round trip (relay)", rtt.as_millis()))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "| offered/s | build | established/s | ready p50 ms | ready p99 ms | failed (max) | in 0-RTT | chatd CPU µs / connection | loadgen CPU µs / connection |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for (rate, by_build) in results {
        let rate: f64 = rate.trim().parse().unwrap_or(f64::NAN);
        for name in &names {
            let Some(runs) = by_build.get(*name) else {
                continue;
            };
            let failed = runs.iter().map(|r| r.failed).fold(0.0, f64::max);
            let _ = writeln!(
                out,
                "| {rate} | {name} | {:.0} | {:.1} | {:.1} | {failed} | {:.0}% | {:.0} | {:.0} |",
                medians(runs, |r| r.per_sec),
                medians(runs, |r| r.p50),
                medians(runs, |r| r.p99),
                medians(runs, |r| r.zero_rtt) * 100.0,
                medians(runs, |r| r.server_us),
                medians(runs, |r| r.loadgen_us),
            );
        }
        if let Some((first, last)) = first_and_last(&names, by_build) {
            let ratio = |f: fn(&Run) -> f64| medians(last, f) / medians(first, f);
            let _ = writeln!(
                out,
                "| {rate} | **{} / {}** | **{:.2}×** | **{:.2}×** | **{:.2}×** | | | **{:.2}×** | **{:.2}×** |",
                names.last().unwrap_or(&""),
                names.first().unwrap_or(&""),
                ratio(|r| r.per_sec),
                ratio(|r| r.p50),
                ratio(|r| r.p99),
                ratio(|r| r.server_us),
                ratio(|r| r.loadgen_us),
            );
        }
    }
    let _ = writeln!(out);
    for name in &names {
        let ok = |r: &Run| r.p99 <= KNEE_P99_MS && r.failed == 0.0;
        let knee = knee(results, failures, name, ok, |r| r.per_sec);
        let _ = match knee {
            Some((rate, per_sec)) => writeln!(
                out,
                "- knee of {name} (every run ready p99 ≤ {KNEE_P99_MS} ms, none failed): {rate} offered/s, {per_sec:.0} established/s"
            ),
            None => writeln!(out, "- knee of {name}: none of the rates tried"),
        };
    }
    write_failures(&mut out, failures, "connections/s");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_per_established_connection() {
        let report = serde_json::json!({
            "connections": {
                "target": 100, "established": 98, "failed": 1, "zero_rtt": 49,
                "per_sec": 950.0, "connect_ms": {"p50": 2.0, "p99": 40.0}
            },
            "loadgen": {"cpu": {"cpu_seconds": 0.098}}
        });
        let cpu = BTreeMap::from([("chatd", 0.049)]);
        let run = ConnectStorm::figures(&report, &cpu);
        assert_eq!(run.failed, 2.0, "one failed, one never tried");
        assert_eq!(run.zero_rtt, 0.5);
        assert!((run.server_us - 500.0).abs() < 1e-6, "{run:?}");
        assert!((run.loadgen_us - 1000.0).abs() < 1e-6, "{run:?}");
        assert_eq!((run.p50, run.p99, run.per_sec), (2.0, 40.0, 950.0));
    }
}
