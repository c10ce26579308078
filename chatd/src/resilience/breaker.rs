//! A circuit breaker: stop calling a dependency that keeps failing, and find out cheaply when it
//! is back.
//!
//! - **Closed**: calls go through; `failure_threshold` failures in a row open the circuit.
//! - **Open**: calls are refused at once (the caller answers UNAVAILABLE or falls back) until the
//!   open period ends.
//! - **Half-open**: one call, the probe, goes through; its success closes the circuit, its
//!   failure opens it again for twice as long (up to `max_open_for`). A probe that never reports
//!   (its future was dropped) is replaced by a new one after the current open period.
//!
//! The breaker is sans-IO: callers pass the current time in, so the state machine is tested
//! without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// The first open period.
    pub open_for: Duration,
    /// The longest open period (each failed probe doubles it up to this).
    pub max_open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
        open_for: Duration,
    },
    HalfOpen {
        probe_started: Instant,
        open_for: Duration,
    },
}

/// Permission to make one call; hand it back with [`CircuitBreaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "report the outcome with CircuitBreaker::record"]
pub struct Permit {
    probe: bool,
}

impl Permit {
    /// True when this call is the half-open probe.
    #[cfg(test)]
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

/// The circuit is open: the call was refused without trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open, next try in {retry_after:?}")]
pub struct CircuitOpen {
    /// How long until the breaker lets a probe through.
    pub retry_after: Duration,
}

/// One breaker around one dependency. Share it behind an `Arc`.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: &'static str,
    config: BreakerConfig,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// A closed breaker; `name` ("redis", "store") appears in its log lines.
    pub fn new(name: &'static str, config: BreakerConfig) -> Self {
        CircuitBreaker {
            name,
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks to make a call at `now`.
    pub fn admit(&self, now: Instant) -> Result<Permit, CircuitOpen> {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Ok(Permit { probe: false }),
            State::Open { until, open_for } => {
                if now >= until {
                    *state = State::HalfOpen {
                        probe_started: now,
                        open_for,
                    };
                    Ok(Permit { probe: true })
                } else {
                    Err(CircuitOpen {
                        retry_after: until - now,
                    })
                }
            }
            State::HalfOpen {
                probe_started,
                open_for,
            } => {
                // A probe that never reported (dropped future) must not wedge the breaker.
                if now.saturating_duration_since(probe_started) >= open_for {
                    *state = State::HalfOpen {
                        probe_started: now,
                        open_for,
                    };
                    Ok(Permit { probe: true })
                } else {
                    Err(CircuitOpen {
                        retry_after: open_for - now.saturating_duration_since(probe_started),
                    })
                }
            }
        }
    }

    /// Reports how the permitted call went.
    pub fn record(&self, permit: Permit, success: bool, now: Instant) {
        let mut state = self.state();
        match (*state, permit.probe, success) {
            (State::Closed { .. }, _, true) => *state = State::Closed { failures: 0 },
            (State::Closed { failures }, _, false) => {
                let failures = failures + 1;
                if failures >= self.config.failure_threshold {
                    tracing::warn!(dependency = self.name, failures, "circuit opened");
                    *state = State::Open {
                        until: now + self.config.open_for,
                        open_for: self.config.open_for,
                    };
                } else {
                    *state = State::Closed { failures };
                }
            }
            (State::HalfOpen { .. }, true, true) => {
                tracing::info!(dependency = self.name, "circuit closed: dependency is back");
                *state = State::Closed { failures: 0 };
            }
            (State::HalfOpen { open_for, .. }, true, false) => {
                let open_for = (open_for * 2).min(self.config.max_open_for);
                *state = State::Open {
                    until: now + open_for,
                    open_for,
                };
            }
            // Late outcomes of calls admitted before the circuit opened, and non-probe calls while
            // half-open, say nothing reliable about the dependency now.
            _ => {}
        }
    }

    /// True while calls are refused (open, or half-open with a probe in flight).
    pub fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(
            "test",
            BreakerConfig {
                failure_threshold: 3,
                open_for: Duration::from_secs(1),
                max_open_for: Duration::from_secs(3),
            },
        )
    }

    fn fail(b: &CircuitBreaker, now: Instant) {
        let permit = b.admit(now).expect("admitted");
        b.record(permit, false, now);
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker();
        let t0 = Instant::now();
        fail(&b, t0);
        fail(&b, t0);
        // A success in between resets the count.
        let p = b.admit(t0).expect("closed");
        b.record(p, true, t0);
        fail(&b, t0);
        fail(&b, t0);
        assert!(!b.is_open());
        fail(&b, t0);
        assert!(b.is_open());
        let err = b.admit(t0 + Duration::from_millis(400)).expect_err("open");
        assert_eq!(err.retry_after, Duration::from_millis(600));
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_on_success() {
        let b = breaker();
        let t0 = Instant::now();
        for _ in 0..3 {
            fail(&b, t0);
        }
        let t1 = t0 + Duration::from_secs(1);
        let probe = b.admit(t1).expect("probe");
        assert!(probe.is_probe());
        assert!(b.admit(t1).is_err(), "only one probe at a time");
        b.record(probe, true, t1);
        assert!(!b.is_open());
        assert!(!b.admit(t1).expect("closed").is_probe());
    }

    #[test]
    fn failed_probes_double_the_open_period_up_to_the_cap() {
        let b = breaker();
        let mut now = Instant::now();
        for _ in 0..3 {
            fail(&b, now);
        }
        let mut expected = [2u64, 3, 3].into_iter();
        now += Duration::from_secs(1);
        for _ in 0..3 {
            let probe = b.admit(now).expect("probe");
            b.record(probe, false, now);
            let open_for = Duration::from_secs(expected.next().expect("step"));
            assert_eq!(b.admit(now).expect_err("open").retry_after, open_for);
            now += open_for;
        }
    }

    #[test]
    fn a_lost_probe_is_replaced_after_the_open_period() {
        let b = breaker();
        let t0 = Instant::now();
        for _ in 0..3 {
            fail(&b, t0);
        }
        let t1 = t0 + Duration::from_secs(1);
        let _lost = b.admit(t1).expect("probe");
        assert!(b.admit(t1 + Duration::from_millis(999)).is_err());
        let again = b.admit(t1 + Duration::from_secs(1)).expect("new probe");
        assert!(again.is_probe());
    }

    #[test]
    fn late_outcomes_do_not_move_an_open_breaker() {
        let b = breaker();
        let t0 = Instant::now();
        let early = b.admit(t0).expect("closed");
        for _ in 0..3 {
            fail(&b, t0);
        }
        b.record(early, true, t0);
        assert!(b.is_open());
    }
}
