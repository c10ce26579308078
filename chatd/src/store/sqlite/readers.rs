//! The pool of read-only connections.
//!
//! Reads run on tokio's blocking thread pool (`spawn_blocking`), each on a connection of its own
//! inside one read transaction, so a read that issues several queries sees one consistent
//! snapshot. WAL mode lets these readers run while the writer thread commits. A semaphore bounds
//! the reads in flight to the number of connections; waiting for a permit is async.
//!
//! Point reads ([`Readers::read_point`]: a few rows by key) skip the blocking pool when a
//! connection is idle and run on the calling worker. Handing a read to the pool and back costs
//! two thread wake-ups, more than such a read itself, and a reconnect wave is mostly these.
//! What a worker runs is bounded: a point read that is still running after
//! [`INLINE_BUDGET_OPS`] SQLite instructions (the chat heads of a user in thousands of chats)
//! is interrupted, and runs again on the pool. No request can hold a worker, and with it every
//! task queued behind it, for longer than that.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::store::{StoreError, StoreResult};

/// How many SQLite virtual machine instructions a point read may run on a worker thread before
/// it moves to the pool: a few hundred microseconds. A session and its user take a few hundred,
/// the chat heads of `sync` a few dozen per chat; a read past this is not a point read.
pub(super) const INLINE_BUDGET_OPS: u32 = 20_000;

/// How often (in instructions) SQLite asks whether an inline read is over its budget.
const CHECK_EVERY_OPS: u32 = 1_000;

/// An inline read's budget on this thread; see [`over_inline_budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InlineBudget {
    /// No inline read runs on this thread (every pool read).
    Unbounded,
    /// Checks left before an inline read is interrupted.
    Left(u32),
    /// The inline read was interrupted.
    Exhausted,
}

thread_local! {
    /// Per thread, not per connection: an inline read runs start to end on its thread, with no
    /// await in between, and pool threads never set it.
    static INLINE_BUDGET: Cell<InlineBudget> = const { Cell::new(InlineBudget::Unbounded) };
}

/// Every read connection's progress handler: true (interrupt) once an inline read on this
/// thread spent its budget.
fn over_inline_budget() -> bool {
    INLINE_BUDGET.with(|budget| match budget.get() {
        InlineBudget::Unbounded => false,
        InlineBudget::Left(0) | InlineBudget::Exhausted => {
            budget.set(InlineBudget::Exhausted);
            true
        }
        InlineBudget::Left(n) => {
            budget.set(InlineBudget::Left(n - 1));
            false
        }
    })
}

/// Lets a point read on `conn` be interrupted once it spends its budget: every connection of
/// the pool has this (`open_readers`).
pub(super) fn bound_inline_reads(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.progress_handler(CHECK_EVERY_OPS as i32, Some(over_inline_budget))
}

/// Read-only connections (each with [`bound_inline_reads`]) and the permits that hand them out.
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
            pool.run(work)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }

    /// Runs `work`, a read of a few rows by key, on the calling thread when a connection is idle,
    /// and like [`read`](Self::read) otherwise, or when it runs past [`INLINE_BUDGET_OPS`] (then
    /// its inline attempt is discarded and `work` runs again on the pool).
    ///
    /// Such a read takes microseconds. In WAL mode a reader does not wait for the writer, and a
    /// rekey holds every permit ([`hold`](Self::hold)), so the calling worker waits for nothing
    /// but the read.
    pub(super) async fn read_point<T, F>(self: &Arc<Self>, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> StoreResult<T> + Send + 'static,
    {
        if let Ok(_permit) = self.permits.try_acquire() {
            INLINE_BUDGET.with(|b| b.set(InlineBudget::Left(INLINE_BUDGET_OPS / CHECK_EVERY_OPS)));
            let result = self.run(&work);
            if INLINE_BUDGET.with(|b| b.replace(InlineBudget::Unbounded)) != InlineBudget::Exhausted
            {
                return result;
            }
        }
        self.read(work).await
    }

    /// Runs `work` on an idle connection; the caller holds a permit.
    fn run<T>(&self, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let conn = self.take()?;
        let result = catch_unwind(AssertUnwindSafe(|| snapshot(&conn, work)))
            .unwrap_or_else(|_| Err(StoreError::Internal("read panicked".into())));
        if !conn.is_autocommit() {
            // Only after a panic or a failed END: leave no transaction open on a pooled
            // connection, or it would pin an old snapshot forever.
            let _ = conn.execute_batch("ROLLBACK");
        }
        self.put(conn);
        result
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

#[cfg(test)]
mod tests {
    use std::thread::{self, ThreadId};
    use std::time::Duration;

    use super::*;

    fn pool(size: usize) -> Arc<Readers> {
        let conns = (0..size)
            .map(|_| {
                let mut conn = Connection::open_in_memory().expect("open");
                bound_inline_reads(&mut conn).expect("progress handler");
                conn
            })
            .collect();
        Arc::new(Readers::new(conns))
    }

    fn thread_id(_: &Connection) -> StoreResult<ThreadId> {
        Ok(thread::current().id())
    }

    #[tokio::test]
    async fn a_point_read_runs_on_the_calling_thread_when_a_connection_is_idle() {
        let pool = pool(1);
        let here = thread::current().id();
        assert_eq!(pool.read_point(thread_id).await.expect("point read"), here);
        // Any other read goes through the blocking pool.
        assert_ne!(pool.read(thread_id).await.expect("read"), here);
    }

    /// Counts to `n` in one statement, cached like the store's: the one an interrupted read
    /// leaves in the connection's cache is reused by the next read.
    fn count_to(n: i64) -> impl Fn(&Connection) -> StoreResult<(i64, ThreadId)> {
        move |c| {
            let last = c
                .prepare_cached(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                     SELECT max(i) FROM n",
                )?
                .query_row([n], |row| row.get(0))?;
            Ok((last, thread::current().id()))
        }
    }

    #[tokio::test]
    async fn a_point_read_past_its_budget_moves_to_the_pool_and_completes() {
        let pool = pool(1);
        let here = thread::current().id();
        // Well inside the budget: on this thread.
        assert_eq!(
            pool.read_point(count_to(100)).await.expect("small"),
            (100, here)
        );
        // Far past it (a user in thousands of chats): interrupted here, answered by the pool
        // (on the same connection: the pool has one).
        let rows = i64::from(INLINE_BUDGET_OPS) * 10;
        let (last, on) = pool.read_point(count_to(rows)).await.expect("large");
        assert_eq!(last, rows);
        assert_ne!(on, here, "the worker ran a read past its budget");
        // The interrupted attempt left nothing behind: the next small read is inline again,
        // and the pool's own reads are not bounded.
        assert_eq!(
            pool.read_point(count_to(100)).await.expect("after"),
            (100, here)
        );
        assert_eq!(pool.read(count_to(rows)).await.expect("pool read").0, rows);
    }

    #[tokio::test]
    async fn a_point_read_waits_for_a_connection_when_none_is_idle() {
        let pool = pool(1);
        let held = pool.hold(1).await.expect("hold");
        let reading = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move {
                pool.read_point(|c| Ok(c.query_row("SELECT 7", [], |row| row.get::<_, i64>(0))?))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!reading.is_finished(), "read without a connection");
        drop(held);
        assert_eq!(reading.await.expect("task").expect("read"), 7);
    }

    #[tokio::test]
    async fn a_point_read_that_panics_is_an_error_and_returns_its_connection() {
        let pool = pool(1);
        let failed = pool
            .read_point(|_| -> StoreResult<()> { panic!("boom") })
            .await;
        assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
        let here = thread::current().id();
        assert_eq!(pool.read_point(thread_id).await.expect("point read"), here);
    }
}
