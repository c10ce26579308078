//! The result of a run: one [`Report`] value, printed as a table or as one JSON object, and
//! optionally drawn as SVG plots.
//!
//! Layout: this file holds the report's types; `table` renders the human summary, `plot` the
//! SVG files.

pub mod plot;
pub mod table;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::procstat::CpuUse;
use crate::scrape::ServerSample;
use crate::stats::{LatencySummary, SecondSummary};

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Random id of the run (hex), also in every message header.
    pub run_id: String,
    /// Server addresses.
    pub servers: Vec<String>,
    /// Users driven.
    pub users: u32,
    /// Rooms (private chats for the private scenario).
    pub rooms: u32,
    /// Members per room.
    pub room_size: u32,
    /// Configured offered operations per second.
    pub target_rate: f64,
    /// Measured seconds.
    pub duration_s: f64,
    /// Warmup seconds.
    pub warmup_s: f64,
    /// Message text bytes.
    pub payload_bytes: usize,
    /// Operations issued over the whole schedule (warmup included).
    pub offered: u64,
    /// Operations due per second in the measured window.
    pub offered_per_sec: f64,
    /// Messages acknowledged over the whole run.
    pub acked: u64,
    /// Acknowledgements per second in the measured window.
    pub acked_per_sec: f64,
    /// Deliveries expected: every acknowledged message to every connection of every other
    /// member of its room.
    pub expected: u64,
    /// Expected deliveries that arrived (by the end of the drain).
    pub delivered: u64,
    /// Deliveries per second received in the measured window.
    pub delivered_per_sec: f64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    /// Second copies of a message at the same connection.
    pub duplicated: u64,
    /// Deliveries that overtook a message sent after this one was acknowledged.
    pub reordered: u64,
    /// Deliveries of messages whose send failed or is unanswered (they are not expected).
    pub delivered_unacked: u64,
    /// Deliveries to a connection that should not have had the message.
    pub unexpected: u64,
    /// Messages of other runs or clients seen in the rooms, ignored.
    pub foreign: u64,
    /// Sends that failed.
    pub failed_sends: u64,
    /// Sends without an answer at the end.
    pub unanswered: u64,
    /// Errors during the run, all kinds.
    pub errors: u64,
    /// Errors by code (chat/1 error code names, `timeout`, `connection_lost`, ...).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Due → arrival per recipient, messages due in the measured window.
    pub latency_ms: LatencySummary,
    /// Due → arrival at the last recipient of each message.
    pub last_recipient_latency_ms: LatencySummary,
    /// Due → acknowledgement of each send.
    pub ack_latency_ms: LatencySummary,
    /// Due → answer of reads, by operation (history and search mixes).
    pub requests: BTreeMap<String, LatencySummary>,
    /// Connection establishment.
    pub connections: ConnectionReport,
    /// loadgen's own resource use (a saturated load generator measures itself).
    pub loadgen: LoadgenUse,
    /// chatd's figures from `--metrics-url`, if given.
    pub server: Option<ServerReport>,
    /// Per second after t0.
    pub timeline: Vec<SecondSummary>,
    /// True when nothing was lost, duplicated, reordered or misdelivered and no error occurred.
    pub ok: bool,
}

/// How connections were established.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectionReport {
    /// Connections the run asked for.
    pub target: u64,
    /// Connections established (handshake, Hello and authentication done).
    pub established: u64,
    /// Of those, connections whose first requests the server took in 0-RTT data (resumed
    /// with a session ticket from an earlier connection).
    pub zero_rtt: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Connections the SDK re-established after losing them.
    pub reconnects: u64,
    /// Established connections per second, first due time to last established.
    pub per_sec: f64,
    /// QUIC + TLS handshake and Hello (connect-storm: with `authenticate` and `sync`, the
    /// SDK's resumption of a session).
    pub handshake_ms: LatencySummary,
    /// Register, login or authenticate.
    pub auth_ms: LatencySummary,
    /// Due → established, for the connect-storm scenario (open-loop connection schedule).
    pub connect_ms: LatencySummary,
}

/// loadgen's resource use.
#[derive(Debug, Clone, Serialize)]
pub struct LoadgenUse {
    /// CPU over the measured phase (schedule and drain).
    pub cpu: Option<CpuUse>,
    /// Resident memory at the end, bytes.
    pub rss_bytes: Option<u64>,
    /// Runtime worker threads.
    pub threads: usize,
}

/// Server figures around the run.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    /// Before loadgen connected.
    pub before: ServerSample,
    /// After every connection was established (before the load).
    pub connected: ServerSample,
    /// At the end of the run.
    pub after: ServerSample,
    /// Growth of the server's RSS per connection, bytes (see `rss_per_connection_basis`).
    pub rss_per_connection_bytes: Option<f64>,
    /// Which connections and which baseline `rss_per_connection_bytes` is computed from.
    pub rss_per_connection_basis: String,
    /// The samples the idle scenario fits the per-connection figure to: server RSS as
    /// connections were added in steps.
    pub rss_steps: Vec<RssStep>,
    /// Events the server reports it wrote between `connected` and `after`.
    pub events_sent: Option<f64>,
    /// Database commands the server sent between `connected` and `after` (MongoDB backend).
    pub store_commands: Option<f64>,
    /// Requests the server handled between `connected` and `after`, by kind: shows, for
    /// example, `get_chat_events` the clients needed to fill gaps in live delivery.
    pub requests_during_load: BTreeMap<String, f64>,
}

/// Server memory at one number of open connections.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RssStep {
    /// Connections open on the server.
    pub connections: f64,
    /// Its resident memory, bytes.
    pub rss_bytes: f64,
}

/// Memory per added connection: the median of the slopes between consecutive samples.
/// glibc's allocator now and then returns a block of freed memory to the system, which shows as
/// one step with a drop; the median ignores such a step where a least-squares fit would not.
/// `None` without at least one step that adds connections.
pub fn rss_slope(steps: &[RssStep]) -> Option<f64> {
    let mut slopes: Vec<f64> = steps
        .windows(2)
        .filter(|w| w[1].connections > w[0].connections)
        .map(|w| (w[1].rss_bytes - w[0].rss_bytes) / (w[1].connections - w[0].connections))
        .collect();
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(f64::total_cmp);
    let mid = slopes.len() / 2;
    Some(if slopes.len().is_multiple_of(2) {
        (slopes[mid - 1] + slopes[mid]) / 2.0
    } else {
        slopes[mid]
    })
}

impl ServerReport {
    /// The figures, with the memory per connection computed over all `connections` from
    /// `before` to `connected`. That includes whatever the logins cost (password hashing
    /// memory the allocator keeps), so [`ServerReport::per_connection_from`] gives a cleaner
    /// figure where the run has connections opened after the logins.
    pub fn new(
        before: ServerSample,
        connected: ServerSample,
        after: ServerSample,
        connections: u64,
    ) -> Self {
        let delta = |c: Option<f64>, a: Option<f64>| match (c, a) {
            (Some(c), Some(a)) => Some(a - c),
            _ => None,
        };
        let events_sent = delta(connected.events_sent, after.events_sent);
        let store_commands = delta(connected.store_commands, after.store_commands);
        let requests_during_load = after.requests_since(&connected);
        let baseline = before.clone();
        let mut report = Self {
            before,
            connected,
            after,
            requests_during_load,
            rss_per_connection_bytes: None,
            rss_per_connection_basis: String::new(),
            rss_steps: Vec::new(),
            events_sent,
            store_commands,
        };
        report.per_connection_from(
            &baseline,
            connections,
            &format!("{connections} connections, from before the first login"),
        );
        report
    }

    /// Computes the memory per connection as the RSS growth from `baseline` to `connected`
    /// over `connections`, described by `basis`.
    pub fn per_connection_from(&mut self, baseline: &ServerSample, connections: u64, basis: &str) {
        self.rss_per_connection_bytes = match (baseline.rss_bytes, self.connected.rss_bytes) {
            (Some(b), Some(c)) if connections > 0 => Some((c - b) / connections as f64),
            _ => None,
        };
        self.rss_per_connection_basis = basis.to_owned();
    }
}

impl Report {
    /// A report of `config`'s run with every measured figure at zero, to be filled in.
    pub fn empty(config: &crate::config::RunConfig, run_id: u64, rooms: u32) -> Self {
        Report {
            scenario: config.scenario.name().to_owned(),
            run_id: format!("{run_id:016x}"),
            servers: config.servers.clone(),
            users: config.users,
            rooms,
            room_size: if config.scenario.sends_messages() {
                config.room_size
            } else {
                0
            },
            target_rate: if config.scenario.sends_messages() {
                config.rate
            } else {
                0.0
            },
            duration_s: config.duration.as_secs_f64(),
            warmup_s: if config.scenario.sends_messages() {
                config.warmup.as_secs_f64()
            } else {
                0.0
            },
            payload_bytes: config.payload,
            offered: 0,
            offered_per_sec: 0.0,
            acked: 0,
            acked_per_sec: 0.0,
            expected: 0,
            delivered: 0,
            delivered_per_sec: 0.0,
            lost: 0,
            duplicated: 0,
            reordered: 0,
            delivered_unacked: 0,
            unexpected: 0,
            foreign: 0,
            failed_sends: 0,
            unanswered: 0,
            errors: 0,
            errors_by_code: BTreeMap::new(),
            latency_ms: LatencySummary::default(),
            last_recipient_latency_ms: LatencySummary::default(),
            ack_latency_ms: LatencySummary::default(),
            requests: BTreeMap::new(),
            connections: ConnectionReport {
                target: config.connections(),
                ..ConnectionReport::default()
            },
            loadgen: LoadgenUse {
                cpu: None,
                rss_bytes: None,
                threads: config.threads,
            },
            server: None,
            timeline: Vec::new(),
            ok: false,
        }
    }

    /// Sets `ok` from the correctness figures.
    pub fn judge(&mut self) {
        self.ok = self.errors == 0
            && self.lost == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.unexpected == 0
            && self.failed_sends == 0
            && self.unanswered == 0
            && self.connections.failed == 0;
    }

    /// The JSON object.
    pub fn to_json(&self) -> String {
        // The report holds only strings, numbers, maps and options: serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> crate::config::RunConfig {
        crate::config::RunConfig::from_flags(["--server", "h:1", "--insecure"]).expect("valid")
    }

    #[test]
    fn json_has_the_documented_shape() {
        let mut r = Report::empty(&config(), 0xabc, 10);
        r.expected = 8;
        r.delivered = 7;
        r.lost = 1;
        r.errors_by_code.insert("RATE_LIMITED".into(), 2);
        r.errors = 2;
        r.latency_ms.p999 = 12.5;
        r.judge();
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
        assert_eq!(v["run_id"], "0000000000000abc");
        assert_eq!(v["scenario"], "room-fanout");
        for key in [
            "expected",
            "delivered",
            "lost",
            "duplicated",
            "reordered",
            "errors",
            "delivered_per_sec",
            "offered",
            "offered_per_sec",
            "acked",
            "acked_per_sec",
        ] {
            assert!(v[key].is_number(), "{key}");
        }
        assert_eq!(v["expected"], 8);
        assert_eq!(v["lost"], 1);
        for key in ["p50", "p90", "p99", "p999", "max", "mean", "count"] {
            assert!(v["latency_ms"][key].is_number(), "latency_ms.{key}");
        }
        assert_eq!(v["latency_ms"]["p999"], 12.5);
        assert_eq!(v["errors_by_code"]["RATE_LIMITED"], 2);
        assert!(v["connections"]["handshake_ms"]["p99"].is_number());
        assert!(v["loadgen"]["threads"].is_number());
        assert!(v["server"].is_null());
        assert!(v["timeline"].is_array());
        assert_eq!(v["ok"], false);
    }

    #[test]
    fn a_run_is_ok_only_without_any_fault() {
        let mut r = Report::empty(&config(), 1, 1);
        r.judge();
        assert!(r.ok);
        for fault in 0..7 {
            let mut r = Report::empty(&config(), 1, 1);
            match fault {
                0 => r.errors = 1,
                1 => r.lost = 1,
                2 => r.duplicated = 1,
                3 => r.reordered = 1,
                4 => r.unexpected = 1,
                5 => r.unanswered = 1,
                _ => r.connections.failed = 1,
            }
            r.judge();
            assert!(!r.ok, "fault {fault}");
        }
    }

    #[test]
    fn the_rss_slope_ignores_one_step_where_memory_was_returned() {
        let step = |c: f64, r: f64| RssStep {
            connections: c,
            rss_bytes: r,
        };
        // 40 KB per connection, but the allocator gave 50 MB back during the first step (as
        // measured against chatd after its logins).
        let steps = [
            step(100.0, 418_000_000.0),
            step(325.0, 377_000_000.0),
            step(550.0, 386_000_000.0),
            step(775.0, 395_000_000.0),
            step(1000.0, 404_000_000.0),
        ];
        let slope = rss_slope(&steps).expect("slope");
        assert!((slope - 40_000.0).abs() < 1.0, "{slope}");
        assert_eq!(rss_slope(&steps[..1]), None);
        assert_eq!(rss_slope(&[step(5.0, 1.0), step(5.0, 2.0)]), None);
        // An odd number of steps takes the middle one.
        let three = [
            step(0.0, 0.0),
            step(10.0, 100.0),
            step(20.0, 300.0),
            step(30.0, 600.0),
        ];
        assert_eq!(rss_slope(&three), Some(20.0));
    }

    #[test]
    fn memory_per_connection_uses_the_chosen_baseline() {
        let sample = |rss: f64| ServerSample {
            rss_bytes: Some(rss),
            ..ServerSample::default()
        };
        let mut s = ServerReport::new(sample(100.0), sample(1100.0), sample(1200.0), 10);
        assert_eq!(s.rss_per_connection_bytes, Some(100.0));
        s.per_connection_from(&sample(600.0), 5, "extra connections");
        assert_eq!(s.rss_per_connection_bytes, Some(100.0));
        s.per_connection_from(&sample(900.0), 4, "extra connections");
        assert_eq!(s.rss_per_connection_bytes, Some(50.0));
        assert_eq!(s.rss_per_connection_basis, "extra connections");
    }
}
