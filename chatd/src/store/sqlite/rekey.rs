//! Changing the key of the encrypted database while it serves (a master-key rotation,
//! `auth::master_key`): `PRAGMA rekey` on the writer between two batches, with every read
//! connection and the checkpointer's replaced by one opened with the new key.

use std::sync::PoisonError;

use async_trait::async_trait;

use super::cipher::{DatabaseKey, OpenError};
use super::{SqliteStore, checkpointer, open_readers};
use crate::store::{StoreError, StoreResult};

impl SqliteStore {
    /// The database's key now.
    pub(super) fn key(&self) -> Option<DatabaseKey> {
        self.key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Gives the encrypted database the key `new` while it serves (a master-key rotation,
    /// `ops::master_key`): waits for a running backup (reads go on), then for the reads in
    /// flight (later ones wait meanwhile), rewrites every page under the new key on the writer
    /// (`PRAGMA rekey`, between two write batches, committed like one), and replaces the read
    /// connections and the checkpointer's by ones opened with it. Reads and writes stall for
    /// as long as the rewrite takes. False when `new` is the key already.
    pub async fn rekey(&self, new: DatabaseKey) -> StoreResult<bool> {
        match self.key() {
            None => {
                return Err(StoreError::Internal(
                    "the database is plain: a key is given to it by chatd db encrypt".into(),
                ));
            }
            Some(key) if key == new => return Ok(false),
            Some(_) => {}
        }
        // A backup may be copying for minutes: waiting for it while holding read permits would
        // stop every read meanwhile (the semaphore is fair: a queued rekey holds up later reads).
        let _copies_done = self.key_in_use.lock().await;
        let _paused = self.readers.hold(self.readers.size()).await?;
        // Until it has a connection with the new key (or the key stayed), the checkpointer
        // starts no round.
        let checkpoints = self.checkpointer.pause();
        let literal = new.sql_literal();
        self.writer
            .alone(move |c| {
                c.execute_batch(&format!("PRAGMA rekey = \"{literal}\";"))?;
                // The new key must open the database before anything else is written.
                c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
                Ok(())
            })
            .await?;
        *self.key.write().unwrap_or_else(PoisonError::into_inner) = Some(new.clone());
        let (path, busy, count) = (self.path.clone(), self.busy_timeout, self.readers.size());
        let durability = self.durability;
        let (reads, checkpoint) = tokio::task::spawn_blocking(move || {
            let reads = open_readers(&path, Some(&new), count, busy)?;
            let checkpoint = checkpointer::open(&path, Some(&new), busy, durability)?;
            Ok::<_, OpenError>((reads, checkpoint))
        })
        .await
        .map_err(|e| StoreError::Internal(format!("reader open task failed: {e}")))?
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.readers.replace(reads);
        checkpoints.resume_with(checkpoint);
        Ok(true)
    }
}

/// The embedded database is keyed by the master key itself: a rotation gives it the new one
/// ([`SqliteStore::rekey`]).
#[async_trait]
impl crate::atrest::Rewrap for SqliteStore {
    fn what(&self) -> &'static str {
        "the embedded database"
    }

    async fn rewrap(
        &self,
        keys: &crate::atrest::MasterKeys,
    ) -> Result<u64, crate::atrest::RewrapError> {
        let key = DatabaseKey::from_bytes(keys.current_bytes());
        Ok(u64::from(self.rekey(key).await?))
    }
}
