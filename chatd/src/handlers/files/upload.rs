//! Upload streams and finishing an upload (see the [module overview](super)).

use std::sync::Arc;

use chatproto::error::StreamCode;
use chatproto::pb;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::{ApiError, ApiResult};
use crate::files::blob::BlobError;
use crate::files::detect::{self, Class, SNIFF_BYTES};
use crate::files::thumbs::{self, Decoded, ThumbError};
use crate::files::{Files, TRANSFER_IDLE_TIMEOUT, new_id};
use crate::state::{AppState, now_ms};
use crate::store::{FileRecord, StoreError, UploadRecord, UploadState};

/// The largest piece read from an upload stream at once.
const READ_CHUNK: usize = 256 * 1024;

/// The answer for an upload that was discarded, with why.
pub fn discarded(reason: &str) -> ApiError {
    ApiError::invalid(
        "finish_upload.upload_id",
        format!("the upload was discarded: {reason}"),
    )
}

fn storage(e: BlobError) -> ApiError {
    tracing::error!(error = %e, "file storage failure");
    ApiError::unavailable("file storage unavailable")
}

fn stop(recv: &mut quinn::RecvStream, code: StreamCode) {
    let _ = recv.stop(code.code().into());
}

/// Serves one upload stream of `user_id` (capability `files` negotiated): reads its header,
/// checks it names an open upload of the user at the server's offset, appends the bytes, and
/// finishes the upload once the last byte is in. Every refusal stops the stream with its code;
/// nothing here panics or blocks on the client.
pub async fn serve_stream(
    state: Arc<AppState>,
    user_id: u64,
    recv: quinn::RecvStream,
    unread: crate::files::UnreadHeader,
) {
    let Some((header, mut recv, first)) = chatproto::server::read_upload_header(recv).await else {
        return;
    };
    let files = &state.files;
    // One writer per upload on this node; two on different nodes meet at the blob store's
    // offset check.
    let Some(claim) = files.claim(&header.upload_id) else {
        return stop(&mut recv, StreamCode::UploadRejected);
    };
    drop(unread);
    let upload = match state.store.upload(&header.upload_id).await {
        Ok(Some(u)) if u.user_id == user_id && u.state == UploadState::Open => u,
        Ok(_) => return stop(&mut recv, StreamCode::UploadRejected),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read an upload");
            return stop(&mut recv, StreamCode::TransferFailed);
        }
    };
    let have = match files.blobs.received(&upload.id).await {
        Ok(have) => have,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read an upload's offset");
            return stop(&mut recv, StreamCode::TransferFailed);
        }
    };
    if header.offset != have || have > upload.size {
        return stop(&mut recv, StreamCode::UploadRejected);
    }
    match receive(files, &upload, have, first, &mut recv).await {
        Ok(Received::Complete(digest)) => {
            if let Err(e) = finish(&state, &upload, digest).await {
                tracing::debug!(upload = %upload.id, error = %e, "upload not finished");
            }
        }
        Ok(Received::Partial) => {}
        Err(StreamCode::UploadTooLong) => {
            stop(&mut recv, StreamCode::UploadTooLong);
            let _ = fail(
                &state,
                &upload,
                "the stream carried more bytes than declared",
            )
            .await;
        }
        Err(code) => stop(&mut recv, code),
    }
    drop(claim);
}

/// What a stream's bytes made of its upload.
enum Received {
    /// The stream ended before the last declared byte (the bytes that arrived are kept).
    Partial,
    /// Every declared byte is in; the content's SHA-256 when this stream carried all of it.
    Complete(Option<[u8; 32]>),
}

/// Appends the stream's bytes to the upload from `offset`; returns what they made of it, or
/// the code to stop the stream with.
///
/// Only a stream from offset 0 hashes what it carries. A resumed one does not read back the
/// bytes stored before it: a client could make the server do that again and again for the
/// price of a header (a stream at the offset, ended at once); the finish reads them back once.
async fn receive(
    files: &Files,
    upload: &UploadRecord,
    offset: u64,
    first: bytes::Bytes,
    recv: &mut quinn::RecvStream,
) -> Result<Received, StreamCode> {
    let failed = |e: BlobError| {
        tracing::warn!(upload = %upload.id, error = %e, "cannot store upload bytes");
        StreamCode::TransferFailed
    };
    let mut hasher = (offset == 0).then(Sha256::new);
    let mut writer = files
        .blobs
        .append(&upload.id, offset)
        .await
        .map_err(failed)?;
    let mut offset = offset;
    let mut piece = first;
    let outcome = loop {
        if !piece.is_empty() {
            let room = upload.size - offset;
            if piece.len() as u64 > room {
                break Err(StreamCode::UploadTooLong);
            }
            if let Some(hasher) = &mut hasher {
                hasher.update(&piece);
            }
            if let Err(e) = writer.write(&piece).await {
                break Err(failed(e));
            }
            offset += piece.len() as u64;
        }
        match tokio::time::timeout(TRANSFER_IDLE_TIMEOUT, recv.read_chunk(READ_CHUNK, true)).await {
            Ok(Ok(Some(chunk))) => piece = chunk.bytes,
            // FIN, or the client reset the stream or lost its connection: keep what came.
            Ok(Ok(None)) | Ok(Err(_)) => break Ok(()),
            Err(_) => break Err(StreamCode::RequestTimeout),
        }
    };
    // Closed in every case, so the bytes that arrived count for the next stream.
    let closed = writer.close().await;
    match outcome {
        Err(code) => Err(code),
        Ok(()) => {
            closed.map_err(failed)?;
            if offset == upload.size {
                Ok(Received::Complete(hasher.map(|h| h.finalize().into())))
            } else {
                Ok(Received::Partial)
            }
        }
    }
}

/// Discards an upload's bytes and records why (best effort: the collector removes what is left).
async fn reject(files: &Files, upload: &UploadRecord, reason: &str) -> ApiError {
    if let Err(e) = files.blobs.discard(&upload.id).await {
        tracing::warn!(upload = %upload.id, error = %e, "cannot discard upload bytes");
    }
    discarded(reason)
}

/// Finishes an upload whose every byte is stored: checks the SHA-256 (`digest` when the stream
/// computed it, else read back) and the type, decodes images, makes the bytes a blob and writes
/// the file row. An upload that fails a check is discarded and marked failed.
pub async fn finish(
    state: &AppState,
    upload: &UploadRecord,
    digest: Option<[u8; 32]>,
) -> ApiResult<FileRecord> {
    let files = &state.files;
    let digest = match digest {
        Some(d) => d,
        None => hash_upload(files, upload).await?,
    };
    if digest.as_slice() != upload.sha256.as_slice() {
        return fail(
            state,
            upload,
            "the content does not match the declared sha-256",
        )
        .await;
    }
    let head = read_head(files, upload).await?;
    let detected = detect::detect(&head);
    if let Err(reason) = detect::check_kind(upload.kind, detected.class, detected.mime) {
        return fail(state, upload, &reason).await;
    }
    let mut info = pb::FileInfo {
        id: new_id(),
        name: upload.name.clone(),
        mime: detected.mime.to_owned(),
        size: upload.size,
        sha256: upload.sha256.clone(),
        kind: upload.kind as i32,
        created_at_ms: now_ms(),
        ..Default::default()
    };
    let mut thumbnails = Vec::new();
    if detected.class == Class::Image
        && upload.size <= thumbs::MAX_SOURCE_BYTES
        && let Some(format) = thumbs::decodable(detected.mime)
    {
        let decoded = match decode_image(files, upload, format).await? {
            Ok(decoded) => decoded,
            Err(ThumbError::Busy) => {
                return Err(ApiError::unavailable(
                    "too many images are being processed; finish the upload again later",
                ));
            }
            Err(e) if upload.kind == pb::MessageKind::Image => {
                return fail(state, upload, &e.to_string()).await;
            }
            // FILE takes anything (spec 13.4): bytes that only begin like an image, or one too
            // large to decode, are kept as they are, without a size or thumbnails.
            Err(_) => Decoded::default(),
        };
        info.width = decoded.width;
        info.height = decoded.height;
        for thumbnail in decoded.thumbnails {
            let sha256: [u8; 32] = Sha256::digest(&thumbnail.bytes).into();
            let thumb_info = pb::FileInfo {
                id: new_id(),
                name: String::new(),
                mime: thumbnail.mime.to_owned(),
                size: thumbnail.bytes.len() as u64,
                sha256: sha256.to_vec(),
                kind: pb::MessageKind::Image as i32,
                width: thumbnail.width,
                height: thumbnail.height,
                thumbnails: Vec::new(),
                created_at_ms: info.created_at_ms,
            };
            info.thumbnails.push(pb::Thumbnail {
                file_id: thumb_info.id.clone(),
                width: thumbnail.width,
                height: thumbnail.height,
                mime: thumb_info.mime.clone(),
                size: thumb_info.size,
            });
            files
                .blobs
                .put(&hex::encode(sha256), thumbnail.bytes.into())
                .await
                .map_err(storage)?;
            thumbnails.push(FileRecord {
                info: thumb_info,
                owner_id: upload.user_id,
                parent_id: Some(info.id.clone()),
                public: false,
            });
        }
    }
    let file = FileRecord {
        info,
        owner_id: upload.user_id,
        parent_id: None,
        public: false,
    };
    // The bytes are durable before the row that names them.
    files
        .blobs
        .commit(&upload.id, &file.content_key())
        .await
        .map_err(storage)?;
    match state
        .store
        .complete_upload(&upload.id, file, thumbnails)
        .await
    {
        Ok(file) => Ok(file),
        Err(StoreError::Conflict(_)) => finished(state, &upload.id).await,
        Err(e) => Err(e.into()),
    }
}

/// The outcome of an upload that is no longer open, as `finish_upload` answers it.
pub async fn finished(state: &AppState, upload_id: &str) -> ApiResult<FileRecord> {
    match state.store.upload(upload_id).await?.map(|u| u.state) {
        Some(UploadState::Done { file_id }) => state
            .store
            .file(&file_id)
            .await?
            .ok_or_else(|| ApiError::not_found("file")),
        Some(UploadState::Failed { reason }) => Err(discarded(&reason)),
        Some(UploadState::Open) => Err(ApiError::precondition("the upload is not finished")),
        None => Err(ApiError::not_found("upload")),
    }
}

async fn fail(state: &AppState, upload: &UploadRecord, reason: &str) -> ApiResult<FileRecord> {
    let answer = reject(&state.files, upload, reason).await;
    match state.store.fail_upload(&upload.id, reason).await {
        Ok(()) => Err(answer),
        // Finished or failed meanwhile (another node): that outcome stands.
        Err(StoreError::Conflict(_)) => finished(state, &upload.id).await,
        Err(e) => Err(e.into()),
    }
}

async fn hash_upload(files: &Files, upload: &UploadRecord) -> ApiResult<[u8; 32]> {
    let mut reader = files.blobs.read_upload(&upload.id).await.map_err(storage)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| storage(BlobError::Storage(e.to_string())))?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
}

async fn read_head(files: &Files, upload: &UploadRecord) -> ApiResult<Vec<u8>> {
    let reader = files.blobs.read_upload(&upload.id).await.map_err(storage)?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    reader
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .await
        .map_err(|e| storage(BlobError::Storage(e.to_string())))?;
    Ok(head)
}

/// Copies the upload to a scratch file (decoders need to seek) and decodes it there.
async fn decode_image(
    files: &Files,
    upload: &UploadRecord,
    format: image::ImageFormat,
) -> ApiResult<Result<thumbs::Decoded, ThumbError>> {
    let path = files.scratch.join(format!("{}.img", upload.id));
    let copied = async {
        let mut reader = files.blobs.read_upload(&upload.id).await?;
        let io = |e: std::io::Error| BlobError::Storage(format!("scratch copy: {e}"));
        let mut out = tokio::fs::File::create(&path).await.map_err(io)?;
        tokio::io::copy(&mut reader, &mut out).await.map_err(io)?;
        out.flush().await.map_err(io)
    }
    .await;
    let result = match copied {
        Ok(()) => Ok(files.thumbnailer.make(path.clone(), format).await),
        Err(e) => Err(storage(e)),
    };
    let _ = tokio::fs::remove_file(&path).await;
    result
}
