//! Shared server state handed to every connection and handler.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::password::PasswordHasher;
use crate::auth::token::TokenIssuer;
use crate::cluster::ClusterNode;
use crate::delivery::Delivery;
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
    /// How long draining waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Least-connections steering of new connections (cluster mode).
    pub steering: bool,
}

/// Everything a handler can reach.
pub struct AppState {
    /// The system of record (guarded, and cached in cluster mode).
    pub store: Arc<dyn Store>,
    /// Delivery of events to connections, on this node and on the others; the membership
    /// cache.
    pub delivery: Arc<Delivery>,
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
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub use crate::clock::now_ms;
