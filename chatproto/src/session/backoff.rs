//! Reconnect backoff: exponential growth with full jitter.
//!
//! The n-th consecutive attempt waits a uniformly random time in `[0, min(cap, base * factor^n)]`
//! ("full jitter"): after a server restart, thousands of clients spread their reconnects over the
//! whole window instead of arriving in synchronized waves. The random source is seeded by the
//! caller so that simulations are reproducible.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The shape of the backoff curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The ceiling of the first delay.
    pub base: Duration,
    /// How much the ceiling grows per consecutive attempt.
    pub factor: u32,
    /// The largest ceiling.
    pub cap: Duration,
}

impl Default for BackoffConfig {
    /// Base 200 ms, factor 2, cap 30 s.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            factor: 2,
            cap: Duration::from_secs(30),
        }
    }
}

impl BackoffConfig {
    /// The ceiling of the delay before attempt number `attempt` (0-based) since the last reset.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let mut ceiling = self.base.min(self.cap);
        for _ in 0..attempt {
            if ceiling >= self.cap {
                break;
            }
            ceiling = ceiling.saturating_mul(self.factor.max(1)).min(self.cap);
        }
        ceiling
    }
}

/// A jittered exponential backoff with its own seeded random source.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    rng: StdRng,
}

impl Backoff {
    /// A backoff that starts at attempt 0, drawing jitter from a generator seeded with `seed`.
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Self {
            config,
            attempt: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// How many delays were handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt; each call counts as one more attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.config.ceiling(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.rng.random_range(0..=ceiling_ms))
    }

    /// Starts over from the base delay (after a connection proved healthy).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_grow_by_the_factor_up_to_the_cap() {
        let c = BackoffConfig::default();
        let ms: Vec<u128> = (0..12).map(|n| c.ceiling(n).as_millis()).collect();
        assert_eq!(
            ms,
            [
                200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000, 30000
            ]
        );
        assert_eq!(c.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn delays_stay_within_the_ceiling_and_are_jittered() {
        let mut b = Backoff::new(BackoffConfig::default(), 7);
        for attempt in 0..40 {
            let ceiling = b.config().ceiling(attempt);
            let d = b.next_delay();
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        // Full jitter: many draws at the cap are spread out, not one repeated value.
        let draws: std::collections::BTreeSet<Duration> = (0..50).map(|_| b.next_delay()).collect();
        assert!(draws.len() > 40, "only {} distinct delays", draws.len());
        assert!(draws.iter().any(|d| *d < Duration::from_secs(10)));
        assert!(draws.iter().any(|d| *d > Duration::from_secs(20)));
    }

    #[test]
    fn reset_returns_to_the_base_window() {
        let mut b = Backoff::new(BackoffConfig::default(), 1);
        for _ in 0..10 {
            b.next_delay();
        }
        assert_eq!(b.attempt(), 10);
        b.reset();
        assert_eq!(b.attempt(), 0);
        for _ in 0..20 {
            b.reset();
            assert!(b.next_delay() <= Duration::from_millis(200));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let mut a = Backoff::new(BackoffConfig::default(), 42);
        let mut b = Backoff::new(BackoffConfig::default(), 42);
        let mut c = Backoff::new(BackoffConfig::default(), 43);
        let da: Vec<_> = (0..10).map(|_| a.next_delay()).collect();
        let db: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        let dc: Vec<_> = (0..10).map(|_| c.next_delay()).collect();
        assert_eq!(da, db);
        assert_ne!(da, dc);
    }
}
