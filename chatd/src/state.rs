//! Shared server state handed to every connection and handler.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::password::PasswordHasher;
use crate::auth::token::TokenIssuer;
use crate::cluster::ClusterNode;
use crate::delivery::fanout::Fanout;
use crate::delivery::hub::Hub;
use crate::delivery::members::MemberCache;
use crate::files::Files;
use crate::limits::Limits;
use crate::ops::metrics::Metrics;
use crate::store::Store;

/// Settings the running server needs (a subset of the configuration, validated).
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node's id (in Welcome and logs).
    pub node_id: String,
    /// Most connections served at once; more are closed with SERVER_BUSY.
    pub max_connections: usize,
    /// Most unauthenticated connections at once, below `max_connections`.
    pub max_unauthenticated: usize,
    /// Most unauthenticated connections from one address.
    pub max_unauthenticated_per_address: usize,
    /// Most authenticated connections from one address.
    pub max_authenticated_per_address: usize,
    /// How long a connection may stay unauthenticated.
    pub auth_deadline: Duration,
    /// Request bytes an unauthenticated connection may have buffered.
    pub max_unauthenticated_bytes: usize,
    /// How long draining waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Least-connections steering of new connections (cluster mode).
    pub steering: bool,
}

/// This node as server admins see and steer it (`admin_stats`, `admin_list_nodes`,
/// `admin_drain_node`).
#[derive(Debug)]
pub struct NodeControl {
    /// When the node started.
    pub started: std::time::Instant,
    /// The same, as a wall-clock time.
    pub started_at_ms: i64,
    /// Where clients reach it, set once the endpoint is bound.
    addr: std::sync::OnceLock<String>,
    /// Cancelled when the node is to drain: the server's accept loop stops on it.
    drain: tokio_util::sync::CancellationToken,
}

impl NodeControl {
    /// A node starting now.
    pub fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            started_at_ms: now_ms(),
            addr: std::sync::OnceLock::new(),
            drain: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Records where clients reach the node (the first call wins).
    pub fn set_addr(&self, addr: String) {
        let _ = self.addr.set(addr);
    }

    /// Where clients reach the node; empty before the endpoint is bound.
    pub fn addr(&self) -> &str {
        self.addr.get().map_or("", String::as_str)
    }

    /// Asks the node to drain (idempotent).
    pub fn drain(&self) {
        self.drain.cancel();
    }

    /// Whether a drain was asked for.
    pub fn draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Completes once a drain is asked for.
    pub async fn drained(&self) {
        self.drain.cancelled().await;
    }
}

impl Default for NodeControl {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything a handler can reach.
pub struct AppState {
    /// The system of record (guarded, and cached in cluster mode).
    pub store: Arc<dyn Store>,
    /// This node's connections.
    pub hub: Arc<Hub>,
    /// Delivery to connections on this node and, in cluster mode, on the others.
    pub fanout: Fanout,
    /// Chat membership, cached.
    pub members: Arc<MemberCache>,
    /// Access-token signing and verification.
    pub tokens: TokenIssuer,
    /// Password hashing off the async runtime.
    pub passwords: PasswordHasher,
    /// Rate limits (shared by the cluster in cluster mode).
    pub limits: Limits,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Runtime settings.
    pub settings: Settings,
    /// Cluster services, when `--redis-url` is set.
    pub cluster: Option<Arc<ClusterNode>>,
    /// File storage and what runs beside it (capability `files`).
    pub files: Arc<Files>,
    /// This node's start, address and drain switch.
    pub node: NodeControl,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// This node's dependencies, each checked with a round trip now (for `admin_health`): the
    /// store, and Redis in cluster mode; why each failed.
    pub async fn health_checks(&self) -> Vec<(&'static str, Result<(), String>)> {
        let mut checks = vec![("store", self.store.ping().await.map_err(|e| e.to_string()))];
        if let Some(cluster) = &self.cluster {
            checks.push(("redis", cluster.ping_redis().await));
        }
        checks
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
