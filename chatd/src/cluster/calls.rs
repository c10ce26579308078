//! The shared call book in Redis ([`SharedBook`] of `calls::home`): the book every node applies
//! call transitions to, and the liveness of the nodes whose connections take part in calls.
//!
//! Keys, all with the hash tag `{chatd-calls}` so that they live in one slot of a Redis Cluster
//! (the compare-and-set script reads and writes one of them; the liveness check reads many):
//! - `{chatd-calls}:book`: hash `v` (version, bumped by every store), `b` (the book) and `w`
//!   (the writer of the last store, which settles a store whose answer was lost).
//! - `{chatd-calls}:node:<tag>`: set by each node at every call sweep, expiring after the
//!   presence TTL; a node whose key expired is gone, and the nodes that remain end its
//!   connections' part in calls.

use std::time::Duration;

use async_trait::async_trait;

use crate::calls::home::{BookError, SharedBook, Stored};
use crate::cluster::redis::{LuaScript, Redis, RedisFailure};

/// The book's key.
pub const BOOK_KEY: &str = "{chatd-calls}:book";

/// The liveness key of the node of connection tag `node`.
pub fn node_key(node: u32) -> String {
    format!("{{chatd-calls}}:node:{node}")
}

/// Stores ARGV[2] as version ARGV[1] + 1 by writer ARGV[3] if the stored version is still
/// ARGV[1]. Versions are kept below 2^53, where Lua's numbers are exact.
const REPLACE: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', string.format('%d', tonumber(ARGV[1]) + 1), 'b', ARGV[2], 'w', ARGV[3])
return 1
";

/// The call book of a cluster, in its Redis.
#[derive(Debug)]
pub struct RedisBook {
    redis: Redis,
    replace: LuaScript,
    /// How long a node counts as alive after its last heartbeat.
    ttl: Duration,
}

impl RedisBook {
    /// The book in `redis`; nodes count as gone `ttl` after their last heartbeat.
    pub fn new(redis: Redis, ttl: Duration) -> Self {
        RedisBook {
            redis,
            replace: LuaScript::new(REPLACE),
            ttl,
        }
    }
}

fn unreachable(e: RedisFailure) -> BookError {
    BookError::Unreachable(e.to_string())
}

#[async_trait]
impl SharedBook for RedisBook {
    async fn load(&self) -> Result<Stored, BookError> {
        let (version, book, writer): (Option<String>, Option<Vec<u8>>, Option<String>) = self
            .redis
            .query(redis::cmd("HMGET").arg(BOOK_KEY).arg("v").arg("b").arg("w"))
            .await
            .map_err(unreachable)?;
        let number = |field: &str, value: Option<String>| match value {
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| BookError::Corrupt(format!("{field} {v:?}"))),
            None => Ok(0),
        };
        Ok(Stored {
            book,
            version: number("version", version)?,
            writer: number("writer", writer)?,
        })
    }

    async fn replace(&self, version: u64, book: &[u8], writer: u64) -> Result<bool, BookError> {
        let (version, writer) = (version.to_string(), writer.to_string());
        let stored: i64 = self
            .redis
            .eval(
                &self.replace,
                &[BOOK_KEY],
                &[version.as_bytes(), book, writer.as_bytes()],
            )
            .await
            .map_err(unreachable)?;
        Ok(stored == 1)
    }

    async fn heartbeat(&self, node: u32) -> Result<(), BookError> {
        let ttl = u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.redis
            .query::<()>(
                redis::cmd("SET")
                    .arg(node_key(node))
                    .arg(1)
                    .arg("PX")
                    .arg(ttl),
            )
            .await
            .map_err(unreachable)
    }

    async fn gone(&self, nodes: &[u32]) -> Result<Vec<u32>, BookError> {
        if nodes.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = nodes.iter().map(|n| node_key(*n)).collect();
        let alive: Vec<Option<String>> = self
            .redis
            .query(redis::cmd("MGET").arg(&keys))
            .await
            .map_err(unreachable)?;
        Ok(nodes
            .iter()
            .zip(alive)
            .filter(|(_, a)| a.is_none())
            .map(|(n, _)| *n)
            .collect())
    }
}
