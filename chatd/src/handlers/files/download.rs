//! Sending a file's bytes after a `download` answer (protocol.md 13.4): the Response frame,
//! then exactly `Download.length` raw bytes from `Download.offset`, then FIN. QUIC flow control
//! paces the copy; a client that stops reading stalls only its own stream.

use chatproto::error::StreamCode;
use chatproto::pb;
use chatproto::pb::ErrorCode;
use chatproto::server::RequestStream;
use tokio::io::{AsyncRead, AsyncReadExt as _};

use crate::error::ApiError;
use crate::files::blob::BlobError;
use crate::files::{Files, TRANSFER_IDLE_TIMEOUT};

/// The answer's message when a file's stored content fails authentication (encryption at rest)
/// or its master key is not configured: never other bytes in its place.
pub const DAMAGED: &str = "the file's stored content does not open: damaged at rest, or its key \
                           is not configured";

/// The bytes a response announces, when it is a `download` answer that carries them.
pub fn announced(response: &pb::Response) -> Option<&pb::Download> {
    match &response.result {
        Some(pb::response::Result::Download(d)) if d.url.is_empty() && d.file.is_some() => Some(d),
        _ => None,
    }
}

/// Writes `response` (a `download` answer, see [`announced`]) and the bytes it announces. A
/// storage failure after the answer resets the stream with TRANSFER_FAILED: the client resumes
/// from what it has.
pub async fn respond(files: &Files, stream: RequestStream, response: &pb::Response) {
    let Some(download) = announced(response) else {
        if let Ok(answered) = stream.respond(response).await {
            answered.acknowledged().await;
        }
        return;
    };
    let key = download
        .file
        .as_ref()
        .map(|f| hex::encode(&f.sha256))
        .unwrap_or_default();
    // Opened before the answer goes out, so a missing blob is an error answer, not a reset.
    let reader = match files.blobs.open(&key, download.offset).await {
        Ok(Some(reader)) => reader,
        failed => {
            let answer = match failed {
                Err(BlobError::Sealed(e)) => {
                    tracing::error!(key, error = %e, "a file's stored bytes do not open");
                    ApiError::new(ErrorCode::Internal, DAMAGED)
                }
                _ => {
                    tracing::error!(key, "a file row names bytes that cannot be read");
                    ApiError::unavailable("file storage unavailable")
                }
            };
            let error = pb::Response {
                request_id: response.request_id,
                result: Some(pb::response::Result::Error(answer.to_pb())),
            };
            if let Ok(answered) = stream.respond(&error).await {
                answered.acknowledged().await;
            }
            return;
        }
    };
    let Ok(send) = stream.respond_open(response).await else {
        return;
    };
    send_body(send, reader, download.length, &key).await;
}

/// Writes exactly `length` bytes of `source` on a stream whose answer is out, then finishes it
/// and waits until the client has them all (a drain waits for exactly that). A source that
/// ends early or fails resets the stream with TRANSFER_FAILED; a client that takes nothing for
/// [`TRANSFER_IDLE_TIMEOUT`] has it reset with REQUEST_TIMEOUT, so that it holds neither this
/// task nor what the bytes come from (a backup's copy, the node's one backup slot). `what`
/// names the bytes in the log.
pub async fn send_body(
    mut send: quinn::SendStream,
    source: impl AsyncRead + Unpin,
    length: u64,
    what: &str,
) {
    let mut body = source.take(length);
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    while sent < length {
        let n = match body.read(&mut buf).await {
            Ok(0) | Err(_) => {
                // A chunk that fails authentication ends the bytes here (the reader's error
                // says which); nothing of it is sent.
                tracing::warn!(what, sent, "bytes after an answer ended early");
                let _ = send.reset(StreamCode::TransferFailed.code().into());
                return;
            }
            Ok(n) => n,
        };
        let chunk = bytes::Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
        match tokio::time::timeout(TRANSFER_IDLE_TIMEOUT, send.write_chunk(chunk)).await {
            Ok(Ok(())) => {}
            // The client went away or stopped the stream.
            Ok(Err(_)) => return,
            Err(_) => return stalled(&mut send, what, sent),
        }
        sent += n as u64;
    }
    let _ = send.finish();
    // The request is done once the client has every byte: a drain waits for exactly that.
    if tokio::time::timeout(TRANSFER_IDLE_TIMEOUT, send.stopped())
        .await
        .is_err()
    {
        stalled(&mut send, what, sent);
    }
}

/// Resets a stream of bytes the client stopped taking.
fn stalled(send: &mut quinn::SendStream, what: &str, sent: u64) {
    tracing::info!(
        what,
        sent,
        "the client took no bytes for a while: stream reset"
    );
    let _ = send.reset(StreamCode::RequestTimeout.code().into());
}
