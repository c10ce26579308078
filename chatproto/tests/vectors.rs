//! Conformance with the golden vectors of `spec/vectors/`.
//!
//! - Every checked-in vector holds against the real codec: decoding its bytes gives its message
//!   (protobuf text format), encoding its message gives its bytes, and invalid bytes fail with
//!   the stated outcome, whether fed at once or byte by byte.
//! - The checked-in files equal what the generator produces from the current `chat.proto`.
//! - The vectors cover every message type, every oneof arm and every outcome.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::PathBuf;

use bytes::BytesMut;
use chatproto::frame::{self, FrameDecoder, FrameError, MAX_FRAME_BYTES};
use chatproto::pb;
use chatproto::vectors::prost_reflect::{DynamicMessage, ReflectMessage, Value};
use chatproto::vectors::{self, DATAGRAM_LIMIT, Expect, FrameType, Vector};
use prost::{Message, Name};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

/// Every checked-in `.txt` file, parsed: (file name, vectors).
fn checked_in() -> Vec<(String, Vec<Vector>)> {
    let mut names: Vec<String> = fs::read_dir(vectors_dir())
        .expect("spec/vectors exists")
        .map(|e| {
            e.expect("readable directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".txt"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no vector files in spec/vectors");
    names
        .into_iter()
        .map(|name| {
            let text = fs::read_to_string(vectors_dir().join(&name)).expect("readable vector file");
            let vectors = vectors::parse_file(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, vectors)
        })
        .collect()
}

#[test]
fn checked_in_files_equal_the_generator() {
    let generated = vectors::generate().expect("the generator accepts every case");
    let expected: BTreeSet<String> = generated.iter().map(|f| f.file_name.to_owned()).collect();
    let present: BTreeSet<String> = checked_in().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        present, expected,
        "vector files differ from the generator's: run `cargo xtask vectors`"
    );
    for file in &generated {
        let on_disk =
            fs::read_to_string(vectors_dir().join(file.file_name)).expect("readable vector file");
        let fresh = vectors::render_file(file);
        if on_disk != fresh {
            let line = on_disk
                .lines()
                .zip(fresh.lines())
                .position(|(a, b)| a != b)
                .map_or_else(
                    || on_disk.lines().count().min(fresh.lines().count()) + 1,
                    |i| i + 1,
                );
            panic!(
                "spec/vectors/{} is stale from line {line}: run `cargo xtask vectors`",
                file.file_name
            );
        }
    }
}

/// What decoding a vector's bytes produced.
#[derive(Debug, PartialEq)]
enum Outcome<M> {
    Decoded(M),
    Failed(Expect),
}

/// Decodes a stream's bytes, all at once, as the receiver of a request stream (exactly one
/// frame) or of the event stream (one frame, then more frames could follow).
fn decode_whole<M: Message + Default>(bytes: &[u8], frame: FrameType) -> Outcome<M> {
    let dec = FrameDecoder::new(MAX_FRAME_BYTES);
    let result = if frame == FrameType::Event {
        let mut buf = BytesMut::from(bytes);
        match dec.decode::<M>(&mut buf) {
            Ok(Some(msg)) => {
                assert!(buf.is_empty(), "an event vector holds exactly one frame");
                Ok(msg)
            }
            Ok(None) => match dec.finish(&buf) {
                Err(e) => Err(e),
                Ok(()) => Err(FrameError::Truncated { missing: 1 }),
            },
            Err(e) => Err(e),
        }
    } else {
        dec.decode_exact::<M>(bytes)
    };
    match result {
        Ok(msg) => Outcome::Decoded(msg),
        Err(e) => Outcome::Failed(Expect::of_error(&e)),
    }
}

/// The same, one byte at a time, as a stream reader that is handed tiny chunks.
fn decode_bytewise<M: Message + Default>(bytes: &[u8]) -> Outcome<M> {
    let dec = FrameDecoder::new(MAX_FRAME_BYTES);
    let mut buf = BytesMut::new();
    let mut decoded = None;
    for &byte in bytes {
        buf.extend_from_slice(&[byte]);
        if decoded.is_some() {
            // Bytes after the frame: a request stream's trailing bytes.
            continue;
        }
        match dec.decode::<M>(&mut buf) {
            Ok(Some(msg)) => decoded = Some(msg),
            Ok(None) => {}
            Err(e) => return Outcome::Failed(Expect::of_error(&e)),
        }
    }
    match decoded {
        Some(_) if !buf.is_empty() => Outcome::Failed(Expect::TrailingBytes),
        Some(msg) => Outcome::Decoded(msg),
        None => match dec.finish(&buf) {
            Err(e) => Outcome::Failed(Expect::of_error(&e)),
            Ok(()) => Outcome::Failed(Expect::Truncated),
        },
    }
}

fn check_stream<M: Message + Name + Default + PartialEq + std::fmt::Debug>(
    v: &Vector,
) -> Result<(), String> {
    let whole = decode_whole::<M>(&v.bytes, v.frame);
    let bytewise = decode_bytewise::<M>(&v.bytes);
    if whole != bytewise {
        return Err(format!(
            "fed at once gives {whole:?}, byte by byte gives {bytewise:?}"
        ));
    }
    if v.expect == Expect::TooLarge {
        // The verdict must come from the prefix alone.
        match FrameDecoder::new(MAX_FRAME_BYTES).wanted(&v.bytes) {
            Err(FrameError::Oversize { .. }) => {}
            other => {
                return Err(format!(
                    "wanted() on the prefix gives {other:?}, not oversize"
                ));
            }
        }
    }
    check_outcome(v, whole, |msg: &M| {
        frame::encode_to_vec(msg, MAX_FRAME_BYTES).map_err(|e| e.to_string())
    })
}

fn check_datagram(v: &Vector) -> Result<(), String> {
    let outcome = match frame::decode_datagram(&v.bytes, DATAGRAM_LIMIT) {
        Ok(msg) => Outcome::Decoded(msg),
        Err(e) => Outcome::Failed(Expect::of_error(&e)),
    };
    check_outcome(v, outcome, |msg: &pb::Datagram| {
        frame::encode_datagram(msg, DATAGRAM_LIMIT).map_err(|e| e.to_string())
    })
}

fn check_outcome<M: Message + Name + Default + PartialEq + std::fmt::Debug>(
    v: &Vector,
    outcome: Outcome<M>,
    encode: impl Fn(&M) -> Result<Vec<u8>, String>,
) -> Result<(), String> {
    let decoded = match outcome {
        Outcome::Failed(got) if got == v.expect => return Ok(()),
        Outcome::Failed(got) => {
            return Err(format!(
                "decoding fails with {}, expected {}",
                got.name(),
                v.expect.name()
            ));
        }
        Outcome::Decoded(_) if !v.expect.decodes() => {
            return Err(format!("decodes, expected {}", v.expect.name()));
        }
        Outcome::Decoded(msg) => msg,
    };
    let text = v
        .message
        .as_deref()
        .ok_or("a decoding vector without a message")?;
    let rendered = vectors::to_text(&decoded).map_err(|e| e.to_string())?;
    if rendered != text {
        return Err(format!(
            "decodes to\n{rendered}\nbut the vector says\n{text}"
        ));
    }
    let parsed: M = vectors::from_text(text).map_err(|e| e.to_string())?;
    if parsed != decoded {
        return Err(format!(
            "the text parses to {parsed:?}, the bytes decode to {decoded:?}"
        ));
    }
    let encoded = encode(&parsed)?;
    match v.expect {
        Expect::Ok if encoded != v.bytes => Err(format!(
            "encoding the message gives {}, the vector says {}",
            hex::encode(&encoded),
            hex::encode(&v.bytes)
        )),
        Expect::DecodeOnly if encoded == v.bytes => {
            Err("decode-only, but the bytes are the canonical encoding".into())
        }
        _ => Ok(()),
    }
}

#[test]
fn every_checked_in_vector_holds() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (file, vectors) in checked_in() {
        for v in vectors {
            count += 1;
            let result = match v.frame {
                FrameType::Request => check_stream::<pb::Request>(&v),
                FrameType::Response => check_stream::<pb::Response>(&v),
                FrameType::Event => check_stream::<pb::Event>(&v),
                FrameType::Datagram => check_datagram(&v),
                FrameType::UploadStreamHeader => check_stream::<pb::UploadStreamHeader>(&v),
            };
            if let Err(e) = result {
                failures.push(format!("{file}: {}: {e}", v.name));
            }
        }
    }
    assert!(count > 100, "only {count} vectors");
    assert!(
        failures.is_empty(),
        "{} of {count} vectors fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn vector_names_are_unique() {
    let mut seen = HashSet::new();
    for (file, vectors) in checked_in() {
        for v in vectors {
            assert!(
                seen.insert(v.name.clone()),
                "{file}: duplicate vector name {}",
                v.name
            );
        }
    }
}

/// Records the message types and oneof arms present in `msg`, recursively.
fn walk(msg: &DynamicMessage, types: &mut BTreeSet<String>, arms: &mut BTreeSet<String>) {
    types.insert(msg.descriptor().full_name().to_owned());
    for (field, value) in msg.fields() {
        if field.containing_oneof().is_some_and(|o| !o.is_synthetic()) {
            arms.insert(field.full_name().to_owned());
        }
        let values = match value {
            Value::List(list) => list.iter().collect(),
            other => vec![other],
        };
        for value in values {
            if let Value::Message(inner) = value {
                walk(inner, types, arms);
            }
        }
    }
}

#[test]
fn vectors_cover_every_message_type_oneof_arm_and_outcome() {
    let pool = vectors::descriptor_pool();
    let mut types = BTreeSet::new();
    let mut arms = BTreeSet::new();
    let mut outcomes = BTreeSet::new();
    for (_, vectors) in checked_in() {
        for v in vectors {
            outcomes.insert(v.expect.name());
            // Only canonical vectors count: a compat vector shows tolerance, not the message.
            if v.expect != Expect::Ok {
                continue;
            }
            let text = v.message.as_deref().expect("ok vectors carry a message");
            let msg = vectors::dynamic_from_text(&v.frame.message_full_name(), text)
                .expect("parsable message");
            walk(&msg, &mut types, &mut arms);
        }
    }

    let all_types: BTreeSet<String> = pool
        .all_messages()
        .filter(|m| m.package_name() == pb::Request::PACKAGE)
        .map(|m| m.full_name().to_owned())
        .collect();
    let all_arms: BTreeSet<String> = pool
        .all_messages()
        .filter(|m| m.package_name() == pb::Request::PACKAGE)
        .flat_map(|m| m.oneofs().filter(|o| !o.is_synthetic()).collect::<Vec<_>>())
        .flat_map(|o| {
            o.fields()
                .map(|f| f.full_name().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        all_types.len() > 90 && all_arms.len() > 80,
        "the descriptor pool looks incomplete"
    );

    let missing_types: Vec<_> = all_types.difference(&types).collect();
    assert!(
        missing_types.is_empty(),
        "message types without a canonical vector: {missing_types:?}"
    );
    let missing_arms: Vec<_> = all_arms.difference(&arms).collect();
    assert!(
        missing_arms.is_empty(),
        "oneof arms without a canonical vector: {missing_arms:?}"
    );
    let all_outcomes: BTreeSet<&str> = Expect::ALL.iter().map(|e| e.name()).collect();
    assert_eq!(outcomes, all_outcomes, "every outcome has a vector");
}
