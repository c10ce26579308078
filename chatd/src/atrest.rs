//! The master keys of encryption at rest, and what chatd encrypts with them itself.
//!
//! `--encryption-key-file` gives the *master key* (32 bytes). The embedded database is keyed by
//! it through SQLCipher (`store::sqlite::cipher`); everything chatd encrypts itself (file
//! content, see `files::blob::sealed`) uses *data keys*: random 32-byte keys, each *wrapped*
//! (sealed with AES-256-GCM) by the master key, with the master key's [`KeyId`] stored beside
//! the wrapped key. So a new master key re-wraps the data keys and never re-encrypts content.
//!
//! A rotation gives the new key as `--encryption-key-file` and the old one as
//! `--previous-encryption-key-file`: both unwrap during the overlap, only the current one wraps.
//! A key's id is derived from the key (the first 8 bytes of an HMAC of a fixed label), so it is
//! never configured and cannot be mixed up, and it tells nothing of the key.

use std::sync::{Arc, PoisonError, RwLock};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;

/// The identifier of a master key: 8 bytes derived from the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id of master key `bytes`.
    pub fn of(bytes: &[u8; 32]) -> KeyId {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, bytes),
            b"chatd master key id v1",
        );
        let mut id = [0u8; 8];
        id.copy_from_slice(tag.as_ref().get(..8).unwrap_or(&[0; 8]));
        KeyId(id)
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why something sealed at rest cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AtRestError {
    /// The data is wrapped by a master key that is not configured.
    #[error(
        "{what} is wrapped by master key {id}, which is not configured: give it with \
         --encryption-key-file or --previous-encryption-key-file"
    )]
    UnknownKey {
        /// What could not be opened.
        what: String,
        /// The key it needs.
        id: KeyId,
    },
    /// The data is encrypted and no master key is configured.
    #[error("{0} is encrypted but no master key is configured: give it with --encryption-key-file")]
    Missing(String),
    /// Authentication failed: the data was changed, truncated or moved.
    #[error("{0} failed authentication: it was changed or damaged at rest")]
    Tampered(String),
    /// The data is not in the expected format.
    #[error("{0} is not in the format chatd encrypts with")]
    Format(String),
}

/// Why data kept under the master key could not be put under the current one.
pub type RewrapError = Box<dyn std::error::Error + Send + Sync>;

/// What keeps data under the master key: the embedded database (keyed by it), the MongoDB
/// field key and the file store (data keys wrapped by it). A rotation puts each under the new
/// key while the previous one still opens what is not yet (`ops::master_key`).
#[async_trait::async_trait]
pub trait Rewrap: Send + Sync {
    /// What it is, as logs name it.
    fn what(&self) -> &'static str;
    /// Puts everything it keeps under the current key of `keys`; idempotent, and safe while
    /// other nodes do the same. Returns how many items it changed.
    async fn rewrap(&self, keys: &MasterKeys) -> Result<u64, RewrapError>;
}

/// A wrapped data key: the master key's id, the nonce and the sealed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// The master key that wraps it.
    pub key_id: KeyId,
    /// The AES-GCM nonce (random).
    pub nonce: [u8; NONCE_LEN],
    /// The data key sealed, with its tag.
    pub sealed: [u8; WRAPPED_KEY_LEN],
}

/// Length of a sealed data key: 32 bytes and the 16-byte tag.
pub const WRAPPED_KEY_LEN: usize = 32 + 16;
/// Length of [`Wrapped::to_bytes`].
pub const WRAPPED_LEN: usize = 8 + NONCE_LEN + WRAPPED_KEY_LEN;

impl Wrapped {
    /// Its fixed-length encoding.
    pub fn to_bytes(&self) -> [u8; WRAPPED_LEN] {
        let mut out = [0u8; WRAPPED_LEN];
        let (id, rest) = out.split_at_mut(8);
        let (nonce, sealed) = rest.split_at_mut(NONCE_LEN);
        id.copy_from_slice(&self.key_id.0);
        nonce.copy_from_slice(&self.nonce);
        sealed.copy_from_slice(&self.sealed);
        out
    }

    /// Decodes [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8; WRAPPED_LEN]) -> Wrapped {
        let (id, rest) = bytes.split_at(8);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        Wrapped {
            key_id: KeyId(id.try_into().unwrap_or_default()),
            nonce: nonce.try_into().unwrap_or_default(),
            sealed: sealed.try_into().unwrap_or([0; WRAPPED_KEY_LEN]),
        }
    }
}

/// One master key, ready to wrap and derive.
struct MasterKey {
    id: KeyId,
    bytes: [u8; 32],
    wrap: LessSafeKey,
    derive: hmac::Key,
}

impl MasterKey {
    fn new(bytes: &[u8; 32]) -> MasterKey {
        let derive = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let wrap = UnboundKey::new(&AES_256_GCM, bytes)
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("AES-256 takes 32-byte keys"));
        MasterKey {
            id: KeyId::of(bytes),
            bytes: *bytes,
            wrap,
            derive,
        }
    }
}

/// The keys in use at one moment: the current one and the previous ones.
struct KeySet {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl KeySet {
    fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> KeySet {
        let current = MasterKey::new(current);
        let previous = previous
            .iter()
            .map(MasterKey::new)
            .filter(|k| k.id != current.id)
            .collect();
        KeySet { current, previous }
    }

    fn key(&self, id: KeyId) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

/// The master keys in use: the current one, which wraps, and previous ones, which still unwrap
/// (see the module documentation). A running server replaces them when the master key rotates
/// online ([`replace`](Self::replace), `ops::master_key`); every holder of the `Arc` sees the
/// change at its next call. Its `Debug` shows ids only.
pub struct MasterKeys {
    set: RwLock<Arc<KeySet>>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.set();
        f.debug_struct("MasterKeys")
            .field("current", &set.current.id)
            .field(
                "previous",
                &set.previous.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl MasterKeys {
    /// The keys: `current` wraps; `previous` (a key equal to the current one is ignored) unwrap.
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> MasterKeys {
        MasterKeys {
            set: RwLock::new(Arc::new(KeySet::new(current, previous))),
        }
    }

    /// Makes `current` the key that wraps and `previous` the ones that still unwrap, from the
    /// next call on.
    pub fn replace(&self, current: &[u8; 32], previous: &[[u8; 32]]) {
        let next = Arc::new(KeySet::new(current, previous));
        *self.set.write().unwrap_or_else(PoisonError::into_inner) = next;
    }

    fn set(&self) -> Arc<KeySet> {
        Arc::clone(&self.set.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The id of the key that wraps.
    pub fn current_id(&self) -> KeyId {
        self.set().current.id
    }

    /// The ids of the previous keys, which still unwrap.
    pub fn previous_ids(&self) -> Vec<KeyId> {
        self.set().previous.iter().map(|k| k.id).collect()
    }

    /// The bytes of the key that wraps (the embedded database's key, and what a rotation
    /// writes to the key file).
    pub(crate) fn current_bytes(&self) -> [u8; 32] {
        self.set().current.bytes
    }

    /// The bytes of the previous keys (a database not yet rekeyed opens with one of them).
    pub(crate) fn previous_bytes(&self) -> Vec<[u8; 32]> {
        self.set().previous.iter().map(|k| k.bytes).collect()
    }

    /// True when previous keys are configured: a rotation is under way.
    pub fn rotating(&self) -> bool {
        !self.set().previous.is_empty()
    }

    /// Wraps `data_key` with the current key; `context` (what the key is for) must be given
    /// again to unwrap it.
    pub fn wrap(&self, data_key: &[u8; 32], context: &[u8]) -> Wrapped {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = [0u8; WRAPPED_KEY_LEN];
        let (body, tag_out) = sealed.split_at_mut(32);
        body.copy_from_slice(data_key);
        let set = self.set();
        let tag = set
            .current
            .wrap
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                body,
            )
            .unwrap_or_else(|_| unreachable!("32 bytes are within AES-GCM's limits"));
        tag_out.copy_from_slice(tag.as_ref());
        Wrapped {
            key_id: set.current.id,
            nonce,
            sealed,
        }
    }

    /// Unwraps a data key wrapped for `context`; `what` names it in errors.
    pub fn unwrap(
        &self,
        wrapped: &Wrapped,
        context: &[u8],
        what: &str,
    ) -> Result<[u8; 32], AtRestError> {
        let set = self.set();
        let key = set
            .key(wrapped.key_id)
            .ok_or_else(|| AtRestError::UnknownKey {
                what: what.to_owned(),
                id: wrapped.key_id,
            })?;
        let mut sealed = wrapped.sealed;
        let plain = key
            .wrap
            .open_in_place(
                Nonce::assume_unique_for_key(wrapped.nonce),
                Aad::from(context),
                &mut sealed,
            )
            .map_err(|_| AtRestError::Tampered(format!("the key of {what}")))?;
        plain
            .try_into()
            .map_err(|_| AtRestError::Format(what.to_owned()))
    }

    /// A key derived from master key `id` for `purpose` (HMAC-SHA256), for data whose key need
    /// not be stored (the bytes of an upload in progress, named by the upload's id).
    pub fn derive(&self, id: KeyId, purpose: &[u8], what: &str) -> Result<[u8; 32], AtRestError> {
        let set = self.set();
        let key = set.key(id).ok_or_else(|| AtRestError::UnknownKey {
            what: what.to_owned(),
            id,
        })?;
        let tag = hmac::sign(&key.derive, purpose);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref().get(..32).unwrap_or(&[0; 32]));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_keys_open_with_the_key_that_wrapped_them_during_an_overlap() {
        let old = MasterKeys::new(&[1; 32], &[]);
        let wrapped = old.wrap(&[9; 32], b"file a");
        assert_eq!(wrapped.key_id, old.current_id());
        assert_eq!(
            Wrapped::from_bytes(&wrapped.to_bytes()),
            wrapped,
            "the encoding round-trips"
        );
        let rotated = MasterKeys::new(&[2; 32], &[[1; 32]]);
        assert_ne!(rotated.current_id(), old.current_id());
        assert_eq!(rotated.unwrap(&wrapped, b"file a", "a"), Ok([9; 32]));
        // Another context is refused, as is a key nobody configured.
        assert!(matches!(
            rotated.unwrap(&wrapped, b"file b", "b"),
            Err(AtRestError::Tampered(_))
        ));
        let new_only = MasterKeys::new(&[2; 32], &[]);
        assert!(matches!(
            new_only.unwrap(&wrapped, b"file a", "a"),
            Err(AtRestError::UnknownKey { id, .. }) if id == old.current_id()
        ));
        // Re-wrapped by the new key, it opens without the old one.
        let rewrapped = rotated.wrap(&[9; 32], b"file a");
        assert_eq!(new_only.unwrap(&rewrapped, b"file a", "a"), Ok([9; 32]));
    }

    #[test]
    fn derived_keys_depend_on_the_master_key_and_the_purpose() {
        let keys = MasterKeys::new(&[1; 32], &[[2; 32]]);
        let other = MasterKeys::new(&[2; 32], &[]);
        let a = keys.derive(keys.current_id(), b"x", "x").expect("current");
        assert_ne!(a, keys.derive(keys.current_id(), b"y", "y").expect("y"));
        assert_eq!(
            keys.derive(other.current_id(), b"x", "x"),
            other.derive(other.current_id(), b"x", "x")
        );
        assert_ne!(Ok(a), other.derive(other.current_id(), b"x", "x"));
    }
}
