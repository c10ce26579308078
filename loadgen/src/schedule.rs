//! The open-loop schedule (as in wrk2): operation `i` is due at `t0 + i / rate`, whether or not
//! the operations before it have completed, and its latency is measured from that due time. A
//! server that stalls therefore shows up as latency of every operation that came due during the
//! stall, instead of silently lowering the offered load (coordinated omission).
//!
//! [`Schedule`] is pure arithmetic. [`pace`] keeps time for it on a thread of its own, because
//! the async runtime's timers tick in whole milliseconds: an operation issued on a tokio timer
//! leaves up to a millisecond late (about 0.8 ms at the median, measured), and since latency
//! runs from the due time, that lateness would count against the server. An OS thread sleeping
//! to the due time wakes within tens of microseconds.

use std::ops::Range;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Due times of `count` operations offered at `rate` per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    count: u64,
}

impl Schedule {
    /// The operations due within `span` after t0 at `rate` per second (`rate` must be positive
    /// and finite; the configuration checks it).
    pub fn new(rate: f64, span: Duration) -> Self {
        let exact = span.as_secs_f64() * rate;
        // i is scheduled when i / rate < span, i.e. i < exact. Float products like 0.1 x 30
        // land a hair above the integer they mean; do not let that add an operation.
        let count = if (exact - exact.round()).abs() < 1e-6 {
            exact.round()
        } else {
            exact.ceil()
        };
        Self {
            rate,
            count: count.max(0.0) as u64,
        }
    }

    /// How many operations the schedule has.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Operations per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When operation `i` is due, in nanoseconds after t0.
    pub fn due_ns(&self, i: u64) -> u64 {
        // Exact to the nanosecond for any run shorter than about a hundred days (2^53 ns).
        (i as f64 * 1e9 / self.rate).round() as u64
    }

    /// The operations from `next` on that are due at or before `now_ns`: every one of them must
    /// be issued now, however late.
    pub fn due_by(&self, next: u64, now_ns: u64) -> Range<u64> {
        if next >= self.count {
            return self.count..self.count;
        }
        let estimate = ((now_ns as f64) * self.rate / 1e9).floor() as u64;
        let mut end = estimate.saturating_add(1).clamp(next, self.count);
        // The estimate can be one off either way after rounding; settle it exactly.
        while end > next && self.due_ns(end - 1) > now_ns {
            end -= 1;
        }
        while end < self.count && self.due_ns(end) <= now_ns {
            end += 1;
        }
        next..end
    }
}

/// The round-robin choice of operation `i` among `n` candidates (`n` > 0).
pub fn round_robin(i: u64, n: u32) -> u32 {
    (i % u64::from(n.max(1))) as u32
}

/// Sends, from a thread of its own, each range of operations of `schedule` as it comes due
/// (relative to `t0`), until every operation was sent or the receiver is gone. Ranges hold more
/// than one operation when the thread woke late or the rate outruns its wake-ups.
pub fn pace(
    schedule: Schedule,
    t0: Instant,
) -> Result<mpsc::UnboundedReceiver<Range<u64>>, crate::error::LoadgenError> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("loadgen-pacer".into())
        .spawn(move || {
            let mut next = 0;
            while next < schedule.count() {
                let due = t0 + Duration::from_nanos(schedule.due_ns(next));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let now_ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let range = schedule.due_by(next, now_ns);
                next = range.end;
                if tx.send(range).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| {
            crate::error::LoadgenError::Setup(format!("cannot start the pacer thread: {e}"))
        })?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pacer_sends_every_operation_once_in_order_and_not_early() {
        let schedule = Schedule::new(2000.0, Duration::from_millis(50));
        let t0 = Instant::now();
        let mut due = pace(schedule, t0).expect("pacer");
        let mut seen = Vec::new();
        while let Some(range) = due.recv().await {
            for i in range {
                let elapsed = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                assert!(elapsed >= schedule.due_ns(i), "operation {i} sent early");
                seen.push(i);
            }
        }
        assert_eq!(seen, (0..schedule.count()).collect::<Vec<_>>());
    }

    #[test]
    fn due_times_are_evenly_spaced_from_t0() {
        let s = Schedule::new(1000.0, Duration::from_secs(2));
        assert_eq!(s.count(), 2000);
        assert_eq!(s.due_ns(0), 0);
        assert_eq!(s.due_ns(1), 1_000_000);
        assert_eq!(s.due_ns(1999), 1_999_000_000);
        let third = Schedule::new(3.0, Duration::from_secs(1));
        assert_eq!(third.count(), 3);
        assert_eq!(third.due_ns(1), 333_333_333);
        assert_eq!(third.due_ns(2), 666_666_667);
    }

    #[test]
    fn count_covers_exactly_the_span() {
        // 0.1/s for 30 s: 3 operations at 0, 10 and 20 s, not a fourth at 30 s.
        assert_eq!(Schedule::new(0.1, Duration::from_secs(30)).count(), 3);
        assert_eq!(Schedule::new(50.0, Duration::from_secs(3)).count(), 150);
        // 2.5/s for 1 s: due at 0, 0.4 and 0.8 s.
        assert_eq!(Schedule::new(2.5, Duration::from_secs(1)).count(), 3);
        assert_eq!(Schedule::new(10.0, Duration::ZERO).count(), 0);
        let s = Schedule::new(7.0, Duration::from_millis(1500));
        let last = s.count() - 1;
        assert!(s.due_ns(last) < 1_500_000_000);
        assert!(s.due_ns(last + 1) >= 1_500_000_000);
    }

    #[test]
    fn everything_due_is_returned_even_when_late() {
        let s = Schedule::new(100.0, Duration::from_secs(10));
        // On time: only operation 0 is due at t0.
        assert_eq!(s.due_by(0, 0), 0..1);
        // Just before operation 1's due time: nothing more.
        assert_eq!(s.due_by(1, 9_999_999), 1..1);
        assert_eq!(s.due_by(1, 10_000_000), 1..2);
        // The driver was stalled for half a second: all 50 overdue operations come at once,
        // none is skipped (open loop, no coordinated omission).
        assert_eq!(s.due_by(2, 510_000_000), 2..52);
        // Past the end: capped at the schedule's length.
        assert_eq!(s.due_by(52, u64::MAX / 2), 52..1000);
        assert_eq!(s.due_by(1000, u64::MAX / 2), 1000..1000);
    }

    #[test]
    fn due_by_agrees_with_due_ns_at_every_boundary() {
        for rate in [1.0, 3.0, 7.5, 333.3, 12_345.0] {
            let s = Schedule::new(rate, Duration::from_secs(3));
            let mut next = 0;
            for i in 0..s.count() {
                let t = s.due_ns(i);
                let range = s.due_by(next, t);
                assert_eq!(range.end, i + 1, "rate {rate}, op {i}");
                if t > 0 {
                    assert_eq!(s.due_by(next, t - 1).end, i, "rate {rate}, op {i} early");
                }
                next = range.end;
            }
        }
    }

    #[test]
    fn round_robin_cycles_through_every_candidate() {
        let picks: Vec<u32> = (0..7).map(|i| round_robin(i, 3)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(round_robin(5, 1), 0);
    }
}
