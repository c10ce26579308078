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
use tokio_util::sync::CancellationToken;

use crate::access::AccessControl;
use crate::atrest::{MasterKeys, Rewrap};
use crate::auth::account_codes::AccountCodeKeys;
use crate::auth::keys::Keys;
use crate::auth::master_key::{MasterKeyFiles, MasterKeyRing};
use crate::auth::password::PasswordHasher;
use crate::auth::token::TokenIssuer;
use crate::auth::two_factor::TwoFactorKeys;
use crate::calls::home::BookHome;
use crate::calls::service::{CallService, IceSettings};
use crate::cluster::calls::RedisBook;
use crate::cluster::{ClusterNode, ClusterSettings, DEFAULT_REDIS_TIMEOUT};
use crate::delivery::Delivery;
use crate::delivery::members::MemberCache;
use crate::delivery::relay::{InProcessRelay, Relay};
use crate::files::Files;
use crate::files::blob::RawBlobs;
use crate::files::blob::fs::FsBlobs;
use crate::files::blob::gridfs::GridFsBlobs;
use crate::files::urls::UrlSigner;
use crate::limits::Limits;
use crate::limits::keyed::DEFAULT_MAX_KEYS;
use crate::limits::shared::SharedLimiter;
use crate::notify::Notifier;
use crate::ops::admin_http::AdminState;
use crate::ops::config::{Config, Storage};
use crate::ops::datadir::{DB_FILE, DataDir, DataDirError, DataDirOptions};
use crate::ops::metrics::Metrics;
use crate::outbox::{Outbox, UnsubscribeLinks};
use crate::resilience::guarded_store::GuardedStore;
use crate::state::{AppState, NodeControl, Settings};
use crate::store::Store;
use crate::store::mongo::{MongoOptions, MongoStore};
use crate::store::sqlite::cipher::{DatabaseKey, KeyError, OpenError};
use crate::store::sqlite::{SqliteOptions, SqliteStore};

/// How long a cached member list is trusted in cluster mode (invalidations come through Redis,
/// which may drop some).
pub const CLUSTER_MEMBER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Which of chatd's listeners a [`ListenError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// chat/1 over QUIC (`--listen`).
    Quic,
    /// Metrics and health over HTTP (`--admin-listen`).
    Admin,
    /// Files at signed URLs over HTTPS (`--files-https-listen`).
    FilesHttps,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Listener::Quic => "chat/1 (QUIC)",
            Listener::Admin => "admin HTTP",
            Listener::FilesHttps => "files over HTTPS",
        })
    }
}

/// A listener could not be opened (typically: the address is in use), typed so that the binary
/// can name the setting that changes it.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve {listener} on {addr}")]
pub struct ListenError {
    /// Which listener.
    pub listener: Listener,
    /// The address it was given.
    pub addr: SocketAddr,
    /// Why it failed.
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// A running chatd.
pub struct Daemon {
    /// The QUIC address it listens on (with the real port when the configuration asked for 0).
    pub addr: SocketAddr,
    /// The admin HTTP address.
    pub admin_addr: SocketAddr,
    /// The HTTPS file server's address, when it is on.
    pub files_https_addr: Option<SocketAddr>,
    /// SHA-256 fingerprint of the served certificate, as clients accept it for `--pin`.
    pub fingerprint: String,
    state: Arc<AppState>,
    /// The failures tests plan for the store under the guard ([`Daemon::store_faults`]).
    #[cfg(feature = "testing")]
    faults: Arc<crate::store::faults::Faults>,
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

/// The master keys a store is opened with, and how a node catches up with a rotation made
/// while it was down (`auth::master_key::catch_up`).
pub struct MasterKeyStart {
    /// The keys (`--encryption-key-file`, `--previous-encryption-key-file`).
    pub keys: Arc<MasterKeys>,
    /// Where a new key taken from the ring is written; `None`: none is taken (and the ring is
    /// not looked at when the store opens).
    pub files: Option<Arc<dyn MasterKeyFiles>>,
    /// `--key-overlap`.
    pub overlap: std::time::Duration,
}

/// The master keys a configuration gives (`None` without `--encryption-key-file`), with the key
/// files a rotation while chatd runs writes (checked writable when the schedule is on).
fn master_key_start(config: &Config) -> anyhow::Result<Option<MasterKeyStart>> {
    let storage = &config.settings.storage;
    let Some(keys) = crate::ops::file_store::master_keys(storage)? else {
        return Ok(None);
    };
    let files = crate::ops::file_store::key_files(storage);
    let keys_settings = config.settings.keys.master();
    if keys_settings.interval.is_some()
        && let Some(files) = &files
    {
        files
            .check_writable()
            .map_err(|e| anyhow::anyhow!(e))
            .context("--encryption-key-rotation-interval")?;
    }
    Ok(Some(MasterKeyStart {
        keys,
        files: files.map(|f| Arc::new(f) as Arc<dyn MasterKeyFiles>),
        overlap: keys_settings.overlap,
    }))
}

/// An opened store, with the file backend beside it.
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The file backend (encrypted by [`crate::ops::file_store::open`] when a master key is
    /// configured).
    pub blobs: Arc<dyn RawBlobs>,
    /// What the store keeps under the master key, when one is configured.
    pub sealed: Option<Arc<dyn Rewrap>>,
}

/// Opens the store the configuration names, and the file backend beside it.
///
/// With `--mongo-uri` the store is MongoDB (cluster mode) and file bytes go to GridFS in the same
/// database; otherwise the embedded SQLite database in the data directory, which must exist, and
/// file bytes under `files/` there. With master keys, MongoDB's sealed fields are opened (after
/// taking a key another node rotated to meanwhile) and the embedded database is opened with the
/// current key, or with a previous one when a rotation stopped before its rekey (which then
/// finishes it). `metrics`, when given, counts the MongoDB store's round trips.
pub async fn open_store(
    storage: &Storage,
    master: Option<&MasterKeyStart>,
    metrics: Option<&Metrics>,
) -> anyhow::Result<OpenedStore> {
    if let Some(uri) = &storage.mongo_uri {
        let options = MongoOptions {
            command_counter: metrics.map(Metrics::store_commands),
            ..MongoOptions::default()
        };
        let mut store = MongoStore::connect(uri.as_str(), options)
            .await
            .with_context(|| format!("cannot connect to mongodb at {uri}"))?;
        // Only a node that can take a key catches up here (the server does; a command does not
        // write rings); the rest is the ring's first round.
        if let Some(master) = master.filter(|m| m.files.is_some()) {
            crate::auth::master_key::catch_up(
                &store,
                &master.keys,
                master.files.as_ref(),
                master.overlap,
            )
            .await
            .context("cannot catch up with the master key ring")?;
        }
        // With a master key, message texts and file metadata are sealed before they are stored.
        store
            .seal_fields(master.map(|m| m.keys.clone()))
            .await
            .context("cannot open the sealed fields of the mongodb database")?;
        let blobs = Arc::new(GridFsBlobs::new(&store.database()));
        let sealed = master.map(|_| Arc::new(store.clone()) as Arc<dyn Rewrap>);
        return Ok(OpenedStore {
            store: Arc::new(store),
            blobs,
            sealed,
        });
    }
    let blobs = open_file_dir(storage)?;
    let sqlite_path = storage.data_dir.join(DB_FILE);
    let path = sqlite_path.clone();
    let durability = storage.durability;
    // The current key first; a previous one opens a database whose rekey a crash interrupted.
    let keys: Vec<DatabaseKey> = master.map_or_else(Vec::new, |m| {
        std::iter::once(m.keys.current_bytes())
            .chain(m.keys.previous_bytes())
            .map(DatabaseKey::from_bytes)
            .collect()
    });
    let store = tokio::task::spawn_blocking(move || {
        // The database holds password hashes: owner-only, like the other secrets. SQLite gives
        // its -wal and -shm files the database file's permissions.
        create_private_file(&path)?;
        let open = |key: Option<DatabaseKey>| {
            SqliteStore::open_with(
                &path,
                SqliteOptions {
                    durability,
                    key,
                    ..SqliteOptions::default()
                },
            )
        };
        let mut tried = keys.into_iter();
        let mut opened = open(tried.next());
        for previous in tried {
            match opened {
                Err(OpenError::Key(KeyError::Wrong(_))) => {
                    opened = open(Some(previous));
                    if opened.is_ok() {
                        tracing::warn!(
                            "the database opened with the previous master key: its rekey to \
                             the current one was interrupted and is done again now"
                        );
                    }
                }
                _ => break,
            }
        }
        opened.map_err(anyhow::Error::from)
    })
    .await
    .context("store open task")?
    .with_context(|| format!("cannot open the database {}", sqlite_path.display()))?;
    let store = Arc::new(store);
    Ok(OpenedStore {
        sealed: master.map(|_| store.clone() as Arc<dyn Rewrap>),
        store,
        blobs,
    })
}

/// The file backend alone (GridFS or the data directory's `files/`), for the commands that
/// work on file content while chatd may run.
pub async fn open_file_backend(storage: &Storage) -> anyhow::Result<Arc<dyn RawBlobs>> {
    match &storage.mongo_uri {
        Some(uri) => {
            let store = MongoStore::connect(uri.as_str(), MongoOptions::default())
                .await
                .with_context(|| format!("cannot connect to mongodb at {uri}"))?;
            Ok(Arc::new(GridFsBlobs::new(&store.database())))
        }
        None => open_file_dir(storage),
    }
}

fn open_file_dir(storage: &Storage) -> anyhow::Result<Arc<dyn RawBlobs>> {
    let root = storage.data_dir.join("files");
    let blobs = FsBlobs::open(&root)
        .with_context(|| format!("cannot prepare the file directory {}", root.display()))?;
    Ok(Arc::new(blobs))
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
        Err(source) => Err(DataDirError::Write {
            path: path.to_path_buf(),
            source,
        }
        .into()),
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
        let s = &config.settings;
        let master = master_key_start(&config)?;
        let opened = open_store(&s.storage, master.as_ref(), Some(&metrics)).await?;
        let backend = opened.store;
        #[cfg(feature = "testing")]
        let faults = Arc::new(crate::store::faults::Faults::default());
        #[cfg(feature = "testing")]
        let backend: Arc<dyn Store> = Arc::new(crate::store::faults::FaultyStore::new(
            backend,
            faults.clone(),
        ));
        let file_store =
            crate::ops::file_store::open(opened.blobs, master.as_ref().map(|m| m.keys.clone()))
                .await?;
        // The HTTPS file server is bound first: the URLs it signs name its real address.
        let (files_https, urls, links) = match &config.files_https {
            Some(https) => {
                let listener = tokio::net::TcpListener::bind(https.listen)
                    .await
                    .map_err(|e| ListenError {
                        listener: Listener::FilesHttps,
                        addr: https.listen,
                        source: e.into(),
                    })?;
                let addr = listener.local_addr().context("https files address")?;
                let base = https
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("https://{addr}"));
                let signer = UrlSigner::new(data.token_key.as_bytes(), &base, s.file_url_ttl);
                let links = UnsubscribeLinks::new(data.token_key.as_bytes(), &base);
                (Some((listener, addr)), Some(signer), Some(links))
            }
            None => (None, None, None),
        };
        let files = Arc::new(
            Files::new(
                file_store.blobs.clone(),
                config.files(),
                urls,
                data.path.join("files-scratch"),
            )
            .context("cannot prepare the file scratch directory")?,
        );
        let guarded: Arc<dyn Store> =
            Arc::new(GuardedStore::new(backend, s.store_timeout, metrics.clone()));
        let (cluster, store, members, relay, limits) = match &s.redis_url {
            Some(url) => {
                let settings = ClusterSettings {
                    node_id: config.node_id.clone(),
                    target: url.target.clone(),
                    presence_ttl: s.presence_ttl,
                    heartbeat: s.heartbeat_interval,
                    redis_timeout: DEFAULT_REDIS_TIMEOUT,
                };
                let node = ClusterNode::connect(settings, metrics.clone())
                    .await
                    .context("cannot set up the redis client")?;
                let routed: Arc<dyn Store> =
                    node.routed_store(guarded, s.store_timeout, metrics.clone());
                let store: Arc<dyn Store> = node.cached_store(routed, s.store_timeout);
                let limiter = SharedLimiter::new(node.redis.clone());
                let limits = Limits::shared(config.limits(), DEFAULT_MAX_KEYS, limiter);
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
                Limits::local(config.limits(), DEFAULT_MAX_KEYS),
            ),
        };
        let master_key = master.map(|m| {
            let holders: Vec<Arc<dyn Rewrap>> = opened
                .sealed
                .into_iter()
                .chain(file_store.sealed.clone().map(|f| f as Arc<dyn Rewrap>))
                .collect();
            MasterKeyRing::new(m.keys, store.clone(), holders, m.files, s.keys.master())
        });
        let delivery = Delivery::new(store.clone(), relay, members);
        delivery.start();
        let turn_secret = config
            .load_turn_secret()
            .context("cannot load the TURN secret")?;
        let keys = Keys::new(
            store.clone(),
            &data.token_key,
            config.outbox.webhooks.as_ref().map(|w| w.secret.clone()),
            turn_secret.map(|t| t.as_bytes().to_vec()),
            config
                .turn_secret_db()
                .map(|db| Arc::new(db) as Arc<dyn crate::auth::keys::SecretSink>),
            s.keys.settings(),
        )
        .context("cannot set up the key rings")?;
        keys.start().await.context("cannot read the key rings")?;
        let account_codes = Arc::new(
            AccountCodeKeys::derive(&data.token_key)
                .context("cannot derive the keys of emailed codes")?,
        );
        let outbox = Outbox::new(
            store.clone(),
            delivery.clone(),
            config.outbox.clone(),
            links,
            account_codes.clone(),
            keys.clone(),
            metrics.clone(),
        )
        .context("cannot set up email and webhook delivery")?;
        let notifier = Notifier::new(
            store.clone(),
            delivery.clone(),
            outbox.clone(),
            s.notifications_kept,
        );
        // In a cluster every node applies call transitions to the one book in Redis.
        let book = match &cluster {
            Some(node) => {
                BookHome::Shared(Arc::new(RedisBook::new(node.redis.clone(), s.presence_ttl)))
            }
            None => BookHome::local(),
        };
        let calls = CallService::new(
            book,
            s.calls.call_ring_timeout,
            IceSettings {
                urls: config.ice_urls().to_vec(),
                keys: keys.clone(),
                ttl: s.calls.turn_credential_ttl,
            },
            store.clone(),
            delivery.clone(),
            notifier.clone(),
        );
        calls.start();
        // The rules are read before the first connection is accepted: a banned address never
        // gets in through a restart.
        let access = AccessControl::new(
            store.clone(),
            s.access_exempt.ranges().to_vec(),
            s.access_refresh,
        );
        access
            .reload()
            .await
            .context("cannot read the access rules")?;
        let state = Arc::new(AppState {
            store: store.clone(),
            delivery: delivery.clone(),
            tokens: TokenIssuer::new(s.access_token_ttl).context("invalid token configuration")?,
            keys: keys.clone(),
            passwords: PasswordHasher::default(),
            two_factor: TwoFactorKeys::derive(&data.token_key)
                .context("cannot derive the two-factor keys")?,
            account_codes,
            touches: Arc::default(),
            limits,
            metrics: metrics.clone(),
            settings: Settings {
                node_id: config.node_id.clone(),
                max_connections: s.max_connections as usize,
                max_unauthenticated: config.max_unauthenticated() as usize,
                max_unauthenticated_per_address: s.max_unauthenticated_per_address as usize,
                retry_above_handshakes: s.retry_above_handshakes as usize,
                max_authenticated_per_address: s.max_authenticated_per_address as usize,
                auth_deadline: s.auth_deadline,
                max_unauthenticated_bytes: s.max_unauthenticated_bytes as usize,
                shutdown_grace: s.shutdown_grace,
                drain_reconnect_rate: s.drain_reconnect_rate,
                steering: s.steering,
                zero_rtt: s.resumption_tickets > 0,
                require_admin_two_factor: s.require_admin_two_factor,
                max_sessions_per_user: s.max_sessions_per_user as usize,
            },
            cluster: cluster.clone(),
            files,
            node: Arc::new(NodeControl::new()),
            calls,
            notifier,
            outbox: outbox.clone(),
            backups: crate::backups::Backups::new(s.storage.data_dir.clone()),
            access: access.clone(),
            master_key: master_key.clone(),
        });

        let tickets = (s.resumption_tickets > 0).then(|| {
            Arc::new(crate::server::resumption::TicketStore::new(
                s.resumption_tickets as usize,
                s.ticket_lifetime,
            ))
        });
        if let (Some(tickets), Some(cluster)) = (&tickets, &cluster) {
            // A returning client resumes on any node (protocol.md 2.5).
            tickets
                .share(&cluster.broker, &data.token_key)
                .map_err(|_| anyhow::anyhow!("cannot derive the session ticket key"))?;
        }
        let server_config = crate::server::endpoint::server_config(
            data.cert_chain.clone(),
            data.private_key.clone_key(),
            s.max_unauthenticated_bytes,
            crate::server::endpoint::PathSettings {
                idle_timeout: s.idle_timeout,
                migration: s.migration,
                resumption: tickets,
            },
        )?;
        let endpoint = crate::server::endpoint::bind(s.listen, server_config, &data.node_secret)
            .map_err(|source| ListenError {
                listener: Listener::Quic,
                addr: s.listen,
                source: source.into(),
            })?;
        let addr = endpoint.local_addr().context("endpoint address")?;
        let public_addr = s.public_addr.clone().unwrap_or_else(|| addr.to_string());
        state.node.set_addr(public_addr.clone());
        if let Some(cluster) = &cluster {
            if s.public_addr.is_none() && addr.ip().is_unspecified() {
                tracing::warn!(
                    %addr,
                    "listening on a wildcard address without --public-addr: other nodes cannot \
                     redirect clients here"
                );
            }
            cluster
                .start(delivery.clone(), state.node.clone(), public_addr)
                .await;
        }

        let admin_listener = tokio::net::TcpListener::bind(s.admin_listen)
            .await
            .map_err(|e| ListenError {
                listener: Listener::Admin,
                addr: s.admin_listen,
                source: e.into(),
            })?;
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
        let background = CancellationToken::new();
        let files_https_addr = match files_https {
            Some((listener, addr)) => {
                start_files_https(&state, listener, &data, background.clone())
                    .context("cannot start the https file server")?;
                Some(addr)
            }
            None => None,
        };
        tokio::spawn(crate::handlers::files::gc::run(
            state.clone(),
            background.clone(),
        ));
        if let Some(master_key) = &master_key {
            master_key.spawn(background.clone());
        }
        tokio::spawn(outbox.run(background.clone()));
        keys.spawn(cluster.is_some(), background.clone());
        tokio::spawn(
            state
                .touches
                .clone()
                .run(state.store.clone(), background.clone()),
        );
        tokio::spawn(crate::auth::sweep::run(
            state.store.clone(),
            metrics.sessions_swept(),
            background.clone(),
        ));
        // Other nodes change the rules only in cluster mode; alone, this node applies every
        // change as it makes it, and no background read competes with requests for the store.
        if cluster.is_some() {
            state.access.start(background.clone());
        }
        let stop_background = background.clone();
        let drain_state = state.clone();
        let server = tokio::spawn(crate::server::run(state.clone(), endpoint, async move {
            // A stop from the process (a signal), or a drain an admin asked for.
            tokio::select! {
                _ = stop_rx => {}
                () = drain_state.node.drained() => {}
            }
            let _ = admin_stop_tx.send(());
            stop_background.cancel();
        }));
        tracing::info!(%addr, %admin_addr, backend = store.backend(), node = %config.node_id, "chatd started");
        Ok(Daemon {
            addr,
            admin_addr,
            files_https_addr,
            fingerprint: data.fingerprint.clone(),
            state,
            #[cfg(feature = "testing")]
            faults,
            stop: Some(stop_tx),
            server,
            admin,
        })
    }

    /// The store handlers use, to set up or inspect what a test needs directly.
    #[cfg(feature = "testing")]
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Plans failures of this node's store calls (under its guard, so a failure counts against
    /// the store's circuit breaker as a real one would).
    #[cfg(feature = "testing")]
    pub fn store_faults(&self) -> &crate::store::faults::Faults {
        &self.faults
    }

    /// Attempts the email and webhook deliveries due at `now_ms` (ms since the epoch, the
    /// future to skip a digest interval) until none is left; returns how many were attempted.
    #[cfg(feature = "testing")]
    pub async fn deliver_as_of(&self, now_ms: i64) -> usize {
        let mut total = 0;
        loop {
            let n = self.state.outbox.tick_at(now_ms).await;
            if n == 0 {
                return total;
            }
            total += n;
        }
    }

    /// Runs the session sweep as of `now_ms` (ms since the epoch, the future to pass the
    /// retention period); returns how many sessions it deleted, or the store's error.
    #[cfg(feature = "testing")]
    pub async fn sweep_sessions_as_of(&self, now_ms: i64) -> Result<u64, String> {
        crate::auth::sweep::sweep(
            &*self.state.store,
            &self.state.metrics.sessions_swept(),
            crate::auth::sweep::BATCH,
            now_ms,
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// Drops `user_id`'s connections from the server side as it does a slow consumer (closed
    /// with `RESYNC`); returns how many there were.
    #[cfg(feature = "testing")]
    pub fn kick_connections_of(&self, user_id: u64) -> usize {
        self.state.delivery.drop_connections(user_id)
    }

    /// A download URL for `user_id` to fetch `file_id`, signed as if at `now_ms` (ms since the
    /// epoch), and its expiry; `None` when the HTTPS file server is off.
    #[cfg(feature = "testing")]
    pub fn sign_file_url(&self, file_id: &str, user_id: u64, now_ms: i64) -> Option<(String, i64)> {
        let signer = self.state.files.urls.as_ref()?;
        Some(signer.sign(file_id, user_id, now_ms))
    }

    /// Fills the image-processing queue until the guard drops: finishing an image upload
    /// meanwhile is answered UNAVAILABLE.
    #[cfg(feature = "testing")]
    pub fn fill_image_queue(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.state.files.thumbnailer.fill_queue()
    }

    /// This node's delivery, for tests that hold its attaches (`Delivery::hold_attaches`).
    #[cfg(feature = "testing")]
    pub fn delivery(&self) -> &std::sync::Arc<crate::delivery::Delivery> {
        &self.state.delivery
    }

    /// Cluster mode: stops this node's Redis work at once, as if it crashed (no goodbye).
    #[cfg(feature = "testing")]
    pub fn halt_cluster(&self) {
        if let Some(cluster) = &self.state.cluster {
            cluster.halt();
        }
    }

    /// Cluster mode: whether this node is subscribed to the pub/sub `channel`.
    #[cfg(feature = "testing")]
    pub fn is_subscribed(&self, channel: &str) -> bool {
        self.state
            .cluster
            .as_ref()
            .is_some_and(|c| c.broker.subscriber().is_subscribed(channel))
    }

    /// Completes once an admin asked this node to drain (`admin_drain_node`): the server is
    /// draining then, and [`shutdown`](Self::shutdown) finishes the stop.
    pub async fn drain_requested(&self) {
        self.state.node.drained().await;
    }

    /// Drains and stops; returns when every connection is closed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = (&mut self.server).await.context("server task panicked")?;
        // Every connection is closed: no session is touched any more.
        self.state.touches.flush(&*self.state.store).await;
        let _ = (&mut self.admin).await;
        if let Some(cluster) = &self.state.cluster {
            cluster.shutdown(&self.state.delivery).await;
        }
        result
    }
}

/// Serves the HTTPS file server (signed download URLs) on `listener` with the server's TLS
/// identity until `stop`.
fn start_files_https(
    state: &Arc<AppState>,
    listener: tokio::net::TcpListener,
    data: &DataDir,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("tls configuration")?
        .with_no_client_auth()
        .with_single_cert(data.cert_chain.clone(), data.private_key.clone_key())
        .context("server certificate and key do not match or are unsupported")?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let addr = listener.local_addr().context("https files address")?;
    let handler_state = state.clone();
    tokio::spawn(crate::ops::admin_http::serve_with(
        listener,
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls))),
        move |req| crate::handlers::files::http::handle(handler_state.clone(), req),
        async move { stop.cancelled().await },
    ));
    tracing::info!(%addr, "https file server started");
    Ok(())
}
