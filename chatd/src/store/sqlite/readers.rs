//! The pool of read-only connections.
//!
//! Reads run on tokio's blocking thread pool (`spawn_blocking`), each on a connection of its own
//! inside one read transaction, so a read that issues several queries sees one consistent
//! snapshot. WAL mode lets these readers run while the writer thread commits. A semaphore bounds
//! the reads in flight to the number of connections; waiting for a permit is async.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::store::{StoreError, StoreResult};

/// Read-only connections and the permits that hand them out.
pub(super) struct Readers {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    size: u32,
}

impl Readers {
    /// A pool over already opened read-only connections.
    pub(super) fn new(conns: Vec<Connection>) -> Readers {
        let permits = Arc::new(Semaphore::new(conns.len()));
        Readers {
            size: u32::try_from(conns.len()).unwrap_or(u32::MAX),
            idle: Mutex::new(conns),
            permits,
        }
    }

    /// How many connections the pool holds.
    pub(super) fn size(&self) -> usize {
        self.size as usize
    }

    /// Takes `count` permits (at most [`size`](Self::size)) until the guard drops: with every
    /// permit no read runs meanwhile, so the connections can be replaced
    /// ([`replace`](Self::replace)).
    pub(super) async fn hold(&self, count: usize) -> StoreResult<tokio::sync::SemaphorePermit<'_>> {
        let count = u32::try_from(count).unwrap_or(u32::MAX).min(self.size);
        self.permits
            .acquire_many(count)
            .await
            .map_err(|_| StoreError::Unavailable("the sqlite read pool is closed".into()))
    }

    /// Replaces the idle connections (every one, while every permit is held) by `conns`.
    pub(super) fn replace(&self, conns: Vec<Connection>) {
        *self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = conns;
    }

    /// Runs `work` on a pooled connection inside a read transaction.
    pub(super) async fn read<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the sqlite read pool is closed".into()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.take()?;
            let result = catch_unwind(AssertUnwindSafe(|| snapshot(&conn, work)))
                .unwrap_or_else(|_| Err(StoreError::Internal("read panicked".into())));
            if !conn.is_autocommit() {
                // Only after a panic or a failed END: leave no transaction open on a pooled
                // connection, or it would pin an old snapshot forever.
                let _ = conn.execute_batch("ROLLBACK");
            }
            pool.put(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    fn take(&self) -> StoreResult<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
            .ok_or_else(|| StoreError::Internal("no idle read connection despite a permit".into()))
    }

    fn put(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(conn);
    }
}

/// Runs `work` in one read transaction (one consistent snapshot of the database).
fn snapshot<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.execute_batch("BEGIN")?;
    let result = work(conn);
    conn.execute_batch("END")?;
    result
}
