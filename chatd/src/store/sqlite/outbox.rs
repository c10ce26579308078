//! The outbox: the SQL behind [`OutboxStore`](crate::store::OutboxStore), with its trait
//! implementation beside it. Claims are one `UPDATE ... RETURNING` on the single writer, so two
//! claimers (nodes sharing the database) never get the same entry while its lease runs.

use async_trait::async_trait;
use chatproto::pb;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::convert::{get_u64, json_ids, sql_u64};
use crate::store::{
    DeliveryOutcome, DeliveryRecord, DeliverySet, NewDelivery, OutboxStore, StoreError, StoreResult,
};

const COLUMNS: &str = "id, kind, key, user_id, payload, attempts, due_ms, created_at_ms, \
                       last_error, dead, dead_at_ms";

fn from_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    let kind: i32 = row.get(1)?;
    let kind = pb::DeliveryKind::try_from(kind).map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Integer,
            format!("unknown delivery kind {kind}").into(),
        )
    })?;
    Ok(DeliveryRecord {
        id: get_u64(row, 0)?,
        kind,
        key: row.get(2)?,
        user_id: get_u64(row, 3)?,
        payload: row.get(4)?,
        attempts: u32::try_from(get_u64(row, 5)?).unwrap_or(u32::MAX),
        due_ms: row.get(6)?,
        created_at_ms: row.get(7)?,
        last_error: row.get(8)?,
        dead: row.get(9)?,
        dead_at_ms: row.get(10)?,
    })
}

fn by_key(c: &Connection, key: &str) -> StoreResult<Option<DeliveryRecord>> {
    Ok(
        c.prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE key = ?1"))?
            .query_row(params![key], from_row)
            .optional()?,
    )
}

fn enqueue(c: &Connection, new: &NewDelivery) -> StoreResult<(DeliveryRecord, bool)> {
    // The writer runs one command at a time, so the read and the insert see no other writer.
    if let Some(found) = by_key(c, &new.key)? {
        return Ok((found, false));
    }
    c.prepare_cached(
        "INSERT INTO outbox (kind, key, user_id, payload, due_ms, created_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        new.kind as i32,
        new.key,
        sql_u64(new.user_id),
        new.payload,
        new.due_ms,
        new.now_ms
    ])?;
    let stored = by_key(c, &new.key)?
        .ok_or_else(|| StoreError::Internal("queued delivery not found".into()))?;
    Ok((stored, true))
}

fn claim(
    c: &Connection,
    holder: u64,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
) -> StoreResult<Vec<DeliveryRecord>> {
    let mut stmt = c.prepare_cached(&format!(
        "UPDATE outbox SET holder = ?1, lease_until_ms = ?3 WHERE id IN \
           (SELECT id FROM outbox WHERE dead = 0 AND due_ms <= ?2 AND lease_until_ms <= ?2 \
            ORDER BY due_ms, id LIMIT ?4) \
         RETURNING {COLUMNS}"
    ))?;
    let rows = stmt.query_map(
        params![
            sql_u64(holder),
            now_ms,
            now_ms.saturating_add(lease_ms),
            limit
        ],
        from_row,
    )?;
    let mut claimed: Vec<DeliveryRecord> = rows.collect::<rusqlite::Result<_>>()?;
    claimed.sort_by_key(|d| (d.due_ms, d.id));
    Ok(claimed)
}

fn finish(c: &Connection, id: u64, holder: u64) -> StoreResult<()> {
    let deleted = c
        .prepare_cached("DELETE FROM outbox WHERE id = ?1 AND holder = ?2 AND dead = 0")?
        .execute(params![sql_u64(id), sql_u64(holder)])?;
    if deleted == 0 {
        return Err(StoreError::NotFound("delivery"));
    }
    Ok(())
}

fn release(
    c: &Connection,
    id: u64,
    holder: u64,
    outcome: &DeliveryOutcome,
    now_ms: i64,
) -> StoreResult<()> {
    let (id, holder) = (sql_u64(id), sql_u64(holder));
    let changed = match outcome {
        DeliveryOutcome::Retry { at_ms, error } => c
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, due_ms = ?3, last_error = ?4, \
                 holder = 0, lease_until_ms = 0 WHERE id = ?1 AND holder = ?2 AND dead = 0",
            )?
            .execute(params![id, holder, at_ms, error])?,
        DeliveryOutcome::Postpone { at_ms } => c
            .prepare_cached(
                "UPDATE outbox SET due_ms = ?3, holder = 0, lease_until_ms = 0 \
                 WHERE id = ?1 AND holder = ?2 AND dead = 0",
            )?
            .execute(params![id, holder, at_ms])?,
        DeliveryOutcome::Dead { error } => c
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?3, dead = 1, \
                 dead_at_ms = ?4, key = 'dead:' || id, holder = 0, lease_until_ms = 0 \
                 WHERE id = ?1 AND holder = ?2 AND dead = 0",
            )?
            .execute(params![id, holder, error, now_ms])?,
    };
    if changed == 0 {
        return Err(StoreError::NotFound("delivery"));
    }
    Ok(())
}

fn dead(c: &Connection, after_id: Option<u64>, limit: u32) -> StoreResult<Vec<DeliveryRecord>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE dead = 1 AND id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![sql_u64(after_id.unwrap_or(0)), limit], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The `WHERE` of a [`DeliverySet`] over dead letters, with its parameter as `?1`.
fn set_filter(which: &DeliverySet) -> (&'static str, String) {
    match which {
        DeliverySet::Ids(ids) => (
            "dead = 1 AND id IN (SELECT value FROM json_each(?1))",
            json_ids(ids),
        ),
        DeliverySet::All => ("dead = 1 AND ?1 = ?1", String::new()),
    }
}

fn retry(c: &Connection, which: &DeliverySet, now_ms: i64) -> StoreResult<u64> {
    let (filter, arg) = set_filter(which);
    let changed = c
        .prepare_cached(&format!(
            "UPDATE outbox SET dead = 0, dead_at_ms = 0, attempts = 0, due_ms = ?2, \
             key = 'retry:' || id, holder = 0, lease_until_ms = 0 WHERE {filter}"
        ))?
        .execute(params![arg, now_ms])?;
    Ok(changed as u64)
}

fn purge(c: &Connection, which: &DeliverySet) -> StoreResult<u64> {
    let (filter, arg) = set_filter(which);
    let deleted = c
        .prepare_cached(&format!("DELETE FROM outbox WHERE {filter}"))?
        .execute(params![arg])?;
    Ok(deleted as u64)
}

fn mark(c: &Connection, user_id: u64) -> StoreResult<u64> {
    let found: Option<i64> = c
        .prepare_cached("SELECT up_to FROM digest_marks WHERE user_id = ?1")?
        .query_row(params![sql_u64(user_id)], |row| row.get(0))
        .optional()?;
    Ok(found.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

fn set_mark(c: &Connection, user_id: u64, up_to: u64) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO digest_marks (user_id, up_to) VALUES (?1, ?2) \
         ON CONFLICT (user_id) DO UPDATE SET up_to = max(up_to, excluded.up_to)",
    )?
    .execute(params![sql_u64(user_id), sql_u64(up_to)])?;
    Ok(())
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn enqueue_delivery(&self, new: NewDelivery) -> StoreResult<(DeliveryRecord, bool)> {
        self.write(move |c| enqueue(c, &new)).await
    }

    async fn claim_deliveries(
        &self,
        holder: u64,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.write(move |c| claim(c, holder, now_ms, lease_ms, limit))
            .await
    }

    async fn finish_delivery(&self, id: u64, holder: u64) -> StoreResult<()> {
        self.write(move |c| finish(c, id, holder)).await
    }

    async fn release_delivery(
        &self,
        id: u64,
        holder: u64,
        outcome: DeliveryOutcome,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.write(move |c| release(c, id, holder, &outcome, now_ms))
            .await
    }

    async fn dead_letters(
        &self,
        after_id: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        self.read(move |c| dead(c, after_id, limit)).await
    }

    async fn retry_dead_letters(&self, which: DeliverySet, now_ms: i64) -> StoreResult<u64> {
        self.write(move |c| retry(c, &which, now_ms)).await
    }

    async fn purge_dead_letters(&self, which: DeliverySet) -> StoreResult<u64> {
        self.write(move |c| purge(c, &which)).await
    }

    async fn digest_mark(&self, user_id: u64) -> StoreResult<u64> {
        self.read(move |c| mark(c, user_id)).await
    }

    async fn set_digest_mark(&self, user_id: u64, up_to: u64) -> StoreResult<()> {
        self.write(move |c| set_mark(c, user_id, up_to)).await
    }
}
