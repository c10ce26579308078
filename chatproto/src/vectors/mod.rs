//! The golden vectors of `spec/vectors/`: their model, their file format, the protobuf text
//! format rendering of messages, and the cases the files are generated from.
//!
//! Only built with the `vectors` feature. `cargo xtask vectors` writes the files from
//! [`generate`]; `chatproto/tests/vectors.rs` checks every vector against the codec and that the
//! checked-in files still equal what [`generate`] produces, so the spec cannot drift from
//! `chat.proto`. The file format is specified in `spec/vectors/README.md`.
//!
//! # Layout
//! - this file: [`Vector`], [`Expect`], [`FrameType`], the file format ([`render_file`],
//!   [`parse_file`]) and text format ([`to_text`], [`from_text`]).
//! - `build`: turning a typed case into a [`Vector`] (encoding, checking, rendering).
//! - `samples`: the users, chats and messages the cases are made of.
//! - `requests`, `responses`, `events` (also upload headers and datagrams), `calls`,
//!   `group_calls`, `edge`:
//!   the cases.

mod build;
mod calls;
mod edge;
mod events;
mod group_calls;
mod requests;
mod responses;
mod samples;

use std::fmt::Write as _;
use std::sync::OnceLock;

use prost::{Message, Name};
use prost_reflect::text_format::FormatOptions;
use prost_reflect::{DescriptorPool, DynamicMessage};

use crate::frame::FrameError;

/// The reflection library the vectors are rendered with, for callers that walk messages.
pub use prost_reflect;

/// The encoded `FileDescriptorSet` of `spec/chat.proto`, as compiled by the build script.
pub static FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat.v1.fds"));

/// The datagram size limit the vectors assume (a QUIC path's usual maximum is about 1200 bytes).
pub const DATAGRAM_LIMIT: usize = 1200;

/// The descriptors of every `chat.v1` message, for reflection and text format.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        // The build script produced these bytes from a descriptor set protox had just validated,
        // so failing here means a broken build, not bad input.
        DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("the embedded descriptor set is valid")
    })
}

/// Why a vector could not be generated, rendered or parsed.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// A vector file does not follow the format of `spec/vectors/README.md`.
    #[error("line {line}: {reason}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A message type is missing from the descriptor set.
    #[error("unknown message type {0}")]
    UnknownType(String),
    /// A message in protobuf text format could not be parsed.
    #[error("bad text format for {type_name}: {reason}")]
    Text {
        /// The message type the text was parsed as.
        type_name: String,
        /// The parser's complaint.
        reason: String,
    },
    /// Bytes could not be decoded as the expected message.
    #[error("cannot decode {type_name}: {reason}")]
    Decode {
        /// The message type.
        type_name: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// The frame codec rejected a frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A case does not behave as its author said (the generator refuses to write it).
    #[error("vector {name}: {reason}")]
    Case {
        /// The vector's name.
        name: String,
        /// How it misbehaves.
        reason: String,
    },
}

/// The five top-level frame types of chat/1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// A client request: the whole content of a request stream's client side.
    Request,
    /// A server response: the whole content of a request stream's server side.
    Response,
    /// One frame of the event stream.
    Event,
    /// The payload of one QUIC DATAGRAM frame (no length prefix).
    Datagram,
    /// The first frame of an upload stream (capability `files`); the file's bytes follow it.
    UploadStreamHeader,
}

impl FrameType {
    /// Every frame type, in file order.
    pub const ALL: [FrameType; 5] = [
        FrameType::Request,
        FrameType::Response,
        FrameType::Event,
        FrameType::Datagram,
        FrameType::UploadStreamHeader,
    ];

    /// The name used in the files (`Request`, ...), which is also the protobuf message name.
    pub fn name(self) -> &'static str {
        match self {
            FrameType::Request => "Request",
            FrameType::Response => "Response",
            FrameType::Event => "Event",
            FrameType::Datagram => "Datagram",
            FrameType::UploadStreamHeader => "UploadStreamHeader",
        }
    }

    /// The frame type with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The protobuf full name of the message this frame carries, e.g. `chat.v1.Request`.
    pub fn message_full_name(self) -> String {
        format!("{}.{}", crate::pb::Request::PACKAGE, self.name())
    }
}

/// What a receiver must do with a vector's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expect {
    /// Decodes to `message`, and encoding `message` gives exactly these bytes.
    Ok,
    /// Decodes to `message`, but the bytes are not the canonical encoding (unknown fields, field
    /// order, unpacked repeated fields): re-encoding need not reproduce them.
    DecodeOnly,
    /// The stream ended inside the frame.
    Truncated,
    /// The announced length exceeds the limit; rejected from the length prefix alone.
    TooLarge,
    /// The length prefix is malformed (not minimal, or longer than 10 bytes / 64 bits).
    BadLength,
    /// The payload is not a valid protobuf encoding of the frame's message.
    Undecodable,
    /// Bytes follow the single frame of a request stream (Request and Response only).
    TrailingBytes,
}

impl Expect {
    /// Every outcome.
    pub const ALL: [Expect; 7] = [
        Expect::Ok,
        Expect::DecodeOnly,
        Expect::Truncated,
        Expect::TooLarge,
        Expect::BadLength,
        Expect::Undecodable,
        Expect::TrailingBytes,
    ];

    /// The name used in the files.
    pub fn name(self) -> &'static str {
        match self {
            Expect::Ok => "ok",
            Expect::DecodeOnly => "decode-only",
            Expect::Truncated => "truncated",
            Expect::TooLarge => "too-large",
            Expect::BadLength => "bad-length",
            Expect::Undecodable => "undecodable",
            Expect::TrailingBytes => "trailing-bytes",
        }
    }

    /// The outcome with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether the bytes decode to a message (`ok`, `decode-only`).
    pub fn decodes(self) -> bool {
        matches!(self, Expect::Ok | Expect::DecodeOnly)
    }

    /// The outcome a decoding error stands for.
    pub fn of_error(error: &FrameError) -> Expect {
        match error {
            FrameError::Oversize { .. } => Expect::TooLarge,
            FrameError::BadLength => Expect::BadLength,
            FrameError::Truncated { .. } => Expect::Truncated,
            FrameError::Decode(_) => Expect::Undecodable,
            FrameError::TrailingBytes { .. } => Expect::TrailingBytes,
        }
    }
}

/// One golden vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vector {
    /// Unique across all files, e.g. `request.hello`.
    pub name: String,
    /// Which frame type the bytes are.
    pub frame: FrameType,
    /// What a receiver must make of the bytes.
    pub expect: Expect,
    /// Why the vector exists, when that is not obvious from its name.
    pub note: Option<String>,
    /// Everything the sender wrote (a whole request stream side, one event frame, or one
    /// datagram payload).
    pub bytes: Vec<u8>,
    /// The decoded message in protobuf text format (pretty-printed), for `ok` and `decode-only`.
    pub message: Option<String>,
}

/// One file of `spec/vectors/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorFile {
    /// The file name inside `spec/vectors/`, e.g. `request.txt`.
    pub file_name: &'static str,
    /// One line saying what the file holds.
    pub title: &'static str,
    /// The vectors, in file order.
    pub vectors: Vec<Vector>,
}

/// Builds every vector file from the cases, checking each case as it goes.
pub fn generate() -> Result<Vec<VectorFile>, VectorError> {
    Ok(vec![
        VectorFile {
            file_name: "request.txt",
            title: "one valid Request frame for every request kind",
            vectors: [
                requests::requests()?,
                calls::requests()?,
                group_calls::requests()?,
            ]
            .concat(),
        },
        VectorFile {
            file_name: "response.txt",
            title: "valid Response frames, every result kind",
            vectors: [
                responses::responses()?,
                calls::responses()?,
                group_calls::responses()?,
            ]
            .concat(),
        },
        VectorFile {
            file_name: "event.txt",
            title: "valid Event frames, every event kind and every chat event body",
            vectors: [events::events()?, calls::events()?, group_calls::events()?].concat(),
        },
        VectorFile {
            file_name: "datagram.txt",
            title: "valid datagrams",
            vectors: events::datagrams()?,
        },
        VectorFile {
            file_name: "upload.txt",
            title: "the header frame of an upload stream",
            vectors: events::upload_headers()?,
        },
        VectorFile {
            file_name: "compat.txt",
            title: "forward compatibility: unknown fields, kinds and enum values, non-canonical encodings",
            vectors: edge::compat()?,
        },
        VectorFile {
            file_name: "invalid.txt",
            title: "frames a receiver must reject, and how",
            vectors: edge::invalid_frames()?,
        },
    ])
}

/// Renders a message in protobuf text format, pretty-printed (two-space indent, fields in
/// field-number order, non-ASCII string bytes as octal escapes).
pub fn to_text<M: Message + Name>(msg: &M) -> Result<String, VectorError> {
    let type_name = M::full_name();
    let desc = descriptor_pool()
        .get_message_by_name(&type_name)
        .ok_or_else(|| VectorError::UnknownType(type_name.clone()))?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice()).map_err(|e| {
        VectorError::Decode {
            type_name,
            reason: e.to_string(),
        }
    })?;
    Ok(dynamic.to_text_format_with_options(&FormatOptions::new().pretty(true)))
}

/// Parses a message from protobuf text format.
pub fn from_text<M: Message + Name + Default>(text: &str) -> Result<M, VectorError> {
    let dynamic = dynamic_from_text(&M::full_name(), text)?;
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| VectorError::Decode {
        type_name: M::full_name(),
        reason: e.to_string(),
    })
}

/// Parses text format as the message type `type_name` (a full name such as `chat.v1.Request`),
/// for callers that walk messages by reflection.
pub fn dynamic_from_text(type_name: &str, text: &str) -> Result<DynamicMessage, VectorError> {
    let desc = descriptor_pool()
        .get_message_by_name(type_name)
        .ok_or_else(|| VectorError::UnknownType(type_name.to_owned()))?;
    DynamicMessage::parse_text_format(desc, text).map_err(|e| VectorError::Text {
        type_name: type_name.to_owned(),
        reason: e.to_string(),
    })
}

/// Writes a vector file in the format of `spec/vectors/README.md`.
pub fn render_file(file: &VectorFile) -> String {
    let mut out = String::new();
    out.push_str("# chat/1 golden vectors: ");
    out.push_str(file.title);
    out.push_str(".\n# Generated by `cargo xtask vectors` (chatproto/src/vectors); do not edit.\n");
    out.push_str("# Format: README.md in this directory.\n");
    for v in &file.vectors {
        out.push('\n');
        // Writing to a String cannot fail.
        let _ = writeln!(out, "vector: {}", v.name);
        let _ = writeln!(out, "frame: {}", v.frame.name());
        let _ = writeln!(out, "expect: {}", v.expect.name());
        if let Some(note) = &v.note {
            let _ = writeln!(out, "note: {note}");
        }
        if v.bytes.is_empty() {
            out.push_str("hex:\n");
        } else {
            let _ = writeln!(out, "hex: {}", hex::encode(&v.bytes));
        }
        if let Some(message) = &v.message {
            out.push_str("message:\n");
            for line in message.lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Parses a vector file (strictly: unknown keys, duplicates and missing keys are errors).
pub fn parse_file(text: &str) -> Result<Vec<Vector>, VectorError> {
    let mut vectors = Vec::new();
    let mut record: Option<Record> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let syntax = |reason: String| VectorError::Syntax {
            line: number,
            reason,
        };
        if line.is_empty() {
            if let Some(done) = record.take() {
                vectors.push(done.finish()?);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if let Some(continuation) = line.strip_prefix("  ") {
            match &mut record {
                Some(r) if r.in_message => {
                    let message = r.message.get_or_insert_with(String::new);
                    if !message.is_empty() {
                        message.push('\n');
                    }
                    message.push_str(continuation);
                    continue;
                }
                _ => return Err(syntax("indented line outside a message block".into())),
            }
        }
        let (key, value) = match line.split_once(':') {
            Some((key, value)) => (key, value.strip_prefix(' ').unwrap_or(value)),
            None => return Err(syntax(format!("expected `key: value`, found {line:?}"))),
        };
        let r = record.get_or_insert_with(|| Record::new(number));
        r.in_message = false;
        r.set(key, value).map_err(syntax)?;
    }
    if let Some(done) = record.take() {
        vectors.push(done.finish()?);
    }
    Ok(vectors)
}

/// A vector being parsed.
struct Record {
    line: usize,
    name: Option<String>,
    frame: Option<FrameType>,
    expect: Option<Expect>,
    note: Option<String>,
    bytes: Option<Vec<u8>>,
    message: Option<String>,
    in_message: bool,
}

impl Record {
    fn new(line: usize) -> Self {
        Self {
            line,
            name: None,
            frame: None,
            expect: None,
            note: None,
            bytes: None,
            message: None,
            in_message: false,
        }
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn once<T>(slot: &mut Option<T>, key: &str, value: T) -> Result<(), String> {
            if slot.replace(value).is_some() {
                return Err(format!("duplicate key {key:?}"));
            }
            Ok(())
        }
        match key {
            "vector" => once(&mut self.name, key, value.to_owned()),
            "frame" => {
                let frame = FrameType::from_name(value)
                    .ok_or_else(|| format!("unknown frame type {value:?}"))?;
                once(&mut self.frame, key, frame)
            }
            "expect" => {
                let expect =
                    Expect::from_name(value).ok_or_else(|| format!("unknown outcome {value:?}"))?;
                once(&mut self.expect, key, expect)
            }
            "note" => once(&mut self.note, key, value.to_owned()),
            "hex" => {
                let bytes = hex::decode(value).map_err(|e| format!("bad hex: {e}"))?;
                once(&mut self.bytes, key, bytes)
            }
            "message" => {
                if !value.is_empty() {
                    return Err("`message:` must be alone on its line".into());
                }
                self.in_message = true;
                once(&mut self.message, key, String::new())
            }
            other => Err(format!("unknown key {other:?}")),
        }
    }

    fn finish(self) -> Result<Vector, VectorError> {
        let line = self.line;
        let missing = |key: &str| VectorError::Syntax {
            line,
            reason: format!("vector without `{key}`"),
        };
        let expect = self.expect.ok_or_else(|| missing("expect"))?;
        if expect.decodes() != self.message.is_some() {
            return Err(VectorError::Syntax {
                line,
                reason: format!(
                    "`message` is required for ok and decode-only vectors only (expect: {})",
                    expect.name()
                ),
            });
        }
        Ok(Vector {
            name: self.name.ok_or_else(|| missing("vector"))?,
            frame: self.frame.ok_or_else(|| missing("frame"))?,
            expect,
            note: self.note,
            bytes: self.bytes.ok_or_else(|| missing("hex"))?,
            message: self.message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_through_the_parser() {
        for file in generate().unwrap() {
            let text = render_file(&file);
            assert_eq!(
                parse_file(&text).unwrap(),
                file.vectors,
                "{}",
                file.file_name
            );
        }
    }

    #[test]
    fn parser_rejects_malformed_records() {
        let bad = [
            (
                "vector: a\nframe: Nope\nexpect: ok\nhex: 00\n",
                "unknown frame type",
            ),
            (
                "vector: a\nframe: Request\nexpect: ok\nhex: 0\nmessage:\n",
                "bad hex",
            ),
            (
                "vector: a\nframe: Request\nexpect: ok\nhex: 00\n",
                "`message` is required",
            ),
            (
                "vector: a\nframe: Request\nexpect: truncated\nhex: 80\nmessage:\n",
                "`message` is required",
            ),
            ("vector: a\nvector: b\n", "duplicate key"),
            ("vector: a\nframe: Request\nhex: 80\n", "without `expect`"),
            ("  request_id: 1\n", "outside a message block"),
            ("vector: a\ncolour: blue\n", "unknown key"),
        ];
        for (text, reason) in bad {
            let err = parse_file(text).unwrap_err().to_string();
            assert!(
                err.contains(reason),
                "{text:?} gave {err:?}, expected {reason:?}"
            );
        }
    }

    #[test]
    fn text_format_round_trips_a_request() {
        let req = crate::pb::Request {
            request_id: 3,
            kind: Some(crate::pb::request::Kind::Logout(crate::pb::Logout {})),
        };
        let text = to_text(&req).unwrap();
        assert_eq!(text, "request_id: 3\nlogout {}");
        assert_eq!(from_text::<crate::pb::Request>(&text).unwrap(), req);
        assert!(from_text::<crate::pb::Request>("request_id: \"x\"").is_err());
    }
}
