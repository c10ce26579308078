//! Accounts: the SQL behind [`UserStore`](crate::store::UserStore).

use async_trait::async_trait;
use chatproto::pb;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::convert::{get_enum, get_u64, json_ids, sql_u64};
use crate::store::{
    ConflictKind, NewUser, ProfilePatch, StoreError, StoreResult, UserRecord, UserStore,
};

pub(super) const USER_COLUMNS: &str = "id, username, email, password_hash, display_name, bio, \
     avatar_file_id, status, last_seen_at_ms, role, disabled, deleted, created_at_ms, email_verified";

pub(super) fn user_from_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: get_u64(row, 0)?,
        username: row.get(1)?,
        email: row.get(2)?,
        password_hash: row.get(3)?,
        display_name: row.get(4)?,
        bio: row.get(5)?,
        avatar_file_id: row.get(6)?,
        status: get_enum(row, 7)?,
        last_seen_at_ms: row.get(8)?,
        role: get_enum(row, 9)?,
        disabled: row.get(10)?,
        deleted: row.get(11)?,
        created_at_ms: row.get(12)?,
        email_verified: row.get(13)?,
    })
}

/// Fails with `NotFound("user")` unless the user exists (deleted users exist).
pub(super) fn ensure_user(c: &Connection, id: u64) -> StoreResult<()> {
    let found = c
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .exists([sql_u64(id)])?;
    if found {
        Ok(())
    } else {
        Err(StoreError::NotFound("user"))
    }
}

pub(super) fn create_user(c: &Connection, new: &NewUser) -> StoreResult<UserRecord> {
    let username = new.username.to_lowercase();
    if user_by_username(c, &username)?.is_some() {
        return Err(StoreError::Conflict(ConflictKind::UsernameTaken));
    }
    let sql = format!(
        "INSERT INTO users (username, email, password_hash, status, role, created_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING {USER_COLUMNS}"
    );
    Ok(c.prepare_cached(&sql)?.query_row(
        params![
            username,
            new.email,
            new.password_hash,
            pb::UserStatus::Online as i32,
            new.role as i32,
            new.now_ms
        ],
        user_from_row,
    )?)
}

pub(super) fn user(c: &Connection, id: u64) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([sql_u64(id)], user_from_row)
        .optional()?)
}

pub(super) fn user_by_username(c: &Connection, username: &str) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1");
    Ok(c.prepare_cached(&sql)?
        .query_row([username.to_lowercase()], user_from_row)
        .optional()?)
}

pub(super) fn users(c: &Connection, ids: &[u64]) -> StoreResult<Vec<UserRecord>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([json_ids(ids)], user_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn update_profile(
    c: &Connection,
    id: u64,
    patch: &ProfilePatch,
) -> StoreResult<UserRecord> {
    let sql = format!(
        "UPDATE users SET \
             display_name = coalesce(?2, display_name), \
             display_name_fold = coalesce(?3, display_name_fold), \
             bio = coalesce(?4, bio), \
             avatar_file_id = coalesce(?5, avatar_file_id), \
             status = coalesce(?6, status) \
         WHERE id = ?1 AND deleted = 0 RETURNING {USER_COLUMNS}"
    );
    c.prepare_cached(&sql)?
        .query_row(
            params![
                sql_u64(id),
                patch.display_name,
                patch.display_name.as_deref().map(str::to_lowercase),
                patch.bio,
                patch.avatar_file_id,
                patch.status.map(|s| s as i32),
            ],
            user_from_row,
        )
        .optional()?
        .ok_or(StoreError::NotFound("user"))
}

/// Runs an UPDATE on one live (not deleted) user; `NotFound("user")` when it matched nothing.
fn update_live_user(c: &Connection, sql: &str, params: impl rusqlite::Params) -> StoreResult<()> {
    match c.prepare_cached(sql)?.execute(params)? {
        0 => Err(StoreError::NotFound("user")),
        _ => Ok(()),
    }
}

pub(super) fn set_password_hash(
    c: &Connection,
    id: u64,
    hash: &str,
    replacing: Option<&str>,
) -> StoreResult<()> {
    let Some(replacing) = replacing else {
        return update_live_user(
            c,
            "UPDATE users SET password_hash = ?2 WHERE id = ?1 AND deleted = 0",
            params![sql_u64(id), hash],
        );
    };
    match update_live_user(
        c,
        "UPDATE users SET password_hash = ?2 WHERE id = ?1 AND deleted = 0 AND password_hash = ?3",
        params![sql_u64(id), hash, replacing],
    ) {
        Err(StoreError::NotFound(_)) if user(c, id)?.is_some_and(|u| !u.deleted) => {
            Err(StoreError::Conflict(ConflictKind::PasswordChanged))
        }
        other => other,
    }
}

/// `Conflict(NotAdmin)` unless `by` (when given) is an active admin, then `Conflict(LastAdmin)`
/// when `id` is the only one. Called in the same write as the change that would take rights
/// away: the single writer runs one write at a time, so neither the acting admin's role nor the
/// count can change between this check and that change.
fn check_admin_change(c: &Connection, id: u64, by: Option<u64>, removes: bool) -> StoreResult<()> {
    // One read: whether `by` (when given) is an active admin, and whether the change would
    // remove the last active admin (`id` being one and no other left).
    let (by_is_admin, last): (bool, bool) = c
        .prepare_cached(
            "SELECT ?2 IS NULL OR EXISTS (SELECT 1 FROM users \
                        WHERE id = ?2 AND role = ?1 AND disabled = 0 AND deleted = 0), \
                    ?4 AND EXISTS (SELECT 1 FROM users \
                        WHERE id = ?3 AND role = ?1 AND disabled = 0 AND deleted = 0) \
                    AND (SELECT count(*) FROM users \
                        WHERE role = ?1 AND disabled = 0 AND deleted = 0) <= 1",
        )?
        .query_row(
            params![
                pb::Role::Admin as i32,
                by.map(sql_u64),
                sql_u64(id),
                removes
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
    if !by_is_admin {
        Err(StoreError::Conflict(ConflictKind::NotAdmin))
    } else if last {
        Err(StoreError::Conflict(ConflictKind::LastAdmin))
    } else {
        Ok(())
    }
}

pub(super) fn set_role(
    c: &Connection,
    id: u64,
    role: pb::Role,
    by: Option<u64>,
) -> StoreResult<()> {
    check_admin_change(c, id, by, role != pb::Role::Admin)?;
    update_live_user(
        c,
        "UPDATE users SET role = ?2 WHERE id = ?1 AND deleted = 0",
        params![sql_u64(id), role as i32],
    )
}

pub(super) fn set_disabled(
    c: &Connection,
    id: u64,
    disabled: bool,
    by: Option<u64>,
) -> StoreResult<()> {
    check_admin_change(c, id, by, disabled)?;
    update_live_user(
        c,
        "UPDATE users SET disabled = ?2 WHERE id = ?1 AND deleted = 0",
        params![sql_u64(id), disabled],
    )
}

pub(super) fn touch_last_seen(c: &Connection, id: u64, now_ms: i64) -> StoreResult<()> {
    update_live_user(
        c,
        "UPDATE users SET last_seen_at_ms = max(last_seen_at_ms, ?2) WHERE id = ?1 AND deleted = 0",
        params![sql_u64(id), now_ms],
    )
}

pub(super) fn delete_user(
    c: &Connection,
    id: u64,
    now_ms: i64,
    by: Option<u64>,
) -> StoreResult<()> {
    check_admin_change(c, id, by, true)?;
    let changed = c
        .prepare_cached(
            "UPDATE users SET email = '', email_verified = 0, password_hash = '', display_name = '', \
                 display_name_fold = '', bio = '', avatar_file_id = '', status = ?2, \
                 disabled = 1, deleted = 1, deleted_at_ms = coalesce(deleted_at_ms, ?3) \
             WHERE id = ?1",
        )?
        .execute(params![sql_u64(id), pb::UserStatus::Offline as i32, now_ms])?;
    match changed {
        0 => Err(StoreError::NotFound("user")),
        _ => Ok(()),
    }
}

/// `(prefix, its length in characters, the username to start after)` as bound parameters.
fn prefix_params(prefix: &str, after_username: Option<&str>) -> (String, i64, String) {
    let folded = prefix.to_lowercase();
    let len = i64::try_from(folded.chars().count()).unwrap_or(i64::MAX);
    // Every username is non-empty, so "" starts before all of them.
    (folded, len, after_username.unwrap_or("").to_lowercase())
}

pub(super) fn search_users(
    c: &Connection,
    prefix: &str,
    after_username: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<UserRecord>> {
    // substr() compares whole characters, so LIKE wildcards in the prefix have no meaning.
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users \
         WHERE disabled = 0 AND deleted = 0 AND username > ?3 \
           AND (substr(username, 1, ?2) = ?1 OR substr(display_name_fold, 1, ?2) = ?1) \
         ORDER BY username LIMIT ?4"
    );
    let (prefix, len, after) = prefix_params(prefix, after_username);
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![prefix, len, after, limit], user_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn list_users(
    c: &Connection,
    prefix: &str,
    after_username: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<UserRecord>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users \
         WHERE username > ?3 AND substr(username, 1, ?2) = ?1 \
         ORDER BY username LIMIT ?4"
    );
    let (prefix, len, after) = prefix_params(prefix, after_username);
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![prefix, len, after, limit], user_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn count_admins(c: &Connection) -> StoreResult<u64> {
    let n: i64 = c
        .prepare_cached(
            "SELECT count(*) FROM users WHERE role = ?1 AND disabled = 0 AND deleted = 0",
        )?
        .query_row([pb::Role::Admin as i32], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<UserRecord> {
        self.write(move |c| create_user(c, &new)).await
    }

    async fn user(&self, id: u64) -> StoreResult<Option<UserRecord>> {
        self.read_point(move |c| user(c, id)).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let username = username.to_string();
        self.read(move |c| user_by_username(c, &username)).await
    }

    async fn users(&self, ids: &[u64]) -> StoreResult<Vec<UserRecord>> {
        let ids = ids.to_vec();
        self.read(move |c| users(c, &ids)).await
    }

    async fn update_profile(&self, id: u64, patch: ProfilePatch) -> StoreResult<UserRecord> {
        self.write(move |c| update_profile(c, id, &patch)).await
    }

    async fn set_password_hash(
        &self,
        id: u64,
        hash: &str,
        replacing: Option<&str>,
    ) -> StoreResult<()> {
        let hash = hash.to_string();
        let replacing = replacing.map(str::to_string);
        self.write(move |c| set_password_hash(c, id, &hash, replacing.as_deref()))
            .await
    }

    async fn set_role(&self, id: u64, role: pb::Role, by: Option<u64>) -> StoreResult<()> {
        self.write(move |c| set_role(c, id, role, by)).await
    }

    async fn set_disabled(&self, id: u64, disabled: bool, by: Option<u64>) -> StoreResult<()> {
        self.write(move |c| set_disabled(c, id, disabled, by)).await
    }

    async fn delete_user(&self, id: u64, now_ms: i64, by: Option<u64>) -> StoreResult<()> {
        self.write(move |c| delete_user(c, id, now_ms, by)).await
    }

    async fn touch_last_seen(&self, id: u64, now_ms: i64) -> StoreResult<()> {
        self.write(move |c| touch_last_seen(c, id, now_ms)).await
    }

    async fn search_users(
        &self,
        prefix: &str,
        after_username: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        let prefix = prefix.to_string();
        let after = after_username.map(str::to_string);
        self.read(move |c| search_users(c, &prefix, after.as_deref(), limit))
            .await
    }

    async fn list_users(
        &self,
        prefix: &str,
        after_username: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        let prefix = prefix.to_string();
        let after = after_username.map(str::to_string);
        self.read(move |c| list_users(c, &prefix, after.as_deref(), limit))
            .await
    }

    async fn count_admins(&self) -> StoreResult<u64> {
        self.read(count_admins).await
    }
}
