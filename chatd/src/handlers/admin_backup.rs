//! `admin_backup` (chatctl's `backup`): a consistent copy of the embedded database, sent to the
//! admin's client after the answer, as a download's bytes are (protocol.md 9.6, 13.5).
//!
//! How one goes:
//! 1. The handler takes this node's one backup place ([`crate::backups`]; a second request
//!    meanwhile gets UNAVAILABLE), has the store write its copy into a temporary file in the
//!    data directory (`Store::backup`: SQLite's online backup, while writes go on), measures
//!    its size and SHA-256 for the answer, and leaves the copy in the place.
//! 2. The connection sees the `backup` answer ([`announced`]) and calls [`respond`], which
//!    takes the copy, writes the answer and then the file's bytes on the request stream.
//! 3. Dropping the copy deletes the file and frees the place, however the stream ended.

use std::time::Duration;

use chatproto::pb;
use chatproto::pb::response::Result as Answer;
use chatproto::server::RequestStream;

use crate::backups::Backups;
use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::admin::require_admin;
use crate::handlers::files::download::send_body;

/// What a refused second backup is told to wait before it asks again.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// AdminBackup: makes the copy and answers its size and SHA-256; [`respond`] sends it.
pub async fn admin_backup(ctx: &ConnCtx, _req: pb::AdminBackup) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let state = &ctx.state;
    let mut snapshot = state.backups.begin().ok_or_else(|| ApiError {
        retry_after: Some(BUSY_RETRY),
        ..ApiError::unavailable("a backup of this node is running; try again later")
    })?;
    tracing::info!(admin, "backup requested by an admin");
    state.store.backup(snapshot.path()).await?;
    let sha256 = snapshot.measure().await.map_err(|e| {
        tracing::error!(error = %e, "the backup copy cannot be read");
        ApiError::unavailable("the backup copy cannot be read")
    })?;
    let size = snapshot.size();
    state.backups.hold(snapshot);
    Ok(Answer::Backup(pb::BackupInfo {
        size,
        sha256: sha256.to_vec(),
    }))
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
    let snapshot = backups.take();
    let file = match &snapshot {
        Some(s) => tokio::fs::File::open(s.path()).await.ok(),
        None => None,
    };
    let (Some(snapshot), Some(file)) = (snapshot, file) else {
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
    send_body(send, file, snapshot.size(), "backup").await;
    drop(snapshot);
}
