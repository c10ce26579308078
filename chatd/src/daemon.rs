//! Starting and stopping a whole chatd: data directory, store, QUIC endpoint, admin HTTP server,
//! and in cluster mode the Redis side.
//!
//! `main` and the end-to-end tests start chatd the same way, through [`Daemon::start`].
//!
//! How the store is assembled: the backend (SQLite, or MongoDB with `--mongo-uri`) inside a
//! [`GuardedStore`] (deadline, circuit breaker, read retries), inside a
//! [`CachedStore`](crate::cluster::cache::CachedStore) in cluster mode.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::password::PasswordHasher;
use crate::auth::token::TokenIssuer;
use crate::cluster::redis::RedisTarget;
use crate::cluster::{ClusterNode, ClusterSettings, DEFAULT_REDIS_TIMEOUT};
use crate::delivery::Delivery;
use crate::delivery::members::MemberCache;
use crate::delivery::relay::{InProcessRelay, Relay};
use crate::limits::Limits;
use crate::limits::keyed::DEFAULT_MAX_KEYS;
use crate::limits::shared::SharedLimiter;
use crate::ops::admin_http::AdminState;
use crate::ops::config::Config;
use crate::ops::datadir::{DataDir, DataDirOptions};
use crate::ops::metrics::Metrics;
use crate::resilience::guarded_store::GuardedStore;
use crate::state::{AppState, Settings};
use crate::store::Store;
use crate::store::mongo::{MongoOptions, MongoStore};
use crate::store::sqlite::SqliteStore;

/// How long a cached member list is trusted in cluster mode (invalidations come through Redis,
/// which may drop some).
pub const CLUSTER_MEMBER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// A running chatd.
pub struct Daemon {
    /// The QUIC address it listens on (with the real port when the configuration asked for 0).
    pub addr: SocketAddr,
    /// The admin HTTP address.
    pub admin_addr: SocketAddr,
    /// SHA-256 fingerprint of the served certificate, as clients accept it for `--pin`.
    pub fingerprint: String,
    /// Shared state (for tests and embedding).
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
    admin: JoinHandle<()>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("addr", &self.addr)
            .field("admin_addr", &self.admin_addr)
            .finish()
    }
}

/// Opens the store the configuration names.
///
/// With `--mongo-uri` the store is MongoDB (cluster mode); otherwise the embedded SQLite database
/// in the data directory.
pub async fn open_store(
    config: &Config,
    data: &DataDir,
    metrics: &Metrics,
) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(uri) = &config.mongo_uri {
        let options = MongoOptions {
            command_counter: Some(metrics.store_commands()),
            ..MongoOptions::default()
        };
        let store = MongoStore::connect(uri.as_str(), options)
            .await
            .with_context(|| format!("cannot connect to mongodb at {uri}"))?;
        return Ok(Arc::new(store));
    }
    let path = data.sqlite_path.clone();
    let store = tokio::task::spawn_blocking(move || {
        // The database holds password hashes: owner-only, like the other secrets. SQLite gives
        // its -wal and -shm files the database file's permissions.
        create_private_file(&path)?;
        SqliteStore::open(&path).map_err(anyhow::Error::from)
    })
    .await
    .context("store open task")?
    .with_context(|| format!("cannot open the database {}", data.sqlite_path.display()))?;
    Ok(Arc::new(store))
}

fn create_private_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(anyhow::Error::from(e).context(format!("cannot create {}", path.display()))),
    }
}

impl Daemon {
    /// Prepares the data directory, opens the store, binds both listeners and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Daemon> {
        let options = DataDirOptions::from_config(&config);
        let data = tokio::task::spawn_blocking(move || crate::ops::datadir::prepare(&options))
            .await
            .context("data directory task")?
            .context("cannot prepare the data directory")?;
        let metrics = Arc::new(Metrics::new());
        let backend = open_store(&config, &data, &metrics).await?;
        let guarded: Arc<dyn Store> = Arc::new(GuardedStore::new(
            backend,
            config.store_timeout,
            metrics.clone(),
        ));
        let (cluster, store, members, relay, limits) = match &config.redis_url {
            Some(url) => {
                let target = RedisTarget::parse(url.as_str()).context("invalid --redis-url")?;
                let settings = ClusterSettings {
                    node_id: config.node_id.clone(),
                    target,
                    presence_ttl: config.presence_ttl,
                    heartbeat: config.heartbeat_interval,
                    redis_timeout: DEFAULT_REDIS_TIMEOUT,
                };
                let node = ClusterNode::connect(settings, metrics.clone())
                    .await
                    .context("cannot set up the redis client")?;
                let store: Arc<dyn Store> = node.cached_store(guarded, config.store_timeout);
                let limiter = SharedLimiter::new(node.redis.clone());
                let limits = Limits::shared(config.limits, DEFAULT_MAX_KEYS, limiter);
                let relay: Arc<dyn Relay> = node.broker.clone();
                tracing::info!(redis = %url, "cluster mode");
                (
                    Some(node),
                    store,
                    MemberCache::with_ttl(CLUSTER_MEMBER_CACHE_TTL),
                    relay,
                    limits,
                )
            }
            None => (
                None,
                guarded,
                MemberCache::new(),
                Arc::new(InProcessRelay::solo()) as Arc<dyn Relay>,
                Limits::local(config.limits, DEFAULT_MAX_KEYS),
            ),
        };
        let delivery = Delivery::new(store.clone(), relay, members);
        delivery.start();
        let state = Arc::new(AppState {
            store: store.clone(),
            delivery: delivery.clone(),
            tokens: TokenIssuer::new(&data.token_key, config.access_token_ttl)
                .context("invalid token configuration")?,
            passwords: PasswordHasher::default(),
            limits,
            metrics: metrics.clone(),
            settings: Settings {
                node_id: config.node_id.clone(),
                max_connections: config.max_connections as usize,
                shutdown_grace: config.shutdown_grace,
                access_token_ttl: config.access_token_ttl,
                steering: config.steering,
            },
            cluster: cluster.clone(),
        });

        let server_config = crate::server::endpoint::server_config(
            data.cert_chain.clone(),
            data.private_key.clone_key(),
        )?;
        let endpoint = crate::server::endpoint::bind(config.listen, server_config)?;
        let addr = endpoint.local_addr().context("endpoint address")?;
        if let Some(cluster) = &cluster {
            if config.public_addr.is_none() && addr.ip().is_unspecified() {
                tracing::warn!(
                    %addr,
                    "listening on a wildcard address without --public-addr: other nodes cannot \
                     redirect clients here"
                );
            }
            let public_addr = config
                .public_addr
                .clone()
                .unwrap_or_else(|| addr.to_string());
            cluster.start(delivery.clone(), public_addr).await;
        }

        let admin_listener = tokio::net::TcpListener::bind(config.admin_listen)
            .await
            .with_context(|| format!("cannot listen on {} (admin http)", config.admin_listen))?;
        let admin_addr = admin_listener.local_addr().context("admin address")?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (admin_stop_tx, admin_stop_rx) = oneshot::channel::<()>();

        let ready_store = store.clone();
        let admin = tokio::spawn(crate::ops::admin_http::serve(
            admin_listener,
            AdminState {
                metrics: metrics.clone(),
                readiness: Arc::new(move || {
                    let store = ready_store.clone();
                    Box::pin(async move { store.ping().await.map_err(|e| format!("store: {e}")) })
                }),
            },
            async move {
                let _ = admin_stop_rx.await;
            },
        ));
        let server = tokio::spawn(crate::server::run(state.clone(), endpoint, async move {
            let _ = stop_rx.await;
            let _ = admin_stop_tx.send(());
        }));
        tracing::info!(%addr, %admin_addr, backend = store.backend(), node = %config.node_id, "chatd started");
        Ok(Daemon {
            addr,
            admin_addr,
            fingerprint: data.fingerprint.clone(),
            state,
            stop: Some(stop_tx),
            server,
            admin,
        })
    }

    /// Drains and stops; returns when every connection is closed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = (&mut self.server).await.context("server task panicked")?;
        let _ = (&mut self.admin).await;
        if let Some(cluster) = &self.state.cluster {
            cluster.shutdown(&self.state.delivery).await;
        }
        result
    }
}
