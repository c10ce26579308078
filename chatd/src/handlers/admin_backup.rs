//! `admin_backup` (chatctl's `backup`): a consistent copy of the embedded database, sent to the
//! admin's client after the answer, as a download's bytes are (protocol.md 9.6, 13.5).
//!
//! How one goes:
//! 1. The handler takes this node's one backup place ([`Backups`]; a second request meanwhile
//!    gets UNAVAILABLE), has the store write its copy into a temporary file in the data
//!    directory (`Store::backup`: SQLite's online backup, while writes go on), measures its
//!    size and SHA-256 for the answer, and leaves the copy in the place.
//! 2. The connection sees the `backup` answer ([`announced`]) and calls [`respond`], which
//!    takes the copy, writes the answer and then the file's bytes on the request stream.
//! 3. Dropping the copy deletes the file and frees the place, however the stream ended.
//!
//! The copy goes through a node-wide place rather than the answer because an answer is a wire
//! message; one place is enough because a node makes one backup at a time: the copy in it is
//! always that of the request being answered.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatproto::pb;
use chatproto::pb::response::Result as Answer;
use chatproto::server::RequestStream;
use sha2::{Digest as _, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::admin::require_admin;
use crate::handlers::files::download::send_body;

/// What a refused second backup is told to wait before it asks again.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// This node's backup place: at most one backup runs, from the copy until its last byte left.
#[derive(Debug)]
pub struct Backups {
    /// Where copies are written: the data directory, beside the database.
    dir: PathBuf,
    /// One permit: held by the copy from its start until it is deleted.
    running: Arc<Semaphore>,
    /// The copy between its answer and [`respond`]. Never locked across an await.
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

    fn ready(&self) -> std::sync::MutexGuard<'_, Option<Snapshot>> {
        self.ready
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A copy's temporary file, deleted (with any journal SQLite left beside it) when dropped,
/// which also frees the node's backup place.
#[derive(Debug)]
struct Snapshot {
    path: PathBuf,
    size: u64,
    _running: OwnedSemaphorePermit,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
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

/// AdminBackup: makes the copy and answers its size and SHA-256; [`respond`] sends it.
pub async fn admin_backup(ctx: &ConnCtx, _req: pb::AdminBackup) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let state = &ctx.state;
    let backups = &state.backups;
    let running = Arc::clone(&backups.running)
        .try_acquire_owned()
        .map_err(|_| {
            let mut busy =
                ApiError::unavailable("a backup of this node is running; try again later");
            busy.retry_after = Some(BUSY_RETRY);
            busy
        })?;
    let mut copy = Snapshot {
        path: backups
            .dir
            .join(format!(".backup-{:016x}.partial", rand::random::<u64>())),
        size: 0,
        _running: running,
    };
    tracing::info!(admin, "backup requested by an admin");
    state.store.backup(&copy.path).await?;
    let path = copy.path.clone();
    let (size, sha256) = tokio::task::spawn_blocking(move || measure(&path))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "backup measuring task failed");
            ApiError::internal()
        })?
        .map_err(|e| {
            tracing::error!(error = %e, "the backup copy cannot be read");
            ApiError::unavailable("the backup copy cannot be read")
        })?;
    copy.size = size;
    *backups.ready() = Some(copy);
    Ok(Answer::Backup(pb::BackupInfo {
        size,
        sha256: sha256.to_vec(),
    }))
}

/// Size and SHA-256 of the file at `path`.
fn measure(path: &Path) -> std::io::Result<(u64, [u8; 32])> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut file, &mut hasher)?;
    Ok((size, hasher.finalize().into()))
}

/// The copy a response announces, when it is a `backup` answer.
pub fn announced(response: &pb::Response) -> Option<&pb::BackupInfo> {
    match &response.result {
        Some(pb::response::Result::Backup(b)) => Some(b),
        _ => None,
    }
}

/// Writes `response` (a `backup` answer, see [`announced`]), then the copy's bytes, and deletes
/// the copy.
pub async fn respond(backups: &Backups, stream: RequestStream, response: &pb::Response) {
    let copy = backups.ready().take();
    let file = match &copy {
        Some(copy) => tokio::fs::File::open(&copy.path).await.ok(),
        None => None,
    };
    let (Some(copy), Some(file)) = (copy, file) else {
        tracing::error!("a backup answer without a readable copy");
        let error = pb::Response {
            request_id: response.request_id,
            result: Some(pb::response::Result::Error(ApiError::internal().to_pb())),
        };
        if let Ok(answered) = stream.respond(&error).await {
            answered.acknowledged().await;
        }
        return;
    };
    let Ok(send) = stream.respond_open(response).await else {
        return;
    };
    send_body(send, file, copy.size, "backup").await;
    drop(copy);
}
