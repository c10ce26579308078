//! Field-level encryption of user content (`--encryption-key-file` with `--mongo-uri`): what
//! users wrote is sealed by chatd before it reaches MongoDB, so a dump, a backup or a database
//! user sees ciphertext.
//!
//! Sealed: message texts (`messages.text`, their edit history, the text of `message_edited`
//! events and of the ops that write them), message attachments (`messages.attachment`), and of
//! files and uploads the stored `FileInfo` (name, type, size, hash, dimensions) and the declared
//! name and hash. Lookups that need equality (which files share content, the user's open upload
//! of a content) use a keyed hash instead of the SHA-256. Not sealed: ids, times, membership,
//! chat titles, user profiles, reactions (an emoji), and the search words, which are not kept at
//! all: search is refused (`FAILED_PRECONDITION`) on a sealed store.
//!
//! One random *field key* (AES-256-GCM) seals them, wrapped by the master key in the `meta`
//! document `field_key` with the master key's id ([`crate::atrest`]); a rotation re-wraps that
//! one document when a node starts with `--previous-encryption-key-file`. Each value has a
//! random nonce and is bound to its chat and its purpose. A sealed text is a string that begins
//! with [`TEXT_MARK`] (a control character, which no stored text can hold), sealed bytes begin
//! with [`BYTES_MARK`] (a zero byte, which no protobuf encoding begins with): values stored
//! before sealing was turned on stay readable as they are.

use std::sync::Arc;

use base64::Engine as _;
use chatproto::pb;
use chatproto::pb::chat_event::Body;
use mongodb::bson::{Binary, Document, doc};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;

use super::docs::binary;
use super::{MongoStore, error};
use crate::atrest::{AtRestError, MasterKeys, WRAPPED_LEN, Wrapped};
use crate::store::{StoreError, StoreResult};

/// The first character of a sealed text.
pub(super) const TEXT_MARK: char = '\u{1}';
/// The first bytes of sealed bytes.
const BYTES_MARK: &[u8] = b"\0sealed1";
/// The `meta` document holding the wrapped field key.
const FIELD_KEY_DOC: &str = "field_key";
const WRAP_CONTEXT: &[u8] = b"chatd mongodb field key v1";

/// What a sealed value is for, bound into it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Purpose {
    /// A message's text (current or earlier).
    Text,
    /// A message's attachment.
    Attachment,
    /// A file's `FileInfo`.
    File,
    /// An upload's declared name or hash.
    Upload,
}

impl Purpose {
    fn tag(self) -> u8 {
        match self {
            Purpose::Text => 1,
            Purpose::Attachment => 2,
            Purpose::File => 3,
            Purpose::Upload => 4,
        }
    }
}

struct FieldKey {
    aead: LessSafeKey,
    lookup: hmac::Key,
}

/// The sealing of a store: off (plain) or with the field key.
#[derive(Clone, Default)]
pub(crate) struct Fields {
    key: Option<Arc<FieldKey>>,
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.key.is_some() {
            "Fields(sealed)"
        } else {
            "Fields(plain)"
        })
    }
}

/// Why the store's sealed fields cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum FieldKeyError {
    /// The field key is wrapped by a master key not given, or none was given.
    #[error(transparent)]
    Key(#[from] AtRestError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn aad(purpose: Purpose, chat_id: i64) -> [u8; 9] {
    let mut out = [purpose.tag(); 9];
    if let Some((_, tail)) = out.split_last_chunk_mut::<8>() {
        *tail = chat_id.to_be_bytes();
    }
    out
}

fn unsealable(what: &str) -> StoreError {
    StoreError::Internal(format!(
        "a sealed {what} does not open: changed in the database, or sealed under another key"
    ))
}

impl Fields {
    fn with_key(key: &[u8; 32]) -> Fields {
        let aead = UnboundKey::new(&AES_256_GCM, key)
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("AES-256 takes 32-byte keys"));
        let lookup_key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), b"lookup");
        Fields {
            key: Some(Arc::new(FieldKey {
                aead,
                lookup: hmac::Key::new(hmac::HMAC_SHA256, lookup_key.as_ref()),
            })),
        }
    }

    /// True when values are sealed.
    pub fn sealed(&self) -> bool {
        self.key.is_some()
    }

    fn seal(&self, purpose: Purpose, chat_id: i64, plain: &[u8]) -> Option<Vec<u8>> {
        let key = self.key.as_ref()?;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut body = plain.to_vec();
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(purpose, chat_id)),
                &mut body,
            )
            .unwrap_or_else(|_| unreachable!("a field is within AES-GCM's limits"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        Some(out)
    }

    fn open(
        &self,
        purpose: Purpose,
        chat_id: i64,
        sealed: &[u8],
        what: &str,
    ) -> StoreResult<Vec<u8>> {
        let Some(key) = self.key.as_ref() else {
            return Err(StoreError::Internal(format!(
                "a {what} is sealed but no master key is configured"
            )));
        };
        let (nonce, body) = sealed
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(|| unsealable(what))?;
        let mut body = body.to_vec();
        let plain = key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad(purpose, chat_id)),
                &mut body,
            )
            .map_err(|_| unsealable(what))?;
        Ok(plain.to_vec())
    }

    /// `text` as stored: sealed when sealing is on (the empty text stays empty).
    pub fn text(&self, purpose: Purpose, chat_id: i64, text: &str) -> String {
        if text.is_empty() {
            return String::new();
        }
        match self.seal(purpose, chat_id, text.as_bytes()) {
            Some(sealed) => {
                let mut out = String::from(TEXT_MARK);
                out.push_str(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed));
                out
            }
            None => text.to_owned(),
        }
    }

    /// A stored text as written.
    pub fn open_text(&self, purpose: Purpose, chat_id: i64, stored: &str) -> StoreResult<String> {
        let Some(encoded) = stored.strip_prefix(TEXT_MARK) else {
            return Ok(stored.to_owned());
        };
        let sealed = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| unsealable("text"))?;
        String::from_utf8(self.open(purpose, chat_id, &sealed, "text")?)
            .map_err(|_| unsealable("text"))
    }

    /// `bytes` as stored: sealed when sealing is on.
    pub fn bytes(&self, purpose: Purpose, chat_id: i64, bytes: Vec<u8>) -> Binary {
        match self.seal(purpose, chat_id, &bytes) {
            Some(sealed) => {
                let mut out = BYTES_MARK.to_vec();
                out.extend_from_slice(&sealed);
                binary(out)
            }
            None => binary(bytes),
        }
    }

    /// Stored bytes as written.
    pub fn open_bytes(
        &self,
        purpose: Purpose,
        chat_id: i64,
        stored: &Binary,
    ) -> StoreResult<Vec<u8>> {
        match stored.bytes.strip_prefix(BYTES_MARK) {
            Some(sealed) => self.open(purpose, chat_id, sealed, "value"),
            None => Ok(stored.bytes.clone()),
        }
    }

    /// What a lookup by a SHA-256 (hex) matches: a keyed hash of it when sealing is on.
    pub fn lookup(&self, sha256_hex: &str) -> String {
        match &self.key {
            Some(key) => hex::encode(hmac::sign(&key.lookup, sha256_hex.as_bytes())),
            None => sha256_hex.to_owned(),
        }
    }

    /// The event as stored: the text of a `message_edited` sealed.
    pub fn event(&self, event: &pb::ChatEvent) -> pb::ChatEvent {
        let mut stored = event.clone();
        if let Some(Body::MessageEdited(edited)) = stored.body.as_mut() {
            edited.text = self.text(
                Purpose::Text,
                i64::try_from(event.chat_id).unwrap_or(0),
                &edited.text,
            );
        }
        stored
    }

    /// A stored event as written.
    pub fn open_event(&self, event: &mut pb::ChatEvent) -> StoreResult<()> {
        let chat_id = i64::try_from(event.chat_id).unwrap_or(0);
        if let Some(Body::MessageEdited(edited)) = event.body.as_mut() {
            edited.text = self.open_text(Purpose::Text, chat_id, &edited.text)?;
        }
        Ok(())
    }
}

impl MongoStore {
    /// Turns field sealing on with `keys` (`None`: off): reads the field key, made and stored
    /// the first time, re-wrapped with the current master key when a previous one wraps it.
    /// Refuses a database whose fields are sealed when no key is given, or whose field key is
    /// wrapped by a master key not given.
    pub async fn seal_fields(
        &mut self,
        keys: Option<Arc<MasterKeys>>,
    ) -> Result<(), FieldKeyError> {
        let what = "the sealed fields of the mongodb database";
        let stored = self.stored_field_key().await?;
        let Some(keys) = keys else {
            if stored.is_some() {
                return Err(AtRestError::Missing(what.to_owned()).into());
            }
            self.fields = Fields::default();
            return Ok(());
        };
        let wrapped = match stored {
            Some(wrapped) => wrapped,
            None => {
                let key: [u8; 32] = rand::random();
                let wrapped = keys.wrap(&key, WRAP_CONTEXT);
                let insert = self
                    .c
                    .meta
                    .insert_one(doc! { "_id": FIELD_KEY_DOC, "wrapped": binary(wrapped.to_bytes().to_vec()) })
                    .await;
                match insert {
                    Ok(_) => wrapped,
                    // Another node made it first: its key counts.
                    Err(e) if error::is_duplicate(&e) => self
                        .stored_field_key()
                        .await?
                        .ok_or_else(|| StoreError::Internal("the field key vanished".into()))?,
                    Err(e) => return Err(error::map(e).into()),
                }
            }
        };
        let key = keys.unwrap(&wrapped, WRAP_CONTEXT, what)?;
        if self.rewrap_field_key(&keys).await? {
            tracing::info!(key = %keys.current_id(), "the mongodb field key is re-wrapped with the current master key");
        }
        self.fields = Fields::with_key(&key);
        Ok(())
    }

    /// Re-wraps the stored field key with the current master key of `keys` when another one
    /// wraps it: a compare-and-set on the wrapped bytes, so of the nodes doing it at once one
    /// writes and the others find it done. True when this call wrote it.
    pub async fn rewrap_field_key(&self, keys: &MasterKeys) -> Result<bool, FieldKeyError> {
        let Some(wrapped) = self.stored_field_key().await? else {
            return Ok(false);
        };
        if wrapped.key_id == keys.current_id() {
            return Ok(false);
        }
        let key = keys.unwrap(
            &wrapped,
            WRAP_CONTEXT,
            "the sealed fields of the mongodb database",
        )?;
        let rewrapped = keys.wrap(&key, WRAP_CONTEXT);
        let done = self
            .c
            .meta
            .update_one(
                doc! { "_id": FIELD_KEY_DOC, "wrapped": binary(wrapped.to_bytes().to_vec()) },
                doc! { "$set": { "wrapped": binary(rewrapped.to_bytes().to_vec()) } },
            )
            .await
            .map_err(error::map)?;
        Ok(done.modified_count == 1)
    }

    async fn stored_field_key(&self) -> StoreResult<Option<Wrapped>> {
        let Some(found): Option<Document> = self
            .c
            .meta
            .find_one(doc! { "_id": FIELD_KEY_DOC })
            .await
            .map_err(error::map)?
        else {
            return Ok(None);
        };
        let bytes = found
            .get_binary_generic("wrapped")
            .map_err(|e| error::corrupt("meta", e))?;
        let bytes: &[u8; WRAPPED_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| error::corrupt("meta", "the field key has the wrong length"))?;
        Ok(Some(Wrapped::from_bytes(bytes)))
    }
}

#[async_trait::async_trait]
impl crate::atrest::Rewrap for MongoStore {
    fn what(&self) -> &'static str {
        "the mongodb field key"
    }

    async fn rewrap(&self, keys: &MasterKeys) -> Result<u64, crate::atrest::RewrapError> {
        Ok(u64::from(self.rewrap_field_key(keys).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_place_and_plain_ones_pass() {
        let fields = Fields::with_key(&[4; 32]);
        let stored = fields.text(Purpose::Text, 7, "hello");
        assert!(stored.starts_with(TEXT_MARK) && !stored.contains("hello"));
        assert_eq!(
            fields.open_text(Purpose::Text, 7, &stored).expect("open"),
            "hello"
        );
        assert!(
            fields.open_text(Purpose::Text, 8, &stored).is_err(),
            "another chat"
        );
        assert!(
            fields.open_text(Purpose::Attachment, 7, &stored).is_err(),
            "another purpose"
        );
        assert_eq!(
            fields.open_text(Purpose::Text, 7, "plain").expect("plain"),
            "plain"
        );
        assert_eq!(fields.text(Purpose::Text, 7, ""), "");
        let bytes = fields.bytes(Purpose::File, 0, b"\x0a\x03abc".to_vec());
        assert!(bytes.bytes.starts_with(BYTES_MARK));
        assert_eq!(
            fields.open_bytes(Purpose::File, 0, &bytes).expect("open"),
            b"\x0a\x03abc"
        );
        assert!(
            Fields::default()
                .open_text(Purpose::Text, 7, &stored)
                .is_err(),
            "no key"
        );
        assert_ne!(fields.lookup("ab"), "ab");
        assert_eq!(Fields::default().lookup("ab"), "ab");
    }
}
