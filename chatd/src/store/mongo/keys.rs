//! The server's key rings: [`KeyStore`]. Each version of a ring is one document of `key_rings`
//! whose `_id` is its kind and version (`"1:4"`), and the ring is the one of the highest
//! version. A write inserts the next version after checking the one before is the newest:
//! the unique `_id` is the compare-and-set (of two writers of one version the second gets a
//! duplicate key), which needs no transaction and no atomic conditional update (FerretDB's
//! updates are not one). Versions before the new one are then removed.

use async_trait::async_trait;
use chatproto::pb;
use mongodb::bson::{Binary, doc, spec::BinarySubtype};
use serde::{Deserialize, Serialize};

use super::{MongoStore, error};
use crate::store::{KeyRingRecord, KeyStore, StoreResult, StoredKey};

/// `key_rings`: the keys of one kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct KeyRingDoc {
    #[serde(rename = "_id")]
    id: String,
    kind: i32,
    version: i64,
    keys: Vec<KeyDoc>,
}

/// One key of a [`KeyRingDoc`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyDoc {
    kid: i64,
    sealed: Binary,
    created_at_ms: i64,
    retire_at_ms: i64,
}

fn to_doc(ring: &KeyRingRecord) -> KeyRingDoc {
    KeyRingDoc {
        id: format!("{}:{}", ring.kind as i32, ring.version),
        kind: ring.kind as i32,
        version: i64::try_from(ring.version).unwrap_or(i64::MAX),
        keys: ring
            .keys
            .iter()
            .map(|k| KeyDoc {
                kid: i64::from(k.kid),
                sealed: Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: k.sealed.clone(),
                },
                created_at_ms: k.created_at_ms,
                retire_at_ms: k.retire_at_ms,
            })
            .collect(),
    }
}

fn from_doc(kind: pb::KeyKind, d: KeyRingDoc) -> StoreResult<KeyRingRecord> {
    let keys = d
        .keys
        .into_iter()
        .map(|k| {
            Ok(StoredKey {
                kid: u32::try_from(k.kid).map_err(|e| error::corrupt("key_rings", e))?,
                sealed: k.sealed.bytes,
                created_at_ms: k.created_at_ms,
                retire_at_ms: k.retire_at_ms,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(KeyRingRecord {
        kind,
        version: u64::try_from(d.version).map_err(|e| error::corrupt("key_rings", e))?,
        keys,
    })
}

impl MongoStore {
    /// The newest version of the ring of `kind`.
    async fn newest_ring(&self, kind: pb::KeyKind) -> StoreResult<Option<KeyRingDoc>> {
        self.c
            .key_rings
            .find_one(doc! { "kind": kind as i32 })
            .sort(doc! { "version": -1 })
            .await
            .map_err(error::map)
    }
}

#[async_trait]
impl KeyStore for MongoStore {
    async fn key_ring(&self, kind: pb::KeyKind) -> StoreResult<Option<KeyRingRecord>> {
        self.deadline(async {
            self.newest_ring(kind)
                .await?
                .map(|d| from_doc(kind, d))
                .transpose()
        })
        .await
    }

    async fn put_key_ring(&self, ring: KeyRingRecord) -> StoreResult<bool> {
        self.deadline(async {
            let newest = self.newest_ring(ring.kind).await?.map(|d| d.version);
            let before = i64::try_from(ring.version.saturating_sub(1)).unwrap_or(i64::MAX);
            if newest.unwrap_or(0) != before {
                return Ok(false);
            }
            let stored = to_doc(&ring);
            let version = stored.version;
            match self.c.key_rings.insert_one(stored).await {
                Ok(_) => {}
                Err(e) if error::is_duplicate(&e) => return Ok(false),
                Err(e) => return Err(error::map(e)),
            }
            // The versions before are no ring any more; one left behind by a failure here is
            // removed by the next write.
            self.c
                .key_rings
                .delete_many(doc! { "kind": ring.kind as i32, "version": { "$lt": version } })
                .await
                .map_err(error::map)?;
            Ok(true)
        })
        .await
    }
}
