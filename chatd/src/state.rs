//! Shared server state handed to every connection and handler.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::password::PasswordHasher;
use crate::auth::token::TokenIssuer;
use crate::cluster::ClusterNode;
use crate::delivery::Delivery;
use crate::files::Files;
use crate::limits::Limits;
use crate::ops::metrics::Metrics;
pub use crate::ops::node::NodeControl;
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
    /// Handshakes in progress from which on unvalidated attempts get a Retry first.
    pub retry_above_handshakes: usize,
    /// Most authenticated connections from one address.
    pub max_authenticated_per_address: usize,
    /// How long a connection may stay unauthenticated.
    pub auth_deadline: Duration,
    /// Request bytes an unauthenticated connection may have buffered.
    pub max_unauthenticated_bytes: usize,
    /// How long draining waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Reconnects per second a drain spreads its clients to (`GoAway.reconnect_after_ms`).
    pub drain_reconnect_rate: u32,
    /// Least-connections steering of new connections (cluster mode).
    pub steering: bool,
    /// Resumption with 0-RTT is on (capability `zero_rtt`, protocol.md 2.5).
    pub zero_rtt: bool,
    /// Server-admin requests need two-factor login on (protocol.md 17.3).
    pub require_admin_two_factor: bool,
    /// Most live sessions of one user (protocol.md 11.3).
    pub max_sessions_per_user: usize,
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
    /// The rotating keys: token signing, the refresh pepper, the webhook and TURN secrets.
    pub keys: Arc<crate::auth::keys::Keys>,
    /// Password hashing off the async runtime.
    pub passwords: PasswordHasher,
    /// The keys of two-factor login (sealing TOTP secrets, hashing recovery codes).
    pub two_factor: crate::auth::two_factor::TwoFactorKeys,
    /// The keys of emailed codes (hashing them for the store, sealing them for the outbox).
    pub account_codes: Arc<crate::auth::account_codes::AccountCodeKeys>,
    /// Sessions' last use, written behind the answer.
    pub touches: Arc<crate::auth::touches::SessionTouches>,
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
    pub node: Arc<NodeControl>,
    /// Calls (capabilities `calls` and `group_calls`), this node's or the cluster's.
    pub calls: Arc<crate::calls::service::CallService>,
    /// Records notifications where things happen and sends them live (protocol.md section 15).
    pub notifier: Arc<crate::notify::Notifier>,
    /// Email and webhook delivery (protocol.md section 16): the unsubscribe links it signs.
    pub outbox: Arc<crate::outbox::Outbox>,
    /// This node's backup place (`admin_backup`: one at a time, copies in the data directory).
    pub backups: crate::backups::Backups,
    /// Who may connect: this node's snapshot of the access rules.
    pub access: Arc<crate::access::AccessControl>,
    /// The master key of encryption at rest and its rotation, when one is configured.
    pub master_key: Option<Arc<crate::auth::master_key::MasterKeyRing>>,
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

pub use crate::clock::now_ms;
