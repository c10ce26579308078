//! The rate limits the handlers check: local token buckets ([`RateLimits`]) on a single node, or
//! buckets shared by every node in Redis ([`SharedLimiter`]) in cluster mode.
//!
//! In cluster mode a user gets the configured rate across the whole cluster, not per node. When
//! Redis cannot answer (down, slow, circuit open) the check falls back to this node's local
//! buckets: limits then hold per node (fail open, but still bounded), and the fallback is logged
//! at most every [`FALLBACK_LOG_EVERY`].
//!
//! # Layout
//! - [`keyed`]: keyed GCRA buckets, sans-IO (the local limiter and the login throttle).
//! - [`shared`]: the same buckets kept in Redis for every node (cluster mode).

pub mod keyed;
pub mod shared;

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::access::cidr::client_key;
use crate::limits::keyed::{RateLimited, RateLimits};
use crate::limits::shared::SharedLimiter;
use crate::rate::{LimitRates, Rate, Scope};

/// Request streams quinn lets a client have open at once (its QUIC stream credit).
///
/// Sized to use and to memory: quinn keeps a map entry for every stream a peer may open, from
/// the start, in hash maps that grow by powers of two at 7/8 full. 24 request streams plus the
/// [`MAX_CONCURRENT_UPLOADS`](crate::files::MAX_CONCURRENT_UPLOADS) upload streams fill 28 of 32
/// slots; 32 request streams took maps of 64 and cost every idle connection 1.3 KB more
/// (BENCHMARKS.md, "Idle connections"). Lowering it means a new
/// `resumption::SHARE_KEY_LABEL` (protocol.md 2.5): 0-RTT data is sent under the credit the
/// client remembers.
pub const REQUEST_STREAM_CREDIT: u32 = 24;

/// Concurrent requests a client can count on (`Limits.max_concurrent_requests`, protocol.md
/// 2.3): quinn gives the credit of closed streams back in batches, once more than an eighth of
/// the credit is due, so up to `credit / 8` closed streams may not have been announced yet, and
/// a client that counted on the whole credit would wait on a stream that never comes.
pub const MAX_CONCURRENT_REQUESTS: u32 = REQUEST_STREAM_CREDIT - REQUEST_STREAM_CREDIT / 8;

// The sizing above: request and upload streams together fit quinn's map of 32.
const _: () = assert!(REQUEST_STREAM_CREDIT + crate::files::MAX_CONCURRENT_UPLOADS <= 28);

/// How often the fallback to local limits is logged while it lasts.
pub const FALLBACK_LOG_EVERY: Duration = Duration::from_secs(10);

/// The server's rate limits.
#[derive(Debug)]
pub struct Limits {
    rates: LimitRates,
    local: RateLimits,
    shared: Option<SharedLimiter>,
    last_fallback_log: Mutex<Option<Instant>>,
}

impl Limits {
    /// Local limits only.
    pub fn local(rates: LimitRates, max_keys: usize) -> Self {
        Limits {
            rates,
            local: RateLimits::new(rates, max_keys),
            shared: None,
            last_fallback_log: Mutex::new(None),
        }
    }

    /// Limits shared through Redis, with local fallback.
    pub fn shared(rates: LimitRates, max_keys: usize, shared: SharedLimiter) -> Self {
        Limits {
            shared: Some(shared),
            ..Limits::local(rates, max_keys)
        }
    }

    /// The configured rates.
    pub fn rates(&self) -> LimitRates {
        self.rates
    }

    async fn check(
        &self,
        scope: Scope,
        rate: Rate,
        key: impl FnOnce() -> String,
        local: impl FnOnce(&RateLimits) -> Result<(), RateLimited>,
    ) -> Result<(), RateLimited> {
        let Some(shared) = &self.shared else {
            return local(&self.local);
        };
        match shared.check(scope, &key(), rate).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(retry_after)) => Err(RateLimited { scope, retry_after }),
            Err(e) => {
                let now = Instant::now();
                let mut last = self
                    .last_fallback_log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if last.is_none_or(|t| now.duration_since(t) >= FALLBACK_LOG_EVERY) {
                    *last = Some(now);
                    tracing::warn!(error = %e, "shared rate limits unavailable: using this node's limits");
                }
                drop(last);
                local(&self.local)
            }
        }
    }

    /// One message sent by `user_id`.
    pub async fn check_send(&self, user_id: u64) -> Result<(), RateLimited> {
        self.check(
            Scope::Send,
            self.rates.send,
            || user_id.to_string(),
            |l| l.check_send(user_id, Instant::now()),
        )
        .await
    }

    /// One request by `user_id`.
    pub async fn check_request(&self, user_id: u64) -> Result<(), RateLimited> {
        self.check(
            Scope::Request,
            self.rates.request,
            || user_id.to_string(),
            |l| l.check_request(user_id, Instant::now()),
        )
        .await
    }

    /// One request from `addr` (an IPv6 address counts by its /64, as in every check by
    /// address here: [`client_key`]).
    pub async fn check_address_request(&self, addr: IpAddr) -> Result<(), RateLimited> {
        let addr = client_key(addr);
        self.check(
            Scope::AddressRequest,
            self.rates.address_request,
            || addr.to_string(),
            |l| l.check_address_request(addr, Instant::now()),
        )
        .await
    }

    /// One login attempt for `username` (normalised) from `addr`, checked against the
    /// address's budget, then the account's from this address, then the account's ceiling from
    /// every address. The first that refuses answers, and the later ones are not charged: a
    /// guesser stopped at its own address does not use up the account's ceiling, so the owner
    /// can still log in from elsewhere.
    pub async fn check_login(&self, username: &str, addr: IpAddr) -> Result<(), RateLimited> {
        let addr = client_key(addr);
        self.check_login_address(addr).await?;
        self.check(
            Scope::LoginAccountAddress,
            self.rates.login_account_address,
            || format!("{username}|{addr}"),
            |l| l.check_login_account_address(username, addr, Instant::now()),
        )
        .await?;
        self.check(
            Scope::LoginAccount,
            self.rates.login_account,
            || username.to_owned(),
            |l| l.check_login_account(username, Instant::now()),
        )
        .await
    }

    /// One login attempt or registration from `addr` (they share the address's budget).
    pub async fn check_login_address(&self, addr: IpAddr) -> Result<(), RateLimited> {
        let addr = client_key(addr);
        self.check(
            Scope::LoginAddress,
            self.rates.login_address,
            || addr.to_string(),
            |l| l.check_login_address(addr, Instant::now()),
        )
        .await
    }

    /// One password change by `user_id` from `addr`: the address's login budget, then the
    /// user's own password-change bucket.
    pub async fn check_password_change(
        &self,
        user_id: u64,
        addr: IpAddr,
    ) -> Result<(), RateLimited> {
        self.check_login_address(addr).await?;
        self.check(
            Scope::PasswordChange,
            self.rates.login_account_address,
            || user_id.to_string(),
            |l| l.check_password_change(user_id, Instant::now()),
        )
        .await
    }

    /// One typing notification by `user_id` in `chat_id`.
    pub async fn check_typing(&self, user_id: u64, chat_id: u64) -> Result<(), RateLimited> {
        self.check(
            Scope::Typing,
            self.rates.typing,
            || format!("{user_id}:{chat_id}"),
            |l| l.check_typing(user_id, chat_id, Instant::now()),
        )
        .await
    }

    /// One upload begun by `user_id`.
    pub async fn check_upload(&self, user_id: u64) -> Result<(), RateLimited> {
        self.check(
            Scope::Upload,
            self.rates.upload,
            || user_id.to_string(),
            |l| l.check_upload(user_id, Instant::now()),
        )
        .await
    }

    /// One signal by `user_id` on call `call_id`.
    pub async fn check_call_signal(&self, call_id: u64, user_id: u64) -> Result<(), RateLimited> {
        self.check(
            Scope::CallSignal,
            self.rates.call_signal,
            || format!("{call_id}:{user_id}"),
            |l| l.check_call_signal(call_id, user_id, Instant::now()),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The addresses of one IPv6 /64 draw on one budget; another /64 has its own.
    #[tokio::test]
    async fn an_ipv6_slash_64_has_one_budget() {
        let rates = LimitRates {
            address_request: "1/m burst 2".parse().expect("rate"),
            login_address: "1/m burst 1".parse().expect("rate"),
            ..LimitRates::default()
        };
        let limits = Limits::local(rates, 1000);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        for host in ["2001:db8:7:7::1", "2001:db8:7:7::2"] {
            limits
                .check_address_request(ip(host))
                .await
                .expect("within the burst");
        }
        assert!(
            limits
                .check_address_request(ip("2001:db8:7:7:ffff::9"))
                .await
                .is_err()
        );
        limits
            .check_address_request(ip("2001:db8:7:8::1"))
            .await
            .expect("another /64");
        limits
            .check_login("ann", ip("2001:db8:7:7::1"))
            .await
            .expect("first login");
        assert!(
            limits
                .check_login("bob", ip("2001:db8:7:7::2"))
                .await
                .is_err()
        );
    }
}
