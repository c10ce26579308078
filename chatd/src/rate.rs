//! What a rate limit is, apart from enforcing it: a [`Rate`] and its text form (flags, config
//! files), the durations that text uses, the [`Scope`]s that have a limit, and their default
//! [`LimitRates`].
//!
//! A leaf on purpose: the configuration parses these and the metrics label by them, while
//! `limits` (which enforces them, locally or through Redis) sits above the cluster code that
//! itself reads the configuration; keeping the vocabulary here keeps those modules out of an
//! import cycle.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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
    /// Call signals (`send_call_signal`), per call and sending user.
    CallSignal,
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
            Scope::CallSignal => "call_signal",
        }
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
    /// Call signals per call and sending user.
    pub call_signal: Rate,
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
            call_signal: rate(200, 50, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
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
}
