//! The server's Prometheus metrics, exposed in the OpenMetrics text format by the admin HTTP
//! server.
//!
//! Every metric is named `chatd_*` except the process ones, which use the conventional
//! `process_*` names. Label values are `&'static str` chosen by the server (request kinds,
//! error codes, reasons), never client input, so the number of series is bounded.

use std::time::Duration;

use chatproto::pb;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::ops::recent::RecentCount;
use crate::rate::Scope;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds, 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyLabel {
    dependency: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabel {
    scope: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The `outcome` label of a request: `ok` or the error code in lowercase without its prefix.
pub fn outcome_label(result: Result<(), pb::ErrorCode>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(code) => match code {
            pb::ErrorCode::Unspecified => "unspecified",
            pb::ErrorCode::InvalidArgument => "invalid_argument",
            pb::ErrorCode::Unauthenticated => "unauthenticated",
            pb::ErrorCode::PermissionDenied => "permission_denied",
            pb::ErrorCode::NotFound => "not_found",
            pb::ErrorCode::Conflict => "conflict",
            pb::ErrorCode::RateLimited => "rate_limited",
            pb::ErrorCode::TooLarge => "too_large",
            pb::ErrorCode::Unavailable => "unavailable",
            pb::ErrorCode::Internal => "internal",
            pb::ErrorCode::FailedPrecondition => "failed_precondition",
            pb::ErrorCode::Unimplemented => "unimplemented",
            pb::ErrorCode::TooEarly => "too_early",
        },
    }
}

/// All server metrics. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections_open: Gauge,
    connections_accepted: Counter,
    connections_rejected: Family<ReasonLabel, Counter>,
    connections_retried: Counter,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<KindLabel>,
    store_duration: HistogramFamily<OpLabel>,
    events_sent: Counter,
    datagrams_sent: Counter,
    datagrams_received: Counter,
    messages_persisted: Counter,
    /// The messages stored in the last minute (`admin_stats`), beside the counter.
    messages_recent: RecentCount,
    store_commands: Counter,
    auth_failures: Family<ReasonLabel, Counter>,
    rate_limited: Family<ScopeLabel, Counter>,
    cluster_published: Counter,
    cluster_received: Counter,
    cluster_dropped: Family<ReasonLabel, Counter>,
    cluster_appends: Family<ReasonLabel, Counter>,
    circuit_open: Family<DependencyLabel, Gauge>,
    audit_lost: Counter,
    deliveries: Family<DeliveryLabels, Counter>,
    sessions_swept: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let connections_open = Gauge::default();
        let connections_accepted = Counter::default();
        let connections_rejected = Family::<ReasonLabel, Counter>::default();
        let connections_retried = Counter::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration: HistogramFamily<KindLabel> =
            Family::new_with_constructor(latency_histogram);
        let store_duration: HistogramFamily<OpLabel> =
            Family::new_with_constructor(latency_histogram);
        let events_sent = Counter::default();
        let datagrams_sent = Counter::default();
        let datagrams_received = Counter::default();
        let messages_persisted = Counter::default();
        let store_commands = Counter::default();
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        let rate_limited = Family::<ScopeLabel, Counter>::default();
        let cluster_published = Counter::default();
        let cluster_received = Counter::default();
        let cluster_dropped = Family::<ReasonLabel, Counter>::default();
        let cluster_appends = Family::<ReasonLabel, Counter>::default();
        let audit_lost = Counter::default();
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        let sessions_swept = Counter::default();
        let circuit_open = Family::<DependencyLabel, Gauge>::default();

        let r = root.sub_registry_with_prefix("chatd");
        r.register(
            "connections_open",
            "Client connections currently open",
            connections_open.clone(),
        );
        r.register(
            "connections_accepted",
            "Client connections accepted",
            connections_accepted.clone(),
        );
        r.register(
            "connections_rejected",
            "Client connections refused, by reason",
            connections_rejected.clone(),
        );
        r.register(
            "connections_retried",
            "Connection attempts answered with a QUIC Retry (their address checked first) because \
             at least --retry-above-handshakes handshakes were in progress",
            connections_retried.clone(),
        );
        r.register(
            "requests",
            "Requests handled, by kind and outcome (ok or the error code)",
            requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time to handle a request, by kind",
            Unit::Seconds,
            request_duration.clone(),
        );
        r.register_with_unit(
            "store_operation_duration",
            "Time of a storage operation, by operation",
            Unit::Seconds,
            store_duration.clone(),
        );
        r.register(
            "store_commands",
            "Commands sent to the database server (MongoDB backend): its round trips",
            store_commands.clone(),
        );
        r.register(
            "events_sent",
            "Events written to client event streams",
            events_sent.clone(),
        );
        r.register(
            "datagrams_sent",
            "QUIC datagrams sent",
            datagrams_sent.clone(),
        );
        r.register(
            "datagrams_received",
            "QUIC datagrams received",
            datagrams_received.clone(),
        );
        r.register(
            "messages_persisted",
            "Chat messages stored",
            messages_persisted.clone(),
        );
        r.register(
            "auth_failures",
            "Failed authentications, by reason",
            auth_failures.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by a rate limit, by scope",
            rate_limited.clone(),
        );
        r.register(
            "cluster_published",
            "Messages published to the other nodes (cluster mode)",
            cluster_published.clone(),
        );
        r.register(
            "cluster_received",
            "Messages received from the other nodes (cluster mode)",
            cluster_received.clone(),
        );
        r.register(
            "cluster_dropped",
            "Cluster messages dropped, by reason (queue_full, too_old, subscriber_behind)",
            cluster_dropped.clone(),
        );
        r.register(
            "cluster_appends",
            "Sends routed to their chat's owner node, by outcome (forwarded: answered by the \
             owner; served: appended for another node; appended here after all: owner_gone, \
             owner_silent, redis_failed, retried_here)",
            cluster_appends.clone(),
        );
        r.register(
            "circuit_open",
            "1 while the circuit breaker of a dependency (store, redis) refuses calls",
            circuit_open.clone(),
        );
        r.register(
            "audit_lost",
            "Admin actions that could not be written to the audit log (each is logged)",
            audit_lost.clone(),
        );
        r.register(
            "deliveries",
            "Attempts of the outbox (email digests, emails, webhook calls) by kind and outcome: \
             done, postponed, retry, dead",
            deliveries.clone(),
        );
        r.register(
            "sessions_swept",
            "Dead login sessions (revoked or expired) deleted with their refresh tokens",
            sessions_swept.clone(),
        );
        Metrics {
            registry: root,
            connections_open,
            connections_accepted,
            connections_rejected,
            connections_retried,
            requests,
            request_duration,
            store_duration,
            events_sent,
            datagrams_sent,
            datagrams_received,
            messages_persisted,
            messages_recent: RecentCount::default(),
            store_commands,
            auth_failures,
            rate_limited,
            cluster_published,
            cluster_received,
            cluster_dropped,
            cluster_appends,
            circuit_open,
            audit_lost,
            deliveries,
            sessions_swept,
        }
    }

    /// `n` messages were published to the other nodes.
    pub fn cluster_published(&self, n: u64) {
        self.cluster_published.inc_by(n);
    }

    /// A message from another node was received.
    pub fn cluster_received(&self) {
        self.cluster_received.inc();
    }

    /// `n` cluster messages were dropped for `reason`.
    pub fn cluster_dropped(&self, reason: &'static str, n: u64) {
        self.cluster_dropped
            .get_or_create(&ReasonLabel { reason })
            .inc_by(n);
    }

    /// A send was routed (`route`: see the metric's help).
    pub fn cluster_append(&self, route: &'static str) {
        self.cluster_appends
            .get_or_create(&ReasonLabel { reason: route })
            .inc();
    }

    /// Records whether the circuit breaker of `dependency` is open.
    pub fn circuit(&self, dependency: &'static str, open: bool) {
        self.circuit_open
            .get_or_create(&DependencyLabel { dependency })
            .set(i64::from(open));
    }

    /// An admin action could not be written to the audit log.
    pub fn audit_lost(&self) {
        self.audit_lost.inc();
    }

    /// An outbox attempt of `kind` (`digest`, `email`, `webhook`) ended with `outcome` (`done`,
    /// `postponed`, `retry`, `dead`).
    pub fn delivery(&self, kind: &'static str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels { kind, outcome })
            .inc();
    }

    /// A connection was accepted (counts it and adds it to the open gauge).
    pub fn connection_opened(&self) {
        self.connections_accepted.inc();
        self.connections_open.inc();
    }

    /// An accepted connection ended.
    pub fn connection_closed(&self) {
        self.connections_open.dec();
    }

    /// A connection was refused or closed by a limit: `"handshake"`, a connection cap
    /// (`"max_connections"`, `"max_unauthenticated"`, `"max_unauthenticated_per_address"`,
    /// `"max_authenticated_per_address"`), `"auth_deadline"`, or the access rules (`"banned"`,
    /// `"not_allowed"`, see [`crate::access::Verdict`]).
    pub fn connection_rejected(&self, reason: &'static str) {
        self.connections_rejected
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A connection attempt was answered with a Retry.
    pub fn connection_retried(&self) {
        self.connections_retried.inc();
    }

    /// A request of `kind` (e.g. `"send_message"`) finished with `result` after `elapsed`.
    pub fn request_finished(
        &self,
        kind: &'static str,
        result: Result<(), pb::ErrorCode>,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                kind,
                outcome: outcome_label(result),
            })
            .inc();
        self.request_duration
            .get_or_create(&KindLabel { kind })
            .observe(elapsed.as_secs_f64());
    }

    /// A storage operation `op` (e.g. `"send_message"`) took `elapsed`.
    pub fn store_operation(&self, op: &'static str, elapsed: Duration) {
        self.store_duration
            .get_or_create(&OpLabel { op })
            .observe(elapsed.as_secs_f64());
    }

    /// `n` events were written to event streams.
    pub fn events_sent(&self, n: u64) {
        self.events_sent.inc_by(n);
    }

    /// `n` datagrams were sent.
    pub fn datagrams_sent(&self, n: u64) {
        self.datagrams_sent.inc_by(n);
    }

    /// A datagram was received.
    pub fn datagram_received(&self) {
        self.datagrams_received.inc();
    }

    /// The counter of database commands, for the MongoDB backend to feed.
    pub fn store_commands(&self) -> Counter {
        self.store_commands.clone()
    }

    /// The counter of deleted dead sessions, for the session sweep to feed.
    pub fn sessions_swept(&self) -> Counter {
        self.sessions_swept.clone()
    }

    /// `n` messages were stored.
    pub fn messages_persisted(&self, n: u64) {
        self.messages_persisted.inc_by(n);
        self.messages_recent.add(n);
    }

    /// The messages this node stored in the last 60 seconds.
    pub fn messages_last_minute(&self) -> u64 {
        self.messages_recent.last_minute()
    }

    /// An authentication failed, e.g. `"bad_password"`, `"unknown_user"`, `"expired_token"`.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A request was refused by the `scope` rate limit.
    pub fn rate_limited(&self, scope: Scope) {
        self.rate_limited
            .get_or_create(&ScopeLabel {
                scope: scope.label(),
            })
            .inc();
    }

    /// Every metric in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a collector,
        // and a partial scrape is better than none.
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::warn!("metrics encoding failed; the scrape is incomplete");
        }
        out
    }
}

/// Reads process metrics at scrape time.
#[derive(Debug)]
struct ProcessCollector;

/// Resident set size in bytes from `/proc/self/status` (`VmRSS`, in kB). The status file is
/// used rather than `statm` because it states the unit, so no page-size query is needed.
fn resident_memory_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line.split_whitespace().skip(1);
    let kib: i64 = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(kib.saturating_mul(1024))
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(bytes) = resident_memory_bytes() {
            let gauge = ConstGauge::new(bytes);
            let metric = encoder.encode_descriptor(
                "process_resident_memory",
                "Resident memory size of the process",
                Some(&Unit::Bytes),
                gauge.metric_type(),
            )?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line starting with `series ` (name and labels exactly).
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    }

    #[test]
    fn every_metric_is_exported_with_its_labels() {
        let m = Metrics::new();
        m.connection_opened();
        m.connection_opened();
        m.connection_closed();
        m.connection_rejected("max_connections");
        m.request_finished("send_message", Ok(()), Duration::from_millis(2));
        m.request_finished("send_message", Ok(()), Duration::from_millis(3));
        m.request_finished(
            "login",
            Err(pb::ErrorCode::Unauthenticated),
            Duration::from_millis(40),
        );
        m.store_operation("append_message", Duration::from_micros(300));
        m.events_sent(5);
        m.datagrams_sent(1);
        m.datagram_received();
        m.datagram_received();
        m.messages_persisted(2);
        assert_eq!(m.messages_last_minute(), 2);
        m.auth_failure("bad_password");
        m.rate_limited(Scope::LoginAccount);
        m.cluster_published(3);
        m.cluster_received();
        m.cluster_dropped("too_old", 4);
        m.circuit("redis", true);
        m.circuit("store", false);
        m.delivery("webhook", "retry");
        m.delivery("webhook", "retry");
        m.delivery("email", "done");
        let text = m.encode();

        let expect = [
            ("chatd_connections_open", 1.0),
            ("chatd_connections_accepted_total", 2.0),
            (
                "chatd_connections_rejected_total{reason=\"max_connections\"}",
                1.0,
            ),
            (
                "chatd_requests_total{kind=\"send_message\",outcome=\"ok\"}",
                2.0,
            ),
            (
                "chatd_requests_total{kind=\"login\",outcome=\"unauthenticated\"}",
                1.0,
            ),
            (
                "chatd_request_duration_seconds_count{kind=\"send_message\"}",
                2.0,
            ),
            (
                "chatd_request_duration_seconds_sum{kind=\"send_message\"}",
                0.005,
            ),
            (
                "chatd_request_duration_seconds_bucket{le=\"0.0025\",kind=\"send_message\"}",
                1.0,
            ),
            (
                "chatd_request_duration_seconds_bucket{le=\"0.005\",kind=\"send_message\"}",
                2.0,
            ),
            (
                "chatd_store_operation_duration_seconds_count{op=\"append_message\"}",
                1.0,
            ),
            ("chatd_events_sent_total", 5.0),
            ("chatd_datagrams_sent_total", 1.0),
            ("chatd_datagrams_received_total", 2.0),
            ("chatd_messages_persisted_total", 2.0),
            ("chatd_auth_failures_total{reason=\"bad_password\"}", 1.0),
            ("chatd_rate_limited_total{scope=\"login_account\"}", 1.0),
            ("chatd_cluster_published_total", 3.0),
            ("chatd_cluster_received_total", 1.0),
            ("chatd_cluster_dropped_total{reason=\"too_old\"}", 4.0),
            ("chatd_circuit_open{dependency=\"redis\"}", 1.0),
            ("chatd_circuit_open{dependency=\"store\"}", 0.0),
            (
                "chatd_deliveries_total{kind=\"webhook\",outcome=\"retry\"}",
                2.0,
            ),
            (
                "chatd_deliveries_total{kind=\"email\",outcome=\"done\"}",
                1.0,
            ),
        ];
        for (series, want) in expect {
            let got = sample(&text, series);
            assert!(
                got.is_some_and(|g| (g - want).abs() < 1e-9),
                "{series}: got {got:?}, want {want}\n{text}"
            );
        }
        assert!(text.contains("# TYPE chatd_request_duration_seconds histogram"));
        assert!(text.contains("# UNIT chatd_request_duration_seconds seconds"));
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
        let rss = sample(&text, "process_resident_memory_bytes");
        assert!(rss.is_some_and(|b| b > 1_000_000.0), "{rss:?}\n{text}");
    }

    #[test]
    fn outcome_labels() {
        assert_eq!(outcome_label(Ok(())), "ok");
        assert_eq!(
            outcome_label(Err(pb::ErrorCode::RateLimited)),
            "rate_limited"
        );
        assert_eq!(
            outcome_label(Err(pb::ErrorCode::FailedPrecondition)),
            "failed_precondition"
        );
    }

    #[test]
    fn vm_rss_parsing() {
        let status = "Name:\tchatd\nVmPeak:\t  10 kB\nVmRSS:\t    2048 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("VmRSS: 12 MB\n"), None);
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert_eq!(parse_vm_rss("VmRSS: lots kB\n"), None);
    }
}
