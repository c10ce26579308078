//! Who may connect: the SQL behind [`AccessStore`](crate::store::AccessStore), with its trait
//! implementation beside it. A rule row keeps the wire's `AccessRule` as a blob under its kind
//! and range; allow-list mode is the `allow_list` row of `server_settings`.

use async_trait::async_trait;
use chatproto::pb;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::convert::{decode_blob, encode_blob};
use crate::store::{AccessStore, StoreError, StoreResult};

/// The `server_settings` row of allow-list mode.
const ALLOW_LIST: &str = "allow_list";

fn put(c: &Connection, rule: &pb::AccessRule) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO access_rules (kind, cidr, expires_at_ms, body) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (kind, cidr) DO UPDATE SET \
           expires_at_ms = excluded.expires_at_ms, body = excluded.body",
    )?
    .execute(params![
        rule.kind,
        rule.cidr,
        rule.expires_at_ms,
        encode_blob(rule)
    ])?;
    Ok(())
}

fn delete(c: &Connection, kind: pb::AccessRuleKind, cidr: &str) -> StoreResult<()> {
    let deleted = c
        .prepare_cached("DELETE FROM access_rules WHERE kind = ?1 AND cidr = ?2")?
        .execute(params![kind as i32, cidr])?;
    if deleted == 0 {
        return Err(StoreError::NotFound("access rule"));
    }
    Ok(())
}

fn list(c: &Connection) -> StoreResult<Vec<pb::AccessRule>> {
    let mut stmt = c.prepare_cached("SELECT body FROM access_rules ORDER BY kind, cidr")?;
    let rows = stmt.query_map([], |row| decode_blob::<pb::AccessRule>(row, 0))?;
    let mut rules = Vec::new();
    for row in rows {
        rules.push(row?.unwrap_or_default());
    }
    Ok(rules)
}

fn delete_expired(c: &Connection, now_ms: i64) -> StoreResult<u64> {
    let deleted = c
        .prepare_cached("DELETE FROM access_rules WHERE expires_at_ms > 0 AND expires_at_ms <= ?1")?
        .execute(params![now_ms])?;
    Ok(deleted as u64)
}

fn mode(c: &Connection) -> StoreResult<bool> {
    let value: Option<i64> = c
        .prepare_cached("SELECT value FROM server_settings WHERE name = ?1")?
        .query_row(params![ALLOW_LIST], |row| row.get(0))
        .optional()?;
    Ok(value.is_some_and(|v| v != 0))
}

fn set_mode(c: &Connection, on: bool) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO server_settings (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![ALLOW_LIST, i64::from(on)])?;
    Ok(())
}

#[async_trait]
impl AccessStore for SqliteStore {
    async fn put_access_rule(&self, rule: pb::AccessRule) -> StoreResult<()> {
        self.write(move |c| put(c, &rule)).await
    }

    async fn delete_access_rule(&self, kind: pb::AccessRuleKind, cidr: &str) -> StoreResult<()> {
        let cidr = cidr.to_owned();
        self.write(move |c| delete(c, kind, &cidr)).await
    }

    async fn access_rules(&self) -> StoreResult<Vec<pb::AccessRule>> {
        self.read(list).await
    }

    async fn delete_expired_access_rules(&self, now_ms: i64) -> StoreResult<u64> {
        self.write(move |c| delete_expired(c, now_ms)).await
    }

    async fn allow_list_mode(&self) -> StoreResult<bool> {
        self.read(mode).await
    }

    async fn set_allow_list_mode(&self, on: bool) -> StoreResult<()> {
        self.write(move |c| set_mode(c, on)).await
    }
}
