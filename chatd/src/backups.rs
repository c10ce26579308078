//! A node's backup place (`admin_backup`): at most one backup runs per node, and its copy of the
//! database waits here between the answer that announces it and the bytes that follow, knowing
//! nothing of connections. The handler and the stream that sends the copy are
//! `handlers::admin_backup`.
//!
//! The copy goes through a node-wide place rather than the answer because an answer is a wire
//! message; one place is enough because a node makes one backup at a time: the copy in it is
//! always that of the request being answered.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// This node's backup place.
#[derive(Debug)]
pub struct Backups {
    /// Where copies are written: the data directory, beside the database.
    dir: PathBuf,
    /// One permit: held by a copy from its start until it is deleted.
    running: Arc<Semaphore>,
    /// The copy between its answer and its bytes. Never locked across an await.
    ready: Mutex<Option<Snapshot>>,
}

impl Backups {
    /// Backups that write their copies into `dir`.
    pub fn new(dir: PathBuf) -> Backups {
        Backups {
            dir,
            running: Arc::new(Semaphore::new(1)),
            ready: Mutex::new(None),
        }
    }

    /// Takes the place for a new copy and names its temporary file; `None` while another
    /// backup of this node runs.
    pub fn begin(&self) -> Option<Snapshot> {
        let running = Arc::clone(&self.running).try_acquire_owned().ok()?;
        Some(Snapshot {
            path: self
                .dir
                .join(format!(".backup-{:016x}.partial", rand::random::<u64>())),
            size: 0,
            running: Some(running),
        })
    }

    /// Leaves a measured copy for [`take`](Self::take).
    pub fn hold(&self, snapshot: Snapshot) {
        *self.slot() = Some(snapshot);
    }

    /// The copy [`hold`](Self::hold) left, once.
    pub fn take(&self) -> Option<Snapshot> {
        self.slot().take()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Snapshot>> {
        self.ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A copy's temporary file. Dropping it frees the node's backup place and deletes the file (with
/// any journal SQLite left beside it). That happens once the client acknowledged the copy's
/// last byte, a moment after it has them all: a backup asked for right after the last one may
/// still find the place taken (UNAVAILABLE with a retry hint).
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    size: u64,
    /// Always `Some` until dropped.
    running: Option<OwnedSemaphorePermit>,
}

impl Snapshot {
    /// Where the copy is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size, once [`measure`](Self::measure)d.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads the written copy for its size and SHA-256, off the async workers.
    pub async fn measure(&mut self) -> std::io::Result<[u8; 32]> {
        let path = self.path.clone();
        let (size, sha256) = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(path)?;
            let mut hasher = Sha256::new();
            let size = std::io::copy(&mut file, &mut hasher)?;
            Ok::<_, std::io::Error>((size, hasher.finalize().into()))
        })
        .await
        .map_err(std::io::Error::other)??;
        self.size = size;
        Ok(sha256)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // The place first: once the file is gone, the next backup can begin (what an operator
        // and the tests can see from outside).
        drop(self.running.take());
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            match std::fs::remove_file(&name) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(error = %e, path = ?name, "a backup copy was not deleted"),
            }
        }
    }
}
