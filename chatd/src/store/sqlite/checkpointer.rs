//! Checkpoints of the write-ahead log, run beside the writer instead of inside its commits.
//!
//! Why: by default SQLite checkpoints from inside the commit that takes the log past 1,000
//! pages. The writer thread then copies the log into the database file and waits for two
//! fsyncs (the log's, then the file's) before it can answer that batch, and every write queued
//! meanwhile waits as well. On the VM of BENCHMARKS.md that was a stall of 5–8 ms every
//! ~150 ms at 500 messages/s, most of the sends that took the server over 2.5 ms.
//!
//! How: the writer's WAL hook, which SQLite calls after every commit with the log's length in
//! pages, only wakes this thread once the log is past [`Limits::soft`]. The thread checkpoints
//! on a connection of its own in PASSIVE mode, which copies what it can without taking a lock
//! that the writer or a reader waits for; the writer keeps appending meanwhile. The log starts
//! over from its beginning at the first commit after a checkpoint that copied every frame, so
//! under steady writes a few short rounds follow the long one until one ends between two
//! commits. Should the thread fall behind (a slow disk, readers holding old snapshots), the
//! writer checkpoints inline again past [`Limits::hard`], which bounds the log as before.
//!
//! Durability is unchanged: a checkpoint only copies committed frames, under the same
//! `synchronous` setting as the writer's.

use std::ffi::c_int;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, MAIN_DB, OpenFlags};

use super::Durability;
use super::cipher::{self, DatabaseKey, OpenError};
use crate::store::{StoreError, StoreResult};

/// When the log is checkpointed, in pages of the log.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// The checkpointer thread is woken after a commit that leaves the log at least this long
    /// (SQLite's own automatic checkpoint uses 1,000).
    pub soft: u32,
    /// The writer checkpoints inline after a commit that leaves the log at least this long.
    pub hard: u32,
}

/// The limits the store runs with: a round every ~4 MB of log, and at most ~40 MB of log
/// (pages of 4 KiB) when the thread cannot keep up.
pub(super) const LIMITS: Limits = Limits {
    soft: 1_000,
    hard: 10_000,
};

/// What the writer's hook and the store tell the thread.
#[derive(Default)]
struct Slot {
    /// A commit left the log past the soft limit since the last round began.
    wanted: bool,
    /// No round starts while a rekey runs ([`Checkpointer::pause`]).
    paused: bool,
    /// The store is dropped: the thread ends.
    closed: bool,
    /// A connection opened with the database's new key, to checkpoint on from now on.
    replacement: Option<Connection>,
    /// Rounds run, for tests.
    rounds: u64,
}

struct Shared {
    slot: Mutex<Slot>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a round; several requests before it begins make one.
    fn request(&self) {
        let mut slot = self.lock();
        if !slot.wanted {
            slot.wanted = true;
            self.wake.notify_one();
        }
    }
}

/// The checkpointer thread. Dropping it ends the thread and waits for it (its connection must
/// be closed before the process exits, see `writer::Joined`).
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Opens the connection the thread checkpoints on: read-write (a checkpoint writes the
/// database file), with the writer's `synchronous` setting, which decides whether a
/// checkpoint fsyncs.
pub(super) fn open(
    path: &Path,
    key: Option<&DatabaseKey>,
    busy_timeout: Duration,
    durability: Durability,
) -> Result<Connection, OpenError> {
    let conn = cipher::open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        key,
    )?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "synchronous", durability.synchronous())?;
    Ok(conn)
}

impl Checkpointer {
    /// Starts the thread on `conn` and gives `writer` the WAL hook that wakes it (the hook
    /// replaces SQLite's automatic checkpoint on that connection).
    pub(super) fn spawn(
        conn: Connection,
        writer: &mut Connection,
        limits: Limits,
    ) -> StoreResult<Checkpointer> {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::default()),
            wake: Condvar::new(),
        });
        let hook = {
            let shared = Arc::clone(&shared);
            move |wal: &mut Wal, pages: c_int| {
                let pages = u32::try_from(pages).unwrap_or(0);
                if pages >= limits.hard {
                    // An error here would be the COMMIT's, of a transaction that did commit:
                    // it is logged, never returned.
                    if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                        tracing::warn!(error = %e, pages, "inline checkpoint failed");
                    }
                } else if pages >= limits.soft {
                    shared.request();
                }
                Ok(())
            }
        };
        writer.wal_hook(Some(hook))?;
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("chatd-sqlite-checkpoint".into())
                .spawn(move || run(conn, &shared))
                .map_err(|e| {
                    StoreError::Internal(format!("cannot start the sqlite checkpointer: {e}"))
                })?
        };
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Holds new rounds back until [`Paused::resume_with`] gives the thread a connection with the
    /// database's new key, or the guard is dropped (the key did not change). A round under way
    /// finishes; it copies only frames committed before it began.
    pub(super) fn pause(&self) -> Paused<'_> {
        self.shared.lock().paused = true;
        Paused {
            shared: &self.shared,
        }
    }

    /// Rounds run so far.
    #[cfg(test)]
    pub(super) fn rounds(&self) -> u64 {
        self.shared.lock().rounds
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Rounds are held back while this lives (see [`Checkpointer::pause`]).
pub(super) struct Paused<'a> {
    shared: &'a Shared,
}

impl Paused<'_> {
    /// Resumes, checkpointing on `conn` from now on.
    pub(super) fn resume_with(self, conn: Connection) {
        self.shared.lock().replacement = Some(conn);
        // Drop resumes.
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        let mut slot = self.shared.lock();
        slot.paused = false;
        // A commit may have asked for a round meanwhile, and a replacement waits to be taken.
        self.shared.wake.notify_one();
    }
}

/// The thread: waits for a request, checkpoints, and again, until the store is dropped.
fn run(mut conn: Connection, shared: &Shared) {
    loop {
        let retired = {
            let mut slot = shared.lock();
            loop {
                if slot.closed {
                    return;
                }
                if !slot.paused {
                    if let Some(new) = slot.replacement.take() {
                        break Some(std::mem::replace(&mut conn, new));
                    }
                    if slot.wanted {
                        slot.wanted = false;
                        break None;
                    }
                }
                slot = shared
                    .wake
                    .wait(slot)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        if let Some(old) = retired {
            // Closed outside the lock; a round may be wanted still, which the next pass sees.
            drop(old);
            continue;
        }
        // PASSIVE never waits for a lock, so it never reports busy; what it could not copy
        // (frames a reader still needs) is copied by a later round.
        if let Err(e) = conn.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE) {
            tracing::warn!(error = %e, "checkpoint failed");
        }
        shared.lock().rounds += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of `db`'s write-ahead log in pages of 4 KiB (frames of 24 + 4,096 bytes after a
    /// 32-byte header). The log is not truncated when it starts over, so this is the longest it
    /// has been.
    fn wal_frames(db: &Path) -> u64 {
        let wal = db.with_extension("db-wal");
        let len = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
        len.saturating_sub(32) / (24 + 4096)
    }

    /// A writer on a new database in WAL mode, and its checkpointer with `limits`.
    fn setup(
        limits: Limits,
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Connection,
        Checkpointer,
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("c.db");
        let mut writer = Connection::open(&path).expect("open");
        writer
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .expect("wal");
        writer
            .execute_batch("CREATE TABLE t (x BLOB)")
            .expect("create");
        let conn = open(&path, None, Duration::from_secs(5), Durability::default()).expect("open");
        let checkpointer = Checkpointer::spawn(conn, &mut writer, limits).expect("spawn");
        (dir, path, writer, checkpointer)
    }

    /// Commits `n` transactions of one page-sized row each (two or three pages of log).
    fn commit_rows(writer: &Connection, n: usize) {
        let row = vec![7u8; 3_000];
        for _ in 0..n {
            writer
                .execute("INSERT INTO t VALUES (?1)", [&row])
                .expect("insert");
        }
    }

    /// Waits until the thread has run `rounds` rounds.
    fn wait_for_rounds(checkpointer: &Checkpointer, rounds: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while checkpointer.rounds() < rounds {
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpointer ran {} rounds, not {rounds}",
                checkpointer.rounds()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn commits_past_the_soft_limit_leave_the_checkpoint_to_the_thread() {
        let (_dir, path, writer, checkpointer) = setup(LIMITS);
        let paused = checkpointer.pause();
        // SQLite's own automatic checkpoint would have started the log over at 1,000 pages.
        commit_rows(&writer, 1_500);
        let frames = wal_frames(&path);
        assert!(
            frames > 2_500,
            "the writer checkpointed by itself: the log never passed {frames} pages"
        );
        assert_eq!(checkpointer.rounds(), 0, "no round while paused");
        let db_before = std::fs::metadata(&path).expect("db").len();
        drop(paused);
        // The request made while paused is served once resumed.
        wait_for_rounds(&checkpointer, 1);
        let db_after = std::fs::metadata(&path).expect("db").len();
        assert!(
            db_after > db_before + 1_000 * 4096,
            "the round copied the log into the database ({db_before} -> {db_after} bytes)"
        );
        // The log starts over at the next commit: it does not grow past what it was.
        commit_rows(&writer, 200);
        assert_eq!(wal_frames(&path), frames, "the log started over");
        let count: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(count, 1_700);
    }

    #[test]
    fn past_the_hard_limit_the_writer_checkpoints_itself() {
        let limits = Limits {
            soft: 50,
            hard: 400,
        };
        let (_dir, path, writer, checkpointer) = setup(limits);
        let _paused = checkpointer.pause();
        commit_rows(&writer, 1_000);
        let frames = wal_frames(&path);
        assert!(
            frames < u64::from(limits.hard) + 10,
            "the log grew to {frames} pages past the hard limit of {}",
            limits.hard
        );
        assert_eq!(checkpointer.rounds(), 0);
    }
}
