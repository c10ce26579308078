//! Server-side stream helpers: accept one request from a request stream and answer it, and write
//! the event stream. chatd uses these so that it never touches the codec directly.

use std::time::Duration;

use crate::frame::{FrameError, MAX_FRAME_BYTES};
use crate::io::{FrameReader, ReadFrameError, WriteFrameError, encode_frames, write_only};
use crate::pb;

/// How long a client may take to deliver a whole request frame before the stream is reset.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Stream error code: the frame could not be decoded.
pub const STREAM_FRAME_ERROR: u32 = 0x100;
/// Stream error code: the announced frame length exceeds the limit.
pub const STREAM_FRAME_TOO_LARGE: u32 = 0x101;
/// Stream error code: the request did not arrive within [`REQUEST_READ_TIMEOUT`].
pub const STREAM_REQUEST_TIMEOUT: u32 = 0x102;

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
            reader: FrameReader::new(recv, max_frame_bytes),
        }
    }

    /// Wraps an accepted bidirectional stream with the default frame limit.
    pub fn with_default_limit(send: quinn::SendStream, recv: quinn::RecvStream) -> Self {
        Self::new(send, recv, MAX_FRAME_BYTES)
    }

    /// Reads the request: exactly one frame, then the end of the stream, within
    /// [`REQUEST_READ_TIMEOUT`]. On a protocol error the receive side is stopped with the matching
    /// stream error code; the caller then answers with [`RequestError::to_error`].
    pub async fn read_request(&mut self) -> Result<pb::Request, RequestError> {
        let read =
            tokio::time::timeout(REQUEST_READ_TIMEOUT, self.reader.read_only::<pb::Request>());
        let err = match read.await {
            Ok(Ok(req)) => return Ok(req),
            Err(_) => {
                let _ = self.reader.stream_mut().stop(STREAM_REQUEST_TIMEOUT.into());
                let _ = self.send.reset(STREAM_REQUEST_TIMEOUT.into());
                return Err(RequestError::TimedOut);
            }
            Ok(Err(err)) => err,
        };
        let (code, err) = match err {
            ReadFrameError::Frame(FrameError::Oversize { len, max }) => {
                (STREAM_FRAME_TOO_LARGE, RequestError::TooLarge { len, max })
            }
            ReadFrameError::Frame(e) => {
                (STREAM_FRAME_ERROR, RequestError::Malformed(e.to_string()))
            }
            ReadFrameError::Finished => (
                STREAM_FRAME_ERROR,
                RequestError::Malformed("stream finished without a request".into()),
            ),
            ReadFrameError::Read(e) => return Err(RequestError::Gone(e.to_string())),
        };
        let _ = self.reader.stream_mut().stop(code.into());
        Err(err)
    }

    /// Writes the response and finishes the stream.
    pub async fn respond(mut self, response: &pb::Response) -> Result<(), WriteFrameError> {
        write_only(&mut self.send, response, MAX_FRAME_BYTES).await
    }

    /// Writes the response frame and leaves the stream open, for an answer that raw bytes
    /// follow (`download`): the caller writes them and finishes the stream.
    pub async fn respond_open(
        mut self,
        response: &pb::Response,
    ) -> Result<quinn::SendStream, WriteFrameError> {
        let bytes = encode_frames([response], MAX_FRAME_BYTES)?;
        self.send.write_chunk(bytes).await?;
        Ok(self.send)
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
        Err(_) => STREAM_REQUEST_TIMEOUT,
        Ok(Err(ReadFrameError::Frame(FrameError::Oversize { .. }))) => STREAM_FRAME_TOO_LARGE,
        Ok(Err(ReadFrameError::Read(_))) => return None,
        Ok(Err(_)) => STREAM_FRAME_ERROR,
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

    /// Finishes the stream (after logout, or before closing the connection).
    pub fn finish(&mut self) {
        let _ = self.send.finish();
    }
}
