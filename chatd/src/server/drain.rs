//! How a drain spreads its clients' reconnects over time (protocol.md 3.6).
//!
//! Why: a node that drains sends `GoAway` to every connection at once. With one fixed delay
//! every client would dial the same moment later, and the node that takes them (the restarted
//! one, or the rest of the cluster) would see its whole population handshake at once: CPU for
//! thousands of TLS handshakes, the unauthenticated-connection cap reached, and `SERVER_BUSY`
//! for many, who then come back again. So each connection gets its own delay, drawn uniformly
//! from a window sized to the number of connections the node holds and the reconnect rate it is
//! configured to offer its successors. The client adds its own small jitter on top.

use std::time::Duration;

/// The shortest delay a drained client is given: the time a restarting node needs to let go of
/// its port, and a load balancer to notice a drained node.
pub const RECONNECT_FLOOR: Duration = Duration::from_millis(500);

/// The widest spread, however many connections there are: clients should not wait longer for
/// their next connection than a user would sit through.
pub const MAX_SPREAD: Duration = Duration::from_secs(120);

/// The delays one drain hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainPlan {
    spread: Duration,
}

impl DrainPlan {
    /// The plan for `connections` connections reconnecting at `rate` per second together
    /// (`rate` 0 is treated as 1).
    pub fn new(connections: usize, rate: u32) -> Self {
        let secs = connections as f64 / f64::from(rate.max(1));
        DrainPlan {
            spread: Duration::from_secs_f64(secs).min(MAX_SPREAD),
        }
    }

    /// How far apart the first and the last reconnect are meant to be.
    pub fn spread(&self) -> Duration {
        self.spread
    }

    /// The `reconnect_after_ms` for one connection, `unit` being a uniform draw from `[0, 1)`
    /// (a parameter so the plan stays deterministic under test).
    pub fn reconnect_after(&self, unit: f64) -> Duration {
        RECONNECT_FLOOR + self.spread.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// [`reconnect_after`](Self::reconnect_after) in the wire's milliseconds, with a fresh draw.
    pub fn draw_millis(&self) -> u32 {
        let delay = self.reconnect_after(rand::random::<f64>());
        u32::try_from(delay.as_millis()).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_grows_with_the_connections_and_shrinks_with_the_rate() {
        assert_eq!(DrainPlan::new(0, 1000).spread(), Duration::ZERO);
        assert_eq!(DrainPlan::new(5000, 1000).spread(), Duration::from_secs(5));
        assert_eq!(
            DrainPlan::new(5000, 2000).spread(),
            Duration::from_millis(2500)
        );
        assert_eq!(DrainPlan::new(10, 0).spread(), Duration::from_secs(10));
        assert_eq!(DrainPlan::new(10_000_000, 1).spread(), MAX_SPREAD);
    }

    #[test]
    fn delays_start_at_the_floor_and_cover_the_spread() {
        let plan = DrainPlan::new(3000, 1000);
        assert_eq!(plan.reconnect_after(0.0), RECONNECT_FLOOR);
        assert_eq!(
            plan.reconnect_after(0.5),
            RECONNECT_FLOOR + Duration::from_millis(1500)
        );
        assert_eq!(
            plan.reconnect_after(7.0),
            RECONNECT_FLOOR + Duration::from_secs(3)
        );
    }

    #[test]
    fn fresh_draws_are_spread_over_the_window() {
        let plan = DrainPlan::new(4000, 1000);
        let draws: Vec<u32> = (0..4000).map(|_| plan.draw_millis()).collect();
        assert!(draws.iter().all(|&ms| (500..=4500).contains(&ms)));
        // Each second of the window gets about a quarter; none gets more than a third.
        for second in 0..4 {
            let lo = 500 + second * 1000;
            let n = draws
                .iter()
                .filter(|&&ms| (lo..lo + 1000).contains(&ms))
                .count();
            assert!((700..1300).contains(&n), "second {second}: {n} of 4000");
        }
    }
}
