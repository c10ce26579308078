//! The schema version of a MongoDB database and its migrations.
//!
//! MongoDB has no schema of its own: what a version names is the collections' indexes and the
//! documents' shapes this code reads. The version is the `schema` document of `meta`; a database
//! that has none is at version 0 (also one written before versions were recorded, whose layout
//! is version 1's: its migration only creates what is missing). Every node runs the missing
//! migrations when it connects; each is idempotent, and the version only moves forward (`$max`),
//! so nodes starting together do no harm. A database newer than this code is refused.

use mongodb::bson::{Document, doc};

use super::{MongoStore, error, indexes};
use crate::store::{SchemaStatus, StoreError, StoreResult};

/// Every migration in order, with what it is about; migration `i` brings the database from
/// version `i` to `i + 1`. Each one's work is in `MongoStore::apply_migration`.
const MIGRATIONS: &[&str] = &["collections and indexes"];

/// The `meta` document holding the version.
const SCHEMA_DOC: &str = "schema";

/// The version this code writes and understands.
pub(super) fn latest_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

impl MongoStore {
    /// The database's schema version (0 when it has none recorded).
    pub(super) async fn schema_version(&self) -> StoreResult<u32> {
        let found: Option<Document> = self
            .c
            .meta
            .find_one(doc! { "_id": SCHEMA_DOC })
            .await
            .map_err(error::map)?;
        let version = found.map_or(Ok(0), |d| {
            d.get_i64("version")
                .or_else(|_| d.get_i32("version").map(i64::from))
                .map_err(|e| error::corrupt("meta", e))
        })?;
        u32::try_from(version)
            .map_err(|_| StoreError::Internal(format!("invalid schema version {version}")))
    }

    /// Runs the missing migrations when `migrate`, then creates the missing indexes; reports
    /// what it did.
    pub(super) async fn bring_up_to_date(&self, migrate: bool) -> StoreResult<SchemaStatus> {
        let before = self.schema_version().await?;
        let latest = latest_version();
        if before > latest {
            return Err(StoreError::Internal(format!(
                "database schema version {before} is newer than this chatd supports ({latest}); \
                 upgrade chatd or use a matching database"
            )));
        }
        let mut applied = Vec::new();
        if migrate {
            for (index, what) in MIGRATIONS.iter().enumerate().skip(before as usize) {
                let target = u32::try_from(index + 1).unwrap_or(u32::MAX);
                self.apply_migration(target).await?;
                self.c
                    .meta
                    .update_one(
                        doc! { "_id": SCHEMA_DOC },
                        doc! { "$max": { "version": i64::from(target) } },
                    )
                    .upsert(true)
                    .await
                    .map_err(error::map)?;
                applied.push(format!("{target}: {what}"));
            }
        }
        let mut created = Vec::new();
        for spec in indexes::missing(&self.db).await? {
            indexes::create(&self.db, spec).await?;
            created.push(spec.1.to_owned());
        }
        self.schema_now(before, applied, created).await
    }

    /// One migration's work.
    async fn apply_migration(&self, version: u32) -> StoreResult<()> {
        match version {
            // The collections come with their first document; their indexes are made here.
            1 => indexes::create_all(&self.db).await,
            other => Err(StoreError::Internal(format!(
                "no migration to version {other}"
            ))),
        }
    }

    /// The schema now, after a call that started at `version_before` and did `applied` and
    /// `created`.
    pub(super) async fn schema_now(
        &self,
        version_before: u32,
        applied: Vec<String>,
        indexes_created: Vec<String>,
    ) -> StoreResult<SchemaStatus> {
        let missing = indexes::missing(&self.db).await?;
        Ok(SchemaStatus {
            version_before,
            version: self.schema_version().await?,
            latest_version: latest_version(),
            applied,
            indexes_created,
            indexes: u32::try_from(indexes::INDEXES.len()).unwrap_or(u32::MAX),
            indexes_missing: missing.iter().map(|spec| spec.1.to_owned()).collect(),
        })
    }
}
