//! Sessions and refresh-token rotation: the SQL behind
//! [`SessionStore`](crate::store::SessionStore).
//!
//! Every refresh token ever issued stays in `refresh_tokens` with a `used` flag, so presenting an
//! old one is recognised as reuse (a stolen token family) rather than as an unknown token, until
//! its session is deleted as dead ([`delete_dead_sessions`]), tokens first, in one transaction.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::convert::{get_u64, json_ids, sql_u64};
use super::users::ensure_user;
use super::{SqliteStore, users};
use crate::store::{
    ConflictKind, DeadSessions, NewSession, RefreshOutcome, SessionRecord, SessionStore,
    StoreError, StoreResult, SweptSessions, UserRecord,
};

const SESSION_COLUMNS: &str =
    "id, user_id, device_name, created_at_ms, last_seen_at_ms, address, revoked_at_ms";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: get_u64(row, 0)?,
        user_id: get_u64(row, 1)?,
        device_name: row.get(2)?,
        created_at_ms: row.get(3)?,
        last_seen_at_ms: row.get(4)?,
        address: row.get(5)?,
        revoked_at_ms: row.get(6)?,
    })
}

fn insert_token(c: &Connection, hash: &str, session_id: u64, now_ms: i64) -> StoreResult<()> {
    let taken = c
        .prepare_cached("SELECT 1 FROM refresh_tokens WHERE hash = ?1")?
        .exists([hash])?;
    if taken {
        return Err(StoreError::Conflict(ConflictKind::RefreshTokenReused));
    }
    c.prepare_cached(
        "INSERT INTO refresh_tokens (hash, session_id, created_at_ms) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![hash, sql_u64(session_id), now_ms])?;
    Ok(())
}

pub(super) fn create_session(c: &Connection, new: &NewSession) -> StoreResult<SessionRecord> {
    ensure_user(c, new.user_id)?;
    if let Some(checked) = &new.checked_hash {
        let (hash, disabled, deleted): (String, bool, bool) = c
            .prepare_cached("SELECT password_hash, disabled, deleted FROM users WHERE id = ?1")?
            .query_row([sql_u64(new.user_id)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
        if &hash != checked || disabled || deleted {
            return Err(StoreError::Conflict(ConflictKind::CredentialsChanged));
        }
    }
    let sql = format!(
        "INSERT INTO sessions (user_id, device_name, address, created_at_ms, last_seen_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?4) RETURNING {SESSION_COLUMNS}"
    );
    let session = c.prepare_cached(&sql)?.query_row(
        params![
            sql_u64(new.user_id),
            new.device_name,
            new.address,
            new.now_ms
        ],
        session_from_row,
    )?;
    insert_token(c, &new.refresh_hash, session.id, new.now_ms)?;
    Ok(session)
}

pub(super) fn session(c: &Connection, id: u64) -> StoreResult<Option<SessionRecord>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([sql_u64(id)], session_from_row)
        .optional()?)
}

pub(super) fn refresh_owner(c: &Connection, presented_hash: &str) -> StoreResult<Option<u64>> {
    Ok(c.prepare_cached(
        "SELECT s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
         WHERE t.hash = ?1",
    )?
    .query_row([presented_hash], |row| get_u64(row, 0))
    .optional()?)
}

pub(super) fn rotate_refresh(
    c: &Connection,
    presented_hash: &str,
    new_hash: &str,
    now_ms: i64,
) -> StoreResult<RefreshOutcome> {
    let found = c
        .prepare_cached(
            "SELECT t.session_id, t.used, s.user_id, s.revoked_at_ms IS NOT NULL, \
                    s.created_at_ms, s.last_seen_at_ms \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = ?1",
        )?
        .query_row([presented_hash], |row| {
            Ok((
                get_u64(row, 0)?,
                row.get::<_, bool>(1)?,
                get_u64(row, 2)?,
                row.get::<_, bool>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    let Some((session_id, used, user_id, revoked, created_at_ms, last_seen_at_ms)) = found else {
        return Ok(RefreshOutcome::Invalid);
    };
    if revoked {
        return Ok(RefreshOutcome::Invalid);
    }
    if used {
        // Someone holds an older token of this family: end the whole family, including the
        // token issued last, which whoever rotated it still holds.
        c.prepare_cached("UPDATE sessions SET revoked_at_ms = ?2 WHERE id = ?1")?
            .execute(params![sql_u64(session_id), now_ms])?;
        c.prepare_cached(
            "UPDATE refresh_tokens SET used = 1, used_at_ms = coalesce(used_at_ms, ?2) \
             WHERE session_id = ?1",
        )?
        .execute(params![sql_u64(session_id), now_ms])?;
        return Ok(RefreshOutcome::Reused {
            session_id,
            user_id,
        });
    }
    if DeadSessions::at(now_ms).expired(created_at_ms, last_seen_at_ms) {
        c.prepare_cached("UPDATE sessions SET revoked_at_ms = ?2 WHERE id = ?1")?
            .execute(params![sql_u64(session_id), now_ms])?;
        return Ok(RefreshOutcome::Expired {
            session_id,
            user_id,
        });
    }
    c.prepare_cached("UPDATE refresh_tokens SET used = 1, used_at_ms = ?2 WHERE hash = ?1")?
        .execute(params![presented_hash, now_ms])?;
    insert_token(c, new_hash, session_id, now_ms)?;
    let sql = format!(
        "UPDATE sessions SET last_seen_at_ms = max(last_seen_at_ms, ?2) WHERE id = ?1 \
         RETURNING {SESSION_COLUMNS}"
    );
    let session = c
        .prepare_cached(&sql)?
        .query_row(params![sql_u64(session_id), now_ms], session_from_row)?;
    Ok(RefreshOutcome::Rotated(session))
}

pub(super) fn touch_session(
    c: &Connection,
    id: u64,
    address: &str,
    now_ms: i64,
) -> StoreResult<()> {
    let changed = c
        .prepare_cached(
            "UPDATE sessions SET address = ?2, last_seen_at_ms = max(last_seen_at_ms, ?3) \
             WHERE id = ?1",
        )?
        .execute(params![sql_u64(id), address, now_ms])?;
    match changed {
        0 => Err(StoreError::NotFound("session")),
        _ => Ok(()),
    }
}

pub(super) fn list_sessions(c: &Connection, user_id: u64) -> StoreResult<Vec<SessionRecord>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions \
         WHERE user_id = ?1 AND revoked_at_ms IS NULL ORDER BY id DESC"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([sql_u64(user_id)], session_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn revoke_session(
    c: &Connection,
    user_id: u64,
    session_id: u64,
    now_ms: i64,
) -> StoreResult<()> {
    let changed = c
        .prepare_cached(
            "UPDATE sessions SET revoked_at_ms = ?3 \
             WHERE id = ?2 AND user_id = ?1 AND revoked_at_ms IS NULL",
        )?
        .execute(params![sql_u64(user_id), sql_u64(session_id), now_ms])?;
    match changed {
        0 => Err(StoreError::NotFound("session")),
        _ => Ok(()),
    }
}

pub(super) fn revoke_user_sessions(
    c: &Connection,
    user_id: u64,
    keep: Option<u64>,
    now_ms: i64,
) -> StoreResult<Vec<u64>> {
    // Session ids start at 1, so 0 keeps nothing.
    let keep = keep.map(sql_u64).unwrap_or(0);
    let mut stmt = c.prepare_cached(
        "UPDATE sessions SET revoked_at_ms = ?3 \
         WHERE user_id = ?1 AND id != ?2 AND revoked_at_ms IS NULL RETURNING id",
    )?;
    let rows = stmt.query_map(params![sql_u64(user_id), keep, now_ms], |row| {
        get_u64(row, 0)
    })?;
    let mut ids = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// Deletes up to `limit` dead sessions with their refresh tokens, in the caller's transaction.
/// Each way of being dead is one range of an index of migration 11, read for at most `limit`
/// ids, so a batch reads little more than it deletes however large the backlog.
pub(super) fn delete_dead_sessions(
    c: &Connection,
    dead: &DeadSessions,
    limit: u32,
) -> StoreResult<SweptSessions> {
    let mut ids = c
        .prepare_cached(
            "SELECT id FROM (SELECT id FROM sessions WHERE revoked_at_ms <= ?1 LIMIT ?4) \
             UNION SELECT id FROM (SELECT id FROM sessions \
                 WHERE max(last_seen_at_ms, created_at_ms) <= ?2 LIMIT ?4) \
             UNION SELECT id FROM (SELECT id FROM sessions WHERE created_at_ms <= ?3 LIMIT ?4) \
             LIMIT ?4",
        )?
        .query_map(
            params![
                dead.revoked_by_ms,
                dead.last_used_by_ms,
                dead.created_by_ms,
                limit
            ],
            |row| get_u64(row, 0),
        )?
        .collect::<rusqlite::Result<Vec<u64>>>()?;
    ids.sort_unstable();
    let list = json_ids(&ids);
    c.prepare_cached(
        "DELETE FROM refresh_tokens WHERE session_id IN (SELECT value FROM json_each(?1))",
    )?
    .execute([&list])?;
    let deleted = c
        .prepare_cached("DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?1))")?
        .execute([&list])?;
    Ok(SweptSessions {
        gone: ids,
        deleted: deleted as u64,
    })
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, new: NewSession) -> StoreResult<SessionRecord> {
        self.write(move |c| create_session(c, &new)).await
    }

    async fn session(&self, id: u64) -> StoreResult<Option<SessionRecord>> {
        self.read_point(move |c| session(c, id)).await
    }

    async fn session_and_user(
        &self,
        session_id: u64,
        user_id: u64,
    ) -> StoreResult<(Option<SessionRecord>, Option<UserRecord>)> {
        self.read_point(move |c| Ok((session(c, session_id)?, users::user(c, user_id)?)))
            .await
    }

    async fn refresh_owner(&self, presented_hash: &str) -> StoreResult<Option<u64>> {
        let presented = presented_hash.to_string();
        self.read_point(move |c| refresh_owner(c, &presented)).await
    }

    async fn rotate_refresh(
        &self,
        presented_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> StoreResult<RefreshOutcome> {
        let presented = presented_hash.to_string();
        let new_hash = new_hash.to_string();
        self.write(move |c| rotate_refresh(c, &presented, &new_hash, now_ms))
            .await
    }

    async fn touch_session(&self, id: u64, address: &str, now_ms: i64) -> StoreResult<()> {
        let address = address.to_string();
        self.write(move |c| touch_session(c, id, &address, now_ms))
            .await
    }

    async fn list_sessions(&self, user_id: u64) -> StoreResult<Vec<SessionRecord>> {
        self.read(move |c| list_sessions(c, user_id)).await
    }

    async fn revoke_session(&self, user_id: u64, session_id: u64, now_ms: i64) -> StoreResult<()> {
        self.write(move |c| revoke_session(c, user_id, session_id, now_ms))
            .await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: u64,
        keep: Option<u64>,
        now_ms: i64,
    ) -> StoreResult<Vec<u64>> {
        self.write(move |c| revoke_user_sessions(c, user_id, keep, now_ms))
            .await
    }

    async fn delete_dead_sessions(
        &self,
        dead: DeadSessions,
        limit: u32,
    ) -> StoreResult<SweptSessions> {
        self.write(move |c| delete_dead_sessions(c, &dead, limit))
            .await
    }
}
