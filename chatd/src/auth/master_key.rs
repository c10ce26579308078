//! The master key of encryption at rest rotated while the server runs (protocol.md 9.6, "Key
//! rotation", kind `MASTER`; `crate::atrest`): by command (`admin_rotate_key`) or when it is
//! `--encryption-key-rotation-interval` old, on one node or a cluster.
//!
//! The master key is the root of everything encrypted at rest, so unlike the other rings the
//! store never holds it in a form the store alone opens. Its ring (kind `MASTER`) holds each
//! key's id and times and, during an overlap only, the new key wrapped by the key it replaces
//! (the *handover*): every node holds the old key, so each opens the handover and takes the new
//! one; someone holding only the store does not. The end of the overlap erases the handover, so
//! a node that was down through the whole overlap needs the new key file copied to it. (After a
//! suspected leak of the key, rotate with a key from outside instead: a restart with the new
//! key file and the old one as `--previous-encryption-key-file`; the handover would give the new
//! key to whoever holds the old one and the store.)
//!
//! A rotation, each step safe against a crash at any point:
//! 1. the ring gets the new key (a compare-and-set: of nodes finding it due at once, one
//!    rotates);
//! 2. every node (the one that rotated at once, the others within [`RELOAD_EVERY`]) writes the
//!    key it had to `--previous-encryption-key-file`, then the new one to
//!    `--encryption-key-file`, each atomically ([`MasterKeyFiles`]), and from then on wraps
//!    with the new key while the old one still unwraps;
//! 3. in the background it puts what it keeps under the new key ([`Rewrap`]: the embedded
//!    database is rekeyed, file keys and the MongoDB field key re-wrapped; each idempotent, so
//!    nodes doing it at once are harmless);
//! 4. once the overlap has ended (on schedule or by `admin_retire_keys`), no upload begun before
//!    the rotation is still open (their bytes are sealed under keys derived from the old key;
//!    the collector removes each `--file-gc-grace` after it began at the latest), and a last
//!    pass found nothing left under the old key, the node forgets the old key and moves its
//!    file aside (`<file>.retired-<id>`: backups made under that key restore with it).
//!
//! A rotation waits until the one before is finished on this node, so at most two master keys
//! are in use at any time.

use std::sync::Arc;
use std::time::Duration;

use chatproto::pb;
use tokio_util::sync::CancellationToken;

use crate::atrest::{AtRestError, KeyId, MasterKeys, Rewrap, WRAPPED_LEN, Wrapped};
use crate::auth::keyring;
use crate::auth::keys::{RELOAD_EVERY, every_reload};
use crate::store::{KeyRingRecord, KeyStore, Store, StoreError, StoredKey, UploadState};

/// How long after a rotation its overlap may be ended by command: every node has taken the new
/// key by then (each reads the ring every [`RELOAD_EVERY`]).
pub const ADOPT_LEAD: Duration = Duration::from_secs(3 * RELOAD_EVERY.as_secs());
/// Writes a rotation or an end of overlap tries before it gives up on a ring others keep
/// changing.
const ATTEMPTS: usize = 8;
/// Uploads looked at when deciding whether one begun before a rotation is still open.
const UPLOAD_PAGE: u32 = 1000;
/// How long after a failed pass the next one starts (a pass reads every stored file's head).
const REWRAP_RETRY: Duration = Duration::from_secs(60);
/// What a handover is bound to, with the kid of the key it carries.
const HANDOVER_CONTEXT: &[u8] = b"chatd master key handover v1";

/// Where a node keeps its master keys: the files of `--encryption-key-file` and
/// `--previous-encryption-key-file` (`ops::master_key_files`). Called on the blocking pool.
pub trait MasterKeyFiles: Send + Sync {
    /// Writes `previous` to the previous key file, then `current` to the key file, each
    /// atomically, so that a crash leaves the database openable by one of the two.
    fn install(&self, current: &[u8; 32], previous: &[u8; 32]) -> Result<(), String>;
    /// Moves the previous key file aside, to a name that says `id`; returns where it went.
    fn retire_previous(&self, id: KeyId) -> Result<String, String>;
    /// Checks that both files can be written (before a rotation is recorded).
    fn check_writable(&self) -> Result<(), String>;
}

/// When the master key rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterKeySettings {
    /// How old the current master key gets before the schedule replaces it; `None`: only by
    /// command.
    pub interval: Option<Duration>,
    /// How long the replaced key keeps unwrapping, at least.
    pub overlap: Duration,
}

/// A rotation, or the end of an overlap, that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// No file to keep the replaced key in.
    #[error(
        "rotating the master key while chatd runs needs --previous-encryption-key-file, where \
         chatd keeps the key it replaces"
    )]
    NoPreviousFile,
    /// The rotation before is not finished here.
    #[error(
        "the last rotation of the master key is not finished: {0}; end its overlap first (chatctl \
         keys retire --kind master)"
    )]
    Unfinished(&'static str),
    /// The overlap began too recently to end.
    #[error(
        "the master key was rotated {0} ms ago: every node takes the new key within {lead} ms, \
         end the overlap after that",
        lead = ADOPT_LEAD.as_millis()
    )]
    TooSoon(i64),
    /// Other writers kept changing the ring.
    #[error("the master key ring kept changing; try again")]
    Contended,
    /// The ring's current key is one this node cannot take.
    #[error(
        "the master key is now {0}, which this node does not have and cannot take from the \
         store (it was down through the whole overlap, or the key came from outside): copy the \
         key file of another node to --encryption-key-file"
    )]
    Unknown(KeyId),
    /// A stored ring entry is not in the format this module writes.
    #[error("the master key ring holds a damaged entry (kid {0})")]
    Damaged(u32),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A handover did not open.
    #[error(transparent)]
    AtRest(#[from] AtRestError),
    /// The key files could not be written.
    #[error("cannot write the master key files: {0}")]
    Files(String),
    /// The key files cannot be written, so no rotation was made.
    #[error("{0}")]
    NotWritable(String),
    /// Something kept under the master key could not be put under the new one.
    #[error("cannot put {what} under the new master key: {error}")]
    Rewrap {
        /// What.
        what: &'static str,
        /// Why.
        error: String,
    },
}

/// A ring entry: the key's id and, during its overlap, the handover.
struct Entry {
    id: KeyId,
    handover: Option<Wrapped>,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.id.0.to_vec();
        if let Some(handover) = &self.handover {
            out.extend_from_slice(&handover.to_bytes());
        }
        out
    }

    fn decode(key: &StoredKey) -> Result<Entry, MasterKeyError> {
        let damaged = || MasterKeyError::Damaged(key.kid);
        let (id, rest) = key.sealed.split_first_chunk::<8>().ok_or_else(damaged)?;
        let handover = match rest.len() {
            0 => None,
            WRAPPED_LEN => Some(Wrapped::from_bytes(rest.try_into().map_err(|_| damaged())?)),
            _ => return Err(damaged()),
        };
        Ok(Entry {
            id: KeyId(*id),
            handover,
        })
    }
}

fn handover_context(kid: u32) -> Vec<u8> {
    [HANDOVER_CONTEXT, &kid.to_be_bytes()].concat()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The ring's current key.
fn current(ring: &KeyRingRecord) -> Option<&StoredKey> {
    ring.keys.iter().find(|k| k.retire_at_ms == 0)
}

/// Whether a replaced key of `ring` still unwraps at `now_ms`: the overlap has not ended.
fn overlapping(ring: &KeyRingRecord, now_ms: i64) -> bool {
    ring.keys
        .iter()
        .any(|k| keyring::state(k, now_ms) == Some(pb::KeyState::Retiring))
}

/// `key` without its handover.
fn without_handover(key: &StoredKey) -> Result<StoredKey, MasterKeyError> {
    let mut entry = Entry::decode(key)?;
    entry.handover = None;
    Ok(StoredKey {
        sealed: entry.encode(),
        ..key.clone()
    })
}

/// The ring after the overlap ended at `now_ms`: retired keys dropped and the handover erased;
/// `None` when there is nothing to clean.
fn cleaned(ring: &KeyRingRecord, now_ms: i64) -> Result<Option<KeyRingRecord>, MasterKeyError> {
    if overlapping(ring, now_ms) {
        return Ok(None);
    }
    let keys = ring
        .keys
        .iter()
        .filter(|k| k.retire_at_ms == 0)
        .map(without_handover)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((keys != ring.keys).then(|| KeyRingRecord {
        kind: ring.kind,
        version: ring.version.saturating_add(1),
        keys,
    }))
}

/// `ring` after a rotation to key `id` given from outside (no handover) at `now_ms`.
fn recorded(ring: &KeyRingRecord, id: KeyId, now_ms: i64, overlap: Duration) -> KeyRingRecord {
    let entry = Entry { id, handover: None };
    keyring::rotated(
        Some(ring),
        pb::KeyKind::Master,
        entry.encode(),
        now_ms,
        ms(overlap),
    )
}

/// Brings this node's keys up to the ring (see the module documentation) and returns the ring:
/// writes the first ring when there is none; records a key given from outside (a restart with a
/// new `--encryption-key-file` and the ring's key as `--previous-encryption-key-file`) as a
/// rotation; takes a new key from its handover; refuses a ring whose key it can do neither
/// with ([`MasterKeyError::Unknown`]). Used at start,
/// before anything sealed is opened (another node may have re-wrapped it under a key this one
/// has yet to take), and on every tick.
pub async fn catch_up(
    store: &dyn KeyStore,
    keys: &MasterKeys,
    files: Option<&Arc<dyn MasterKeyFiles>>,
    overlap: Duration,
) -> Result<KeyRingRecord, MasterKeyError> {
    for _ in 0..ATTEMPTS {
        let now = crate::clock::now_ms();
        let mine = keys.current_id();
        let Some(ring) = store.key_ring(pb::KeyKind::Master).await? else {
            // The first ring: the key from before (kid 0), and the current one when a previous
            // key is configured (a rotation by restart under way).
            let first = |id| StoredKey {
                kid: 0,
                sealed: Entry { id, handover: None }.encode(),
                created_at_ms: now,
                retire_at_ms: 0,
            };
            let ring = match keys.previous_ids().first() {
                Some(&previous) => recorded(
                    &KeyRingRecord {
                        kind: pb::KeyKind::Master,
                        version: 0,
                        keys: vec![first(previous)],
                    },
                    mine,
                    now,
                    overlap,
                ),
                None => KeyRingRecord {
                    kind: pb::KeyKind::Master,
                    version: 1,
                    keys: vec![first(mine)],
                },
            };
            // Another node may win: its ring is read on the next round.
            store.put_key_ring(ring).await?;
            continue;
        };
        let Some(stored) = current(&ring) else {
            return Err(MasterKeyError::Damaged(0));
        };
        let entry = Entry::decode(stored)?;
        if entry.id == mine {
            return Ok(ring);
        }
        if keys.previous_ids().contains(&entry.id) {
            // The ring's key is this node's previous one: a new key given from outside (a
            // restart with the new key file and the old one as the previous), recorded as a
            // rotation. (A node whose key is older than the ring's takes the new one below.)
            if store
                .put_key_ring(recorded(&ring, mine, now, overlap))
                .await?
            {
                tracing::info!(key = %mine, "a master key given at start is recorded as a rotation");
            }
            continue;
        }
        let Some(handover) = entry.handover.filter(|h| h.key_id == mine) else {
            return Err(MasterKeyError::Unknown(entry.id));
        };
        let files = files.ok_or(MasterKeyError::NoPreviousFile)?;
        let new = keys.unwrap(
            &handover,
            &handover_context(stored.kid),
            "the new master key in the ring",
        )?;
        if KeyId::of(&new) != entry.id {
            return Err(MasterKeyError::Damaged(stored.kid));
        }
        let old = keys.current_bytes();
        let files = Arc::clone(files);
        tokio::task::spawn_blocking(move || files.install(&new, &old))
            .await
            .map_err(|e| MasterKeyError::Files(e.to_string()))?
            .map_err(MasterKeyError::Files)?;
        keys.replace(&new, &[old]);
        tracing::info!(key = %entry.id, previous = %mine, "the new master key is taken: it wraps from now on");
        return Ok(ring);
    }
    Err(MasterKeyError::Contended)
}

/// What this node did of the rotation under way.
#[derive(Debug, Default)]
struct Progress {
    /// The current key under which every holder was last found whole.
    rewrapped: Option<KeyId>,
    /// When the last pass failed: the next waits [`REWRAP_RETRY`].
    failed_at: Option<std::time::Instant>,
    /// The error of the last tick, logged once until it changes.
    reported: Option<String>,
}

/// This node's master keys, kept up to the ring (see the module documentation).
pub struct MasterKeyRing {
    keys: Arc<MasterKeys>,
    store: Arc<dyn Store>,
    holders: Vec<Arc<dyn Rewrap>>,
    files: Option<Arc<dyn MasterKeyFiles>>,
    settings: MasterKeySettings,
    /// Serializes this node's ring writes and key swaps (never held across a re-wrap).
    progress: tokio::sync::Mutex<Progress>,
    /// Wakes the tick at once (after a rotation or an ended overlap through this node).
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for MasterKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeyRing")
            .field("keys", &self.keys)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl MasterKeyRing {
    /// The master keys `keys` of a server whose ring is in `store`, with what it keeps under
    /// them and where its key files are (`None`: no `--previous-encryption-key-file`, so it
    /// cannot rotate while it runs).
    pub fn new(
        keys: Arc<MasterKeys>,
        store: Arc<dyn Store>,
        holders: Vec<Arc<dyn Rewrap>>,
        files: Option<Arc<dyn MasterKeyFiles>>,
        settings: MasterKeySettings,
    ) -> Arc<MasterKeyRing> {
        Arc::new(MasterKeyRing {
            keys,
            store,
            holders,
            files,
            settings,
            progress: tokio::sync::Mutex::default(),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Every [`RELOAD_EVERY`] (and at once after a change through this node) until `stop`:
    /// [`step`](Self::step). The first step runs at once.
    pub fn spawn(self: &Arc<Self>, stop: CancellationToken) {
        let ring = Arc::clone(self);
        tokio::spawn(async move {
            every_reload(&stop, Some(&ring.wake), || ring.round()).await;
        });
    }

    /// One background [`step`](Self::step); an error is logged once until it changes.
    async fn round(&self) {
        let outcome = self.step().await;
        let mut progress = self.progress.lock().await;
        match outcome {
            Ok(()) => progress.reported = None,
            Err(e) => {
                let text = e.to_string();
                if progress.reported.as_ref() != Some(&text) {
                    tracing::error!(error = %text, "master key rotation");
                    progress.reported = Some(text);
                }
            }
        }
    }

    /// One round: catch up with the ring, rotate when the schedule says so, erase the handover
    /// once the overlap ended, put everything under the current key after a rotation, and
    /// forget the previous key once the overlap ended and nothing is left under it.
    pub async fn step(&self) -> Result<(), MasterKeyError> {
        let now = crate::clock::now_ms();
        let ring = {
            let mut progress = self.progress.lock().await;
            let before = self.keys.current_id();
            let ring = catch_up(
                &*self.store,
                &self.keys,
                self.files.as_ref(),
                self.settings.overlap,
            )
            .await?;
            if self.keys.current_id() != before {
                progress.rewrapped = None;
            }
            ring
        };
        if let Some(interval) = self.settings.interval
            && keyring::due(&ring, now, ms(interval))
            && !overlapping(&ring, now)
            && !self.keys.rotating()
            && self.files.is_some()
        {
            match self.rotate(now).await {
                Ok(kid) => tracing::info!(kid, "master key rotated on schedule"),
                // Another node rotated first: its key is taken at the next round.
                Err(MasterKeyError::Contended) => {}
                Err(e) => return Err(e),
            }
            return Ok(());
        }
        if let Some(next) = cleaned(&ring, now)? {
            // Of nodes doing it at once one writes; the others find it done.
            self.store.put_key_ring(next).await?;
        }
        if !self.keys.rotating() {
            return Ok(());
        }
        let current = self.keys.current_id();
        let ended = !overlapping(&ring, now);
        let (whole, waiting) = {
            let progress = self.progress.lock().await;
            let waiting = progress
                .failed_at
                .is_some_and(|at| at.elapsed() < REWRAP_RETRY);
            (progress.rewrapped == Some(current), waiting)
        };
        // Uploads begun before the rotation seal their bytes under keys derived from the old
        // key (`files::blob::envelope`): it is kept until they are finished or collected.
        let rotated_at = ring
            .keys
            .iter()
            .find(|k| k.retire_at_ms == 0)
            .map_or(0, |k| k.created_at_ms);
        let uploads = ended && self.uploads_begun_before(rotated_at).await?;
        if waiting || (whole && (!ended || uploads)) {
            return Ok(());
        }
        // The first pass after taking a key, or the last one before forgetting the old key
        // (which also finds what a node slow to take the new key wrapped meanwhile).
        for holder in &self.holders {
            let changed = match holder.rewrap(&self.keys).await {
                Ok(changed) => changed,
                Err(e) => {
                    self.progress.lock().await.failed_at = Some(std::time::Instant::now());
                    return Err(MasterKeyError::Rewrap {
                        what: holder.what(),
                        error: e.to_string(),
                    });
                }
            };
            if changed > 0 {
                tracing::info!(what = holder.what(), changed, key = %current, "put under the current master key");
            }
        }
        let mut progress = self.progress.lock().await;
        if self.keys.current_id() != current {
            return Ok(());
        }
        if progress.rewrapped != Some(current) {
            tracing::info!(
                key = %current,
                "everything kept at rest is under the current master key; the previous one is \
                 forgotten when the overlap ends"
            );
        }
        progress.rewrapped = Some(current);
        progress.failed_at = None;
        if ended && !uploads {
            self.forget_previous().await;
        }
        Ok(())
    }

    /// Whether an upload begun before `before_ms` may still be open (a full page counts as
    /// yes: the collector removes every upload `--file-gc-grace` after it began).
    async fn uploads_begun_before(&self, before_ms: i64) -> Result<bool, MasterKeyError> {
        let begun = self.store.stale_uploads(before_ms, UPLOAD_PAGE).await?;
        Ok(begun.len() >= UPLOAD_PAGE as usize
            || begun.iter().any(|u| matches!(u.state, UploadState::Open)))
    }

    /// Forgets the previous key and moves its file aside.
    async fn forget_previous(&self) {
        let current = self.keys.current_bytes();
        for id in self.keys.previous_ids() {
            let Some(files) = self.files.clone() else {
                tracing::info!(previous = %id, "nothing is kept under the previous master key any more: --previous-encryption-key-file can go");
                continue;
            };
            match tokio::task::spawn_blocking(move || files.retire_previous(id)).await {
                Ok(Ok(place)) => tracing::info!(
                    previous = %id,
                    %place,
                    "the previous master key is retired; its file is kept for the backups made \
                     under it: delete it with them"
                ),
                Ok(Err(e)) => {
                    tracing::warn!(previous = %id, error = %e, "the previous master key is retired, but its file could not be moved aside")
                }
                Err(e) => {
                    tracing::warn!(previous = %id, error = %e, "moving the previous master key file aside failed")
                }
            }
        }
        self.keys.replace(&current, &[]);
    }

    /// Makes a new master key current (`admin_rotate_key`, and the schedule); the current one
    /// keeps unwrapping until the overlap ends. Returns the new key's kid.
    pub async fn rotate(&self, now_ms: i64) -> Result<u32, MasterKeyError> {
        let files = self.files.as_ref().ok_or(MasterKeyError::NoPreviousFile)?;
        let _progress = self.progress.lock().await;
        // A key no node could keep must not reach the ring.
        let probe = Arc::clone(files);
        tokio::task::spawn_blocking(move || probe.check_writable())
            .await
            .map_err(|e| MasterKeyError::Files(e.to_string()))?
            .map_err(MasterKeyError::NotWritable)?;
        let ring = catch_up(&*self.store, &self.keys, Some(files), self.settings.overlap).await?;
        if overlapping(&ring, now_ms) {
            return Err(MasterKeyError::Unfinished("its overlap has not ended"));
        }
        if self.keys.rotating() {
            return Err(MasterKeyError::Unfinished(
                "this node still puts data under the new key",
            ));
        }
        let kid = ring
            .keys
            .iter()
            .map(|k| k.kid)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let new: [u8; 32] = rand::random();
        let entry = Entry {
            id: KeyId::of(&new),
            handover: Some(self.keys.wrap(&new, &handover_context(kid))),
        };
        let next = keyring::rotated(
            Some(&ring),
            pb::KeyKind::Master,
            entry.encode(),
            now_ms,
            ms(self.settings.overlap),
        );
        if !self.store.put_key_ring(next).await? {
            return Err(MasterKeyError::Contended);
        }
        // Taken at once through its handover, like every other node does at its next round.
        catch_up(&*self.store, &self.keys, Some(files), self.settings.overlap).await?;
        self.wake.notify_one();
        Ok(kid)
    }

    /// Ends the overlap now (`admin_retire_keys`): the handover is erased, and each node
    /// forgets the previous key once nothing is left under it. False when no overlap was under
    /// way.
    pub async fn retire(&self, now_ms: i64) -> Result<bool, MasterKeyError> {
        let _progress = self.progress.lock().await;
        for _ in 0..ATTEMPTS {
            let Some(ring) = self.store.key_ring(pb::KeyKind::Master).await? else {
                return Ok(false);
            };
            if !overlapping(&ring, now_ms) {
                return Ok(false);
            }
            let since = current(&ring).map_or(0, |k| now_ms.saturating_sub(k.created_at_ms));
            if since < ms(ADOPT_LEAD) {
                return Err(MasterKeyError::TooSoon(since));
            }
            let Some(mut next) = keyring::retired(Some(&ring)) else {
                return Ok(false);
            };
            next.keys = next
                .keys
                .iter()
                .map(without_handover)
                .collect::<Result<_, _>>()?;
            if self.store.put_key_ring(next).await? {
                self.wake.notify_one();
                return Ok(true);
            }
        }
        Err(MasterKeyError::Contended)
    }

    /// The ring as `admin_list_keys` shows it at `now_ms`: ids, states and times.
    pub async fn view(&self, now_ms: i64) -> Result<pb::KeyRing, MasterKeyError> {
        let keys = match self.store.key_ring(pb::KeyKind::Master).await? {
            Some(ring) => keyring::view(&ring, now_ms),
            None => Vec::new(),
        };
        Ok(pb::KeyRing {
            kind: pb::KeyKind::Master as i32,
            keys,
            rotation_interval_ms: self.settings.interval.map_or(0, ms),
        })
    }
}

#[cfg(test)]
mod tests;
