//! The file service (capability `files`): the requests begin_upload, finish_upload and
//! download_file, and what serves them, on the storage of [`crate::files`].
//!
//! How an upload goes:
//! 1. `begin_upload` validates the declaration (size, SHA-256, name, kind), the size limit, the
//!    user's quota and upload rate, and opens (or finds, to resume) the upload row.
//! 2. The client's upload stream ([`upload::serve_stream`]) appends the bytes to the blob store
//!    under the upload's id, hashing them as they come; QUIC flow control is the backpressure.
//!    An interrupted stream keeps what arrived: the next `begin_upload` reports it as the offset.
//! 3. When the last byte is in, the upload is finished ([`upload::finish`]): the hash and the
//!    type are checked, images are decoded for their size and thumbnails, the bytes become the
//!    blob of their content key (durable), then the file row is written. `finish_upload` answers
//!    the file, waiting for the stream if it is still running on this node.
//!
//! # Layout
//! - [`upload`]: upload streams and finishing; [`download`]: sending a file's bytes;
//!   [`access`]: who may read a file.
//! - [`http`]: the HTTPS server that honours signed download URLs.
//! - [`gc`]: removing stale uploads and unreferenced files.

pub mod access;
pub mod download;
pub mod gc;
pub mod http;
pub mod upload;

use chatproto::capability::Capability;
use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::files::new_id;
use crate::state::now_ms;
use crate::store::{UploadRecord, UploadState};
use crate::validate;

/// FAILED_PRECONDITION unless the connection negotiated `files`.
fn require_files(ctx: &ConnCtx) -> ApiResult<u64> {
    let me = ctx.principal()?.user_id;
    if !ctx.has_capability(Capability::Files) {
        return Err(ApiError::precondition(
            "the capability files was not negotiated on this connection",
        ));
    }
    Ok(me)
}

/// Declares an upload, or finds the caller's unfinished upload of the same content to resume.
pub async fn begin_upload(ctx: &ConnCtx, req: pb::BeginUpload) -> ApiResult<Answer> {
    let me = require_files(ctx)?;
    let state = &ctx.state;
    let settings = &state.files.settings;
    if req.size == 0 {
        return Err(ApiError::invalid("begin_upload.size", "must be at least 1"));
    }
    if req.size > settings.max_file_bytes {
        return Err(ApiError::new(
            pb::ErrorCode::TooLarge,
            format!(
                "begin_upload.size: {} bytes is over the limit of {} bytes",
                req.size, settings.max_file_bytes
            ),
        )
        .with_field("begin_upload.size"));
    }
    if req.sha256.len() != 32 {
        return Err(ApiError::invalid(
            "begin_upload.sha256",
            "must be the 32 bytes of a SHA-256",
        ));
    }
    let name = validate::file_name("begin_upload.name", &req.name)?;
    let kind = match pb::MessageKind::try_from(req.kind) {
        Ok(
            k @ (pb::MessageKind::Image
            | pb::MessageKind::Video
            | pb::MessageKind::Audio
            | pb::MessageKind::Voice
            | pb::MessageKind::File),
        ) => k,
        _ => {
            return Err(ApiError::invalid(
                "begin_upload.kind",
                "must be IMAGE, VIDEO, AUDIO, VOICE or FILE",
            ));
        }
    };
    state.limits.check_upload(me).await.map_err(|limited| {
        state.metrics.rate_limited(limited.scope);
        ApiError::from(limited)
    })?;
    let (upload, created) = state
        .store
        .open_upload(UploadRecord {
            id: new_id(),
            user_id: me,
            size: req.size,
            sha256: req.sha256,
            name,
            kind,
            created_at_ms: now_ms(),
            state: UploadState::Open,
        })
        .await?;
    if created {
        // Counted with this upload included: over the quota, it goes again.
        let used = state.store.user_file_bytes(me).await?;
        if used > settings.upload_quota_bytes {
            state.store.delete_upload(&upload.id).await?;
            let left = settings
                .upload_quota_bytes
                .saturating_sub(used - upload.size);
            return Err(ApiError::new(
                pb::ErrorCode::TooLarge,
                format!(
                    "begin_upload.size: over your upload quota of {} bytes ({left} bytes left); \
                     delete messages with files to free space",
                    settings.upload_quota_bytes
                ),
            )
            .with_field("begin_upload.size"));
        }
    }
    let offset = state.files.blobs.received(&upload.id).await.map_err(|e| {
        tracing::error!(error = %e, "file storage failure");
        ApiError::unavailable("file storage unavailable")
    })?;
    Ok(Answer::Upload(pb::UploadTicket {
        upload_id: upload.id,
        offset,
    }))
}

/// How long `finish_upload` waits for an upload stream of the same upload still running on
/// this node (spec 13.4).
pub const FINISH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Finishes an upload whose bytes were all sent, answering the file.
pub async fn finish_upload(ctx: &ConnCtx, req: pb::FinishUpload) -> ApiResult<Answer> {
    let me = require_files(ctx)?;
    let state = &ctx.state;
    let not_found = || ApiError::not_found("upload");
    validate::file_id("finish_upload.upload_id", &req.upload_id)?;
    let owned = |u: &UploadRecord| u.user_id == me;
    let upload = state
        .store
        .upload(&req.upload_id)
        .await?
        .filter(owned)
        .ok_or_else(not_found)?;
    if upload.state != UploadState::Open {
        return upload::finished(state, &upload.id).await.map(file_answer);
    }
    // A stream of this node may not have read its header yet (it may be this upload's), or a
    // stream of this upload may still be writing (or finishing) it: wait for them, for a while.
    // A header that does not come only ends the first wait; a stream of this upload that keeps
    // sending holds no finish (and so no connection) longer than that.
    let deadline = tokio::time::Instant::now() + FINISH_WAIT;
    let _ = tokio::time::timeout_at(deadline, state.files.headers_settled(me)).await;
    // Polled once even when the deadline passed: a claim free now is taken.
    let Ok(_claim) = tokio::time::timeout_at(deadline, state.files.claim_wait(&upload.id)).await
    else {
        return Err(ApiError::precondition(format!(
            "an upload stream is still sending this upload after {} s; finish once it ended",
            FINISH_WAIT.as_secs()
        )));
    };
    let upload = state
        .store
        .upload(&upload.id)
        .await?
        .ok_or_else(not_found)?;
    if upload.state != UploadState::Open {
        return upload::finished(state, &upload.id).await.map(file_answer);
    }
    let have = state.files.blobs.received(&upload.id).await.map_err(|e| {
        tracing::error!(error = %e, "file storage failure");
        ApiError::unavailable("file storage unavailable")
    })?;
    if have < upload.size {
        return Err(ApiError::precondition(format!(
            "the upload is incomplete: the server has {have} of {} bytes; send the rest from \
             offset {have}",
            upload.size
        )));
    }
    upload::finish(state, &upload, None).await.map(file_answer)
}

fn file_answer(file: crate::store::FileRecord) -> Answer {
    Answer::File(file.info)
}

/// Answers a download; the bytes follow the answer on the same stream
/// ([`crate::files::download::respond`]), or, when asked and offered, a signed URL replaces
/// them.
pub async fn download_file(ctx: &ConnCtx, req: pb::DownloadFile) -> ApiResult<Answer> {
    let me = require_files(ctx)?;
    let state = &ctx.state;
    validate::file_id("download_file.file_id", &req.file_id)?;
    let file = access::readable(state, me, &req.file_id).await?;
    let size = file.info.size;
    if req.offset > size {
        return Err(ApiError::invalid(
            "download_file.offset",
            format!("is past the end of the file ({size} bytes)"),
        ));
    }
    let length = match req.length {
        0 => size - req.offset,
        n if n <= size - req.offset => n,
        _ => {
            return Err(ApiError::invalid(
                "download_file.length",
                format!("runs past the end of the file ({size} bytes)"),
            ));
        }
    };
    if req.prefer_url
        && let Some(signer) = &state.files.urls
    {
        let (url, url_expires_at_ms) = signer.sign(file.id(), me, now_ms());
        return Ok(Answer::Download(pb::Download {
            file: Some(file.info),
            offset: 0,
            length: 0,
            url,
            url_expires_at_ms,
        }));
    }
    Ok(Answer::Download(pb::Download {
        file: Some(file.info),
        offset: req.offset,
        length,
        url: String::new(),
        url_expires_at_ms: 0,
    }))
}
