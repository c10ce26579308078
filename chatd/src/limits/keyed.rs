//! Keyed token-bucket rate limiting, sans-IO: callers pass the current time in.
//!
//! Each bucket is kept as GCRA state (the "generic cell rate algorithm", equivalent to a token
//! bucket): one `Instant` per key, the theoretical arrival time (TAT) of the next request. A
//! request at `now` is allowed when `max(TAT, now) + interval - now <= burst * interval`, and
//! then TAT advances by one interval. A key whose TAT is not after `now` has a full bucket, so
//! dropping it changes nothing: that is what keeps memory bounded.
//!
//! Memory bound, per [`KeyedLimiter`]:
//! - every [`SWEEP_INTERVAL`] of (caller) time, a check first drops every full bucket (an O(n)
//!   pass, so at most once a minute);
//! - when a new key would exceed `max_keys`, full buckets are dropped, and if that is not
//!   enough, the eighth of the keys closest to full. That only ever makes a limit more lenient
//!   for the evicted keys, never stricter for anyone, and it only happens when more distinct
//!   keys than `max_keys` are active within one refill period.
//!
//! Why not `governor` (the well-kept crate with the same algorithm): measured side by side
//! (`cargo bench -p chatd --bench limits`, numbers in BENCHMARKS.md), its keyed limiter is about
//! twice as fast on one hot key and slower on new keys, both far below a request's cost; but it
//! holds every key it has seen until swept, with no cap, so a flood of source addresses grows it
//! without bound, and it reads its own clock, where this module takes `now` from the caller.
//!
//! [`RateLimits`] bundles the limiters the server applies, each behind its own mutex (every
//! operation is O(1) apart from the sweeps above).
//!
//! Layout: [`KeyedLimiter`] (one keyed set of buckets), [`RateLimits`] (the server's limiters).
//! What they enforce ([`Rate`], [`Scope`], [`LimitRates`]) is `crate::rate`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::rate::{LimitRates, Rate, Scope};

/// How often idle (full) buckets are dropped.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Default cap on keys per limiter (a few tens of MB at most per limiter).
pub const DEFAULT_MAX_KEYS: usize = 262_144;

/// One keyed set of token buckets sharing a [`Rate`]. Not synchronised: wrap it in a mutex
/// (as [`RateLimits`] does) to share it.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    interval: Duration,
    tolerance: Duration,
    max_keys: usize,
    tats: HashMap<K, Instant>,
    last_sweep: Option<Instant>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// A limiter applying `rate` per key, holding at most `max_keys` keys (at least 1).
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        let interval = rate.interval();
        KeyedLimiter {
            interval,
            tolerance: interval.saturating_mul(rate.burst),
            max_keys: max_keys.max(1),
            tats: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Takes one token from `key`'s bucket at `now`, or says how long until one is available.
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        self.maybe_sweep(now);
        let tat = match self.tats.get(key) {
            Some(&tat) if tat > now => tat,
            _ => now,
        };
        let new_tat = tat.checked_add(self.interval).unwrap_or(tat);
        let ahead = new_tat.saturating_duration_since(now);
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        if let Some(slot) = self.tats.get_mut(key) {
            *slot = new_tat;
        } else {
            if self.tats.len() >= self.max_keys {
                self.make_room(now);
            }
            self.tats.insert(key.clone(), new_tat);
        }
        Ok(())
    }

    /// Keys currently held (buckets that are not known to be full).
    #[cfg(any(test, feature = "testing"))]
    pub fn keys_held(&self) -> usize {
        self.tats.len()
    }

    /// Drops every full bucket (TAT not after `now`); limits are unaffected.
    pub fn sweep(&mut self, now: Instant) {
        self.tats.retain(|_, tat| *tat > now);
        self.last_sweep = Some(now);
    }

    fn maybe_sweep(&mut self, now: Instant) {
        match self.last_sweep {
            None => self.last_sweep = Some(now),
            Some(last) if now.saturating_duration_since(last) >= SWEEP_INTERVAL => self.sweep(now),
            Some(_) => {}
        }
    }

    /// Frees at least one slot: full buckets first, then the eighth closest to full.
    fn make_room(&mut self, now: Instant) {
        self.sweep(now);
        if self.tats.len() < self.max_keys {
            return;
        }
        let mut by_tat: Vec<(Instant, K)> =
            self.tats.iter().map(|(k, t)| (*t, k.clone())).collect();
        let evict = (by_tat.len() / 8).max(1);
        by_tat.select_nth_unstable_by_key(evict - 1, |(t, _)| *t);
        for (_, key) in by_tat.into_iter().take(evict) {
            self.tats.remove(&key);
        }
    }
}

/// A request refused by a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited ({}), retry after {retry_after:?}", scope.label())]
pub struct RateLimited {
    /// The limit that refused.
    pub scope: Scope,
    /// How long until the request would be allowed.
    pub retry_after: Duration,
}

impl RateLimited {
    /// `retry_after` in whole milliseconds, rounded up, for `pb::Error.retry_after_ms`.
    #[cfg(test)]
    pub fn retry_after_ms(&self) -> u32 {
        let ms = self.retry_after.as_nanos().div_ceil(1_000_000);
        u32::try_from(ms).unwrap_or(u32::MAX)
    }
}

/// The server's rate limiters, safe to share between connection tasks.
#[derive(Debug)]
pub struct RateLimits {
    send: Mutex<KeyedLimiter<u64>>,
    request: Mutex<KeyedLimiter<u64>>,
    address_request: Mutex<KeyedLimiter<IpAddr>>,
    login_account: Mutex<KeyedLimiter<String>>,
    login_account_address: Mutex<KeyedLimiter<(String, IpAddr)>>,
    login_address: Mutex<KeyedLimiter<IpAddr>>,
    password_change: Mutex<KeyedLimiter<u64>>,
    typing: Mutex<KeyedLimiter<(u64, u64)>>,
    upload: Mutex<KeyedLimiter<u64>>,
    call_signal: Mutex<KeyedLimiter<(u64, u64)>>,
}

fn check<K: Hash + Eq + Clone>(
    limiter: &Mutex<KeyedLimiter<K>>,
    scope: Scope,
    key: &K,
    now: Instant,
) -> Result<(), RateLimited> {
    // A panic while holding the lock cannot leave the map inconsistent in a way that matters
    // for limiting, so a poisoned lock is still used.
    let mut guard = limiter.lock().unwrap_or_else(PoisonError::into_inner);
    guard
        .check(key, now)
        .map_err(|retry_after| RateLimited { scope, retry_after })
}

impl RateLimits {
    /// Limiters for `rates`, each holding at most `max_keys` keys.
    pub fn new(rates: LimitRates, max_keys: usize) -> Self {
        RateLimits {
            send: Mutex::new(KeyedLimiter::new(rates.send, max_keys)),
            request: Mutex::new(KeyedLimiter::new(rates.request, max_keys)),
            address_request: Mutex::new(KeyedLimiter::new(rates.address_request, max_keys)),
            login_account: Mutex::new(KeyedLimiter::new(rates.login_account, max_keys)),
            login_account_address: Mutex::new(KeyedLimiter::new(
                rates.login_account_address,
                max_keys,
            )),
            login_address: Mutex::new(KeyedLimiter::new(rates.login_address, max_keys)),
            password_change: Mutex::new(KeyedLimiter::new(rates.login_account_address, max_keys)),
            typing: Mutex::new(KeyedLimiter::new(rates.typing, max_keys)),
            upload: Mutex::new(KeyedLimiter::new(rates.upload, max_keys)),
            call_signal: Mutex::new(KeyedLimiter::new(rates.call_signal, max_keys)),
        }
    }

    /// One message sent by `user_id`.
    pub fn check_send(&self, user_id: u64, now: Instant) -> Result<(), RateLimited> {
        check(&self.send, Scope::Send, &user_id, now)
    }

    /// One request by `user_id`.
    pub fn check_request(&self, user_id: u64, now: Instant) -> Result<(), RateLimited> {
        check(&self.request, Scope::Request, &user_id, now)
    }

    /// One request from `addr` (authenticated or not).
    pub fn check_address_request(&self, addr: IpAddr, now: Instant) -> Result<(), RateLimited> {
        check(&self.address_request, Scope::AddressRequest, &addr, now)
    }

    /// One login attempt for `username` (pass the normalised, lowercase form).
    pub fn check_login_account(&self, username: &str, now: Instant) -> Result<(), RateLimited> {
        check(
            &self.login_account,
            Scope::LoginAccount,
            &username.to_owned(),
            now,
        )
    }

    /// One login attempt for `username` (normalised) from `addr`.
    pub fn check_login_account_address(
        &self,
        username: &str,
        addr: IpAddr,
        now: Instant,
    ) -> Result<(), RateLimited> {
        check(
            &self.login_account_address,
            Scope::LoginAccountAddress,
            &(username.to_owned(), addr),
            now,
        )
    }

    /// One login attempt from `addr`.
    pub fn check_login_address(&self, addr: IpAddr, now: Instant) -> Result<(), RateLimited> {
        check(&self.login_address, Scope::LoginAddress, &addr, now)
    }

    /// One password change by `user_id`.
    pub fn check_password_change(&self, user_id: u64, now: Instant) -> Result<(), RateLimited> {
        check(&self.password_change, Scope::PasswordChange, &user_id, now)
    }

    /// One typing notification by `user_id` in `chat_id`.
    pub fn check_typing(
        &self,
        user_id: u64,
        chat_id: u64,
        now: Instant,
    ) -> Result<(), RateLimited> {
        check(&self.typing, Scope::Typing, &(user_id, chat_id), now)
    }

    /// One upload begun by `user_id`.
    pub fn check_upload(&self, user_id: u64, now: Instant) -> Result<(), RateLimited> {
        check(&self.upload, Scope::Upload, &user_id, now)
    }

    /// One signal by `user_id` on call `call_id`.
    pub fn check_call_signal(
        &self,
        call_id: u64,
        user_id: u64,
        now: Instant,
    ) -> Result<(), RateLimited> {
        check(
            &self.call_signal,
            Scope::CallSignal,
            &(call_id, user_id),
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn burst_then_refill_with_exact_retry_after() {
        let rate: Rate = "1/s burst 3".parse().expect("rate");
        let mut l = KeyedLimiter::new(rate, 16);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(&1u64, t0), Ok(()));
        }
        assert_eq!(l.check(&1, t0), Err(ms(1000)));
        assert_eq!(l.check(&1, t0 + ms(400)), Err(ms(600)));
        // Refused requests take no token.
        assert_eq!(l.check(&1, t0 + ms(999)), Err(ms(1)));
        assert_eq!(l.check(&1, t0 + ms(1000)), Ok(()));
        assert_eq!(l.check(&1, t0 + ms(1000)), Err(ms(1000)));
        // After a long quiet period the bucket is full again, not over-full.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert_eq!(l.check(&1, later), Ok(()));
        }
        assert!(l.check(&1, later).is_err());
    }

    #[test]
    fn steady_rate_matches_the_refill() {
        let rate: Rate = "20/s burst 60".parse().expect("rate");
        let mut l = KeyedLimiter::new(rate, 16);
        let t0 = Instant::now();
        let mut allowed = 0;
        // 10 s of one request per millisecond: 60 burst + 20/s * 10 s.
        for i in 0..10_000u64 {
            if l.check(&7u64, t0 + ms(i)).is_ok() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 60 + 200 - 1);
    }

    #[test]
    fn keys_are_independent() {
        let rate: Rate = "1/m burst 1".parse().expect("rate");
        let mut l = KeyedLimiter::new(rate, 16);
        let t0 = Instant::now();
        assert_eq!(l.check(&"a".to_owned(), t0), Ok(()));
        assert_eq!(l.check(&"a".to_owned(), t0), Err(Duration::from_secs(60)));
        assert_eq!(l.check(&"b".to_owned(), t0), Ok(()));
    }

    #[test]
    fn full_buckets_are_swept_without_changing_limits() {
        let rate: Rate = "1/s burst 2".parse().expect("rate");
        let mut l = KeyedLimiter::new(rate, 1000);
        let t0 = Instant::now();
        for k in 0..100u64 {
            assert_eq!(l.check(&k, t0), Ok(()));
        }
        // Key 0 is drained and stays tracked.
        assert_eq!(l.check(&0, t0), Ok(()));
        assert_eq!(l.keys_held(), 100);
        // A check after the sweep interval drops every bucket that refilled (all of them).
        let later = t0 + SWEEP_INTERVAL;
        assert_eq!(l.check(&500, later), Ok(()));
        assert_eq!(l.keys_held(), 1);
        // A drained key survives a sweep while it is not full.
        assert_eq!(l.check(&500, later), Ok(()));
        l.sweep(later + ms(500));
        assert_eq!(l.keys_held(), 1);
        assert_eq!(l.check(&500, later + ms(500)), Err(ms(500)));
    }

    #[test]
    fn cap_evicts_the_buckets_closest_to_full() {
        let rate: Rate = "1/s burst 1".parse().expect("rate");
        let mut l = KeyedLimiter::new(rate, 8);
        let t0 = Instant::now();
        // Eight keys drained at increasing times: key 0 is the closest to full.
        for k in 0..8u64 {
            assert_eq!(l.check(&k, t0 + ms(k * 10)), Ok(()));
        }
        assert_eq!(l.keys_held(), 8);
        let now = t0 + ms(100);
        assert_eq!(l.check(&100, now), Ok(()));
        assert_eq!(l.keys_held(), 8);
        // Key 0 was evicted (a fresh, full bucket); key 7 was not.
        assert_eq!(l.check(&0, now), Ok(()));
        assert!(l.check(&7, now).is_err());
    }

    #[test]
    fn rate_limits_apply_per_scope_and_report_it() {
        let limits = RateLimits::new(LimitRates::default(), 1024);
        let t0 = Instant::now();
        let addr: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..5 {
            assert_eq!(
                limits.check_login_account_address("alice", addr, t0),
                Ok(())
            );
        }
        let err = limits
            .check_login_account_address("alice", addr, t0)
            .expect_err("sixth attempt");
        assert_eq!(err.scope, Scope::LoginAccountAddress);
        assert_eq!(err.retry_after, Duration::from_secs(60));
        assert_eq!(err.retry_after_ms(), 60_000);
        // Other accounts, other addresses and other scopes are unaffected.
        assert_eq!(limits.check_login_account_address("bob", addr, t0), Ok(()));
        assert_eq!(
            limits.check_login_account_address("alice", other, t0),
            Ok(())
        );
        assert_eq!(limits.check_login_address(addr, t0), Ok(()));
        // The account's own ceiling is ten times higher.
        for _ in 0..50 {
            assert_eq!(limits.check_login_account("alice", t0), Ok(()));
        }
        assert_eq!(
            limits.check_login_account("alice", t0).map_err(|e| e.scope),
            Err(Scope::LoginAccount)
        );
        // Password changes have buckets of their own: user 100 is not the username "100".
        for _ in 0..50 {
            let _ = limits.check_login_account("100", t0);
        }
        assert_eq!(limits.check_password_change(100, t0), Ok(()));
        // Typing: one per 2 s per (user, chat).
        assert_eq!(limits.check_typing(1, 10, t0), Ok(()));
        let typing = limits.check_typing(1, 10, t0).expect_err("second typing");
        assert_eq!(
            (typing.scope, typing.retry_after),
            (Scope::Typing, Duration::from_secs(2))
        );
        assert_eq!(limits.check_typing(1, 11, t0), Ok(()));
        assert_eq!(limits.check_typing(2, 10, t0), Ok(()));
        // Send: burst 60.
        for _ in 0..60 {
            assert_eq!(limits.check_send(1, t0), Ok(()));
        }
        assert_eq!(
            limits.check_send(1, t0).map_err(|e| e.scope),
            Err(Scope::Send)
        );
        assert_eq!(limits.check_request(1, t0), Ok(()));
        assert_eq!(limits.check_address_request(addr, t0), Ok(()));
    }

    #[test]
    fn retry_after_ms_rounds_up_and_saturates() {
        let r = |d| RateLimited {
            scope: Scope::Send,
            retry_after: d,
        };
        assert_eq!(r(Duration::from_micros(1)).retry_after_ms(), 1);
        assert_eq!(r(ms(50)).retry_after_ms(), 50);
        assert_eq!(r(Duration::from_secs(u64::MAX)).retry_after_ms(), u32::MAX);
    }
}
