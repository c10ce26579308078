//! Rate limits shared by every node: the same GCRA as the local limiter
//! ([`crate::limits::keyed`]), with its state (one theoretical arrival time per key) in Redis and the
//! check-and-update done atomically by a Lua script.
//!
//! One key per limit scope and key, `chatd:rl:<scope>:<key>`, expiring when its bucket is full
//! again (so idle keys cost nothing). Time is Redis's own (`TIME`), so node clocks do not matter.
//! The script runs with EVALSHA, falling back to EVAL when Redis does not have it cached.
//!
//! A check is never retried: it consumes a token. When Redis cannot answer, the caller falls back
//! to its local limiter ([`crate::limits`]).

use std::time::Duration;

use crate::cluster::redis::{LuaScript, Redis, RedisFailure};
use crate::rate::{Rate, Scope};

/// GCRA in microseconds. KEYS[1]: the bucket; ARGV[1]: emission interval; ARGV[2]: tolerance
/// (burst * interval). Returns 0 when allowed, else the microseconds until it would be.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > tolerance then
  return ahead - tolerance
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ahead / 1000) + 1)
return 0
";

/// The Redis-backed limiter.
#[derive(Debug, Clone)]
pub struct SharedLimiter {
    redis: Redis,
    script: LuaScript,
}

impl SharedLimiter {
    /// A limiter keeping its buckets in `redis`.
    pub fn new(redis: Redis) -> Self {
        SharedLimiter {
            redis,
            script: LuaScript::new(GCRA),
        }
    }

    /// Takes one token from the bucket of `key` in `scope` at `rate`: `Ok(Ok(()))` when allowed,
    /// `Ok(Err(retry_after))` when limited, `Err` when Redis could not say.
    pub async fn check(
        &self,
        scope: Scope,
        key: &str,
        rate: Rate,
    ) -> Result<Result<(), Duration>, RedisFailure> {
        let interval = u64::try_from(rate.interval().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let tolerance = interval.saturating_mul(u64::from(rate.burst));
        let bucket = format!("chatd:rl:{}:{key}", scope.label());
        let interval = interval.to_string();
        let tolerance = tolerance.to_string();
        let wait_us: i64 = self
            .redis
            .eval(
                &self.script,
                &[bucket.as_str()],
                &[interval.as_bytes(), tolerance.as_bytes()],
            )
            .await?;
        if wait_us <= 0 {
            Ok(Ok(()))
        } else {
            Ok(Err(Duration::from_micros(wait_us.unsigned_abs())))
        }
    }
}
