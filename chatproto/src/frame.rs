//! Frame codec: a varint length prefix followed by one protobuf message.
//!
//! Sans-IO: the decoder works on whatever bytes have arrived so far and never reads from a socket.
//! It checks the announced length against the limit *before* buffering the payload, so hostile
//! input can never make it allocate more than `max_frame_bytes` plus the 10-byte prefix.
//!
//! The rules implemented here are normative: `spec/protocol.md`, section "Framing". Datagrams
//! ([`encode_datagram`], [`decode_datagram`]) carry one message without a prefix.

use bytes::{Buf, BufMut, BytesMut};
use prost::Message;

use crate::pb;

/// Largest Request, Response or Event payload a peer accepts unless both agree otherwise: 256 KiB.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// Longest encoding of a length prefix (a 64-bit LEB128 varint).
pub const MAX_LENGTH_PREFIX: usize = 10;

/// Why a frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The announced (or, when encoding, the actual) payload length exceeds the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversize {
        /// The announced payload length.
        len: u64,
        /// The limit in force.
        max: usize,
    },
    /// The length prefix is not a minimal varint, or is longer than 10 bytes.
    #[error("malformed length prefix")]
    BadLength,
    /// The input ended inside a frame.
    #[error("truncated frame: {missing} more bytes were expected")]
    Truncated {
        /// How many more bytes the frame needed (at least).
        missing: u64,
    },
    /// The payload is not a valid protobuf encoding of the expected message.
    #[error("undecodable frame: {0}")]
    Decode(String),
    /// Bytes follow the frame on a stream that carries exactly one frame (a request stream).
    #[error("{extra} unexpected bytes after the frame")]
    TrailingBytes {
        /// How many bytes followed the frame (at least; the stream may hold more).
        extra: usize,
    },
}

/// Appends `msg` as one frame to `dst`.
///
/// Fails with [`FrameError::Oversize`] when the encoded message is longer than `max_frame_bytes`,
/// leaving `dst` unchanged.
pub fn encode<M: Message>(
    msg: &M,
    max_frame_bytes: usize,
    dst: &mut BytesMut,
) -> Result<(), FrameError> {
    let len = msg.encoded_len();
    if len > max_frame_bytes {
        return Err(FrameError::Oversize {
            len: len as u64,
            max: max_frame_bytes,
        });
    }
    let start = dst.len();
    dst.reserve(prost::length_delimiter_len(len) + len);
    prost::encoding::encode_varint(len as u64, dst);
    // `BytesMut` grows on demand, so prost's capacity check cannot fail; should it ever, undo the
    // prefix rather than leave half a frame behind.
    if msg.encode(dst).is_err() {
        dst.truncate(start);
        return Err(FrameError::Oversize {
            len: len as u64,
            max: max_frame_bytes,
        });
    }
    Ok(())
}

/// Encodes `msg` as one frame into a new buffer.
pub fn encode_to_vec<M: Message>(msg: &M, max_frame_bytes: usize) -> Result<Vec<u8>, FrameError> {
    let mut buf = BytesMut::new();
    encode(msg, max_frame_bytes, &mut buf)?;
    Ok(buf.to_vec())
}

/// What the length prefix at the start of a buffer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    /// More bytes are needed to finish the prefix.
    Incomplete,
    /// The prefix is `prefix_len` bytes long and announces `payload_len` bytes.
    Complete { prefix_len: usize, payload_len: u64 },
}

/// Parses a length prefix without consuming it, rejecting oversize lengths as early as possible.
fn parse_prefix(buf: &[u8], max_frame_bytes: usize) -> Result<Prefix, FrameError> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(MAX_LENGTH_PREFIX) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && byte > 0x01 {
            // The tenth byte may only hold the 64th bit.
            return Err(FrameError::BadLength);
        }
        value |= bits << (7 * i);
        if value > max_frame_bytes as u64 {
            return Err(FrameError::Oversize {
                len: value,
                max: max_frame_bytes,
            });
        }
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                // A trailing zero group: the same value has a shorter encoding.
                return Err(FrameError::BadLength);
            }
            return Ok(Prefix::Complete {
                prefix_len: i + 1,
                payload_len: value,
            });
        }
    }
    if buf.len() >= MAX_LENGTH_PREFIX {
        return Err(FrameError::BadLength);
    }
    Ok(Prefix::Incomplete)
}

/// Decodes frames of one message type from a byte buffer that grows as data arrives.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder that rejects payloads longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }

    /// The limit this decoder enforces.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// How many more bytes `buf` needs before [`decode`](Self::decode) can make progress, at least 1.
    ///
    /// Use it to size the next read: it never exceeds the prefix plus the frame limit.
    pub fn wanted(&self, buf: &[u8]) -> Result<usize, FrameError> {
        match parse_prefix(buf, self.max_frame_bytes)? {
            Prefix::Incomplete => Ok(1),
            Prefix::Complete {
                prefix_len,
                payload_len,
            } => {
                let total = prefix_len + payload_len as usize;
                Ok(total.saturating_sub(buf.len()).max(1))
            }
        }
    }

    /// How many bytes a reader may add to `buf` now: at least [`wanted`](Self::wanted), and
    /// as many more as keep `buf` within one longest length prefix plus the frame limit.
    ///
    /// Reading this much takes every frame that has arrived in one read: a stream's data often
    /// holds several frames (coalesced events), and a reader that asked only for what the
    /// current frame still needs would read a length prefix a byte at a time and each frame
    /// with a read of its own. Bytes past the frame stay in `buf` for the next one.
    pub fn readable(&self, buf: &[u8]) -> Result<usize, FrameError> {
        let wanted = self.wanted(buf)?;
        let bound = MAX_LENGTH_PREFIX + self.max_frame_bytes;
        Ok(wanted.max(bound.saturating_sub(buf.len())))
    }

    /// Takes one complete frame off the front of `buf` and decodes it.
    ///
    /// Returns `Ok(None)` when `buf` does not hold a whole frame yet (nothing is consumed). On an
    /// error the stream is unusable: the caller must stop reading it.
    pub fn decode<M: Message + Default>(
        &self,
        buf: &mut BytesMut,
    ) -> Result<Option<M>, FrameError> {
        let (prefix_len, payload_len) = match parse_prefix(buf, self.max_frame_bytes)? {
            Prefix::Incomplete => return Ok(None),
            Prefix::Complete {
                prefix_len,
                payload_len,
            } => (prefix_len, payload_len as usize),
        };
        if buf.len() < prefix_len + payload_len {
            return Ok(None);
        }
        buf.advance(prefix_len);
        let payload = buf.split_to(payload_len);
        M::decode(payload.freeze())
            .map(Some)
            .map_err(|e| FrameError::Decode(e.to_string()))
    }

    /// Checks that nothing is left over when the stream ends: leftover bytes are a truncated frame.
    pub fn finish(&self, buf: &[u8]) -> Result<(), FrameError> {
        if buf.is_empty() {
            return Ok(());
        }
        let missing = match parse_prefix(buf, self.max_frame_bytes)? {
            Prefix::Incomplete => 1,
            Prefix::Complete {
                prefix_len,
                payload_len,
            } => (prefix_len as u64 + payload_len)
                .saturating_sub(buf.len() as u64)
                .max(1),
        };
        Err(FrameError::Truncated { missing })
    }

    /// Decodes a buffer that must hold exactly one frame and nothing else (a whole stream).
    pub fn decode_exact<M: Message + Default>(&self, bytes: &[u8]) -> Result<M, FrameError> {
        let mut buf = BytesMut::from(bytes);
        match self.decode(&mut buf)? {
            Some(msg) if buf.is_empty() => Ok(msg),
            // Bytes after the frame: a request/response stream carries exactly one frame.
            Some(_) => Err(FrameError::TrailingBytes { extra: buf.len() }),
            None => {
                self.finish(&buf)?;
                Err(FrameError::Truncated { missing: 1 })
            }
        }
    }
}

/// Writes a length prefix for `len` into `dst` (exposed for writers that stream a payload).
pub fn put_length_prefix(len: usize, dst: &mut impl BufMut) {
    prost::encoding::encode_varint(len as u64, dst);
}

/// Encodes a datagram: the bare message, no length prefix (one QUIC DATAGRAM frame holds one).
///
/// `max_datagram_bytes` is what the connection can carry now (quinn's `max_datagram_size()`);
/// a longer encoding fails with [`FrameError::Oversize`].
pub fn encode_datagram(
    msg: &pb::Datagram,
    max_datagram_bytes: usize,
) -> Result<Vec<u8>, FrameError> {
    let len = msg.encoded_len();
    if len > max_datagram_bytes {
        return Err(FrameError::Oversize {
            len: len as u64,
            max: max_datagram_bytes,
        });
    }
    Ok(msg.encode_to_vec())
}

/// Decodes the payload of one QUIC DATAGRAM frame.
///
/// Datagrams longer than `max_datagram_bytes` are rejected without being parsed.
pub fn decode_datagram(
    bytes: &[u8],
    max_datagram_bytes: usize,
) -> Result<pb::Datagram, FrameError> {
    if bytes.len() > max_datagram_bytes {
        return Err(FrameError::Oversize {
            len: bytes.len() as u64,
            max: max_datagram_bytes,
        });
    }
    pb::Datagram::decode(bytes).map_err(|e| FrameError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> pb::Request {
        pb::Request {
            request_id: 7,
            kind: Some(pb::request::Kind::Hello(pb::Hello {
                protocol_major: 1,
                protocol_minor: 0,
                capabilities: vec!["datagrams".into()],
                client_name: "test/1".into(),
            })),
        }
    }

    #[test]
    fn round_trip_byte_by_byte() {
        let bytes = encode_to_vec(&hello(), MAX_FRAME_BYTES).unwrap();
        let dec = FrameDecoder::default();
        let mut buf = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            buf.put_u8(*b);
            let out: Option<pb::Request> = dec.decode(&mut buf).unwrap();
            if i + 1 < bytes.len() {
                assert!(out.is_none());
            } else {
                assert_eq!(out.unwrap(), hello());
            }
        }
        assert!(buf.is_empty());
        dec.finish(&buf).unwrap();
    }

    #[test]
    fn oversize_is_rejected_from_the_prefix_alone() {
        let dec = FrameDecoder::new(100);
        let mut buf = BytesMut::from(&[0xe5, 0x00][..]);
        // 0xe5 alone already announces 101 > 100 bytes.
        buf.truncate(1);
        buf[0] = 101;
        assert_eq!(
            dec.decode::<pb::Request>(&mut buf),
            Err(FrameError::Oversize { len: 101, max: 100 })
        );
    }

    #[test]
    fn non_minimal_prefix_is_rejected() {
        let dec = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0x80, 0x00][..]);
        assert_eq!(
            dec.decode::<pb::Request>(&mut buf),
            Err(FrameError::BadLength)
        );
    }

    #[test]
    fn prefix_longer_than_ten_bytes_is_rejected() {
        let dec = FrameDecoder::default();
        // Ten continuation bytes: the tenth may only hold the 64th bit, so this is malformed
        // before the eleventh byte arrives.
        let mut buf = BytesMut::from(&[0x80; 10][..]);
        assert_eq!(
            dec.decode::<pb::Request>(&mut buf),
            Err(FrameError::BadLength)
        );
        let mut overflow =
            BytesMut::from(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02][..]);
        assert_eq!(
            dec.decode::<pb::Request>(&mut overflow),
            Err(FrameError::BadLength)
        );
    }

    #[test]
    fn wanted_never_exceeds_prefix_plus_limit() {
        let dec = FrameDecoder::new(300);
        assert_eq!(dec.wanted(&[]), Ok(1));
        // 300 = 0xac 0x02: once the prefix is complete the decoder asks for the whole payload.
        assert_eq!(dec.wanted(&[0xac]), Ok(1));
        assert_eq!(dec.wanted(&[0xac, 0x02]), Ok(300));
        assert_eq!(dec.wanted(&[0xac, 0x02, 0, 0]), Ok(298));
        assert_eq!(
            dec.wanted(&[0xad, 0x02]),
            Err(FrameError::Oversize { len: 301, max: 300 })
        );
    }

    #[test]
    fn readable_fills_up_to_prefix_plus_limit() {
        let dec = FrameDecoder::new(300);
        let bound = MAX_LENGTH_PREFIX + 300;
        assert_eq!(dec.readable(&[]), Ok(bound));
        assert_eq!(dec.readable(&[0xac]), Ok(bound - 1));
        assert_eq!(dec.readable(&[0xac, 0x02, 0, 0]), Ok(bound - 4));
        // A prefix the decoder would refuse is refused before any read.
        assert_eq!(
            dec.readable(&[0xad, 0x02]),
            Err(FrameError::Oversize { len: 301, max: 300 })
        );
    }

    #[test]
    fn trailing_bytes_after_a_single_frame_are_rejected() {
        let mut bytes = encode_to_vec(&hello(), MAX_FRAME_BYTES).unwrap();
        let dec = FrameDecoder::default();
        assert_eq!(dec.decode_exact::<pb::Request>(&bytes), Ok(hello()));
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(
            dec.decode_exact::<pb::Request>(&bytes),
            Err(FrameError::TrailingBytes { extra: 2 })
        );
    }

    #[test]
    fn truncated_stream_reports_missing_bytes() {
        let bytes = encode_to_vec(&hello(), MAX_FRAME_BYTES).unwrap();
        let dec = FrameDecoder::default();
        let cut = &bytes[..bytes.len() - 3];
        assert_eq!(
            dec.decode_exact::<pb::Request>(cut),
            Err(FrameError::Truncated { missing: 3 })
        );
        assert_eq!(
            dec.decode_exact::<pb::Request>(&[]),
            Err(FrameError::Truncated { missing: 1 })
        );
    }

    #[test]
    fn datagrams_have_no_prefix_and_a_size_limit() {
        let typing = pb::Datagram {
            kind: Some(pb::datagram::Kind::Typing(pb::Typing {
                chat_id: 5,
                user_id: 0,
                expires_in_ms: 0,
            })),
        };
        let bytes = encode_datagram(&typing, 1200).unwrap();
        assert_eq!(bytes, vec![0x0a, 0x02, 0x08, 0x05]);
        assert_eq!(decode_datagram(&bytes, 1200), Ok(typing));
        assert_eq!(
            decode_datagram(&bytes, 3),
            Err(FrameError::Oversize { len: 4, max: 3 })
        );
        assert_eq!(
            encode_datagram(&typing, 3),
            Err(FrameError::Oversize { len: 4, max: 3 })
        );
        assert!(matches!(
            decode_datagram(&[0x0f], 1200),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn encode_refuses_oversize() {
        let mut buf = BytesMut::new();
        assert!(matches!(
            encode(&hello(), 3, &mut buf),
            Err(FrameError::Oversize { .. })
        ));
        assert!(buf.is_empty());
    }
}
