//! Presence across nodes: a user is online while any live node has a connection of theirs.
//!
//! Keys (no TTL; cleaned up by the nodes themselves):
//! - `chatd:presence:user:<user>`: set of the node ids where the user is connected;
//! - `chatd:presence:node:<node>`: set of the users connected to that node.
//!
//! A node adds itself when a user's first connection to it authenticates and removes itself when
//! the last one closes. Node ids in a user's set count only while the node is alive per the
//! [`Registry`], so a crashed node's users read as offline as soon as its registry entry
//! expires (the presence TTL, 15 s by default).
//!
//! Someone must still tell the watchers and clean up. Every node, at every heartbeat, looks for
//! registered nodes whose entry expired; for each it takes a lock (`chatd:sweep:<node>`, SET NX
//! with expiry, so one node does the work), removes the dead node from the sets of its users,
//! and reports the users who are now offline everywhere; the caller records their last-seen time
//! and announces them offline. So a crashed node's users are announced offline within the
//! presence TTL plus one heartbeat interval (20 s with the defaults).
//!
//! When Redis was unreachable, writes may have been lost; the node then writes its whole
//! presence again ([`ClusterPresence::resync`]) at the next heartbeat that works.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cluster::redis::{Redis, RedisFailure};
use crate::cluster::registry::Registry;

/// How long a sweep lock is held (ms): long enough for one node to finish a sweep.
const SWEEP_LOCK_MS: u64 = 30_000;

fn user_key(user_id: u64) -> String {
    format!("chatd:presence:user:{user_id}")
}

fn node_users_key(node_id: &str) -> String {
    format!("chatd:presence:node:{node_id}")
}

/// Cluster presence of one node.
#[derive(Debug)]
pub struct ClusterPresence {
    redis: Redis,
    registry: Arc<Registry>,
    /// A presence write failed: the next heartbeat that works rewrites it all.
    dirty: AtomicBool,
}

impl ClusterPresence {
    /// Presence for the node registered in `registry`.
    pub fn new(redis: Redis, registry: Arc<Registry>) -> Self {
        ClusterPresence {
            redis,
            registry,
            dirty: AtomicBool::new(true),
        }
    }

    /// Records that a presence write failed.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::SeqCst);
    }

    /// Whether a write failed since the last call (and forgets it).
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::SeqCst)
    }

    fn node_id(&self) -> &str {
        self.registry.node_id()
    }

    /// The user's first connection here authenticated. Returns whether they were already online
    /// on another live node.
    pub async fn node_up(&self, user_id: u64) -> Result<bool, RedisFailure> {
        let mut by_user = redis::cmd("SADD");
        by_user.arg(user_key(user_id)).arg(self.node_id());
        let mut by_node = redis::cmd("SADD");
        by_node.arg(node_users_key(self.node_id())).arg(user_id);
        let (a, b) = tokio::join!(
            self.redis.query::<i64>(&by_user),
            self.redis.query::<i64>(&by_node)
        );
        a?;
        b?;
        self.online_on_other_node(user_id).await
    }

    /// The user's last connection here closed. Returns whether they are still online on another
    /// live node.
    pub async fn node_down(&self, user_id: u64) -> Result<bool, RedisFailure> {
        let mut by_user = redis::cmd("SREM");
        by_user.arg(user_key(user_id)).arg(self.node_id());
        let mut by_node = redis::cmd("SREM");
        by_node.arg(node_users_key(self.node_id())).arg(user_id);
        let (a, b) = tokio::join!(
            self.redis.query::<i64>(&by_user),
            self.redis.query::<i64>(&by_node)
        );
        a?;
        b?;
        self.online_on_other_node(user_id).await
    }

    async fn online_on_other_node(&self, user_id: u64) -> Result<bool, RedisFailure> {
        let nodes: Vec<String> = self
            .redis
            .query(redis::cmd("SMEMBERS").arg(user_key(user_id)))
            .await?;
        for node in nodes.iter().filter(|n| n.as_str() != self.node_id()) {
            if self.registry.is_live(node).await {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Which of `users` are online on another live node. Users this node cannot check (Redis
    /// unreachable) are left out: presence is best effort when Redis is down.
    pub async fn online_elsewhere(&self, users: &[u64]) -> HashSet<u64> {
        let replies = futures_util::future::join_all(users.iter().map(|u| {
            let mut cmd = redis::cmd("SMEMBERS");
            cmd.arg(user_key(*u));
            async move { (*u, self.redis.query::<Vec<String>>(&cmd).await) }
        }))
        .await;
        let live = self.registry.live_ids();
        let mut online = HashSet::new();
        for (user, reply) in replies {
            let Ok(nodes) = reply else { continue };
            for node in nodes.iter().filter(|n| n.as_str() != self.node_id()) {
                if live.contains(node) || self.registry.is_live(node).await {
                    online.insert(user);
                    break;
                }
            }
        }
        online
    }

    /// Makes Redis agree with `local_users` (every user connected here): adds the missing ones,
    /// removes those who left while writes failed.
    pub async fn resync(&self, local_users: &[u64]) -> Result<(), RedisFailure> {
        let key = node_users_key(self.node_id());
        let recorded: Vec<u64> = self.redis.query(redis::cmd("SMEMBERS").arg(&key)).await?;
        let local: HashSet<u64> = local_users.iter().copied().collect();
        let recorded: HashSet<u64> = recorded.into_iter().collect();
        for user in local.difference(&recorded) {
            self.redis
                .query::<i64>(redis::cmd("SADD").arg(user_key(*user)).arg(self.node_id()))
                .await?;
            self.redis
                .query::<i64>(redis::cmd("SADD").arg(&key).arg(*user))
                .await?;
        }
        for user in recorded.difference(&local) {
            self.redis
                .query::<i64>(redis::cmd("SREM").arg(user_key(*user)).arg(self.node_id()))
                .await?;
            self.redis
                .query::<i64>(redis::cmd("SREM").arg(&key).arg(*user))
                .await?;
        }
        // A user whose set lost this node (another node swept it while we were cut off).
        for user in local.intersection(&recorded) {
            self.redis
                .query::<i64>(redis::cmd("SADD").arg(user_key(*user)).arg(self.node_id()))
                .await?;
        }
        Ok(())
    }

    /// Cleans up after a dead node, if no other node is doing it. Returns the users that are now
    /// offline everywhere (to be announced by the caller).
    pub async fn sweep(&self, dead: &str) -> Result<Vec<u64>, RedisFailure> {
        let lock: Option<String> = self
            .redis
            .query(
                redis::cmd("SET")
                    .arg(format!("chatd:sweep:{dead}"))
                    .arg(self.node_id())
                    .arg("NX")
                    .arg("PX")
                    .arg(SWEEP_LOCK_MS),
            )
            .await?;
        if lock.is_none() {
            return Ok(Vec::new());
        }
        let key = node_users_key(dead);
        let users: Vec<u64> = self.redis.query(redis::cmd("SMEMBERS").arg(&key)).await?;
        let mut offline = Vec::new();
        for user in users {
            self.redis
                .query::<i64>(redis::cmd("SREM").arg(user_key(user)).arg(dead))
                .await?;
            let nodes: Vec<String> = self
                .redis
                .query(redis::cmd("SMEMBERS").arg(user_key(user)))
                .await?;
            let mut online = false;
            for node in &nodes {
                if self.registry.is_live(node).await {
                    online = true;
                    break;
                }
            }
            if !online {
                offline.push(user);
            }
        }
        self.redis.query::<i64>(redis::cmd("DEL").arg(&key)).await?;
        self.registry.forget(dead).await?;
        tracing::info!(
            node = dead,
            offline = offline.len(),
            "cleaned up after a dead node"
        );
        Ok(offline)
    }

    /// Removes this node's presence (orderly shutdown, after its connections closed).
    pub async fn clear(&self, local_users: &[u64]) -> Result<(), RedisFailure> {
        for user in local_users {
            self.redis
                .query::<i64>(redis::cmd("SREM").arg(user_key(*user)).arg(self.node_id()))
                .await?;
        }
        self.redis
            .query::<i64>(redis::cmd("DEL").arg(node_users_key(self.node_id())))
            .await?;
        Ok(())
    }
}
