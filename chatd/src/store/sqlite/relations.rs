//! Contacts and blocks: the SQL behind [`RelationStore`](crate::store::RelationStore).
//!
//! Both are one-directional `(owner_id, target_id)` rows in tables of the same shape; the table
//! name is chosen from a fixed enum, never from input.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::convert::{get_u64, sql_u64};
use super::users::ensure_user;
use crate::store::{RelationStore, StoreResult};

/// Which relation table.
#[derive(Debug, Clone, Copy)]
pub(super) enum Relation {
    Contact,
    Block,
}

impl Relation {
    fn table(self) -> &'static str {
        match self {
            Relation::Contact => "contacts",
            Relation::Block => "blocks",
        }
    }
}

/// Adds the relation (a no-op when present). Both users must exist.
pub(super) fn add(c: &Connection, relation: Relation, owner: u64, target: u64) -> StoreResult<()> {
    ensure_user(c, owner)?;
    ensure_user(c, target)?;
    let sql = format!(
        "INSERT OR IGNORE INTO {} (owner_id, target_id) VALUES (?1, ?2)",
        relation.table()
    );
    c.prepare_cached(&sql)?
        .execute(params![sql_u64(owner), sql_u64(target)])?;
    Ok(())
}

/// Removes the relation (a no-op when absent).
pub(super) fn remove(
    c: &Connection,
    relation: Relation,
    owner: u64,
    target: u64,
) -> StoreResult<()> {
    let sql = format!(
        "DELETE FROM {} WHERE owner_id = ?1 AND target_id = ?2",
        relation.table()
    );
    c.prepare_cached(&sql)?
        .execute(params![sql_u64(owner), sql_u64(target)])?;
    Ok(())
}

/// The targets of `owner`, ascending.
pub(super) fn targets(c: &Connection, relation: Relation, owner: u64) -> StoreResult<Vec<u64>> {
    let sql = format!(
        "SELECT target_id FROM {} WHERE owner_id = ?1 ORDER BY target_id",
        relation.table()
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([sql_u64(owner)], |row| get_u64(row, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The owners of a relation to `target`, ascending (served by the `*_by_target` indexes).
pub(super) fn owners(c: &Connection, relation: Relation, target: u64) -> StoreResult<Vec<u64>> {
    let sql = format!(
        "SELECT owner_id FROM {} WHERE target_id = ?1 ORDER BY owner_id",
        relation.table()
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map([sql_u64(target)], |row| get_u64(row, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// True when the relation exists.
pub(super) fn exists(
    c: &Connection,
    relation: Relation,
    owner: u64,
    target: u64,
) -> StoreResult<bool> {
    let sql = format!(
        "SELECT 1 FROM {} WHERE owner_id = ?1 AND target_id = ?2",
        relation.table()
    );
    Ok(c.prepare_cached(&sql)?
        .exists(params![sql_u64(owner), sql_u64(target)])?)
}

#[async_trait]
impl RelationStore for SqliteStore {
    async fn add_contact(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.write(move |c| add(c, Relation::Contact, owner, target))
            .await
    }

    async fn remove_contact(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.write(move |c| remove(c, Relation::Contact, owner, target))
            .await
    }

    async fn contacts(&self, owner: u64) -> StoreResult<Vec<u64>> {
        self.read(move |c| targets(c, Relation::Contact, owner))
            .await
    }

    async fn contact_of(&self, target: u64) -> StoreResult<Vec<u64>> {
        self.read(move |c| owners(c, Relation::Contact, target))
            .await
    }

    async fn block(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.write(move |c| add(c, Relation::Block, owner, target))
            .await
    }

    async fn unblock(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.write(move |c| remove(c, Relation::Block, owner, target))
            .await
    }

    async fn blocked(&self, owner: u64) -> StoreResult<Vec<u64>> {
        self.read(move |c| targets(c, Relation::Block, owner)).await
    }

    async fn blocked_by(&self, target: u64) -> StoreResult<Vec<u64>> {
        self.read(move |c| owners(c, Relation::Block, target)).await
    }

    async fn is_blocked(&self, owner: u64, target: u64) -> StoreResult<bool> {
        self.read(move |c| exists(c, Relation::Block, owner, target))
            .await
    }
}
