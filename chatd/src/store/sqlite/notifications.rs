//! The notification center: the SQL behind
//! [`NotificationStore`](crate::store::NotificationStore), with its trait implementation beside
//! it. A row keeps the wire's `Notification` as a blob, with the id and read flag as columns
//! (the blob's own are not used).

use async_trait::async_trait;
use chatproto::pb;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::convert::{decode_blob, encode_blob, get_u64, json_ids, sql_u64};
use crate::store::{
    NotificationQuery, NotificationSet, NotificationStore, StoreError, StoreResult,
};

fn append(
    c: &Connection,
    user_id: u64,
    mut n: pb::Notification,
    keep: u32,
) -> StoreResult<pb::Notification> {
    n.id = 0;
    n.read = false;
    let user = sql_u64(user_id);
    c.prepare_cached("INSERT INTO notifications (user_id, read, body) VALUES (?1, 0, ?2)")?
        .execute(params![user, encode_blob(&n)])?;
    n.id = u64::try_from(c.last_insert_rowid()).unwrap_or(0);
    // Keep the newest `keep`: everything at or below the (keep+1)-th newest id goes.
    c.prepare_cached(
        "DELETE FROM notifications WHERE user_id = ?1 AND id <= \
           (SELECT id FROM notifications WHERE user_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    )?
    .execute(params![user, keep])?;
    Ok(n)
}

/// [`append`] for each of `batch`, in the one transaction of the write.
fn append_all(
    c: &Connection,
    batch: Vec<(u64, pb::Notification)>,
    keep: u32,
) -> StoreResult<Vec<pb::Notification>> {
    batch
        .into_iter()
        .map(|(user_id, n)| append(c, user_id, n, keep))
        .collect()
}

/// A copy of `n` for every active user, in the one transaction of the write; then the trim of
/// [`append`] for each of them, driven by the users (an index seek each), not by a scan of every
/// notification.
fn broadcast(c: &Connection, mut n: pb::Notification, keep: u32) -> StoreResult<Vec<(u64, u64)>> {
    n.id = 0;
    n.read = false;
    let mut recorded = c
        .prepare_cached(
            "INSERT INTO notifications (user_id, read, body) \
             SELECT id, 0, ?1 FROM users WHERE deleted = 0 AND disabled = 0 ORDER BY id \
             RETURNING user_id, id",
        )?
        .query_map(params![encode_blob(&n)], |row| {
            Ok((get_u64(row, 0)?, get_u64(row, 1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    recorded.sort_unstable();
    c.prepare_cached(
        "WITH cut AS ( \
           SELECT u.id AS user_id, \
             (SELECT id FROM notifications WHERE user_id = u.id \
              ORDER BY id DESC LIMIT 1 OFFSET ?1) AS below \
           FROM users u WHERE u.deleted = 0 AND u.disabled = 0) \
         DELETE FROM notifications WHERE id IN ( \
           SELECT n.id FROM cut JOIN notifications n \
             ON n.user_id = cut.user_id AND n.id <= cut.below)",
    )?
    .execute(params![keep])?;
    Ok(recorded)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<pb::Notification> {
    let mut n: pb::Notification = decode_blob(row, 2)?.unwrap_or_default();
    n.id = get_u64(row, 0)?;
    n.read = row.get(1)?;
    Ok(n)
}

fn list(c: &Connection, q: &NotificationQuery) -> StoreResult<Vec<pb::Notification>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, read, body FROM notifications \
         WHERE user_id = ?1 AND (?2 = 0 OR read = 0) AND (?3 IS NULL OR id < ?3) \
         ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            sql_u64(q.user_id),
            q.unread_only,
            q.before_id.map(sql_u64),
            q.limit
        ],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The `WHERE` of a [`NotificationSet`] for `user_id` (?1) and the set's parameter (?2).
fn set_filter(which: &NotificationSet) -> (&'static str, rusqlite::types::Value) {
    use rusqlite::types::Value;
    match which {
        NotificationSet::Ids(ids) => (
            "user_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
            Value::Text(json_ids(ids)),
        ),
        NotificationSet::UpTo(id) => ("user_id = ?1 AND id <= ?2", Value::Integer(sql_u64(*id))),
    }
}

fn mark_read(c: &Connection, user_id: u64, which: &NotificationSet) -> StoreResult<u64> {
    let (filter, arg) = set_filter(which);
    let changed = c
        .prepare_cached(&format!(
            "UPDATE notifications SET read = 1 WHERE {filter} AND read = 0"
        ))?
        .execute(params![sql_u64(user_id), arg])?;
    Ok(changed as u64)
}

fn delete(c: &Connection, user_id: u64, which: &NotificationSet) -> StoreResult<u64> {
    let (filter, arg) = set_filter(which);
    let deleted = c
        .prepare_cached(&format!("DELETE FROM notifications WHERE {filter}"))?
        .execute(params![sql_u64(user_id), arg])?;
    Ok(deleted as u64)
}

pub(super) fn unread(c: &Connection, user_id: u64) -> StoreResult<u64> {
    let n: i64 = c
        .prepare_cached("SELECT count(*) FROM notifications WHERE user_id = ?1 AND read = 0")?
        .query_row(params![sql_u64(user_id)], |row| row.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

fn prefs(c: &Connection, user_id: u64) -> StoreResult<Option<pb::NotificationPrefs>> {
    let found = c
        .prepare_cached("SELECT prefs FROM notification_prefs WHERE user_id = ?1")?
        .query_row(params![sql_u64(user_id)], |row| decode_blob(row, 0))
        .optional()?;
    Ok(found.flatten())
}

fn prefs_of(c: &Connection, user_ids: &[u64]) -> StoreResult<Vec<(u64, pb::NotificationPrefs)>> {
    let mut stmt = c.prepare_cached(
        "SELECT user_id, prefs FROM notification_prefs \
         WHERE user_id IN (SELECT value FROM json_each(?1)) ORDER BY user_id",
    )?;
    let rows = stmt.query_map(params![json_ids(user_ids)], |row| {
        Ok((get_u64(row, 0)?, decode_blob(row, 1)?.unwrap_or_default()))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn set_prefs(c: &Connection, user_id: u64, prefs: &pb::NotificationPrefs) -> StoreResult<()> {
    let exists: bool = c
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1 AND deleted = 0)")?
        .query_row(params![sql_u64(user_id)], |row| row.get(0))?;
    if !exists {
        return Err(StoreError::NotFound("user"));
    }
    c.prepare_cached(
        "INSERT INTO notification_prefs (user_id, prefs) VALUES (?1, ?2) \
         ON CONFLICT (user_id) DO UPDATE SET prefs = excluded.prefs",
    )?
    .execute(params![sql_u64(user_id), encode_blob(prefs)])?;
    Ok(())
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn append_notification(
        &self,
        user_id: u64,
        n: pb::Notification,
        keep: u32,
    ) -> StoreResult<pb::Notification> {
        self.write(move |c| append(c, user_id, n, keep)).await
    }

    async fn append_notifications(
        &self,
        batch: Vec<(u64, pb::Notification)>,
        keep: u32,
    ) -> StoreResult<Vec<pb::Notification>> {
        self.write(move |c| append_all(c, batch, keep)).await
    }

    async fn broadcast_notification(
        &self,
        n: pb::Notification,
        keep: u32,
    ) -> StoreResult<Vec<(u64, u64)>> {
        self.write(move |c| broadcast(c, n, keep)).await
    }

    async fn notifications(&self, query: NotificationQuery) -> StoreResult<Vec<pb::Notification>> {
        self.read(move |c| list(c, &query)).await
    }

    async fn mark_notifications_read(
        &self,
        user_id: u64,
        which: NotificationSet,
    ) -> StoreResult<u64> {
        self.write(move |c| mark_read(c, user_id, &which)).await
    }

    async fn delete_notifications(&self, user_id: u64, which: NotificationSet) -> StoreResult<u64> {
        self.write(move |c| delete(c, user_id, &which)).await
    }

    async fn unread_notifications(&self, user_id: u64) -> StoreResult<u64> {
        self.read(move |c| unread(c, user_id)).await
    }

    async fn notification_prefs(&self, user_id: u64) -> StoreResult<Option<pb::NotificationPrefs>> {
        self.read(move |c| prefs(c, user_id)).await
    }

    async fn notification_prefs_of(
        &self,
        user_ids: &[u64],
    ) -> StoreResult<Vec<(u64, pb::NotificationPrefs)>> {
        let user_ids = user_ids.to_vec();
        self.read(move |c| prefs_of(c, &user_ids)).await
    }

    async fn set_notification_prefs(
        &self,
        user_id: u64,
        prefs: pb::NotificationPrefs,
    ) -> StoreResult<()> {
        self.write(move |c| set_prefs(c, user_id, &prefs)).await
    }
}
