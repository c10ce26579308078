//! The Redis connection for commands: [`Redis`], a cheap-to-clone handle that runs commands with
//! a deadline and a circuit breaker, connected to the [`RedisTarget`] the configuration parsed
//! from `--redis-url` (standalone: SUBSCRIBE/PUBLISH; Redis Cluster: sharded
//! SSUBSCRIBE/SPUBLISH).
//!
//! Connections are lazy: chatd starts while Redis is down, and the underlying clients
//! (`ConnectionManager`, the async cluster connection) reconnect on their own. While Redis keeps
//! failing, the breaker opens and commands fail at once, so callers fall back (local rate limits,
//! store reads without cache) instead of waiting for timeouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, ServerErrorKind};

pub use crate::ops::config::RedisTarget;
use crate::ops::metrics::Metrics;
use crate::resilience::breaker::{BreakerConfig, CircuitBreaker};

/// Why a Redis command did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RedisFailure {
    /// The breaker is open: Redis failed repeatedly and was not tried.
    #[error("redis circuit open")]
    CircuitOpen,
    /// No answer within the command deadline.
    #[error("redis command timed out")]
    Timeout,
    /// This node's Redis traffic was halted ([`Redis::halt`]).
    #[error("redis traffic halted on this node")]
    Halted,
    /// Redis (or the client) reported an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

#[derive(Clone)]
enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

struct Inner {
    target: RedisTarget,
    conn: Conn,
    breaker: CircuitBreaker,
    timeout: Duration,
    halted: AtomicBool,
    metrics: Arc<Metrics>,
}

/// A handle for Redis commands. Clones share one connection (multiplexed) and one breaker.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("cluster", &self.is_cluster())
            .finish_non_exhaustive()
    }
}

/// A Lua script run with EVALSHA, falling back to EVAL when the server does not know it yet
/// (after a restart, on a new cluster node). EVAL also caches the script on that node.
#[derive(Debug, Clone)]
pub struct LuaScript {
    code: &'static str,
    sha: String,
}

impl LuaScript {
    /// Wraps the script source.
    pub fn new(code: &'static str) -> Self {
        LuaScript {
            code,
            sha: redis::Script::new(code).get_hash().to_owned(),
        }
    }
}

/// Whether an error says Redis itself is unhealthy (as opposed to a command-level error such as
/// a wrong type or a script error, which prove Redis is answering).
fn is_health_failure(err: &redis::RedisError) -> bool {
    match err.kind() {
        redis::ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::TryAgain
                | ServerErrorKind::BusyLoading
                | ServerErrorKind::ReadOnly
        ),
        redis::ErrorKind::Io | redis::ErrorKind::ClusterConnectionNotFound => true,
        _ => err.is_connection_dropped() || err.is_timeout() || err.is_connection_refusal(),
    }
}

impl Redis {
    /// A lazily connecting handle: never fails because Redis is down, only for a bad
    /// configuration. `timeout` bounds every command.
    pub fn connect(
        target: RedisTarget,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Redis, RedisFailure> {
        let conn = match &target {
            RedisTarget::Standalone(info) => {
                let client = redis::Client::open(info.clone())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_secs(1));
                Conn::Standalone(ConnectionManager::new_lazy_with_config(client, config)?)
            }
            RedisTarget::Cluster(seeds) => {
                let client = redis::cluster::ClusterClientBuilder::new(seeds.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .build()?;
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Conn::Cluster(client.get_pending_async_connection_with_config(config))
            }
        };
        Ok(Redis {
            inner: Arc::new(Inner {
                target,
                conn,
                breaker: CircuitBreaker::new(
                    "redis",
                    BreakerConfig {
                        failure_threshold: 3,
                        open_for: Duration::from_millis(500),
                        max_open_for: Duration::from_secs(5),
                    },
                ),
                timeout,
                halted: AtomicBool::new(false),
                metrics,
            }),
        })
    }

    /// Where this handle connects.
    pub fn target(&self) -> &RedisTarget {
        &self.inner.target
    }

    /// True for a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.inner.target.is_cluster()
    }

    /// The command deadline.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Stops every command of this node at once, as if the process had died or been cut off
    /// from Redis (no deregistration either). For fault drills and tests of the other nodes'
    /// failure handling; there is no way back.
    #[cfg(any(test, feature = "testing"))]
    pub fn halt(&self) {
        self.inner.halted.store(true, Ordering::SeqCst);
    }

    /// True once [`halt`](Self::halt) was called.
    pub fn is_halted(&self) -> bool {
        self.inner.halted.load(Ordering::SeqCst)
    }

    /// Runs one command.
    pub async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, RedisFailure> {
        if self.is_halted() {
            return Err(RedisFailure::Halted);
        }
        let permit = self
            .inner
            .breaker
            .admit(Instant::now())
            .map_err(|_| RedisFailure::CircuitOpen)?;
        let result = match &self.inner.conn {
            Conn::Standalone(conn) => {
                let mut conn = conn.clone();
                tokio::time::timeout(self.inner.timeout, cmd.query_async::<T>(&mut conn)).await
            }
            Conn::Cluster(conn) => {
                let mut conn = conn.clone();
                tokio::time::timeout(self.inner.timeout, cmd.query_async::<T>(&mut conn)).await
            }
        };
        let (healthy, result) = match result {
            Ok(Ok(value)) => (true, Ok(value)),
            Ok(Err(e)) => (!is_health_failure(&e), Err(RedisFailure::Redis(e))),
            Err(_) => (false, Err(RedisFailure::Timeout)),
        };
        self.inner.breaker.record(permit, healthy, Instant::now());
        self.inner
            .metrics
            .circuit("redis", self.inner.breaker.is_open());
        result
    }

    /// Runs a pipeline whose replies are not needed (standalone Redis; on a cluster every command
    /// of a pipeline must hash to one slot).
    pub async fn pipeline(&self, pipe: &redis::Pipeline) -> Result<(), RedisFailure> {
        if self.is_halted() {
            return Err(RedisFailure::Halted);
        }
        let permit = self
            .inner
            .breaker
            .admit(Instant::now())
            .map_err(|_| RedisFailure::CircuitOpen)?;
        let result = match &self.inner.conn {
            Conn::Standalone(conn) => {
                let mut conn = conn.clone();
                tokio::time::timeout(self.inner.timeout, pipe.query_async::<()>(&mut conn)).await
            }
            Conn::Cluster(conn) => {
                let mut conn = conn.clone();
                tokio::time::timeout(self.inner.timeout, pipe.query_async::<()>(&mut conn)).await
            }
        };
        let (healthy, result) = match result {
            Ok(Ok(())) => (true, Ok(())),
            Ok(Err(e)) => (!is_health_failure(&e), Err(RedisFailure::Redis(e))),
            Err(_) => (false, Err(RedisFailure::Timeout)),
        };
        self.inner.breaker.record(permit, healthy, Instant::now());
        self.inner
            .metrics
            .circuit("redis", self.inner.breaker.is_open());
        result
    }

    /// Runs a script with EVALSHA, falling back to EVAL on NOSCRIPT.
    pub async fn eval<T: FromRedisValue>(
        &self,
        script: &LuaScript,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, RedisFailure> {
        let build = |verb: &str, body: &str| {
            let mut cmd = redis::cmd(verb);
            cmd.arg(body).arg(keys.len()).arg(keys);
            for a in args {
                cmd.arg(*a);
            }
            cmd
        };
        match self.query::<T>(&build("EVALSHA", &script.sha)).await {
            Err(RedisFailure::Redis(e))
                if e.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) =>
            {
                self.query::<T>(&build("EVAL", script.code)).await
            }
            other => other,
        }
    }
}
