//! The admin audit log: the SQL behind [`AuditStore`](crate::store::AuditStore), with its trait
//! implementation beside it.

use async_trait::async_trait;
use rusqlite::{Connection, Row, params};

use super::SqliteStore;
use super::convert::{get_enum, get_u64, sql_u64};
use crate::store::{AuditEntry, AuditQuery, AuditStore, NewAuditEntry, StoreResult};

fn append(c: &Connection, entry: NewAuditEntry) -> StoreResult<AuditEntry> {
    c.prepare_cached(
        "INSERT INTO audit_log (at_ms, actor_id, address, action, subject, detail, outcome) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        entry.at_ms,
        sql_u64(entry.actor_id),
        entry.address,
        entry.action,
        entry.subject,
        entry.detail,
        entry.outcome as i32
    ])?;
    let id = u64::try_from(c.last_insert_rowid()).unwrap_or(0);
    Ok(AuditEntry { id, entry })
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: get_u64(row, 0)?,
        entry: NewAuditEntry {
            at_ms: row.get(1)?,
            actor_id: get_u64(row, 2)?,
            address: row.get(3)?,
            action: row.get(4)?,
            subject: row.get(5)?,
            detail: row.get(6)?,
            outcome: get_enum(row, 7)?,
        },
    })
}

fn entries(c: &Connection, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at_ms, actor_id, address, action, subject, detail, outcome FROM audit_log \
         WHERE (?1 IS NULL OR actor_id = ?1) AND (?2 IS NULL OR action = ?2) \
           AND (?3 IS NULL OR subject = ?3) AND (?4 IS NULL OR at_ms >= ?4) \
           AND (?5 IS NULL OR id < ?5) \
         ORDER BY id DESC LIMIT ?6",
    )?;
    let rows = stmt.query_map(
        params![
            q.actor_id.map(sql_u64),
            q.action,
            q.subject,
            q.since_ms,
            q.before_id.map(sql_u64),
            q.limit
        ],
        entry_from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry> {
        self.write(move |c| append(c, entry)).await
    }

    async fn audit_entries(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        self.read(move |c| entries(c, &query)).await
    }
}
