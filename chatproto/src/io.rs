//! Async frame I/O over quinn streams: the thin driver around the sans-IO `frame` codec,
//! shared by the client SDK and the server so the codec lives in one place.

use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::frame::{self, FrameDecoder, FrameError};
use crate::pb;

/// Why reading a frame from a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    /// The bytes on the stream are not a valid frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream ended cleanly before any byte of a frame arrived.
    #[error("stream finished")]
    Finished,
    /// The peer reset the stream or the connection was lost.
    #[error(transparent)]
    Read(#[from] quinn::ReadError),
}

/// Reads frames of one message type from a receive stream, buffering partial input.
#[derive(Debug)]
pub struct FrameReader {
    recv: quinn::RecvStream,
    decoder: FrameDecoder,
    buf: BytesMut,
}

impl FrameReader {
    /// Wraps a receive stream; frames longer than `max_frame_bytes` are rejected.
    pub fn new(recv: quinn::RecvStream, max_frame_bytes: usize) -> Self {
        Self {
            recv,
            decoder: FrameDecoder::new(max_frame_bytes),
            buf: BytesMut::new(),
        }
    }

    /// Reads the next frame. Returns [`ReadFrameError::Finished`] when the stream ended exactly at a
    /// frame boundary, and a [`FrameError::Truncated`] when it ended inside one.
    pub async fn read<M: Message + Default>(&mut self) -> Result<M, ReadFrameError> {
        loop {
            if let Some(msg) = self.decoder.decode::<M>(&mut self.buf)? {
                return Ok(msg);
            }
            // Never ask for more than the frame still needs: the buffer stays within the limit.
            let wanted = self.decoder.wanted(&self.buf)?;
            match self.recv.read_chunk(wanted, true).await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None => {
                    self.decoder.finish(&self.buf)?;
                    return Err(ReadFrameError::Finished);
                }
            }
        }
    }

    /// Reads exactly one frame followed by the end of the stream (a request or response stream).
    pub async fn read_only<M: Message + Default>(&mut self) -> Result<M, ReadFrameError> {
        let msg = self.read::<M>().await?;
        if !self.buf.is_empty() {
            return Err(FrameError::TrailingBytes {
                extra: self.buf.len(),
            }
            .into());
        }
        match self.recv.read_chunk(1, true).await? {
            None => Ok(msg),
            Some(chunk) => Err(FrameError::TrailingBytes {
                extra: chunk.bytes.len(),
            }
            .into()),
        }
    }

    /// The underlying stream, e.g. to stop it with an error code.
    pub fn stream_mut(&mut self) -> &mut quinn::RecvStream {
        &mut self.recv
    }

    /// The stream and the bytes read past the last frame: a stream whose frame is followed by
    /// raw bytes (an upload stream, a download answer) continues with these.
    pub fn into_parts(self) -> (quinn::RecvStream, Bytes) {
        (self.recv, self.buf.freeze())
    }
}

/// Why writing a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteFrameError {
    /// The message is larger than the frame limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer stopped the stream or the connection was lost.
    #[error(transparent)]
    Write(#[from] quinn::WriteError),
}

/// Encodes `msgs` as consecutive frames into one buffer, so they leave in as few packets as
/// possible (coalescing is what keeps fan-out cheap: one write for many events).
pub fn encode_frames<'a, M: Message + 'a>(
    msgs: impl IntoIterator<Item = &'a M>,
    max_frame_bytes: usize,
) -> Result<Bytes, FrameError> {
    let mut buf = BytesMut::new();
    for msg in msgs {
        frame::encode(msg, max_frame_bytes, &mut buf)?;
    }
    Ok(buf.freeze())
}

/// Writes one frame and finishes the stream (the only frame of a request or response stream).
pub async fn write_only<M: Message>(
    send: &mut quinn::SendStream,
    msg: &M,
    max_frame_bytes: usize,
) -> Result<(), WriteFrameError> {
    let bytes = encode_frames([msg], max_frame_bytes)?;
    send.write_chunk(bytes).await?;
    // Finishing can only fail if the stream is already closed, which the write above reports.
    let _ = send.finish();
    Ok(())
}

/// Encodes a datagram payload (no length prefix: the QUIC DATAGRAM frame delimits it).
pub fn encode_datagram(msg: &pb::Datagram) -> Bytes {
    Bytes::from(msg.encode_to_vec())
}

/// Largest datagram payload accepted: more than a QUIC datagram can carry on any path.
pub const MAX_DATAGRAM_BYTES: usize = 1500;

/// Decodes a datagram payload, bounded like every other input (see [`frame::decode_datagram`]).
pub fn decode_datagram(bytes: &[u8]) -> Result<pb::Datagram, FrameError> {
    frame::decode_datagram(bytes, MAX_DATAGRAM_BYTES)
}
