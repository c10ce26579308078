//! Cluster mode: several chatd nodes behind one Redis (standalone or Redis Cluster) and one
//! store, serving the same users as if they were one server.
//!
//! Redis carries what nodes must share in real time, and nothing else: events between nodes
//! (pub/sub), who is online where (presence), which nodes are alive and how loaded (registry),
//! rate-limit buckets, the state of live calls, and a read cache. It is never the system of record: every message and
//! event is in the store first, and a client that missed live events (Redis down, a node
//! dropped a message) recovers them by gap detection and GetChatEvents. When Redis is down, each
//! node keeps serving its own clients: local fan-out, local rate limits, store reads without
//! the cache; cross-node delivery and presence resume by themselves when Redis returns.
//!
//! # Layout
//! - [`redis`]: `--redis-url` forms and the command connection (deadline + circuit breaker).
//! - [`slots`]: Redis Cluster key slots and the slot map.
//! - [`pubsub`]: subscriptions with our own per-channel resubscription (why: see there).
//! - [`wire`]: what nodes publish to each other.
//! - [`broker`]: the Redis relay of [`crate::delivery`]: publishing, subscriptions, dispatch.
//! - [`registry`]: node heartbeats, liveness, load and steering.
//! - [`routing`]: each chat's messages appended by one node, which the others forward to.
//! - [`presence`]: who is online on which node; cleanup after crashed nodes.
//! - [`cache`]: the Redis read cache in front of the store.
//! - [`calls`]: the call book every node shares, and which nodes taking part in calls live.
//!
//! [`ClusterNode`] ties them together for one node: [`ClusterNode::connect`] before delivery
//! exists (its broker is delivery's relay), [`ClusterNode::start`] once it does (dispatch,
//! heartbeats, sweeps, cache maintenance), [`ClusterNode::shutdown`] after the connections
//! drained.

pub mod broker;
pub mod cache;
pub mod calls;
pub mod presence;
pub mod pubsub;
pub mod redis;
pub mod registry;
pub mod routing;
pub mod slots;
pub mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::broker::Broker;
use self::cache::{CacheTtls, CachedStore};
use self::presence::ClusterPresence;
use self::redis::{Redis, RedisFailure, RedisTarget};
use self::registry::Registry;
use self::routing::{RoutedStore, Router};
use crate::clock::now_ms;
use crate::delivery::Delivery;
use crate::delivery::relay::Inbound;
use crate::ops::metrics::Metrics;
use crate::ops::node::NodeControl;
use crate::store::Store;

/// How a node takes part in the cluster.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// This node's id.
    pub node_id: String,
    /// Where Redis is.
    pub target: RedisTarget,
    /// How long a node's registration outlives its last heartbeat.
    pub presence_ttl: Duration,
    /// How often the node heartbeats (and looks for dead nodes).
    pub heartbeat: Duration,
    /// Deadline of one Redis command.
    pub redis_timeout: Duration,
}

/// The default Redis command deadline.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// One node's cluster services.
pub struct ClusterNode {
    /// The command connection.
    pub redis: Redis,
    /// The relay: publishing, subscriptions and dispatch.
    pub broker: Arc<Broker>,
    /// Node registry and steering.
    pub registry: Arc<Registry>,
    /// Cluster presence.
    pub presence: Arc<ClusterPresence>,
    settings: ClusterSettings,
    cache: Mutex<Option<Arc<CachedStore>>>,
    router: Mutex<Option<Arc<Router>>>,
    deliveries: Mutex<Option<mpsc::Receiver<pubsub::Delivery>>>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("node_id", &self.settings.node_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClusterNode {
    /// Connects (lazily: Redis may be down) and starts the pub/sub side. Fails only for a bad
    /// configuration.
    pub async fn connect(
        settings: ClusterSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<ClusterNode>, RedisFailure> {
        let redis = Redis::connect(
            settings.target.clone(),
            settings.redis_timeout,
            metrics.clone(),
        )?;
        let cancel = CancellationToken::new();
        let ttl_ms = u64::try_from(settings.presence_ttl.as_millis()).unwrap_or(u64::MAX);
        let registry = Arc::new(Registry::new(
            redis.clone(),
            settings.node_id.clone(),
            ttl_ms,
        ));
        let presence = Arc::new(ClusterPresence::new(redis.clone(), registry.clone()));
        let (broker, deliveries) = Broker::start(
            settings.node_id.clone(),
            redis.clone(),
            presence.clone(),
            metrics,
            cancel.clone(),
        )
        .await;
        Ok(Arc::new(ClusterNode {
            redis,
            broker,
            registry,
            presence,
            settings,
            cache: Mutex::new(None),
            router: Mutex::new(None),
            deliveries: Mutex::new(Some(deliveries)),
            cancel,
        }))
    }

    /// One round trip to Redis (for `admin_health`); why it failed otherwise.
    pub async fn ping_redis(&self) -> Result<(), String> {
        self.redis
            .query::<String>(&::redis::cmd("PING"))
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Wraps the store in send routing (see [`routing`]): `inner` appends this node's sends to
    /// the chats it owns, and those other nodes forward to it. `store_timeout` is the longest a
    /// call of `inner` may take.
    pub fn routed_store(
        &self,
        inner: Arc<dyn Store>,
        store_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Arc<RoutedStore> {
        let router = Arc::new(Router::new(
            self.broker.clone(),
            self.registry.clone(),
            inner,
            store_timeout,
            metrics,
        ));
        *lock(&self.router) = Some(router.clone());
        Arc::new(RoutedStore::new(router))
    }

    /// Wraps the store in the shared read cache. `store_timeout` is the longest a store read may
    /// take (it sets how long invalidations block re-caching).
    pub fn cached_store(&self, inner: Arc<dyn Store>, store_timeout: Duration) -> Arc<CachedStore> {
        let ttls = CacheTtls {
            tombstone: (store_timeout * 2).max(cache::MIN_TOMBSTONE),
            ..CacheTtls::default()
        };
        let cache = Arc::new(CachedStore::new(inner, self.redis.clone(), ttls));
        *lock(&self.cache) = Some(cache.clone());
        cache
    }

    /// Starts dispatching, heartbeats and cache maintenance. Registers the node once before
    /// returning (when Redis answers), so it is known before it serves anyone.
    pub async fn start(
        self: &Arc<Self>,
        delivery: Arc<Delivery>,
        control: Arc<NodeControl>,
        public_addr: String,
    ) {
        self.registry.set_addr(public_addr);
        if let Some(deliveries) = lock(&self.deliveries).take() {
            let inbound: Arc<dyn Inbound> = delivery.clone();
            tokio::spawn(self.broker.clone().run_dispatch(inbound, deliveries));
        }
        // Listening for forwarded sends before registering: other nodes route to this one as
        // soon as they see it in the registry.
        let router = lock(&self.router).clone();
        if let Some(router) = router {
            self.broker.receive_appends(router).await;
        }
        let cache = lock(&self.cache).clone();
        if let Some(cache) = cache {
            cache.refresh_generation().await;
            tokio::spawn(cache.run_maintenance(self.settings.heartbeat, self.cancel.clone()));
        }
        self.beat(&delivery, &control, true).await;
        let node = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(node.settings.heartbeat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = node.cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if node.redis.is_halted() {
                    return;
                }
                node.beat(&delivery, &control, false).await;
            }
        });
    }

    /// One heartbeat: register, rewrite presence when needed, drain when an admin asked, clean
    /// up after dead nodes.
    async fn beat(&self, delivery: &Arc<Delivery>, node: &NodeControl, first: bool) {
        let conns = delivery.connection_count() as u64;
        let missing = match self.registry.heartbeat(conns).await {
            Ok(missing) => missing,
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat failed");
                self.presence.mark_dirty();
                return;
            }
        };
        if missing || self.presence.take_dirty() {
            if missing && !first {
                tracing::warn!(
                    "this node's registration had expired (cut off from redis?): rewriting presence"
                );
            }
            let local = delivery.local_users();
            match self.presence.resync(&local).await {
                Ok(()) if missing && !first => {
                    // Other nodes may have announced these users offline: announce them again.
                    let delivery = delivery.clone();
                    tokio::spawn(async move {
                        for user in local {
                            delivery.announce_presence(user).await;
                        }
                    });
                }
                Ok(()) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "presence resync failed");
                    self.presence.mark_dirty();
                }
            }
        }
        match self.registry.drain_requested().await {
            Ok(true) if !node.draining() => {
                tracing::info!("drain requested by an admin through the registry");
                node.drain();
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read this node's drain request"),
        }
        let dead = match self.registry.refresh().await {
            Ok(dead) => dead,
            Err(e) => {
                tracing::debug!(error = %e, "registry refresh failed");
                return;
            }
        };
        for node in dead {
            match self.presence.sweep(&node).await {
                Ok(offline) if !offline.is_empty() => {
                    let delivery = delivery.clone();
                    tokio::spawn(async move {
                        let now = now_ms();
                        for user in offline {
                            delivery.lost_with_node(user, now).await;
                        }
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(node, error = %e, "sweep failed"),
            }
        }
    }

    /// Leaves the cluster in order (after the connections drained): presence and registration
    /// removed, background tasks stopped.
    pub async fn shutdown(&self, delivery: &Delivery) {
        if !self.redis.is_halted() {
            self.broker.flush(Duration::from_secs(2)).await;
            if let Err(e) = self.presence.clear(&delivery.local_users()).await {
                tracing::warn!(error = %e, "cannot clear this node's presence");
            }
            if let Err(e) = self.registry.deregister().await {
                tracing::warn!(error = %e, "cannot deregister this node");
            }
        }
        self.cancel.cancel();
    }

    /// Cuts this node off from Redis at once, as a crash or a partition would: no heartbeat, no
    /// deregistration, no more pub/sub. The other nodes notice after the presence TTL. For fault
    /// drills and tests; there is no way back.
    #[cfg(any(test, feature = "testing"))]
    pub fn halt(&self) {
        self.redis.halt();
        self.cancel.cancel();
    }
}
