//! Consistent copies of the database while the writer keeps writing (`Store::backup`).
//!
//! The copy uses SQLite's online backup API on a read-only connection of its own, neither the
//! writer's nor one of the pool's, so a backup never holds a connection other work waits for.
//! All pages are copied in one step: the step holds one read transaction from its first page
//! to its last, so the copy is one snapshot, and in WAL mode a reader never blocks the writer
//! (commits go to the WAL meanwhile; only checkpoints wait for the copy to end). Copying in
//! small steps instead would restart the copy whenever the writer committed between two steps,
//! and under steady writes it might never finish.
//!
//! An encrypted database gives an encrypted copy: the copy is opened with the same key, and
//! SQLCipher encrypts each page as it writes it, so no plaintext reaches the copy's file. It
//! restores like the database itself, with its key.

use std::path::Path;
use std::time::Duration;

use rusqlite::OpenFlags;
use rusqlite::backup::{Backup, StepResult};

use super::cipher::{self, DatabaseKey, OpenError};
use crate::store::{StoreError, StoreResult};

/// How long to wait before trying a step again that found the source or the copy locked.
const LOCKED_PAUSE: Duration = Duration::from_millis(20);

/// Copies the database at `from`, as of one moment, into a new database file at `to`, encrypted
/// with `key` when the database is.
pub(super) fn copy(
    from: &Path,
    to: &Path,
    key: Option<&DatabaseKey>,
    busy_timeout: Duration,
) -> StoreResult<()> {
    let opened = |e: OpenError| match e {
        OpenError::Store(e) => e,
        OpenError::Key(e) => StoreError::Unavailable(e.to_string()),
    };
    let source = cipher::open(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        key,
    )
    .map_err(opened)?;
    source.busy_timeout(busy_timeout)?;
    let mut copy = cipher::open(
        to,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        key,
    )
    .map_err(opened)?;
    let backup = Backup::new(&source, &mut copy)?;
    let started = std::time::Instant::now();
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            // Not after a step of every page; harmless to go on if it ever were.
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked if started.elapsed() < busy_timeout => {
                std::thread::sleep(LOCKED_PAUSE);
            }
            StepResult::Busy | StepResult::Locked => {
                return Err(StoreError::Unavailable(
                    "the database stayed locked for the backup".into(),
                ));
            }
            other => {
                return Err(StoreError::Internal(format!(
                    "unexpected backup step result {other:?}"
                )));
            }
        }
    }
}
