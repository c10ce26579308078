//! The server's key rings: the SQL behind [`KeyStore`](crate::store::KeyStore), with its trait
//! implementation beside it. A ring is its `key_rings` row (the version) and its `ring_keys`
//! rows; a write checks and moves the version and replaces the keys in one transaction.

use async_trait::async_trait;
use chatproto::pb;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::convert::sql_u64;
use crate::store::{KeyRingRecord, KeyStore, StoreResult, StoredKey};

fn ring(c: &Connection, kind: pb::KeyKind) -> StoreResult<Option<KeyRingRecord>> {
    let version: Option<i64> = c
        .prepare_cached("SELECT version FROM key_rings WHERE kind = ?1")?
        .query_row(params![kind as i32], |row| row.get(0))
        .optional()?;
    let Some(version) = version else {
        return Ok(None);
    };
    let mut stmt = c.prepare_cached(
        "SELECT kid, sealed, created_at_ms, retire_at_ms FROM ring_keys WHERE kind = ?1 \
         ORDER BY kid",
    )?;
    let keys = stmt
        .query_map(params![kind as i32], |row| {
            Ok(StoredKey {
                kid: row.get(0)?,
                sealed: row.get(1)?,
                created_at_ms: row.get(2)?,
                retire_at_ms: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(KeyRingRecord {
        kind,
        version: u64::try_from(version).unwrap_or_default(),
        keys,
    }))
}

fn put(c: &Connection, ring: &KeyRingRecord) -> StoreResult<bool> {
    let kind = ring.kind as i32;
    let moved = if ring.version == 1 {
        c.prepare_cached(
            "INSERT INTO key_rings (kind, version) VALUES (?1, 1) ON CONFLICT DO NOTHING",
        )?
        .execute(params![kind])?
    } else {
        c.prepare_cached("UPDATE key_rings SET version = ?2 WHERE kind = ?1 AND version = ?3")?
            .execute(params![
                kind,
                sql_u64(ring.version),
                sql_u64(ring.version.saturating_sub(1))
            ])?
    };
    if moved == 0 {
        return Ok(false);
    }
    c.prepare_cached("DELETE FROM ring_keys WHERE kind = ?1")?
        .execute(params![kind])?;
    let mut insert = c.prepare_cached(
        "INSERT INTO ring_keys (kind, kid, sealed, created_at_ms, retire_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for key in &ring.keys {
        insert.execute(params![
            kind,
            key.kid,
            key.sealed,
            key.created_at_ms,
            key.retire_at_ms
        ])?;
    }
    Ok(true)
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn key_ring(&self, kind: pb::KeyKind) -> StoreResult<Option<KeyRingRecord>> {
        self.read(move |c| ring(c, kind)).await
    }

    async fn put_key_ring(&self, ring: KeyRingRecord) -> StoreResult<bool> {
        self.write(move |c| put(c, &ring)).await
    }
}
