//! Server-side stream helpers: accept one request from a request stream and answer it, and write
//! the event stream. chatd uses these so that it never touches the codec directly.

use std::time::Duration;

use crate::error::StreamCode;
use crate::frame::{FrameError, MAX_FRAME_BYTES};
use crate::io::{FrameReader, ReadFrameError, WriteFrameError, encode_frames};
use crate::pb;

/// How long a request stream may make no progress (no byte arriving) before its frame is
/// complete, before the stream is reset (spec 4.1); also the bound on an upload's header.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to take a whole answer (the stream's flow control), and then to
/// acknowledge it, before its stream is reset with REQUEST_TIMEOUT: a client that does not read
/// holds no task, buffer or open file of the server for longer. An answer is at most a frame
/// (256 KiB), so even a slow link takes it well within this.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `bytes` on `send` within [`ANSWER_TIMEOUT`], resetting the stream with
/// REQUEST_TIMEOUT when the client does not take them all in time.
async fn write_answer(
    send: &mut quinn::SendStream,
    bytes: bytes::Bytes,
) -> Result<(), WriteFrameError> {
    match tokio::time::timeout(ANSWER_TIMEOUT, send.write_chunk(bytes)).await {
        Ok(written) => Ok(written?),
        Err(_) => {
            let _ = send.reset(StreamCode::RequestTimeout.into());
            Err(WriteFrameError::Stalled(ANSWER_TIMEOUT))
        }
    }
}

/// Why a request could not be read. Each variant says how the server must answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Answer `ERROR_CODE_TOO_LARGE`; the stream has been stopped with FRAME_TOO_LARGE.
    #[error("request frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced length.
        len: u64,
        /// Limit in force.
        max: usize,
    },
    /// Answer `ERROR_CODE_INVALID_ARGUMENT`; the stream has been stopped with FRAME_ERROR.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The request did not arrive in time; the stream has been reset. Nothing to answer.
    #[error("request timed out")]
    TimedOut,
    /// The client went away (reset, connection lost, or finished without a frame). Nothing to
    /// answer.
    #[error("request stream closed: {0}")]
    Gone(String),
}

impl RequestError {
    /// The error response to send, if one should be sent.
    pub fn to_error(&self) -> Option<pb::Error> {
        match self {
            Self::TooLarge { .. } => Some(pb::Error {
                code: pb::ErrorCode::TooLarge as i32,
                message: self.to_string(),
                ..Default::default()
            }),
            Self::Malformed(_) => Some(pb::Error {
                code: pb::ErrorCode::InvalidArgument as i32,
                message: self.to_string(),
                ..Default::default()
            }),
            Self::TimedOut | Self::Gone(_) => None,
        }
    }
}

/// One accepted request stream: read the request, then answer exactly once.
#[derive(Debug)]
pub struct RequestStream {
    send: quinn::SendStream,
    reader: FrameReader,
}

impl RequestStream {
    /// Wraps an accepted bidirectional stream; request frames are limited to `max_frame_bytes`.
    pub fn new(send: quinn::SendStream, recv: quinn::RecvStream, max_frame_bytes: usize) -> Self {
        Self {
            send,
            reader: FrameReader::new(recv, max_frame_bytes).with_idle_timeout(REQUEST_READ_TIMEOUT),
        }
    }

    /// Wraps an accepted bidirectional stream with the default frame limit.
    pub fn with_default_limit(send: quinn::SendStream, recv: quinn::RecvStream) -> Self {
        Self::new(send, recv, MAX_FRAME_BYTES)
    }

    /// Reads the request: one frame, ready as soon as it is complete (the client's FIN is not
    /// waited for, spec 4.1; bytes that arrived behind the frame make it invalid). A stream on
    /// which nothing arrives for [`REQUEST_READ_TIMEOUT`] before that is reset. On a protocol
    /// error the receive side is stopped with the matching stream error code; the caller then
    /// answers with [`RequestError::to_error`].
    pub async fn read_request(&mut self) -> Result<pb::Request, RequestError> {
        let err = match self.reader.read_complete::<pb::Request>().await {
            Ok(req) => return Ok(req),
            Err(err) => err,
        };
        let (code, err) = match err {
            ReadFrameError::Idle(_) => {
                let _ = self.send.reset(StreamCode::RequestTimeout.into());
                (StreamCode::RequestTimeout, RequestError::TimedOut)
            }
            ReadFrameError::Frame(FrameError::Oversize { len, max }) => (
                StreamCode::FrameTooLarge,
                RequestError::TooLarge { len, max },
            ),
            ReadFrameError::Frame(e) => (
                StreamCode::FrameError,
                RequestError::Malformed(e.to_string()),
            ),
            ReadFrameError::Finished => (
                StreamCode::FrameError,
                RequestError::Malformed("stream finished without a request".into()),
            ),
            ReadFrameError::Read(e) => return Err(RequestError::Gone(e.to_string())),
        };
        let _ = self.reader.stream_mut().stop(code.into());
        Err(err)
    }

    /// Answering: the request was read, and anything the client still sends on this stream
    /// would be bytes after an answered request (spec 4.1, STOP_SENDING `FRAME_ERROR`). A stream
    /// whose FIN arrived is closed already, and this does nothing.
    fn stop_reading(&mut self) {
        let _ = self.reader.stream_mut().stop(StreamCode::FrameError.into());
    }

    /// Answers without reading the request: stops the receive side with `code`, then writes
    /// `response` as [`respond`](Self::respond) does. For a request the server will not read
    /// (chatd: a connection's pre-authentication budget is spent).
    pub async fn refuse(
        mut self,
        code: StreamCode,
        response: &pb::Response,
    ) -> Result<Answered, WriteFrameError> {
        let _ = self.reader.stream_mut().stop(code.into());
        self.respond(response).await
    }

    /// Writes the response and finishes the stream. A response too large for a frame (a server
    /// bug: answers are bounded by construction) goes out as an `INTERNAL` error answer instead
    /// (spec 4.1), so the client never sees a stream end without an answer. The returned [`Answered`] tells
    /// when the client has the whole answer.
    pub async fn respond(mut self, response: &pb::Response) -> Result<Answered, WriteFrameError> {
        let bytes = match encode_frames([response], MAX_FRAME_BYTES) {
            Ok(bytes) => bytes,
            Err(e) => encode_frames([&oversize_answer(response.request_id, &e)], MAX_FRAME_BYTES)?,
        };
        self.stop_reading();
        write_answer(&mut self.send, bytes).await?;
        // Finishing can only fail if the stream is already closed, which the write reports.
        let _ = self.send.finish();
        Ok(Answered { send: self.send })
    }

    /// Writes the response frame and leaves the stream open, for an answer that raw bytes
    /// follow (`download`): the caller writes them and finishes the stream.
    pub async fn respond_open(
        mut self,
        response: &pb::Response,
    ) -> Result<quinn::SendStream, WriteFrameError> {
        let bytes = encode_frames([response], MAX_FRAME_BYTES)?;
        self.stop_reading();
        write_answer(&mut self.send, bytes).await?;
        Ok(self.send)
    }
}

fn oversize_answer(request_id: u64, err: &FrameError) -> pb::Response {
    pb::Response {
        request_id,
        result: Some(pb::response::Result::Error(pb::Error {
            code: pb::ErrorCode::Internal as i32,
            message: format!("the answer cannot be sent: {err}"),
            ..Default::default()
        })),
    }
}

/// A request stream whose answer was written and finished.
#[derive(Debug)]
pub struct Answered {
    send: quinn::SendStream,
}

impl Answered {
    /// Completes when the client acknowledged the whole answer (or stopped the stream, or the
    /// connection ended): after that, closing the connection cannot take the answer away. A
    /// client that does not acknowledge it within [`ANSWER_TIMEOUT`] has the stream reset.
    pub async fn acknowledged(mut self) {
        if tokio::time::timeout(ANSWER_TIMEOUT, self.send.stopped())
            .await
            .is_err()
        {
            let _ = self.send.reset(StreamCode::RequestTimeout.into());
        }
    }
}

/// The largest `UploadStreamHeader` frame a server accepts: far more than an upload id and an
/// offset need.
pub const MAX_UPLOAD_HEADER_BYTES: usize = 1024;

/// Reads the header frame of an accepted upload stream (capability `files`) within
/// [`REQUEST_READ_TIMEOUT`]. Returns the header, the stream and the content bytes that arrived
/// with the header. On a bad or late header the stream is stopped (FRAME_ERROR,
/// FRAME_TOO_LARGE or REQUEST_TIMEOUT) and `None` is returned.
pub async fn read_upload_header(
    recv: quinn::RecvStream,
) -> Option<(pb::UploadStreamHeader, quinn::RecvStream, bytes::Bytes)> {
    let mut reader = FrameReader::new(recv, MAX_UPLOAD_HEADER_BYTES);
    let code = match tokio::time::timeout(REQUEST_READ_TIMEOUT, reader.read()).await {
        Ok(Ok(header)) => {
            let (recv, rest) = reader.into_parts();
            return Some((header, recv, rest));
        }
        Err(_) => StreamCode::RequestTimeout,
        Ok(Err(ReadFrameError::Frame(FrameError::Oversize { .. }))) => StreamCode::FrameTooLarge,
        Ok(Err(ReadFrameError::Read(_))) => return None,
        Ok(Err(_)) => StreamCode::FrameError,
    };
    let _ = reader.stream_mut().stop(code.into());
    None
}

/// The writing end of a connection's event stream.
#[derive(Debug)]
pub struct EventStream {
    send: quinn::SendStream,
}

impl EventStream {
    /// Wraps the server-initiated unidirectional stream opened for events.
    pub fn new(send: quinn::SendStream) -> Self {
        Self { send }
    }

    /// Writes events in order, coalesced into one write.
    pub async fn send(&mut self, events: &[pb::Event]) -> Result<(), WriteFrameError> {
        let bytes = encode_frames(events, MAX_FRAME_BYTES)?;
        self.send.write_chunk(bytes).await?;
        Ok(())
    }

    /// Writes already-encoded event frames (see [`encode_frames`]) in order, in as few writes as
    /// the stream allows. The caller encodes each event once and shares the bytes between every
    /// connection it goes to.
    pub async fn write_frames(
        &mut self,
        frames: &mut [bytes::Bytes],
    ) -> Result<(), WriteFrameError> {
        self.send.write_all_chunks(frames).await?;
        Ok(())
    }

    /// Finishes the stream (after logout, or before closing the connection) and completes when
    /// the client acknowledged everything written on it (or stopped it, or the connection
    /// ended).
    pub async fn finish(mut self) {
        if self.send.finish().is_ok() {
            let _ = self.send.stopped().await;
        }
    }
}
