//! Measurement: counters, latency histograms (HdrHistogram, microseconds, 3 significant digits)
//! and a per-second timeline, shared by every task of a run.
//!
//! Times are nanoseconds on the run's clock (t0 = the schedule's start). The measured window is
//! `[warmup, warmup + duration)`: latencies count when the operation was *due* inside it, rates
//! count events that *happened* inside it. Receivers record deliveries in batches so the lock is
//! taken once per batch, not per delivery.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histograms track, µs (one hour); larger values are clamped to it.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds.
pub type LatencyHistogram = Histogram<u64>;

/// A new latency histogram (1 µs to 1 h, 3 significant digits).
pub fn latency_histogram() -> LatencyHistogram {
    // The bounds are constants that satisfy the constructor's rules.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"))
    })
}

fn second_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 2).unwrap_or_else(|_| {
        Histogram::new(2).unwrap_or_else(|_| unreachable!("2 significant digits are valid"))
    })
}

fn us(ns: u64) -> u64 {
    ns / 1_000
}

/// Monotonic counters, readable at any time (the progress bar reads them every second).
#[derive(Debug, Default)]
pub struct Counters {
    /// Operations issued (messages and reads).
    pub offered: AtomicU64,
    /// Messages acknowledged.
    pub acked: AtomicU64,
    /// First deliveries of this run's messages to expected recipients.
    pub delivered: AtomicU64,
    /// Deliveries of a message a connection already had.
    pub duplicated: AtomicU64,
    /// Deliveries that came after a message sent later (see `accounting::tracker`).
    pub reordered: AtomicU64,
    /// Deliveries to a connection that should not have got the message.
    pub unexpected: AtomicU64,
    /// Messages from other runs or other clients, ignored.
    pub foreign: AtomicU64,
    /// Errors of any kind during the run (details by code in the error map).
    pub errors: AtomicU64,
    /// Connections re-established by the SDK after a loss.
    pub reconnects: AtomicU64,
    /// Operations issued and not yet answered.
    pub in_flight: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One delivery, as a receiver saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverySample {
    /// When the message was due, ns after t0.
    pub due_ns: u64,
    /// When it arrived, ns after t0.
    pub at_ns: u64,
    /// Set when this delivery completed the message: latency of its slowest recipient, ns.
    pub completed_slowest_ns: Option<u64>,
}

#[derive(Debug, Default)]
struct Second {
    offered: u64,
    acked: u64,
    delivered: u64,
    errors: u64,
    /// Delivery latency of messages due in this second.
    latency: Option<Histogram<u32>>,
}

#[derive(Debug)]
struct Inner {
    delivery: LatencyHistogram,
    last_recipient: LatencyHistogram,
    ack: LatencyHistogram,
    requests: BTreeMap<&'static str, LatencyHistogram>,
    timeline: Vec<Second>,
    window_offered: u64,
    window_acked: u64,
    window_delivered: u64,
}

impl Inner {
    fn second(&mut self, at_ns: u64) -> &mut Second {
        // Bounded by the run's length; a day of seconds at most (the config caps durations).
        let index = (at_ns / 1_000_000_000).min(8 * 86_400) as usize;
        if self.timeline.len() <= index {
            self.timeline.resize_with(index + 1, Second::default);
        }
        &mut self.timeline[index]
    }
}

/// Everything measured during one run.
#[derive(Debug)]
pub struct Recorder {
    t0: Instant,
    window_start_ns: u64,
    window_end_ns: u64,
    /// Live counters.
    pub counters: Counters,
    inner: Mutex<Inner>,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl LatencySummary {
    /// Summarises a µs histogram in ms.
    pub fn of(h: &LatencyHistogram) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// One second of the timeline, for the JSON report and the plots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondSummary {
    /// Seconds after t0 (the start of the warmup).
    pub t: u64,
    /// Operations issued (by due time).
    pub offered: u64,
    /// Acknowledgements received.
    pub acked: u64,
    /// Deliveries received.
    pub delivered: u64,
    /// Errors.
    pub errors: u64,
    /// Median delivery latency of messages due in this second, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// Slowest, ms.
    pub max_ms: Option<f64>,
}

/// Counts inside the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Operations due inside the window.
    pub offered: u64,
    /// Acknowledgements received inside the window.
    pub acked: u64,
    /// Deliveries received inside the window.
    pub delivered: u64,
}

/// The histograms at the end of a run.
#[derive(Debug)]
pub struct Histograms {
    /// Due → arrival of every delivery (per recipient).
    pub delivery: LatencyHistogram,
    /// Due → arrival at the last recipient of each message.
    pub last_recipient: LatencyHistogram,
    /// Due → acknowledgement of each send.
    pub ack: LatencyHistogram,
    /// Due → answer of reads, by operation.
    pub requests: BTreeMap<&'static str, LatencyHistogram>,
}

impl Recorder {
    /// A recorder whose clock starts at `t0`, measuring `[warmup, warmup + duration)`.
    pub fn new(t0: Instant, warmup: Duration, duration: Duration) -> Self {
        let window_start_ns = warmup.as_nanos() as u64;
        Self {
            t0,
            window_start_ns,
            window_end_ns: window_start_ns + duration.as_nanos() as u64,
            counters: Counters::default(),
            inner: Mutex::new(Inner {
                delivery: latency_histogram(),
                last_recipient: latency_histogram(),
                ack: latency_histogram(),
                requests: BTreeMap::new(),
                timeline: Vec::new(),
                window_offered: 0,
                window_acked: 0,
                window_delivered: 0,
            }),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    /// The run's t0.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// Nanoseconds since t0 (0 before it).
    pub fn now_ns(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.t0)
            .as_nanos()
            .min(u128::from(u64::MAX)) as u64
    }

    /// True when `ns` lies in the measured window.
    pub fn in_window(&self, ns: u64) -> bool {
        (self.window_start_ns..self.window_end_ns).contains(&ns)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panicking recorder thread must not stop the others from recording.
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut inner)
    }

    /// An operation due at `due_ns` was issued.
    pub fn offered(&self, due_ns: u64) {
        Counters::add(&self.counters.offered, 1);
        Counters::add(&self.counters.in_flight, 1);
        let in_window = self.in_window(due_ns);
        self.with(|i| {
            i.second(due_ns).offered += 1;
            if in_window {
                i.window_offered += 1;
            }
        });
    }

    /// A message due at `due_ns` was acknowledged now.
    pub fn acked(&self, due_ns: u64) {
        let at = self.now_ns();
        Counters::add(&self.counters.acked, 1);
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        let due_in_window = self.in_window(due_ns);
        let at_in_window = self.in_window(at);
        self.with(|i| {
            i.second(at).acked += 1;
            if at_in_window {
                i.window_acked += 1;
            }
            if due_in_window {
                i.ack.saturating_record(us(at.saturating_sub(due_ns)));
            }
        });
    }

    /// A read `op` due at `due_ns` was answered now.
    pub fn request_done(&self, op: &'static str, due_ns: u64) {
        let at = self.now_ns();
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.in_window(due_ns) {
            self.with(|i| {
                i.requests
                    .entry(op)
                    .or_insert_with(latency_histogram)
                    .saturating_record(us(at.saturating_sub(due_ns)));
            });
        }
    }

    /// An operation that was in flight failed with `kind`.
    pub fn operation_failed(&self, kind: &str) {
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.error(kind);
    }

    /// An error of `kind` (an error code name, `timeout`, `connection_lost`, ...).
    pub fn error(&self, kind: &str) {
        self.errors(kind, 1);
    }

    /// `n` errors of `kind`.
    pub fn errors(&self, kind: &str, n: u64) {
        Counters::add(&self.counters.errors, n);
        let at = self.now_ns();
        self.with(|i| i.second(at).errors += n);
        let mut errors = match self.errors.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *errors.entry(kind.to_owned()).or_insert(0) += n;
    }

    /// A batch of first deliveries to expected recipients.
    pub fn deliveries(&self, batch: &[DeliverySample]) {
        if batch.is_empty() {
            return;
        }
        Counters::add(&self.counters.delivered, batch.len() as u64);
        self.with(|i| {
            for d in batch {
                let latency = us(d.at_ns.saturating_sub(d.due_ns));
                let second = i.second(d.at_ns);
                second.delivered += 1;
                if self.in_window(d.at_ns) {
                    i.window_delivered += 1;
                }
                i.second(d.due_ns)
                    .latency
                    .get_or_insert_with(second_histogram)
                    .saturating_record(latency);
                if self.in_window(d.due_ns) {
                    i.delivery.saturating_record(latency);
                    if let Some(slowest) = d.completed_slowest_ns {
                        i.last_recipient.saturating_record(us(slowest));
                    }
                }
            }
        });
    }

    /// Errors so far, by kind.
    pub fn errors_by_kind(&self) -> BTreeMap<String, u64> {
        match self.errors.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Counts inside the measured window so far.
    pub fn window_counts(&self) -> WindowCounts {
        self.with(|i| WindowCounts {
            offered: i.window_offered,
            acked: i.window_acked,
            delivered: i.window_delivered,
        })
    }

    /// The median and 99th percentile delivery latency (ms) of messages due in second `t`.
    pub fn second_latency(&self, t: u64) -> Option<(f64, f64)> {
        self.with(|i| {
            i.timeline
                .get(t as usize)
                .and_then(|s| s.latency.as_ref())
                .map(|h| {
                    (
                        h.value_at_quantile(0.5) as f64 / 1000.0,
                        h.value_at_quantile(0.99) as f64 / 1000.0,
                    )
                })
        })
    }

    /// The timeline so far.
    pub fn timeline(&self) -> Vec<SecondSummary> {
        self.with(|i| {
            i.timeline
                .iter()
                .enumerate()
                .map(|(t, s)| {
                    let q = |q: f64| {
                        s.latency
                            .as_ref()
                            .map(|h| h.value_at_quantile(q) as f64 / 1000.0)
                    };
                    SecondSummary {
                        t: t as u64,
                        offered: s.offered,
                        acked: s.acked,
                        delivered: s.delivered,
                        errors: s.errors,
                        p50_ms: q(0.5),
                        p99_ms: q(0.99),
                        max_ms: s.latency.as_ref().map(|h| h.max() as f64 / 1000.0),
                    }
                })
                .collect()
        })
    }

    /// Copies of the histograms.
    pub fn histograms(&self) -> Histograms {
        self.with(|i| Histograms {
            delivery: i.delivery.clone(),
            last_recipient: i.last_recipient.clone(),
            ack: i.ack.clone(),
            requests: i.requests.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    #[test]
    fn latency_counts_by_due_time_and_rates_by_arrival() {
        let r = Recorder::new(
            Instant::now(),
            Duration::from_secs(1),
            Duration::from_secs(2),
        );
        r.deliveries(&[
            // Due in the warmup, arrives in the window: counted in the rate, not the latency.
            DeliverySample {
                due_ns: S / 2,
                at_ns: S + MS,
                completed_slowest_ns: None,
            },
            // Due and arrived in the window.
            DeliverySample {
                due_ns: S + 10 * MS,
                at_ns: S + 15 * MS,
                completed_slowest_ns: Some(5 * MS),
            },
            // Due at the end of the window, arrives after it.
            DeliverySample {
                due_ns: 3 * S - MS,
                at_ns: 3 * S + 99 * MS,
                completed_slowest_ns: None,
            },
        ]);
        let h = r.histograms();
        assert_eq!(h.delivery.len(), 2);
        assert_eq!(h.last_recipient.len(), 1);
        let summary = LatencySummary::of(&h.delivery);
        assert!((summary.p50 - 5.0).abs() < 0.01, "{summary:?}");
        assert!((summary.max - 100.0).abs() < 0.1, "{summary:?}");
        assert_eq!(r.window_counts().delivered, 2);
        assert_eq!(Counters::get(&r.counters.delivered), 3);
        let timeline = r.timeline();
        assert_eq!(timeline.len(), 4);
        assert_eq!(
            timeline.iter().map(|s| s.delivered).collect::<Vec<_>>(),
            [0, 2, 0, 1]
        );
        // The half-second-late message shows in the second it was due in.
        assert!(timeline[0].p50_ms.is_some_and(|v| v > 500.0));
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let r = Recorder::new(Instant::now(), Duration::ZERO, Duration::from_secs(1));
        r.offered(0);
        r.operation_failed("RATE_LIMITED");
        r.error("RATE_LIMITED");
        r.error("timeout");
        assert_eq!(Counters::get(&r.counters.errors), 3);
        assert_eq!(Counters::get(&r.counters.in_flight), 0);
        let errors = r.errors_by_kind();
        assert_eq!(errors.get("RATE_LIMITED"), Some(&2));
        assert_eq!(errors.get("timeout"), Some(&1));
    }

    #[test]
    fn summaries_are_in_milliseconds() {
        let mut h = latency_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap_or_default();
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50 - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99 - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max - 1000.0).abs() < 1.0, "{s:?}");
        assert_eq!(
            LatencySummary::of(&latency_histogram()),
            LatencySummary::default()
        );
    }
}
