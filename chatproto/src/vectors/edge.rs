//! The edge cases: forward compatibility (what must still decode) and invalid frames (what must
//! be rejected, and with which outcome). Their bytes are built by hand from protobuf wire
//! primitives, since no conforming encoder would produce them.

use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use super::build::{decode_only, event, invalid, ok, request, response};
use super::samples::*;
use super::{Expect, Vector, VectorError};
use crate::frame::MAX_FRAME_BYTES;
use crate::pb;
use crate::pb::event::Kind as Ev;
use crate::pb::request::Kind as Rq;

/// A varint field: key and value.
fn varint_field(field: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(field, WireType::Varint, &mut out);
    encode_varint(value, &mut out);
    out
}

/// A length-delimited field: key, length, bytes.
fn len_field(field: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key(field, WireType::LengthDelimited, &mut out);
    encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// A frame around an arbitrary payload: minimal varint length, then the payload.
fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Encodings a receiver must accept although they are not what it would write.
pub(super) fn compat() -> Result<Vec<Vector>, VectorError> {
    let get_me = request(60, Rq::GetMe(pb::GetMe {}));
    let hello = pb::Hello {
        protocol_major: 1,
        protocol_minor: 3,
        capabilities: vec!["datagrams".into(), "files".into()],
        client_name: "future-client/9.0".into(),
    };
    let hello_with_unknown = concat(&[&hello.encode_to_vec(), &len_field(15, b"zstd")]);
    let hello_reversed = concat(&[
        &len_field(4, b"future-client/9.0"),
        &len_field(3, b"files"),
        &len_field(3, b"datagrams"),
        &varint_field(2, 3),
        &varint_field(1, 1),
    ]);
    let hello_reversed_expected = pb::Hello {
        capabilities: vec!["files".into(), "datagrams".into()],
        ..hello.clone()
    };
    let unpacked_ids = concat(&[&varint_field(1, BOB), &varint_field(1, CAROL)]);
    let unknown_body_event = pb::ChatEvent {
        chat_id: GROUP_CHAT,
        seq: 18,
        at_ms: T0 + 1_080_000,
        actor_id: ALICE,
        body: None,
    };
    let unknown_body_bytes = concat(&[
        &unknown_body_event.encode_to_vec(),
        &len_field(40, &varint_field(1, 7)),
    ]);

    Ok(vec![
        decode_only(
            "compat.request.unknown_fields",
            "unknown fields (1000: varint, 1001: bytes) are skipped; the request is an ordinary GetMe",
            framed(&concat(&[
                &get_me.encode_to_vec(),
                &varint_field(1000, 7),
                &len_field(1001, b"future"),
            ])),
            &get_me,
        )?,
        decode_only(
            "compat.request.unknown_nested_field",
            "a newer client's Hello with an unknown field 15 inside; minor version 3 and capability `files` are also unknown to a 1.0 server, which answers with the intersection",
            framed(&concat(&[
                &varint_field(1, 1),
                &len_field(10, &hello_with_unknown),
            ])),
            &request(1, Rq::Hello(hello.clone())),
        )?,
        decode_only(
            "compat.request.unknown_kind",
            "a request kind from a newer client (field 200) decodes with no kind; the server answers UNIMPLEMENTED",
            framed(&concat(&[
                &varint_field(1, 61),
                &len_field(200, &varint_field(1, 5)),
            ])),
            &pb::Request {
                request_id: 61,
                kind: None,
            },
        )?,
        decode_only(
            "compat.request.fields_out_of_order",
            "fields may arrive in any order; repeated elements keep their order among themselves",
            framed(&concat(&[
                &len_field(10, &hello_reversed),
                &varint_field(1, 62),
            ])),
            &request(62, Rq::Hello(hello_reversed_expected)),
        )?,
        decode_only(
            "compat.request.unpacked_repeated",
            "a repeated scalar field written unpacked (one key per element) decodes like the packed form",
            framed(&concat(&[
                &varint_field(1, 63),
                &len_field(31, &unpacked_ids),
            ])),
            &request(
                63,
                Rq::GetUsers(pb::GetUsers {
                    user_ids: vec![BOB, CAROL],
                }),
            ),
        )?,
        decode_only(
            "compat.request.explicit_default",
            "a field written with its default value (request_id 0) decodes like an absent one",
            framed(&concat(&[&varint_field(1, 0), &len_field(30, &[])])),
            &request(0, Rq::GetMe(pb::GetMe {})),
        )?,
        decode_only(
            "compat.request.last_value_wins",
            "a scalar field that appears twice takes the last value; of two oneof arms the last one wins",
            framed(&concat(&[
                &varint_field(1, 1),
                &len_field(30, &[]),
                &varint_field(1, 64),
                &len_field(15, &[]),
            ])),
            &request(64, Rq::Logout(pb::Logout {})),
        )?,
        ok(
            "compat.response.unknown_error_code",
            Some("an error code from a newer server keeps its number; treat it as not retryable"),
            &response(
                65,
                pb::response::Result::Error(pb::Error {
                    code: 99,
                    message: "quota exceeded".into(),
                    field: String::new(),
                    retry_after_ms: 0,
                }),
            ),
        )?,
        ok(
            "compat.event.unknown_enum_value",
            Some("an enum value from a newer server keeps its number; display it like UNSPECIFIED"),
            &event(Ev::Presence(pb::PresenceUpdate {
                user_id: BOB,
                status: 9,
                last_seen_at_ms: T0,
            })),
        )?,
        decode_only(
            "compat.event.unknown_kind",
            "an event kind from a newer server (field 30) decodes with no kind; clients ignore it",
            framed(&len_field(30, &varint_field(1, 9))),
            &pb::Event { kind: None },
        )?,
        decode_only(
            "compat.event.unknown_chat_event_body",
            "a chat event body from a newer server (field 40): the event still takes its seq, so the client advances its cursor and ignores the body",
            framed(&len_field(1, &unknown_body_bytes)),
            &event(Ev::Chat(unknown_body_event)),
        )?,
    ])
}

/// Bytes a receiver must reject.
pub(super) fn invalid_frames() -> Result<Vec<Vector>, VectorError> {
    let hello_frame = framed(
        &request(
            7,
            Rq::Hello(pb::Hello {
                protocol_major: 1,
                ..Default::default()
            }),
        )
        .encode_to_vec(),
    );
    let mut oversize_prefix = Vec::new();
    encode_varint(MAX_FRAME_BYTES as u64 + 1, &mut oversize_prefix);
    let ok_response = framed(&response(7, pb::response::Result::Ok(pb::Ok {})).encode_to_vec());
    let typing_event = framed(
        &event(Ev::Typing(pb::Typing {
            chat_id: GROUP_CHAT,
            user_id: BOB,
            expires_in_ms: 5000,
        }))
        .encode_to_vec(),
    );

    Ok(vec![
        invalid::<pb::Request>(
            "invalid.request.empty_stream",
            "the client finished the stream without writing anything",
            Expect::Truncated,
            vec![],
        )?,
        invalid::<pb::Request>(
            "invalid.request.truncated_prefix",
            "the stream ends inside the length prefix",
            Expect::Truncated,
            vec![0x80],
        )?,
        invalid::<pb::Request>(
            "invalid.request.truncated_payload",
            "the prefix announces more bytes than the stream holds",
            Expect::Truncated,
            hello_frame[..hello_frame.len() - 2].to_vec(),
        )?,
        invalid::<pb::Request>(
            "invalid.request.oversize",
            "the prefix announces 262145 bytes, one more than 256 KiB: reject after reading the prefix, before any payload",
            Expect::TooLarge,
            oversize_prefix.clone(),
        )?,
        invalid::<pb::Request>(
            "invalid.request.oversize_max_varint",
            "the largest 10-byte prefix (2^64 - 1)",
            Expect::TooLarge,
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        )?,
        invalid::<pb::Request>(
            "invalid.request.non_minimal_prefix",
            "length 2 written in two bytes (82 00) instead of one",
            Expect::BadLength,
            vec![0x82, 0x00, 0x08, 0x07],
        )?,
        invalid::<pb::Request>(
            "invalid.request.non_minimal_zero",
            "length 0 written in two bytes",
            Expect::BadLength,
            vec![0x80, 0x00],
        )?,
        invalid::<pb::Request>(
            "invalid.request.eleven_byte_prefix",
            "a prefix longer than 10 bytes: reject at the tenth byte",
            Expect::BadLength,
            vec![
                0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
        )?,
        invalid::<pb::Request>(
            "invalid.request.prefix_overflows_64_bits",
            "the tenth byte of a prefix may only be 0x00 or 0x01",
            Expect::BadLength,
            vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02],
        )?,
        invalid::<pb::Request>(
            "invalid.request.bad_wire_type",
            "field 1 with wire type 7, which does not exist",
            Expect::Undecodable,
            framed(&[0x0f]),
        )?,
        invalid::<pb::Request>(
            "invalid.request.nested_length_overrun",
            "a nested message (hello, field 10) announces 5 bytes but the frame holds 2",
            Expect::Undecodable,
            framed(&[0x52, 0x05, 0x08, 0x01]),
        )?,
        invalid::<pb::Request>(
            "invalid.request.invalid_utf8",
            "a string field (hello.client_name) that is not UTF-8",
            Expect::Undecodable,
            framed(&len_field(10, &len_field(4, &[0x63, 0xff]))),
        )?,
        invalid::<pb::Request>(
            "invalid.request.trailing_bytes",
            "a second (empty) frame after the request: a request stream carries exactly one frame",
            Expect::TrailingBytes,
            concat(&[&hello_frame, &[0x00]]),
        )?,
        invalid::<pb::Response>(
            "invalid.response.truncated_payload",
            "the server's side of the stream ends inside the frame",
            Expect::Truncated,
            ok_response[..ok_response.len() - 1].to_vec(),
        )?,
        invalid::<pb::Response>(
            "invalid.response.trailing_bytes",
            "garbage after the response frame",
            Expect::TrailingBytes,
            concat(&[&ok_response, &[0xff]]),
        )?,
        invalid::<pb::Event>(
            "invalid.event.oversize",
            "an event frame announcing more than 256 KiB: close the connection with PROTOCOL_VIOLATION",
            Expect::TooLarge,
            oversize_prefix,
        )?,
        invalid::<pb::Event>(
            "invalid.event.truncated_payload",
            "the event stream ends inside a frame",
            Expect::Truncated,
            typing_event[..typing_event.len() - 3].to_vec(),
        )?,
        invalid::<pb::Event>(
            "invalid.event.bad_wire_type",
            "field 2 with wire type 6, which does not exist",
            Expect::Undecodable,
            framed(&[0x16]),
        )?,
        invalid::<pb::Datagram>(
            "invalid.datagram.truncated",
            "typing announces 5 bytes but the datagram holds 2 (datagrams have no prefix, so this is undecodable)",
            Expect::Undecodable,
            vec![0x0a, 0x05, 0x08, 0x01],
        )?,
        invalid::<pb::Datagram>(
            "invalid.datagram.bad_wire_type",
            "field 1 with wire type 7",
            Expect::Undecodable,
            vec![0x0f],
        )?,
    ])
}
