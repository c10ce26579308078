//! A count of what happened in the last minute (`admin_stats`' `messages_last_minute`): a fixed
//! ring of one bucket per second, so memory does not grow with the rate and reading it costs 60
//! additions. Seconds are counted on the monotonic clock from the ring's creation, so a wall
//! clock step neither loses nor doubles a minute.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Seconds in the window, and buckets in the ring.
const WINDOW_SECS: u64 = 60;

/// Events counted per second over the last [`WINDOW_SECS`] seconds.
#[derive(Debug)]
pub(crate) struct RecentCount {
    origin: Instant,
    /// `(second, count)`; a bucket whose second is not the one being counted is stale and
    /// restarts at 0. The lock is held for a few additions only, never across an await.
    buckets: Mutex<[(u64, u64); WINDOW_SECS as usize]>,
}

impl Default for RecentCount {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            buckets: Mutex::new([(0, 0); WINDOW_SECS as usize]),
        }
    }
}

impl RecentCount {
    /// Counts `n` events now.
    pub(crate) fn add(&self, n: u64) {
        self.add_at(self.second(), n);
    }

    /// The events counted in the last 60 seconds (this second and the 59 before it).
    pub(crate) fn last_minute(&self) -> u64 {
        self.total_at(self.second())
    }

    fn second(&self) -> u64 {
        self.origin.elapsed().as_secs()
    }

    fn add_at(&self, second: u64, n: u64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = usize::try_from(second % WINDOW_SECS).unwrap_or(0);
        let Some(bucket) = buckets.get_mut(slot) else {
            return;
        };
        if bucket.0 != second {
            *bucket = (second, 0);
        }
        bucket.1 = bucket.1.saturating_add(n);
    }

    fn total_at(&self, now: u64) -> u64 {
        let buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets
            .iter()
            .filter(|(second, _)| *second <= now && now - *second < WINDOW_SECS)
            .fold(0u64, |sum, (_, count)| sum.saturating_add(*count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_sixty_seconds_only() {
        let ring = RecentCount::default();
        assert_eq!(ring.total_at(0), 0);
        ring.add_at(0, 2);
        ring.add_at(0, 3);
        ring.add_at(30, 10);
        ring.add_at(59, 1);
        assert_eq!(ring.total_at(59), 16);
        // Second 0 leaves the window at 60, second 30 at 90.
        assert_eq!(ring.total_at(60), 11);
        assert_eq!(ring.total_at(89), 11);
        assert_eq!(ring.total_at(90), 1);
        assert_eq!(ring.total_at(200), 0);
    }

    #[test]
    fn a_reused_bucket_starts_again_at_zero() {
        let ring = RecentCount::default();
        ring.add_at(5, 7);
        // Second 65 takes second 5's bucket: its old count is gone, not added.
        ring.add_at(65, 1);
        assert_eq!(ring.total_at(65), 1);
        // A quiet minute later the ring is empty although no bucket was written.
        assert_eq!(ring.total_at(125), 0);
    }

    #[test]
    fn counts_now_on_the_monotonic_clock() {
        let ring = RecentCount::default();
        ring.add(4);
        ring.add(1);
        assert_eq!(ring.last_minute(), 5);
    }
}
