//! The writer thread: the only connection that writes, with group commit.
//!
//! # Design
//! SQLite allows one writer at a time and its calls block, so writes never run on the async
//! runtime. One dedicated OS thread owns the read-write connection and takes write commands (a
//! closure over `&Connection` plus a oneshot reply channel) from a bounded queue:
//!
//! 1. It blocks until a command arrives, then drains whatever else is already queued, up to
//!    `max_batch` commands.
//! 2. It opens ONE transaction (`BEGIN IMMEDIATE`) for the whole batch and runs the commands in
//!    arrival order, each inside its own `SAVEPOINT`. A command that fails (or panics) is rolled
//!    back to its savepoint alone; the others keep their writes. Later commands of the batch see
//!    the writes of earlier ones, exactly as if they had committed one by one.
//! 3. It commits once. Only then does every command get its reply: success for the commands whose
//!    writes stood, their own error for those that failed. If the commit itself fails, every
//!    command of the batch is answered with that error and nothing of the batch is written.
//!
//! Under load the queue fills while a commit is in flight, so the next batch is large and the cost
//! of the commit (the WAL append and, with [`Durability::PowerLoss`](super::Durability), the
//! fsync) is shared by all of its commands: persistence does not become the bottleneck. With a
//! single sender the batch is one command and latency is one transaction.
//!
//! Because one thread runs every write, writes are serialised: allocating a chat's next sequence
//! number, checking an idempotency key or a private pair and inserting the row cannot race.
//!
//! # Durability
//! A successful reply means the command's transaction has COMMITTED. In WAL mode with
//! `synchronous=NORMAL` a committed transaction survives a crash of the process (the WAL is in the
//! OS page cache); surviving power loss or an OS crash needs `synchronous=FULL`
//! ([`Durability::PowerLoss`](super::Durability)), which fsyncs the WAL on every commit — once
//! per batch, thanks to group commit. An error reply means none of that command's writes happened.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::store::{StoreError, StoreResult};

/// One queued write, type-erased so commands of any result type share the queue.
trait Command: Send {
    /// Runs the command inside the open transaction; true when its writes should stay.
    fn apply(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the fate of the batch (`commit`) is known.
    fn finish(self: Box<Self>, commit: StoreResult<()>);
    /// True for a command that runs alone, outside any transaction (`PRAGMA rekey`).
    fn alone(&self) -> bool;
}

/// A command with its closure (until it runs), its result (after) and its reply channel.
struct Pending<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
    alone: bool,
}

impl<T, F> Command for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> StoreResult<T> + Send,
{
    fn apply(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StoreError::Internal("write command panicked".into())));
        let keep = result.is_ok();
        self.result = Some(result);
        keep
    }

    fn finish(self: Box<Self>, commit: StoreResult<()>) {
        let answer = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)) | None, Err(e)) => Err(e),
            (None, Ok(())) => Err(StoreError::Internal("write command did not run".into())),
        };
        // The caller may have gone away (cancelled request); its write stands regardless.
        let _ = self.reply.send(answer);
    }

    fn alone(&self) -> bool {
        self.alone
    }
}

/// The handle to the writer thread. Dropping it (with every clone of the store) closes the queue;
/// the thread finishes the queued commands, closes its connection and exits, and the drop waits
/// for that.
pub(super) struct Writer {
    // Dropped first (fields drop in declaration order), which ends the thread's loop.
    queue: mpsc::Sender<Box<dyn Command>>,
    _thread: Joined,
}

/// Joins the writer thread when dropped. A process must not exit while the thread is still in
/// SQLite, closing its connection (which checkpoints the log): SQLCipher frees its memory and
/// locks at exit, under any thread still using them. Blocks only for the queued writes, which a
/// store dropped at shutdown owes anyway.
struct Joined(Option<JoinHandle<()>>);

impl Drop for Joined {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            // A panic of the thread was answered to its commands already.
            let _ = thread.join();
        }
    }
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn spawn(
        conn: Connection,
        max_batch: usize,
        queue_capacity: usize,
    ) -> StoreResult<Writer> {
        let (queue, rx) = mpsc::channel(queue_capacity.max(1));
        let max_batch = max_batch.max(1);
        let thread = std::thread::Builder::new()
            .name("chatd-sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch))
            .map_err(|e| StoreError::Internal(format!("cannot start the sqlite writer: {e}")))?;
        Ok(Writer {
            queue,
            _thread: Joined(Some(thread)),
        })
    }

    /// Runs `work` in the next batch and returns its result once the batch has committed.
    pub(super) async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.send(work, false).await
    }

    /// Runs `work` alone, outside any transaction, after the writes queued before it have
    /// committed and before those queued after it start.
    pub(super) async fn alone<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.send(work, true).await
    }

    async fn send<T, F>(&self, work: F, alone: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let command = Box::new(Pending {
            work: Some(work),
            result: None,
            reply,
            alone,
        });
        self.queue
            .send(command)
            .await
            .map_err(|_| StoreError::Unavailable("the sqlite writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the sqlite writer stopped before answering".into())
        })?
    }

    /// Commands waiting in the queue (for tests that need a batch to form).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// True while the writer thread accepts commands.
    pub(super) fn is_running(&self) -> bool {
        !self.queue.is_closed()
    }
}

/// The writer thread's loop: batch, apply, commit, answer. A command that runs alone ends the
/// batch before it.
fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Command>>, max_batch: usize) {
    let mut batch: Vec<Box<dyn Command>> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(command) = next.take() {
            if command.alone() {
                run_batch(&conn, &mut batch);
                run_alone(&conn, command);
            } else {
                batch.push(command);
            }
            if batch.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        run_batch(&conn, &mut batch);
    }
}

/// Runs a command outside any transaction and answers it.
fn run_alone(conn: &Connection, mut command: Box<dyn Command>) {
    command.apply(conn);
    command.finish(Ok(()));
}

/// Runs one batch in as few transactions as possible (one, unless SQLite aborts a transaction on
/// its own) and answers every command.
fn run_batch(conn: &Connection, batch: &mut Vec<Box<dyn Command>>) {
    // Commands applied in the open transaction, waiting for its commit.
    let mut applied: Vec<Box<dyn Command>> = Vec::with_capacity(batch.len());
    let mut open = false;
    for mut command in batch.drain(..) {
        if !open {
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                command.finish(Err(e.into()));
                continue;
            }
            open = true;
        }
        if let Err(e) = conn.execute_batch("SAVEPOINT command") {
            let err = StoreError::from(e);
            abort(conn, &mut applied, &err);
            command.finish(Err(err));
            open = false;
            continue;
        }
        let keep = command.apply(conn);
        if conn.is_autocommit() {
            // Some failures (disk full, I/O errors) make SQLite roll back the whole transaction
            // by itself: the earlier commands of this transaction are lost too.
            let err = StoreError::Unavailable("sqlite rolled back the write transaction".into());
            abort(conn, &mut applied, &err);
            command.finish(Err(err));
            open = false;
            continue;
        }
        let end = if keep {
            "RELEASE command"
        } else {
            "ROLLBACK TO command; RELEASE command"
        };
        if let Err(e) = conn.execute_batch(end) {
            let err = StoreError::from(e);
            abort(conn, &mut applied, &err);
            command.finish(Err(err));
            open = false;
            continue;
        }
        applied.push(command);
    }
    if open {
        let commit = conn.execute_batch("COMMIT").map_err(StoreError::from);
        if commit.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for command in applied.drain(..) {
            command.finish(commit.as_ref().map(|_| ()).map_err(StoreError::clone));
        }
    }
}

/// Rolls back the open transaction and fails every command applied in it.
fn abort(conn: &Connection, applied: &mut Vec<Box<dyn Command>>, err: &StoreError) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for command in applied.drain(..) {
        command.finish(Err(err.clone()));
    }
}
