//! The schema as `admin_db_status`, `admin_db_migrate` and `admin_db_ensure_indexes` see it:
//! the version (`PRAGMA user_version`, see `migrations`) and the indexes.
//!
//! The indexes the schema should have are not listed a second time here: they are read from a
//! database the migrations build in memory, so the list is whatever the migrations create.
//! An index missing from the real database (dropped by hand, lost in a repair) is created again
//! from the same statement.

use std::sync::OnceLock;

use rusqlite::Connection;

use super::migrations;
use crate::store::{SchemaStatus, StoreError, StoreResult};

/// `(name, CREATE INDEX statement)` of every index the migrations create, by name.
fn expected() -> StoreResult<&'static [(String, String)]> {
    static EXPECTED: OnceLock<Result<Vec<(String, String)>, String>> = OnceLock::new();
    EXPECTED
        .get_or_init(|| {
            let mut conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
            migrations::migrate(&mut conn).map_err(|e| e.to_string())?;
            indexes(&conn).map_err(|e| e.to_string())
        })
        .as_deref()
        .map_err(|e| StoreError::Internal(format!("cannot derive the schema's indexes: {e}")))
}

/// The explicit indexes of `conn` (not those SQLite makes for keys and FTS shadow tables,
/// which have no statement), by name.
fn indexes(conn: &Connection) -> StoreResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         ORDER BY name",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The expected indexes `conn` lacks, by name.
fn missing(conn: &Connection) -> StoreResult<Vec<(String, String)>> {
    let present: Vec<String> = indexes(conn)?.into_iter().map(|(name, _)| name).collect();
    Ok(expected()?
        .iter()
        .filter(|(name, _)| !present.contains(name))
        .cloned()
        .collect())
}

/// Creates the expected indexes `conn` lacks; returns their names. Only for a database at the
/// latest version (the statements are of that schema).
pub(super) fn ensure_indexes(conn: &Connection) -> StoreResult<Vec<String>> {
    let mut created = Vec::new();
    for (name, sql) in missing(conn)? {
        conn.execute_batch(&sql)
            .map_err(|e| StoreError::Internal(format!("cannot create index {name}: {e}")))?;
        created.push(name);
    }
    Ok(created)
}

/// The schema of `conn` now, after a call that started at `version_before` and did `applied`
/// and `created`.
pub(super) fn status(
    conn: &Connection,
    version_before: u32,
    applied: Vec<String>,
    indexes_created: Vec<String>,
) -> StoreResult<SchemaStatus> {
    let expected = expected()?;
    Ok(SchemaStatus {
        version_before,
        version: migrations::current_version(conn)?,
        latest_version: migrations::latest_version(),
        applied,
        indexes_created,
        indexes: u32::try_from(expected.len()).unwrap_or(u32::MAX),
        indexes_missing: missing(conn)?.into_iter().map(|(name, _)| name).collect(),
    })
}

/// `admin_db_migrate` in the writer's transaction: the missing migrations, then the indexes.
pub(super) fn migrate(conn: &Connection) -> StoreResult<SchemaStatus> {
    let before = migrations::current_version(conn)?;
    let applied = migrations::migrate_in(conn)?;
    let created = ensure_indexes(conn)?;
    status(conn, before, applied, created)
}

/// `admin_db_ensure_indexes` in the writer's transaction.
pub(super) fn ensure(conn: &Connection) -> StoreResult<SchemaStatus> {
    let before = migrations::current_version(conn)?;
    let created = ensure_indexes(conn)?;
    status(conn, before, Vec::new(), created)
}

/// `admin_db_status` on a read connection.
pub(super) fn read_status(conn: &Connection) -> StoreResult<SchemaStatus> {
    let before = migrations::current_version(conn)?;
    status(conn, before, Vec::new(), Vec::new())
}
