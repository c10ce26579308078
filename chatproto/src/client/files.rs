//! File upload and download (capability `files`, protocol.md section 13).
//!
//! Uploads hash the content first (the declaration carries its size and SHA-256), then declare
//! it with `begin_upload`, send the bytes from the server's offset on an upload stream, and
//! `finish_upload`. When the connection is lost the client reconnects, declares the same content
//! again and goes on from the offset the server reports, so an upload survives lost connections
//! and restarts of the application alike. Downloads read the bytes that follow a `download`
//! answer and, after a lost connection, ask again from the first byte they do not have.
//!
//! Progress callbacks get `(bytes done, total)`; they are called from the transfer's task, so
//! keep them short.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::io::{
    AsyncRead, AsyncReadExt as _, AsyncSeek, AsyncSeekExt as _, AsyncWrite, AsyncWriteExt as _,
};

use super::connection::{EncodedRequest, SharedLink};
use super::{Client, ClientError, RemoteError};
use crate::capability::Capability;
use crate::error::StreamCode;
use crate::io::{FrameReader, ReadFrameError};
use crate::pb;

/// Bytes read from a source and written to a stream at once.
const PIECE: usize = 256 * 1024;

/// How often a transfer starts over after a lost connection or a refused stream before it
/// gives up.
const MAX_ATTEMPTS: u32 = 8;

/// What went wrong on one transfer stream.
pub(super) enum StreamFailure {
    /// The connection is gone: reconnect and resume.
    Lost(String),
    /// The server stopped or reset the stream with this code.
    Stopped(u64),
    /// No byte came for [`TRANSFER_IDLE`]: the stream is given up (the connection may be fine).
    Stalled,
    /// Anything else ends the transfer.
    Fatal(ClientError),
}

/// Longest a transfer's answer or bytes may keep the client waiting without a byte: the
/// server's own idle timeout for a transfer (spec 13.5), after which it resets the stream.
const TRANSFER_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

pub(super) fn local(e: std::io::Error) -> ClientError {
    ClientError::LocalIo(e.to_string())
}

fn write_failure(e: quinn::WriteError) -> StreamFailure {
    match e {
        quinn::WriteError::Stopped(code) => StreamFailure::Stopped(code.into_inner()),
        other => StreamFailure::Lost(other.to_string()),
    }
}

fn read_failure(e: quinn::ReadError) -> StreamFailure {
    match e {
        quinn::ReadError::Reset(code) => StreamFailure::Stopped(code.into_inner()),
        other => StreamFailure::Lost(other.to_string()),
    }
}

/// The size and SHA-256 of everything `source` yields from its start; leaves it at the start.
async fn measure<R: AsyncRead + AsyncSeek + Unpin>(
    source: &mut R,
) -> Result<(u64, Vec<u8>), ClientError> {
    source.seek(SeekFrom::Start(0)).await.map_err(local)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; PIECE];
    loop {
        let n = source.read(&mut buf).await.map_err(local)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    source.seek(SeekFrom::Start(0)).await.map_err(local)?;
    Ok((size, hasher.finalize().to_vec()))
}

impl Client {
    /// The current connection, which must have negotiated `files`.
    async fn files_link(&self) -> Result<SharedLink, ClientError> {
        let link = self.shared.wait_link().await?;
        if !Capability::Files.is_in(&link.welcome.capabilities) {
            return Err(ClientError::Config(
                "the server does not offer file transfer (capability files)".into(),
            ));
        }
        Ok(link)
    }

    /// Uploads the file at `path` as `kind` (IMAGE, VIDEO, AUDIO, VOICE or FILE), named after
    /// its last path component, and returns the stored file. `progress` gets `(sent, total)`.
    pub async fn upload_path(
        &self,
        path: impl AsRef<Path>,
        kind: pb::MessageKind,
        progress: impl FnMut(u64, u64) + Send,
    ) -> Result<pb::FileInfo, ClientError> {
        let path = path.as_ref();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file = tokio::fs::File::open(path).await.map_err(local)?;
        self.upload_reader(file, &name, kind, progress).await
    }

    /// Uploads what `source` yields from its start, named `name`, as `kind`. The source is read
    /// twice (once to hash it, once to send it) and sought to resume, so it must not change
    /// meanwhile. Resumes across lost connections; an upload of the same content interrupted
    /// earlier (even by a restart of the application) continues where the server stopped.
    pub async fn upload_reader<R: AsyncRead + AsyncSeek + Unpin + Send>(
        &self,
        mut source: R,
        name: &str,
        kind: pb::MessageKind,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<pb::FileInfo, ClientError> {
        self.files_link().await?;
        let (size, sha256) = measure(&mut source).await?;
        let declaration = pb::BeginUpload {
            size,
            sha256,
            name: name.to_owned(),
            kind: kind as i32,
        };
        let mut attempts = 0;
        loop {
            let ticket = self.begin_upload(declaration.clone()).await?;
            progress(ticket.offset, size);
            if ticket.offset < size {
                let link = self.files_link().await?;
                let sent = send_upload(&link, &ticket, &mut source, size, &mut progress).await;
                match sent {
                    Ok(()) => {}
                    Err(StreamFailure::Fatal(e)) => return Err(e),
                    Err(StreamFailure::Stopped(code))
                        if StreamCode::from_code(code) == Some(StreamCode::UploadTooLong) =>
                    {
                        return Err(ClientError::LocalIo(
                            "the source grew while it was uploaded".into(),
                        ));
                    }
                    // Another stream of this upload is running (the same content uploaded twice
                    // at once): finish_upload waits for it and answers the file, or says how
                    // many bytes are missing (spec 13.4).
                    Err(StreamFailure::Stopped(code))
                        if StreamCode::from_code(code) == Some(StreamCode::UploadRejected) =>
                    {
                        attempts += 1;
                    }
                    Err(failure) => {
                        attempts += 1;
                        if attempts >= MAX_ATTEMPTS {
                            return Err(give_up(failure));
                        }
                        if let StreamFailure::Lost(_) = failure {
                            self.shared.wait_link_after(link.generation).await?;
                        }
                        continue;
                    }
                }
            }
            match self
                .finish_upload(pb::FinishUpload {
                    upload_id: ticket.upload_id.clone(),
                })
                .await
            {
                Ok(file) => return Ok(file),
                // The server has fewer bytes than were sent (they were lost with a connection):
                // declare again and send the rest.
                Err(ClientError::Remote(RemoteError {
                    code: pb::ErrorCode::FailedPrecondition,
                    ..
                })) if attempts + 1 < MAX_ATTEMPTS => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Downloads file `file_id` from byte `offset` into `writer` and returns the file's
    /// description. Resumes from the first missing byte after a lost connection. A download from
    /// offset 0 is checked against the file's SHA-256. `progress` gets `(received, total)`.
    pub async fn download_to_writer<W: AsyncWrite + Unpin + Send>(
        &self,
        file_id: &str,
        offset: u64,
        writer: &mut W,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<pb::FileInfo, ClientError> {
        let mut hasher = (offset == 0).then(Sha256::new);
        let mut at = offset;
        let mut attempts = 0;
        loop {
            let link = self.files_link().await?;
            let request = pb::DownloadFile {
                file_id: file_id.to_owned(),
                offset: at,
                length: 0,
                prefer_url: false,
            };
            let got = receive_download(
                &link,
                self.shared.ids.next_id(),
                request,
                writer,
                &mut at,
                &mut hasher,
                &mut progress,
            )
            .await;
            match got {
                Ok(file) => {
                    writer.flush().await.map_err(local)?;
                    if let Some(hasher) = hasher
                        && hasher.finalize()[..] != file.sha256[..]
                    {
                        return Err(ClientError::Protocol(
                            "the downloaded bytes do not match the file's sha-256".into(),
                        ));
                    }
                    return Ok(file);
                }
                Err(StreamFailure::Fatal(e)) => return Err(e),
                Err(failure) => {
                    attempts += 1;
                    if attempts >= MAX_ATTEMPTS {
                        return Err(give_up(failure));
                    }
                    if let StreamFailure::Lost(_) = failure {
                        self.shared.wait_link_after(link.generation).await?;
                    }
                }
            }
        }
    }

    /// Downloads file `file_id` to `path`. The bytes go to `<path>.part` first, which a later
    /// call resumes; the file is checked against its SHA-256 and then renamed to `path`.
    pub async fn download_to_path(
        &self,
        file_id: &str,
        path: impl AsRef<Path>,
        progress: impl FnMut(u64, u64) + Send,
    ) -> Result<pb::FileInfo, ClientError> {
        let path = path.as_ref();
        let mut part_name = path.as_os_str().to_owned();
        part_name.push(".part");
        let part = PathBuf::from(part_name);
        let mut file = tokio::fs::File::options()
            .create(true)
            .append(true)
            .read(true)
            .open(&part)
            .await
            .map_err(local)?;
        let mut have = file.metadata().await.map_err(local)?.len();
        let mut progress = progress;
        let info = match self
            .download_to_writer(file_id, have, &mut file, &mut progress)
            .await
        {
            // A part longer than the file is not this file's: start over.
            Err(ClientError::Remote(RemoteError { field, .. }))
                if have > 0 && field == "download_file.offset" =>
            {
                file.set_len(0).await.map_err(local)?;
                have = 0;
                self.download_to_writer(file_id, 0, &mut file, &mut progress)
                    .await?
            }
            other => other?,
        };
        file.sync_all().await.map_err(local)?;
        if have > 0 {
            let (size, sha256) = measure(&mut file).await?;
            if size != info.size || sha256 != info.sha256 {
                // A stale part (another file's, or corrupted): start over next time.
                drop(file);
                let _ = tokio::fs::remove_file(&part).await;
                return Err(ClientError::Protocol(
                    "the resumed download does not match the file's sha-256".into(),
                ));
            }
        }
        drop(file);
        tokio::fs::rename(&part, path).await.map_err(local)?;
        Ok(info)
    }

    /// A signed HTTPS URL for file `file_id` and when it expires (ms since the epoch), when the
    /// server offers them; `None` otherwise.
    pub async fn file_url(&self, file_id: &str) -> Result<Option<(String, i64)>, ClientError> {
        self.files_link().await?;
        let (_, result) = self
            .call(pb::request::Kind::DownloadFile(pb::DownloadFile {
                file_id: file_id.to_owned(),
                offset: 0,
                length: 0,
                prefer_url: true,
            }))
            .await?;
        match result {
            pb::response::Result::Download(d) if !d.url.is_empty() => {
                Ok(Some((d.url, d.url_expires_at_ms)))
            }
            pb::response::Result::Download(_) => Ok(None),
            other => Err(super::requests::unexpected("download_file", other.name())),
        }
    }
}

pub(super) fn give_up(failure: StreamFailure) -> ClientError {
    match failure {
        StreamFailure::Lost(reason) => ClientError::ConnectionLost(reason),
        StreamFailure::Stopped(code) => ClientError::Protocol(format!(
            "the server stopped the transfer stream: {}",
            StreamCode::from_code(code)
                .map_or_else(|| format!("code {code:#x}"), |c| c.to_string())
        )),
        StreamFailure::Stalled => ClientError::Timeout(TRANSFER_IDLE),
        StreamFailure::Fatal(e) => e,
    }
}

/// Sends `source[ticket.offset..size]` on a new upload stream and waits until the server has
/// every byte (or stopped the stream).
async fn send_upload<R: AsyncRead + AsyncSeek + Unpin>(
    link: &SharedLink,
    ticket: &pb::UploadTicket,
    source: &mut R,
    size: u64,
    progress: &mut (impl FnMut(u64, u64) + Send),
) -> Result<(), StreamFailure> {
    let mut send = link
        .conn
        .open_uni()
        .await
        .map_err(|e| StreamFailure::Lost(e.to_string()))?;
    let header = pb::UploadStreamHeader {
        upload_id: ticket.upload_id.clone(),
        offset: ticket.offset,
    };
    let frame = crate::io::encode_frames([&header], crate::server::MAX_UPLOAD_HEADER_BYTES)
        .map_err(|e| StreamFailure::Fatal(ClientError::Protocol(e.to_string())))?;
    send.write_chunk(frame).await.map_err(write_failure)?;
    source
        .seek(SeekFrom::Start(ticket.offset))
        .await
        .map_err(|e| StreamFailure::Fatal(local(e)))?;
    let mut sent = ticket.offset;
    let mut buf = vec![0u8; PIECE];
    while sent < size {
        let want = usize::try_from(size - sent).unwrap_or(PIECE).min(PIECE);
        let n = source
            .read(&mut buf[..want])
            .await
            .map_err(|e| StreamFailure::Fatal(local(e)))?;
        if n == 0 {
            return Err(StreamFailure::Fatal(ClientError::LocalIo(
                "the source ended before its measured size: it changed while it was uploaded"
                    .into(),
            )));
        }
        send.write_chunk(Bytes::copy_from_slice(&buf[..n]))
            .await
            .map_err(write_failure)?;
        sent += n as u64;
        progress(sent, size);
    }
    let _ = send.finish();
    // Every byte acknowledged by the server (None), or the server stopped the stream.
    match send.stopped().await {
        Ok(None) => Ok(()),
        Ok(Some(code)) => Err(StreamFailure::Stopped(code.into_inner())),
        Err(e) => Err(StreamFailure::Lost(e.to_string())),
    }
}

/// One download stream: asks for the bytes from `*at`, writes them to `writer` (and `hasher`),
/// advancing `*at`; returns the file's description once every byte arrived.
async fn receive_download<W: AsyncWrite + Unpin>(
    link: &SharedLink,
    request_id: u64,
    request: pb::DownloadFile,
    writer: &mut W,
    at: &mut u64,
    hasher: &mut Option<Sha256>,
    progress: &mut (impl FnMut(u64, u64) + Send),
) -> Result<pb::FileInfo, StreamFailure> {
    let (response, recv, first) = ask_for_bytes(
        link,
        request_id,
        pb::request::Kind::DownloadFile(request),
        true,
    )
    .await?;
    let download = match response {
        pb::response::Result::Download(d) => d,
        other => {
            return Err(StreamFailure::Fatal(super::requests::unexpected(
                "download_file",
                other.name(),
            )));
        }
    };
    let file = download.file.clone().unwrap_or_default();
    if download.offset != *at || download.offset + download.length > file.size {
        return Err(StreamFailure::Fatal(ClientError::Protocol(
            "the download answer does not match the request".into(),
        )));
    }
    let end = download.offset + download.length;
    let mut sink = Sink {
        writer,
        hasher,
        total: file.size,
        progress,
    };
    receive_bytes(recv, first, at, end, &mut sink).await?;
    Ok(file)
}

/// Sends a request whose answer raw bytes may follow (`download_file`, `admin_backup`) on a
/// new stream and reads the answer: a success's result, the stream and the bytes that arrived
/// with the answer. An error answer is [`StreamFailure::Fatal`] with the server's error. With
/// `prompt`, the answer must start within [`TRANSFER_IDLE`] (a download's does); without, it
/// is waited for as long as it takes (a backup's comes once the copy is made and hashed).
pub(super) async fn ask_for_bytes(
    link: &SharedLink,
    request_id: u64,
    kind: pb::request::Kind,
    prompt: bool,
) -> Result<(pb::response::Result, quinn::RecvStream, Bytes), StreamFailure> {
    let name = kind.name();
    let encoded =
        EncodedRequest::new(request_id, kind).map_err(|e| StreamFailure::Fatal(e.into()))?;
    let (mut send, recv) = link
        .conn
        .open_bi()
        .await
        .map_err(|e| StreamFailure::Lost(e.to_string()))?;
    send.write_chunk(encoded.frame())
        .await
        .map_err(write_failure)?;
    let _ = send.finish();
    let mut reader = FrameReader::new(recv, link.max_receive_bytes());
    if prompt {
        reader = reader.with_idle_timeout(TRANSFER_IDLE);
    }
    let response: pb::Response = reader.read().await.map_err(|e| match e {
        ReadFrameError::Read(r) => read_failure(r),
        ReadFrameError::Idle(_) => StreamFailure::Stalled,
        other => StreamFailure::Fatal(ClientError::Protocol(format!("bad {name} answer: {other}"))),
    })?;
    let result = match response.result {
        Some(pb::response::Result::Error(e)) => {
            return Err(StreamFailure::Fatal(RemoteError::from_pb(e).into()));
        }
        Some(result) => result,
        None => {
            return Err(StreamFailure::Fatal(super::requests::unexpected(
                name, "nothing",
            )));
        }
    };
    let (recv, first) = reader.into_parts();
    Ok((result, recv, first))
}

/// Where the bytes after an answer go: a writer, a hash of them when one is kept, and the
/// progress callback with the whole transfer's size.
pub(super) struct Sink<'a, W, P> {
    pub(super) writer: &'a mut W,
    pub(super) hasher: &'a mut Option<Sha256>,
    pub(super) total: u64,
    pub(super) progress: &'a mut P,
}

/// Reads the raw bytes after an answer (`first`, those that came with it, then the rest of
/// `recv`) into `sink`, advancing `*at`, until the FIN, which must come exactly at `end`.
pub(super) async fn receive_bytes<W: AsyncWrite + Unpin, P: FnMut(u64, u64) + Send>(
    mut recv: quinn::RecvStream,
    first: Bytes,
    at: &mut u64,
    end: u64,
    sink: &mut Sink<'_, W, P>,
) -> Result<(), StreamFailure> {
    let mut piece = first;
    loop {
        if !piece.is_empty() {
            if *at + piece.len() as u64 > end {
                return Err(StreamFailure::Fatal(ClientError::Protocol(
                    "the server sent more bytes than it announced".into(),
                )));
            }
            sink.writer
                .write_all(&piece)
                .await
                .map_err(|e| StreamFailure::Fatal(local(e)))?;
            if let Some(h) = sink.hasher.as_mut() {
                h.update(&piece);
            }
            *at += piece.len() as u64;
            (sink.progress)(*at, sink.total);
        }
        let Ok(read) = tokio::time::timeout(TRANSFER_IDLE, recv.read_chunk(PIECE, true)).await
        else {
            return Err(StreamFailure::Stalled);
        };
        match read {
            Ok(Some(chunk)) => piece = chunk.bytes,
            Ok(None) if *at == end => return Ok(()),
            Ok(None) => {
                return Err(StreamFailure::Fatal(ClientError::Protocol(
                    "the transfer ended before its announced length".into(),
                )));
            }
            Err(e) => return Err(read_failure(e)),
        }
    }
}
