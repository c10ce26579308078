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
//! [`RateLimits`] bundles the limiters the server applies, each behind its own mutex (every
//! operation is O(1) apart from the sweeps above).
//!
//! Layout: [`Rate`] (the configured rate and its text form), [`KeyedLimiter`] (one keyed set of
//! buckets), [`RateLimits`] (the server's limiters).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often idle (full) buckets are dropped.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Default cap on keys per limiter (a few tens of MB at most per limiter).
pub const DEFAULT_MAX_KEYS: usize = 262_144;

/// Largest burst or count a [`Rate`] accepts.
pub const MAX_RATE_COUNT: u32 = 1_000_000;

/// Longest refill period a [`Rate`] accepts.
pub const MAX_RATE_PERIOD: Duration = Duration::from_secs(86_400);

/// A token-bucket rate: `burst` requests at once, refilled at `count` per `period`.
///
/// Text form (config files, flags): `COUNT/PERIOD [burst N]`, e.g. `20/s burst 60`,
/// `1/60s burst 5`, `1/2s`. PERIOD is `ms`, `s`, `m` or `h`, optionally preceded by a number.
/// Without `burst`, the burst equals COUNT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Bucket size: requests allowed at once after a quiet period.
    pub burst: u32,
    /// Tokens added per `period`.
    pub count: u32,
    /// The refill period.
    pub period: Duration,
}

/// Why a [`Rate`] or duration text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RateParseError(String);

impl Rate {
    /// A validated rate: burst and count in 1..=[`MAX_RATE_COUNT`], period in
    /// 1 ms..=[`MAX_RATE_PERIOD`].
    pub fn new(burst: u32, count: u32, period: Duration) -> Result<Rate, RateParseError> {
        if !(1..=MAX_RATE_COUNT).contains(&burst) {
            return Err(RateParseError(format!(
                "burst must be between 1 and {MAX_RATE_COUNT}"
            )));
        }
        if !(1..=MAX_RATE_COUNT).contains(&count) {
            return Err(RateParseError(format!(
                "count must be between 1 and {MAX_RATE_COUNT}"
            )));
        }
        if period < Duration::from_millis(1) || period > MAX_RATE_PERIOD {
            return Err(RateParseError(
                "period must be between 1ms and 24h".to_owned(),
            ));
        }
        Ok(Rate {
            burst,
            count,
            period,
        })
    }

    /// Time to refill one token.
    pub fn interval(&self) -> Duration {
        self.period / self.count.max(1)
    }
}

impl FromStr for Rate {
    type Err = RateParseError;

    fn from_str(s: &str) -> Result<Rate, RateParseError> {
        let bad = || {
            RateParseError(format!(
                "invalid rate '{s}': expected COUNT/PERIOD [burst N], e.g. '20/s burst 60'"
            ))
        };
        let mut words = s.split_whitespace();
        let rate = words.next().ok_or_else(bad)?;
        let burst = match (words.next(), words.next(), words.next()) {
            (None, _, _) => None,
            (Some("burst"), Some(n), None) => Some(n.parse::<u32>().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        let (count, period) = rate.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.parse().map_err(|_| bad())?;
        // "s" alone means "1s".
        let period = if period.starts_with(|c: char| c.is_ascii_digit()) {
            parse_duration(period)?
        } else {
            parse_duration(&format!("1{period}"))?
        };
        Rate::new(burst.unwrap_or(count), count, period)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = format_duration(self.period);
        // "20/s" reads better than "20/1s"; both parse.
        let period = match period.strip_prefix('1') {
            Some(unit) if unit.starts_with(|c: char| c.is_ascii_alphabetic()) => unit.to_owned(),
            _ => period,
        };
        write!(f, "{}/{period} burst {}", self.count, self.burst)
    }
}

/// Parses `<number><unit>` with unit `ms`, `s`, `m` or `h` (e.g. `15m`, `500ms`).
pub fn parse_duration(s: &str) -> Result<Duration, RateParseError> {
    let bad = || {
        RateParseError(format!(
            "invalid duration '{s}': expected a number followed by ms, s, m or h"
        ))
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let ms_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(ms_per_unit).ok_or_else(bad)?;
    Ok(Duration::from_millis(ms))
}

/// Formats a duration in the largest unit of [`parse_duration`] that represents it exactly.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    for (unit, per) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000)] {
        if ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

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
    #[cfg(test)]
    pub fn len(&self) -> usize {
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

/// What a limit applies to; also the `scope` label of the rate-limited metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Messages sent, per user.
    Send,
    /// Requests, per user.
    Request,
    /// Requests, per client IP address.
    AddressRequest,
    /// Login attempts, per account from every address together: a ceiling well above
    /// [`Scope::LoginAccountAddress`], so that guessing from one address cannot lock the owner
    /// out from another.
    LoginAccount,
    /// Login attempts, per account and client IP address.
    LoginAccountAddress,
    /// Login attempts, per client IP address.
    LoginAddress,
    /// Password changes (`change_password`), per user. Keyed by user id in a scope of its own,
    /// so it never shares a bucket with a login for a username that looks like an id.
    PasswordChange,
    /// Typing notifications, per user and chat.
    Typing,
    /// Uploads begun, per user.
    Upload,
}

impl Scope {
    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Request => "request",
            Scope::AddressRequest => "address_request",
            Scope::LoginAccount => "login_account",
            Scope::LoginAccountAddress => "login_account_address",
            Scope::LoginAddress => "login_address",
            Scope::PasswordChange => "password_change",
            Scope::Typing => "typing",
            Scope::Upload => "upload",
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

/// The rates of every limit the server applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitRates {
    /// Messages sent per user.
    pub send: Rate,
    /// Requests per user.
    pub request: Rate,
    /// Requests per client address.
    pub address_request: Rate,
    /// Login attempts per account, from all addresses together.
    pub login_account: Rate,
    /// Login attempts per account from one client address; also password changes per user.
    pub login_account_address: Rate,
    /// Login attempts per client address.
    pub login_address: Rate,
    /// Typing notifications per user and chat.
    pub typing: Rate,
    /// Uploads begun per user.
    pub upload: Rate,
}

impl Default for LimitRates {
    fn default() -> Self {
        let rate = |burst, count, secs| Rate {
            burst,
            count,
            period: Duration::from_secs(secs),
        };
        LimitRates {
            send: rate(60, 20, 1),
            request: rate(200, 100, 1),
            address_request: rate(400, 200, 1),
            login_account: rate(50, 10, 60),
            login_account_address: rate(5, 1, 60),
            login_address: rate(20, 1, 5),
            typing: rate(1, 1, 2),
            upload: rate(30, 1, 2),
        }
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
        assert_eq!(l.len(), 100);
        // A check after the sweep interval drops every bucket that refilled (all of them).
        let later = t0 + SWEEP_INTERVAL;
        assert_eq!(l.check(&500, later), Ok(()));
        assert_eq!(l.len(), 1);
        // A drained key survives a sweep while it is not full.
        assert_eq!(l.check(&500, later), Ok(()));
        l.sweep(later + ms(500));
        assert_eq!(l.len(), 1);
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
        assert_eq!(l.len(), 8);
        let now = t0 + ms(100);
        assert_eq!(l.check(&100, now), Ok(()));
        assert_eq!(l.len(), 8);
        // Key 0 was evicted (a fresh, full bucket); key 7 was not.
        assert_eq!(l.check(&0, now), Ok(()));
        assert!(l.check(&7, now).is_err());
    }

    #[test]
    fn rate_text_form_round_trips() {
        let cases = [
            ("20/s burst 60", Rate::new(60, 20, ms(1000))),
            ("1/60s burst 5", Rate::new(5, 1, ms(60_000))),
            ("1/5s  burst 20", Rate::new(20, 1, ms(5000))),
            ("1/2s", Rate::new(1, 1, ms(2000))),
            ("100/m", Rate::new(100, 100, ms(60_000))),
            ("3/500ms burst 3", Rate::new(3, 3, ms(500))),
        ];
        for (text, want) in cases {
            let want = want.expect("valid");
            let got: Rate = text.parse().expect(text);
            assert_eq!(got, want, "{text}");
            let again: Rate = got.to_string().parse().expect("display parses");
            assert_eq!(again, got);
        }
        assert_eq!(
            "1/60s burst 5".parse::<Rate>().expect("rate").to_string(),
            "1/m burst 5"
        );
    }

    #[test]
    fn bad_rates_are_rejected() {
        for bad in [
            "",
            "20",
            "20/",
            "/s",
            "20/x",
            "0/s",
            "20/s burst 0",
            "20/s burst",
            "20/s bust 5",
            "20/s burst 5 extra",
            "-1/s",
            "1/0s",
            "1/25h",
            "2000000/s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(ms(900_000)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("2h"), Ok(ms(7_200_000)));
        for bad in [
            "",
            "10",
            "s",
            "1.5s",
            "10 s",
            "10sec",
            "-1s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format_duration(ms(900_000)), "15m");
        assert_eq!(format_duration(ms(1500)), "1500ms");
        assert_eq!(format_duration(ms(1000)), "1s");
        assert_eq!(format_duration(ms(10_000)), "10s");
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
