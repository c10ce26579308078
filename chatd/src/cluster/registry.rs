//! The node registry: every node announces itself in Redis with a heartbeat, so nodes know who
//! is alive (for presence), how loaded each is (for steering) and who died (to clean up after
//! them).
//!
//! Keys:
//! - `chatd:node:<id>`: hash `addr`, `conns`, `version`, `started_at_ms`, `heartbeat_ms`, with a
//!   TTL of the presence TTL, refreshed by every heartbeat. Its expiry is how a crashed node
//!   is noticed.
//! - `chatd:nodes`: sorted set of node ids by connection count (the load), without TTL: a node
//!   stays in it until someone cleaned up after it (see [`presence`](super::presence)).
//! - `chatd:drain:<id>`: an admin's request that the node drain (`admin_drain_node`), holding
//!   the `started_at_ms` of the process it is meant for, so that the process that replaces it in
//!   a rolling restart, under the same id, does not drain too. It expires with the presence TTL;
//!   the node reads it at each heartbeat.
//!
//! Steering: with `--steering`, a node whose connection count is above its fair share (total
//! connections / live nodes, plus a slack of 10% or 2 connections, whichever is more) answers a
//! new connection's Hello with a redirect to the least loaded node, if that one has fewer
//! connections. Loads are at most one heartbeat old; after each redirect the target's known load
//! is bumped locally, so a burst of new connections is spread instead of sent to one node.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use crate::clock::now_ms;
use crate::cluster::redis::{Redis, RedisFailure};

/// The sorted set of node ids by load.
pub const NODES_KEY: &str = "chatd:nodes";

/// The registry hash of a node.
pub fn node_key(node_id: &str) -> String {
    format!("chatd:node:{node_id}")
}

/// The drain request of a node.
pub fn drain_key(node_id: &str) -> String {
    format!("chatd:drain:{node_id}")
}

/// Everything the registry holds about one live node, for admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Node id.
    pub id: String,
    /// Where clients reach it.
    pub addr: String,
    /// Authenticated connections at its last heartbeat.
    pub conns: u64,
    /// Its chatd version.
    pub version: String,
    /// When its process started.
    pub started_at_ms: i64,
    /// Its last heartbeat.
    pub heartbeat_ms: i64,
    /// Whether a drain was asked of this process.
    pub draining: bool,
}

/// What the registry says about one live node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node id.
    pub id: String,
    /// Where clients reach it (`host:port`).
    pub addr: String,
    /// Authenticated connections at its last heartbeat.
    pub conns: u64,
}

/// The node to steer a new connection to, if this node (`me`, with `my_conns`) is above its fair
/// share among `nodes` (every live node, this one included with any count).
pub fn steer_target<'a>(me: &str, my_conns: u64, nodes: &'a [NodeInfo]) -> Option<&'a NodeInfo> {
    let others: Vec<&NodeInfo> = nodes.iter().filter(|n| n.id != me).collect();
    if others.is_empty() {
        return None;
    }
    let live = others.len() as f64 + 1.0;
    let total = my_conns as f64 + others.iter().map(|n| n.conns as f64).sum::<f64>();
    let fair = total / live;
    let slack = (fair * 0.1).max(2.0);
    if (my_conns as f64) <= fair + slack {
        return None;
    }
    let least = others.into_iter().min_by_key(|n| (n.conns, n.id.clone()))?;
    (least.conns + 1 < my_conns).then_some(least)
}

/// This node's registration and its view of the others.
#[derive(Debug)]
pub struct Registry {
    redis: Redis,
    node_id: String,
    ttl_ms: u64,
    started_at_ms: i64,
    addr: OnceLock<String>,
    live: Mutex<Vec<NodeInfo>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// A registry for `node_id`, whose entry expires `ttl_ms` after its last heartbeat.
    pub fn new(redis: Redis, node_id: String, ttl_ms: u64) -> Self {
        Registry {
            redis,
            node_id,
            ttl_ms,
            started_at_ms: now_ms(),
            addr: OnceLock::new(),
            live: Mutex::new(Vec::new()),
        }
    }

    /// Sets the address clients use to reach this node (once, when the endpoint is bound).
    pub fn set_addr(&self, addr: String) {
        let _ = self.addr.set(addr);
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Announces this node with its connection count. Returns true when its entry was missing
    /// (first heartbeat, expired while Redis was unreachable, or lost in a Redis restart): then
    /// what the node keeps in Redis must be written again.
    pub async fn heartbeat(&self, conns: u64) -> Result<bool, RedisFailure> {
        let key = node_key(&self.node_id);
        let addr = self.addr.get().cloned().unwrap_or_default();
        let added: i64 = self
            .redis
            .query(
                redis::cmd("HSET")
                    .arg(&key)
                    .arg("addr")
                    .arg(&addr)
                    .arg("conns")
                    .arg(conns)
                    .arg("version")
                    .arg(env!("CARGO_PKG_VERSION"))
                    .arg("started_at_ms")
                    .arg(self.started_at_ms)
                    .arg("heartbeat_ms")
                    .arg(now_ms()),
            )
            .await?;
        self.redis
            .query::<i64>(redis::cmd("PEXPIRE").arg(&key).arg(self.ttl_ms))
            .await?;
        self.redis
            .query::<i64>(
                redis::cmd("ZADD")
                    .arg(NODES_KEY)
                    .arg(conns)
                    .arg(&self.node_id),
            )
            .await?;
        Ok(added > 0)
    }

    /// Reads every registered node: keeps the live ones for [`live`](Self::live) and
    /// [`steer`](Self::steer), and returns the ids of the dead ones (registered, entry expired).
    pub async fn refresh(&self) -> Result<Vec<String>, RedisFailure> {
        let ids: Vec<String> = self
            .redis
            .query(redis::cmd("ZRANGE").arg(NODES_KEY).arg(0).arg(-1))
            .await?;
        let replies = futures_util::future::join_all(ids.iter().map(|id| {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(node_key(id)).arg("addr").arg("conns");
            async move {
                self.redis
                    .query::<(Option<String>, Option<u64>)>(&cmd)
                    .await
            }
        }))
        .await;
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for (id, reply) in ids.into_iter().zip(replies) {
            match reply? {
                (Some(addr), conns) => live.push(NodeInfo {
                    id,
                    addr,
                    conns: conns.unwrap_or(0),
                }),
                (None, _) if id != self.node_id => dead.push(id),
                (None, _) => {}
            }
        }
        *lock(&self.live) = live;
        Ok(dead)
    }

    /// Ids of the live nodes as of the last refresh, this one always included.
    pub fn live_ids(&self) -> HashSet<String> {
        let mut ids: HashSet<String> = lock(&self.live).iter().map(|n| n.id.clone()).collect();
        ids.insert(self.node_id.clone());
        ids
    }

    /// Whether `node_id` is alive: from the last refresh, or asked of Redis for a node that
    /// registered since.
    pub async fn is_live(&self, node_id: &str) -> bool {
        if node_id == self.node_id || lock(&self.live).iter().any(|n| n.id == node_id) {
            return true;
        }
        matches!(
            self.redis
                .query::<i64>(redis::cmd("EXISTS").arg(node_key(node_id)))
                .await,
            Ok(1)
        )
    }

    /// The address to steer a new connection to, per [`steer_target`].
    pub fn steer(&self, my_conns: u64) -> Option<String> {
        let mut live = lock(&self.live);
        let target = steer_target(&self.node_id, my_conns, &live)?.id.clone();
        let node = live.iter_mut().find(|n| n.id == target)?;
        node.conns += 1;
        Some(node.addr.clone())
    }

    /// Every live node as its last heartbeat described it, by id.
    pub async fn records(&self) -> Result<Vec<NodeRecord>, RedisFailure> {
        let mut ids: Vec<String> = self
            .redis
            .query(redis::cmd("ZRANGE").arg(NODES_KEY).arg(0).arg(-1))
            .await?;
        ids.sort_unstable();
        type Fields = (
            Option<String>,
            Option<u64>,
            Option<String>,
            Option<i64>,
            Option<i64>,
        );
        let replies = futures_util::future::join_all(ids.iter().map(|id| {
            let mut fields = redis::cmd("HMGET");
            fields
                .arg(node_key(id))
                .arg("addr")
                .arg("conns")
                .arg("version")
                .arg("started_at_ms")
                .arg("heartbeat_ms");
            let mut drain = redis::cmd("GET");
            drain.arg(drain_key(id));
            async move {
                let fields = self.redis.query::<Fields>(&fields).await?;
                let drain = self.redis.query::<Option<i64>>(&drain).await?;
                Ok::<_, RedisFailure>((fields, drain))
            }
        }))
        .await;
        let mut records = Vec::new();
        for (id, reply) in ids.into_iter().zip(replies) {
            // A registered id whose entry expired is a dead node, not listed.
            let ((Some(addr), conns, version, started, heartbeat), drain) = reply? else {
                continue;
            };
            let started_at_ms = started.unwrap_or(0);
            records.push(NodeRecord {
                id,
                addr,
                conns: conns.unwrap_or(0),
                version: version.unwrap_or_default(),
                started_at_ms,
                heartbeat_ms: heartbeat.unwrap_or(0),
                draining: drain == Some(started_at_ms),
            });
        }
        Ok(records)
    }

    /// Asks the process that runs as `node`, started at `started_at_ms`, to drain at its next
    /// heartbeat.
    pub async fn request_drain(&self, node: &str, started_at_ms: i64) -> Result<(), RedisFailure> {
        self.redis
            .query::<()>(
                redis::cmd("SET")
                    .arg(drain_key(node))
                    .arg(started_at_ms)
                    .arg("PX")
                    .arg(self.ttl_ms),
            )
            .await
    }

    /// Whether an admin asked this process to drain.
    pub async fn drain_requested(&self) -> Result<bool, RedisFailure> {
        let value: Option<i64> = self
            .redis
            .query(redis::cmd("GET").arg(drain_key(&self.node_id)))
            .await?;
        Ok(value == Some(self.started_at_ms))
    }

    /// Removes this node's entry (orderly shutdown).
    pub async fn deregister(&self) -> Result<(), RedisFailure> {
        self.redis
            .query::<i64>(redis::cmd("DEL").arg(node_key(&self.node_id)))
            .await?;
        self.redis
            .query::<i64>(redis::cmd("ZREM").arg(NODES_KEY).arg(&self.node_id))
            .await?;
        Ok(())
    }

    /// Forgets a dead node once it was cleaned up after.
    pub async fn forget(&self, node_id: &str) -> Result<(), RedisFailure> {
        self.redis
            .query::<i64>(redis::cmd("ZREM").arg(NODES_KEY).arg(node_id))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(loads: &[(&str, u64)]) -> Vec<NodeInfo> {
        loads
            .iter()
            .map(|(id, conns)| NodeInfo {
                id: (*id).into(),
                addr: format!("{id}:4433"),
                conns: *conns,
            })
            .collect()
    }

    #[test]
    fn steers_only_above_the_fair_share_plus_slack() {
        let n = nodes(&[("a", 5), ("b", 0)]);
        // a has 5, b 0: fair share 2.5, slack 2.
        assert_eq!(steer_target("a", 5, &n).map(|t| t.id.as_str()), Some("b"));
        assert_eq!(steer_target("a", 4, &n), None);
        // The least loaded other node is chosen.
        let n = nodes(&[("a", 100), ("b", 40), ("c", 10)]);
        assert_eq!(steer_target("a", 100, &n).map(|t| t.id.as_str()), Some("c"));
        // Balanced: nobody is steered.
        let n = nodes(&[("a", 50), ("b", 49), ("c", 51)]);
        assert_eq!(steer_target("c", 51, &n), None);
        // Alone: nowhere to go.
        assert_eq!(steer_target("a", 1000, &nodes(&[("a", 1000)])), None);
        // Large counts use the 10% slack.
        let n = nodes(&[("a", 1000), ("b", 900)]);
        assert_eq!(steer_target("a", 1000, &n), None);
        let n = nodes(&[("a", 1200), ("b", 800)]);
        assert_eq!(
            steer_target("a", 1200, &n).map(|t| t.id.as_str()),
            Some("b")
        );
    }
}
