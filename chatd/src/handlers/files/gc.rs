//! The collector: removes uploads left unfinished longer than the grace period, and files that
//! nothing references any more (never sent, or every message carrying them deleted for everyone,
//! and no avatar), once they are older than the grace period. Bytes shared by another file
//! (deduplicated content) stay; so do bytes a concurrent upload of the same content claimed
//! after the cutoff.
//!
//! Every node runs it; deleting twice is harmless.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::state::{AppState, now_ms};
use crate::store::StoreResult;

/// Rows handled per store call.
const BATCH: u32 = 100;

/// What one pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Upload rows (and their bytes).
    pub uploads: usize,
    /// File rows (with their thumbnails).
    pub files: usize,
}

/// Runs [`collect`] every `gc_interval` until `stop` is cancelled.
pub async fn run(state: Arc<AppState>, stop: CancellationToken) {
    let interval = state
        .files
        .settings
        .gc_interval
        .max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match collect(&state).await {
            Ok(c) if c != Collected::default() => {
                tracing::info!(
                    uploads = c.uploads,
                    files = c.files,
                    "file collector removed stale files"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "file collector pass failed"),
        }
    }
}

/// One pass of the collector.
pub async fn collect(state: &AppState) -> StoreResult<Collected> {
    let files = &state.files;
    let grace = files.settings.gc_grace;
    let cutoff_ms = now_ms() - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let claimed_before = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut collected = Collected::default();
    loop {
        let stale = state.store.stale_uploads(cutoff_ms, BATCH).await?;
        let mut removed = 0;
        for upload in &stale {
            // A stream still writing it on this node: leave it for the next pass.
            let Some(_claim) = files.claim(&upload.id) else {
                continue;
            };
            // A finished upload has no bytes left (they became its file's); this is a no-op.
            if let Err(e) = files.blobs.discard(&upload.id).await {
                tracing::warn!(upload = %upload.id, error = %e, "cannot discard upload bytes");
                continue;
            }
            state.store.delete_upload(&upload.id).await?;
            removed += 1;
        }
        collected.uploads += removed;
        if stale.len() < BATCH as usize || removed == 0 {
            break;
        }
    }
    loop {
        let unreferenced = state.store.unreferenced_files(cutoff_ms, BATCH).await?;
        for file in &unreferenced {
            for key in state.store.delete_file(file.id()).await? {
                if let Err(e) = files.blobs.delete(&key, claimed_before).await {
                    tracing::warn!(key, error = %e, "cannot delete file bytes");
                }
            }
            collected.files += 1;
        }
        if unreferenced.len() < BATCH as usize {
            break;
        }
    }
    Ok(collected)
}
