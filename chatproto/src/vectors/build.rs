//! Turning typed cases into [`Vector`]s. Every constructor checks that the codec treats the bytes
//! the way the case says, so a wrong case fails generation instead of landing in the spec.

use prost::{Message, Name};

use super::{DATAGRAM_LIMIT, Expect, FrameType, Vector, VectorError, to_text};
use crate::frame::{self, FrameDecoder, FrameError, MAX_FRAME_BYTES};
use crate::pb;

/// A top-level frame message and how it travels.
pub(super) trait Framed: Message + Name + Default + PartialEq {
    /// The frame type this message is.
    const FRAME: FrameType;

    /// The bytes on the wire: a length-prefixed frame, or a bare datagram payload.
    fn encode_frame(&self) -> Result<Vec<u8>, FrameError> {
        frame::encode_to_vec(self, MAX_FRAME_BYTES)
    }

    /// Decodes everything a sender wrote (one frame and nothing else).
    fn decode_frame(bytes: &[u8]) -> Result<Self, FrameError> {
        FrameDecoder::default().decode_exact(bytes)
    }
}

impl Framed for pb::Request {
    const FRAME: FrameType = FrameType::Request;
}

impl Framed for pb::Response {
    const FRAME: FrameType = FrameType::Response;
}

impl Framed for pb::Event {
    const FRAME: FrameType = FrameType::Event;
}

impl Framed for pb::UploadStreamHeader {
    const FRAME: FrameType = FrameType::UploadStreamHeader;
}

impl Framed for pb::Datagram {
    const FRAME: FrameType = FrameType::Datagram;

    fn encode_frame(&self) -> Result<Vec<u8>, FrameError> {
        frame::encode_datagram(self, DATAGRAM_LIMIT)
    }

    fn decode_frame(bytes: &[u8]) -> Result<Self, FrameError> {
        frame::decode_datagram(bytes, DATAGRAM_LIMIT)
    }
}

fn case_error(name: &str, reason: String) -> VectorError {
    VectorError::Case {
        name: name.to_owned(),
        reason,
    }
}

/// A canonical vector: `msg` encoded, and its text form.
pub(super) fn ok<M: Framed>(
    name: &str,
    note: Option<&str>,
    msg: &M,
) -> Result<Vector, VectorError> {
    let bytes = msg.encode_frame()?;
    if M::decode_frame(&bytes)? != *msg {
        return Err(case_error(
            name,
            "does not survive an encode/decode round trip".into(),
        ));
    }
    let text = to_text(msg)?;
    if super::from_text::<M>(&text)? != *msg {
        return Err(case_error(
            name,
            "does not survive a text format round trip".into(),
        ));
    }
    Ok(Vector {
        name: name.to_owned(),
        frame: M::FRAME,
        expect: Expect::Ok,
        note: note.map(str::to_owned),
        bytes,
        message: Some(text),
    })
}

/// A non-canonical encoding (`bytes`) that must decode to `expected`.
pub(super) fn decode_only<M: Framed>(
    name: &str,
    note: &str,
    bytes: Vec<u8>,
    expected: &M,
) -> Result<Vector, VectorError> {
    match M::decode_frame(&bytes) {
        Ok(decoded) if decoded == *expected => {}
        Ok(_) => {
            return Err(case_error(
                name,
                "decodes to something else than expected".into(),
            ));
        }
        Err(e) => return Err(case_error(name, format!("does not decode: {e}"))),
    }
    if expected.encode_frame()? == bytes {
        return Err(case_error(
            name,
            "is the canonical encoding: make it an ok vector".into(),
        ));
    }
    Ok(Vector {
        name: name.to_owned(),
        frame: M::FRAME,
        expect: Expect::DecodeOnly,
        note: Some(note.to_owned()),
        bytes,
        message: Some(to_text(expected)?),
    })
}

/// Bytes a receiver must reject with the `expect` outcome.
pub(super) fn invalid<M: Framed>(
    name: &str,
    note: &str,
    expect: Expect,
    bytes: Vec<u8>,
) -> Result<Vector, VectorError> {
    match M::decode_frame(&bytes) {
        Ok(_) => return Err(case_error(name, "decodes, but should not".into())),
        Err(e) if Expect::of_error(&e) != expect => {
            return Err(case_error(
                name,
                format!("fails with {e}, expected {}", expect.name()),
            ));
        }
        Err(_) => {}
    }
    Ok(Vector {
        name: name.to_owned(),
        frame: M::FRAME,
        expect,
        note: Some(note.to_owned()),
        bytes,
        message: None,
    })
}

/// Shorthand for a request with id and kind.
pub(super) fn request(request_id: u64, kind: pb::request::Kind) -> pb::Request {
    pb::Request {
        request_id,
        kind: Some(kind),
    }
}

/// Shorthand for a response with id and result.
pub(super) fn response(request_id: u64, result: pb::response::Result) -> pb::Response {
    pb::Response {
        request_id,
        result: Some(result),
    }
}

/// Shorthand for an event.
pub(super) fn event(kind: pb::event::Kind) -> pb::Event {
    pb::Event { kind: Some(kind) }
}
