//! The server's rotating keys (protocol.md 9.6, "Key rotation"): the keys that sign access
//! tokens, the refresh-token pepper, and the webhook and TURN secrets, each kind a ring
//! (`keyring`) kept in the store, so every node of a cluster has the same keys.
//!
//! Secrets are sealed in the store under a key derived from the token key (the root secret in
//! the key directory, which never rotates and from which the other purpose keys come too), so
//! the store alone opens none. Each node keeps the opened rings in memory ([`Keys`]) and reads
//! them again every [`RELOAD_EVERY`] in cluster mode, at once after a change made through it
//! or on its schedule, and when it meets
//! a key id it does not know (a token signed, or a refresh token hashed, by a node that rotated
//! a moment ago), at most every [`MISS_RELOAD_GAP`]. So a rotation through one node is honored
//! by every node immediately, and the end of an overlap within [`RELOAD_EVERY`].
//!
//! At start a node writes the first ring of the server-made kinds (tokens, refresh) when there
//! is none: a new key becomes current and the key from before (kid 0: the token key, the plain
//! refresh hash) retires after the overlap, so upgrading logs nobody out. The schedule rotates
//! those kinds when their current key is `--key-rotation-interval` old, and the webhook and TURN
//! secrets when theirs is `--webhook-secret-rotation-interval` or
//! `--turn-secret-rotation-interval` old (a configured secret's age counts from the first start
//! with a schedule); every write is a compare-and-set on the ring's version, so a rotation due
//! on every node happens once.
//!
//! The secrets the schedule makes for webhook receivers and TURN servers are text (43 characters
//! of base64url). Receivers read them with `admin_get_key_secrets`; every call is signed with
//! each secret that verifies, so a receiver that knows any of them accepts it. TURN servers
//! follow the ring through their database (a [`SecretSink`]: `calls::turn_db`, coturn's): each
//! node writes the TURN secrets that verify there whenever they change, and a new TURN key signs only [`TURN_PUBLISH_LEAD`]
//! after its rotation, when every node has written it.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chatproto::pb;
use rand::RngCore as _;
use tokio_util::sync::CancellationToken;

use crate::auth::keyring::{self, KINDS};
use crate::auth::seal::Sealer;
use crate::auth::token::TokenKey;
use crate::store::{KeyRingRecord, Store, StoreError};

/// How often a node reads the rings again (and looks whether a scheduled rotation is due).
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// The shortest gap between two reloads caused by an unknown key id, so that garbage tokens
/// cannot make a node read the store on every request.
pub const MISS_RELOAD_GAP: Duration = Duration::from_millis(200);
/// Bytes of the secrets the server makes.
const MADE_SECRET_BYTES: usize = 32;
/// Most keys a ring holds: a rotation that would make more is refused until the overlap of
/// some ends (or is ended), so that rotations in a row cannot grow a ring without bound.
pub const MAX_RING_KEYS: usize = 16;
/// Writes a rotation tries before it gives up on a ring others keep changing.
const ROTATE_ATTEMPTS: usize = 8;
/// The purpose label of the key that seals the rings' secrets.
const SEAL_LABEL: &str = "chatd key ring v1";

/// How long after its rotation a new TURN key starts signing when TURN servers follow the ring
/// through their database: every node has read the ring (within [`RELOAD_EVERY`]) and written
/// it by then.
pub const TURN_PUBLISH_LEAD: Duration = Duration::from_secs(3 * RELOAD_EVERY.as_secs());

/// Shortest and longest secret an operator gives for the webhook and TURN kinds.
pub const SHARED_SECRET_BYTES: std::ops::RangeInclusive<usize> = 16..=256;

/// When the keys rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySettings {
    /// How old the current tokens and refresh keys get before the schedule replaces them;
    /// `None`: only by command.
    pub rotation_interval: Option<Duration>,
    /// The same for the webhook secret.
    pub webhook_rotation_interval: Option<Duration>,
    /// The same for the TURN secret.
    pub turn_rotation_interval: Option<Duration>,
    /// How long a replaced key keeps verifying.
    pub overlap: Duration,
}

impl KeySettings {
    /// The schedule of `kind`; `None`: only by command.
    pub fn interval(&self, kind: pb::KeyKind) -> Option<Duration> {
        match kind {
            pb::KeyKind::Tokens | pb::KeyKind::Refresh => self.rotation_interval,
            pb::KeyKind::Webhook => self.webhook_rotation_interval,
            pb::KeyKind::Turn => self.turn_rotation_interval,
            pb::KeyKind::Master | pb::KeyKind::Unspecified => None,
        }
    }
}

/// A rotation or the end of an overlap that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The server has no such secret configured (no webhooks, no TURN servers).
    #[error("this server has no {0} secret configured")]
    NotConfigured(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The ring already holds [`MAX_RING_KEYS`] keys that verify.
    #[error("the {0} ring already holds {MAX_RING_KEYS} keys that verify: end their overlap first")]
    Full(&'static str),
    /// Other writers kept changing the ring.
    #[error("the {0} key ring kept changing; try again")]
    Contended(&'static str),
    /// A secret could not be sealed (a bug: the cipher has no failure mode for its own keys).
    #[error("a {0} key could not be sealed")]
    Seal(&'static str),
    /// The TURN secrets could not be written to the TURN servers' database.
    #[error("cannot write the TURN secrets to {path}: {error}")]
    Publish {
        /// The database.
        path: String,
        /// What failed.
        error: String,
    },
}

/// One key that verifies, opened.
#[derive(Clone, PartialEq, Eq)]
pub struct LiveKey {
    /// Its id (0: the key from before rotation).
    pub kid: u32,
    /// The secret (for kid 0 of `refresh`: empty, the plain hash).
    pub secret: Vec<u8>,
    /// When it stops verifying; 0 for the current key.
    pub retire_at_ms: i64,
    /// When it was made (0 for kid 0 before any ring).
    pub created_at_ms: i64,
}

impl std::fmt::Debug for LiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKey")
            .field("kid", &self.kid)
            .field("retire_at_ms", &self.retire_at_ms)
            .finish_non_exhaustive()
    }
}

impl LiveKey {
    /// Whether it still verifies at `now_ms`.
    fn live(&self, now_ms: i64) -> bool {
        self.retire_at_ms == 0 || self.retire_at_ms > now_ms
    }

    /// The `kid` an access token signed with it carries (none for kid 0).
    pub fn token_kid(&self) -> Option<u32> {
        (self.kid != 0).then_some(self.kid)
    }
}

/// One value per kind; none for `KeyKind::Unspecified`.
#[derive(Debug, Default)]
struct PerKind<T> {
    tokens: T,
    refresh: T,
    webhook: T,
    turn: T,
}

impl<T> PerKind<T> {
    fn get(&self, kind: pb::KeyKind) -> Option<&T> {
        match kind {
            pb::KeyKind::Tokens => Some(&self.tokens),
            pb::KeyKind::Refresh => Some(&self.refresh),
            pb::KeyKind::Webhook => Some(&self.webhook),
            pb::KeyKind::Turn => Some(&self.turn),
            pb::KeyKind::Master | pb::KeyKind::Unspecified => None,
        }
    }

    fn get_mut(&mut self, kind: pb::KeyKind) -> Option<&mut T> {
        match kind {
            pb::KeyKind::Tokens => Some(&mut self.tokens),
            pb::KeyKind::Refresh => Some(&mut self.refresh),
            pb::KeyKind::Webhook => Some(&mut self.webhook),
            pb::KeyKind::Turn => Some(&mut self.turn),
            pb::KeyKind::Master | pb::KeyKind::Unspecified => None,
        }
    }
}

/// The opened rings as last read: per kind the stored ring, if any, and its keys, current
/// first.
type Snapshot = PerKind<(Option<KeyRingRecord>, Vec<LiveKey>)>;

/// The associated data a secret is sealed with: its kind and kid, so that a sealed secret
/// copied to another kind or id does not open there.
fn aad(kind: pb::KeyKind, kid: u32) -> u64 {
    (u64::from(kind as i32 as u32) << 32) | u64::from(kid)
}

/// The rotating keys of this node, as every node shares them through the store.
pub struct Keys {
    store: Arc<dyn Store>,
    sealer: Sealer,
    /// Per kind, the secret from before rotation (kid 0), when the kind is configured.
    legacy: PerKind<Option<Vec<u8>>>,
    settings: KeySettings,
    live: RwLock<Arc<Snapshot>>,
    /// Held through a whole reload: two at once (an admin's rotation and a reload a client's
    /// unknown key id asked for) would otherwise install their snapshots in any order, the
    /// older last.
    reloading: tokio::sync::Mutex<()>,
    last_miss_reload: Mutex<Option<Instant>>,
    /// The keys found not to open here, each logged once.
    sealed_elsewhere: Mutex<Vec<(pb::KeyKind, u32)>>,
    /// Where the TURN secrets are published, if they are.
    turn_sink: Option<Publication>,
}

/// Where the TURN secrets that verify are published, so that TURN servers accept what the
/// server signs (`calls::turn_db`: coturn's database). Called on the blocking pool.
pub trait SecretSink: Send + Sync {
    /// Makes `secrets` (sorted) the published ones.
    fn publish(&self, secrets: &[Vec<u8>]) -> Result<(), String>;
    /// Where they go, as errors name it.
    fn place(&self) -> String;
}

/// The TURN servers' sink and what was last written to it. The lock is held from reading the
/// rings to the end of the write, so that two publications cannot land out of order.
struct Publication {
    sink: Arc<dyn SecretSink>,
    written: tokio::sync::Mutex<Option<Vec<Vec<u8>>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// The keys of a server whose root secret is `root` (the token key, also kid 0 of
    /// `tokens`), with the configured webhook and TURN secrets (kid 0 of theirs, when set), and
    /// where the TURN secrets are published for the TURN servers, if anywhere. Nothing is read
    /// yet: see [`start`](Self::start).
    pub fn new(
        store: Arc<dyn Store>,
        root: &TokenKey,
        webhook: Option<Vec<u8>>,
        turn: Option<Vec<u8>>,
        turn_sink: Option<Arc<dyn SecretSink>>,
        settings: KeySettings,
    ) -> Result<Arc<Keys>, KeyError> {
        let sealer = Sealer::derive(root, SEAL_LABEL).map_err(|_| KeyError::Seal("ring"))?;
        Ok(Arc::new(Keys {
            store,
            sealer,
            legacy: PerKind {
                tokens: Some(root.as_bytes().to_vec()),
                refresh: Some(Vec::new()),
                webhook,
                turn,
            },
            settings,
            live: RwLock::default(),
            reloading: tokio::sync::Mutex::new(()),
            last_miss_reload: Mutex::new(None),
            sealed_elsewhere: Mutex::default(),
            turn_sink: turn_sink.map(|sink| Publication {
                sink,
                written: tokio::sync::Mutex::new(None),
            }),
        }))
    }

    /// Writes the first ring of the server-made kinds where there is none (another node may
    /// win: then its ring is used), and a new current key where the current one does not open
    /// with this server's token key (a database restored beside another `token.key`: the
    /// sessions signed before cannot be verified any more, but the server signs again); the
    /// first ring of a configured webhook or TURN secret the schedule is to replace, so that its
    /// age counts from now; then reads every ring and publishes the TURN secrets.
    pub async fn start(&self) -> Result<(), KeyError> {
        let now = crate::clock::now_ms();
        for kind in KINDS.into_iter().filter(|k| !keyring::server_made(*k)) {
            if self.settings.interval(kind).is_some()
                && self.legacy(kind).is_some()
                && self.store.key_ring(kind).await?.is_none()
            {
                // Another node may win: its ring is as good.
                self.store.put_key_ring(keyring::adopted(kind, now)).await?;
            }
        }
        for kind in KINDS.into_iter().filter(|k| keyring::server_made(*k)) {
            let ring = self.store.key_ring(kind).await?;
            let sealed_elsewhere = ring.as_ref().is_some_and(|r| {
                r.keys
                    .iter()
                    .filter(|k| k.retire_at_ms == 0 && k.kid != 0)
                    .any(|k| self.sealer.open(aad(kind, k.kid), &k.sealed).is_err())
            });
            if ring.is_some() && !sealed_elsewhere {
                continue;
            }
            let kid = ring
                .as_ref()
                .and_then(|r| r.keys.iter().map(|k| k.kid).max())
                .unwrap_or(0)
                + 1;
            let next = keyring::rotated(
                ring.as_ref(),
                kind,
                self.made_secret(kind, kid)?,
                now,
                self.overlap_ms(),
            );
            if self.store.put_key_ring(next).await? {
                if sealed_elsewhere {
                    tracing::warn!(
                        kind = keyring::kind_name(kind),
                        kid,
                        "the current key was sealed under another token key: a new one signs; \
                         what the old one signed no longer verifies"
                    );
                } else {
                    // Debug only: nothing is printed before the addresses chatd serves on.
                    tracing::debug!(kind = keyring::kind_name(kind), "first key ring written");
                }
            }
        }
        self.reload().await?;
        self.publish().await
    }

    /// Every [`RELOAD_EVERY`] until `stop`: reads every ring again when `shared` (other nodes
    /// change them; a node alone applies its own changes as it makes them, and reads nothing
    /// in the background that would compete with requests for the store), rotates the kinds
    /// the schedule says are due, and publishes the TURN secrets when they changed (a key
    /// retired since).
    pub fn spawn(self: &Arc<Self>, shared: bool, stop: CancellationToken) {
        let keys = Arc::clone(self);
        tokio::spawn(async move { every_reload(&stop, None, || keys.round(shared)).await });
    }

    /// One background round of [`spawn`](Self::spawn); failures are logged and retried at the
    /// next.
    async fn round(&self, shared: bool) {
        if shared && let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "cannot read the key rings");
        }
        if let Err(e) = self.scheduled().await {
            tracing::warn!(error = %e, "scheduled key rotation failed");
        }
        if let Err(e) = self.publish().await {
            tracing::warn!(error = %e, "cannot publish the TURN secrets");
        }
    }

    /// Rotates each configured kind with a schedule whose current key is due; one write
    /// attempt each, so that of the nodes finding it due at once one rotates and the others see
    /// its ring. The rings as last read say whether one may be due; only then is the store
    /// asked, and read again afterwards.
    async fn scheduled(&self) -> Result<(), KeyError> {
        let now = crate::clock::now_ms();
        let snapshot = self.snapshot();
        let mut looked = false;
        for kind in KINDS {
            let Some(interval) = self.settings.interval(kind) else {
                continue;
            };
            if self.legacy(kind).is_none() {
                continue;
            }
            let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
            let seen_due = snapshot
                .get(kind)
                .and_then(|(ring, _)| ring.as_ref())
                .is_some_and(|ring| keyring::due(ring, now, interval_ms));
            if !seen_due {
                continue;
            }
            looked = true;
            let Some(ring) = self.store.key_ring(kind).await? else {
                continue;
            };
            if !keyring::due(&ring, now, interval_ms) {
                continue;
            }
            let next_kid = ring.keys.iter().map(|k| k.kid).max().unwrap_or(0) + 1;
            let next = keyring::rotated(
                Some(&ring),
                kind,
                self.made_secret(kind, next_kid)?,
                now,
                self.overlap_ms(),
            );
            if self.store.put_key_ring(next).await? {
                tracing::info!(
                    kind = keyring::kind_name(kind),
                    kid = next_kid,
                    "keys rotated on schedule"
                );
            }
        }
        if looked {
            self.reload().await?;
        }
        Ok(())
    }

    fn overlap_ms(&self) -> i64 {
        i64::try_from(self.settings.overlap.as_millis()).unwrap_or(i64::MAX)
    }

    /// A new random secret for kid `kid` of `kind`, sealed: bytes for the server-made kinds,
    /// text (base64url) for those shared with webhook receivers and TURN servers.
    fn made_secret(&self, kind: pb::KeyKind, kid: u32) -> Result<Vec<u8>, KeyError> {
        let mut secret = vec![0u8; MADE_SECRET_BYTES];
        rand::rng().fill_bytes(&mut secret);
        if !keyring::server_made(kind) {
            use base64::Engine as _;
            secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(&secret)
                .into_bytes();
        }
        self.seal(kind, kid, &secret)
    }

    fn seal(&self, kind: pb::KeyKind, kid: u32, secret: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.sealer
            .seal(aad(kind, kid), secret)
            .map_err(|_| KeyError::Seal(keyring::kind_name(kind)))
    }

    /// Reads every ring and opens its keys.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let _one_at_a_time = self.reloading.lock().await;
        let mut snapshot = Snapshot::default();
        for kind in KINDS {
            let ring = self.store.key_ring(kind).await?;
            let legacy = self.legacy(kind);
            let mut keys = Vec::new();
            match &ring {
                None => {
                    if let Some(secret) = legacy {
                        keys.push(LiveKey {
                            kid: 0,
                            secret,
                            retire_at_ms: 0,
                            created_at_ms: 0,
                        });
                    }
                }
                Some(ring) => {
                    for stored in &ring.keys {
                        let secret = if stored.kid == 0 {
                            // Kid 0 of a kind configured after its ring retired it: nothing
                            // to verify with.
                            let Some(secret) = legacy.clone() else {
                                continue;
                            };
                            secret
                        } else {
                            match self.sealer.open(aad(kind, stored.kid), &stored.sealed) {
                                Ok(secret) => secret,
                                Err(_) => {
                                    // Sealed under another token key (a node configured with
                                    // another one, or a database restored beside a new one):
                                    // it can neither sign nor verify here.
                                    self.report_sealed_elsewhere(kind, stored.kid);
                                    continue;
                                }
                            }
                        };
                        keys.push(LiveKey {
                            kid: stored.kid,
                            secret,
                            retire_at_ms: stored.retire_at_ms,
                            created_at_ms: stored.created_at_ms,
                        });
                    }
                }
            }
            keys.sort_by_key(|k| (k.retire_at_ms != 0, std::cmp::Reverse(k.kid)));
            if let Some(slot) = snapshot.get_mut(kind) {
                *slot = (ring, keys);
            }
        }
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        Ok(())
    }

    /// Writes the TURN secrets that verify now to the TURN servers' database, unless that is
    /// what was written last.
    pub async fn publish(&self) -> Result<(), KeyError> {
        let Some(publication) = &self.turn_sink else {
            return Ok(());
        };
        // Read under the lock: a publication that took the rings before a concurrent change
        // must not land after the one that took them after it.
        let mut written = publication.written.lock().await;
        let mut secrets: Vec<Vec<u8>> = self
            .verifying(pb::KeyKind::Turn, crate::clock::now_ms())
            .into_iter()
            .map(|k| k.secret)
            .collect();
        secrets.sort();
        if written.as_ref() == Some(&secrets) {
            return Ok(());
        }
        let sink = Arc::clone(&publication.sink);
        let wrote = secrets.clone();
        let failed = |error: String| KeyError::Publish {
            path: publication.sink.place(),
            error,
        };
        tokio::task::spawn_blocking(move || sink.publish(&wrote))
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(failed)?;
        tracing::debug!(secrets = secrets.len(), "TURN secrets published");
        *written = Some(secrets);
        Ok(())
    }

    /// Logs once per key that a key does not open here.
    fn report_sealed_elsewhere(&self, kind: pb::KeyKind, kid: u32) {
        let mut reported = self
            .sealed_elsewhere
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !reported.contains(&(kind, kid)) {
            reported.push((kind, kid));
            tracing::error!(
                kind = keyring::kind_name(kind),
                kid,
                "a key of the ring does not open with this server's token key: is every node's \
                 token key the same?"
            );
        }
    }

    /// Reads the rings again after a key id was not found, unless that was done a moment ago;
    /// true when it read them.
    pub async fn reload_on_miss(&self) -> bool {
        {
            let mut last = self
                .last_miss_reload
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < MISS_RELOAD_GAP) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match self.reload().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the key rings");
                false
            }
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.live.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The secret from before rotation of `kind`; `None` when the kind is not configured.
    fn legacy(&self, kind: pb::KeyKind) -> Option<Vec<u8>> {
        self.legacy.get(kind).cloned().flatten()
    }

    /// The opened keys of `kind` as last read, current first.
    fn live_keys(&self, kind: pb::KeyKind) -> Vec<LiveKey> {
        self.snapshot()
            .get(kind)
            .map(|(_, keys)| keys.clone())
            .unwrap_or_default()
    }

    /// Publishes after a change made through this node, without waiting for the tick: a
    /// failure is logged (the change itself is made) and the tick tries again.
    async fn publish_now(&self) {
        if let Err(e) = self.publish().await {
            tracing::warn!(error = %e, "cannot publish the TURN secrets");
        }
    }

    /// The key of `kind` that signs now: the current one, or where it does not open here the
    /// newest that does and still verifies (so a node never stops signing); a TURN key
    /// published through the TURN servers' database only from [`TURN_PUBLISH_LEAD`] after its
    /// rotation. `None` for a kind that is not configured.
    pub fn current(&self, kind: pb::KeyKind) -> Option<LiveKey> {
        let now = crate::clock::now_ms();
        let lead = match kind {
            pb::KeyKind::Turn if self.turn_sink.is_some() => {
                i64::try_from(TURN_PUBLISH_LEAD.as_millis()).unwrap_or(i64::MAX)
            }
            _ => 0,
        };
        // Sorted current first, then the retiring ones newest first.
        let live: Vec<LiveKey> = self
            .live_keys(kind)
            .into_iter()
            .filter(|k| k.live(now))
            .collect();
        let published = |k: &&LiveKey| k.kid == 0 || k.created_at_ms.saturating_add(lead) <= now;
        live.iter()
            .find(published)
            .or_else(|| live.first())
            .cloned()
    }

    /// The keys of `kind` that verify at `now_ms`: the current one first, then the retiring
    /// ones, newest first.
    pub fn verifying(&self, kind: pb::KeyKind, now_ms: i64) -> Vec<LiveKey> {
        self.live_keys(kind)
            .into_iter()
            .filter(|k| k.live(now_ms))
            .collect()
    }

    /// The secret of key `kid` of `kind` if it verifies at `now_ms`.
    pub fn secret(&self, kind: pb::KeyKind, kid: u32, now_ms: i64) -> Option<Vec<u8>> {
        let snapshot = self.snapshot();
        let (_, keys) = snapshot.get(kind)?;
        keys.iter()
            .find(|k| k.kid == kid && k.live(now_ms))
            .map(|k| k.secret.clone())
    }

    /// Makes a new key of `kind` current (for webhook and TURN, `secret`, which the operator
    /// chose; for the others one the server makes); the current one retires after the overlap.
    /// Returns the new key's id.
    pub async fn rotate(
        &self,
        kind: pb::KeyKind,
        secret: Option<Vec<u8>>,
        now_ms: i64,
    ) -> Result<u32, KeyError> {
        let name = keyring::kind_name(kind);
        if self.legacy(kind).is_none() {
            return Err(KeyError::NotConfigured(name));
        }
        for _ in 0..ROTATE_ATTEMPTS {
            let ring = self.store.key_ring(kind).await?;
            let kid = ring
                .as_ref()
                .and_then(|r| r.keys.iter().map(|k| k.kid).max())
                .unwrap_or(0)
                + 1;
            let live = ring.as_ref().map_or(1, |r| {
                r.keys
                    .iter()
                    .filter(|k| keyring::state(k, now_ms).is_some())
                    .count()
            });
            if live >= MAX_RING_KEYS {
                return Err(KeyError::Full(name));
            }
            let sealed = match &secret {
                Some(s) => self.seal(kind, kid, s)?,
                None => self.made_secret(kind, kid)?,
            };
            let next = keyring::rotated(ring.as_ref(), kind, sealed, now_ms, self.overlap_ms());
            if self.store.put_key_ring(next).await? {
                self.reload().await?;
                self.publish_now().await;
                return Ok(kid);
            }
        }
        Err(KeyError::Contended(name))
    }

    /// Ends the overlap of `kind` now: every key but the current one stops verifying. False
    /// when none was retiring.
    pub async fn retire(&self, kind: pb::KeyKind) -> Result<bool, KeyError> {
        let name = keyring::kind_name(kind);
        if self.legacy(kind).is_none() {
            return Err(KeyError::NotConfigured(name));
        }
        for _ in 0..ROTATE_ATTEMPTS {
            let ring = self.store.key_ring(kind).await?;
            let Some(next) = keyring::retired(ring.as_ref()) else {
                return Ok(false);
            };
            if self.store.put_key_ring(next).await? {
                self.reload().await?;
                self.publish_now().await;
                return Ok(true);
            }
        }
        Err(KeyError::Contended(name))
    }

    /// The keys of a kind shared with outside parties (webhook, TURN) that verify at `now_ms`,
    /// with their secrets, as `admin_get_key_secrets` gives them.
    pub fn secrets(&self, kind: pb::KeyKind, now_ms: i64) -> Result<pb::KeySecretList, KeyError> {
        if self.legacy(kind).is_none() {
            return Err(KeyError::NotConfigured(keyring::kind_name(kind)));
        }
        let info = self.list(now_ms);
        let ring = info
            .rings
            .into_iter()
            .find(|r| r.kind == kind as i32)
            .map(|r| r.keys)
            .unwrap_or_default();
        let live = self.verifying(kind, now_ms);
        let keys = ring
            .into_iter()
            .filter_map(|key| {
                let secret = live.iter().find(|k| k.kid == key.kid)?.secret.clone();
                Some(pb::KeySecret {
                    key: Some(key),
                    secret,
                })
            })
            .collect();
        Ok(pb::KeySecretList {
            kind: kind as i32,
            keys,
        })
    }

    /// Every ring as `admin_list_keys` shows it at `now_ms`: ids, states and times, never a
    /// secret.
    pub fn list(&self, now_ms: i64) -> pb::KeyRingList {
        let snapshot = self.snapshot();
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let rings = KINDS
            .into_iter()
            .map(|kind| {
                let keys = match snapshot.get(kind) {
                    _ if self.legacy(kind).is_none() => Vec::new(),
                    None => Vec::new(),
                    Some((Some(ring), _)) => keyring::view(ring, now_ms),
                    Some((None, live)) => live
                        .iter()
                        .map(|k| pb::KeyInfo {
                            kid: k.kid,
                            state: pb::KeyState::Current as i32,
                            created_at_ms: 0,
                            retire_at_ms: 0,
                        })
                        .collect(),
                };
                pb::KeyRing {
                    kind: kind as i32,
                    keys,
                    rotation_interval_ms: self.settings.interval(kind).map_or(0, ms),
                }
            })
            .collect();
        pb::KeyRingList {
            rings,
            rotation_interval_ms: self.settings.rotation_interval.map_or(0, ms),
            overlap_ms: ms(self.settings.overlap),
        }
    }
}

/// Runs `round` every [`RELOAD_EVERY`], and at once whenever `wake` is notified, until `stop`;
/// the first round runs at once. A tick missed while a round ran is not made up: rounds never
/// overlap and never run back to back to catch up.
pub(crate) async fn every_reload<F, Fut>(
    stop: &CancellationToken,
    wake: Option<&tokio::sync::Notify>,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(RELOAD_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let woken = async {
            match wake {
                Some(wake) => wake.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
            () = woken => {}
        }
        round().await;
    }
}

#[cfg(test)]
mod tests;
