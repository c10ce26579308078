//! Fuzzes the frame codec with hostile input.
//!
//! Arbitrary bytes, split into arbitrary chunks, go through `FrameDecoder` as Request, Response
//! and Event streams, and whole through `decode_datagram`. Besides "never panics", it checks:
//! - the bytes a decoder keeps buffered, plus what `wanted()` asks for next, never exceed the
//!   longest prefix plus the frame limit (so a reader sized by `wanted()` cannot be made to
//!   allocate more);
//! - the chunking does not change the outcome: the same messages and the same error as feeding
//!   everything at once;
//! - every decoded message re-encodes to a frame that decodes to the same message.
#![no_main]

use bytes::BytesMut;
use chatproto::frame::{self, FrameDecoder, FrameError, MAX_FRAME_BYTES, MAX_LENGTH_PREFIX};
use chatproto::pb;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// Which decoder the bytes go through.
#[derive(Debug, Arbitrary)]
enum Target {
    Request,
    Response,
    Event,
    Datagram,
}

#[derive(Debug, Arbitrary)]
struct Input {
    target: Target,
    /// The limit in force: `None` is the protocol default (256 KiB for frames, 1200 bytes for
    /// datagrams); small limits reach the oversize paths with short inputs.
    limit: Option<u16>,
    /// Chunk sizes, each `size + 1`, used in turn; empty means one chunk.
    chunks: Vec<u8>,
    data: Vec<u8>,
}

/// What feeding a stream produced: the decoded messages and the error that ended it, if any.
#[derive(Debug, PartialEq)]
struct Outcome<M> {
    messages: Vec<M>,
    error: Option<FrameError>,
}

/// Feeds `data` in chunks of the given sizes (cycled), decoding frames as they complete.
fn feed<M: Message + Default + PartialEq>(
    dec: FrameDecoder,
    chunks: &[u8],
    data: &[u8],
) -> Outcome<M> {
    let bound = MAX_LENGTH_PREFIX + dec.max_frame_bytes();
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    let mut rest = data;
    let mut turn = 0;
    while !rest.is_empty() {
        let size = match chunks.get(turn % chunks.len().max(1)) {
            Some(&c) => usize::from(c) + 1,
            None => rest.len(),
        };
        turn += 1;
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode::<M>(&mut buf) {
                Ok(Some(msg)) => messages.push(msg),
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        messages,
                        error: Some(error),
                    };
                }
            }
        }
        // What is left is less than one frame, and the next read stays within the bound.
        assert!(buf.len() <= bound, "buffered {} > {bound}", buf.len());
        let wanted = match dec.wanted(&buf) {
            Ok(wanted) => wanted,
            Err(error) => panic!("decode accepted a prefix that wanted() rejects: {error}"),
        };
        assert!(wanted >= 1);
        assert!(
            buf.len() + wanted <= bound,
            "buffered {} + wanted {wanted} > {bound}",
            buf.len()
        );
    }
    let error = dec.finish(&buf).err();
    assert_eq!(error.is_some(), !buf.is_empty());
    if let Some(error) = &error {
        assert!(matches!(error, FrameError::Truncated { missing } if *missing >= 1));
    }
    Outcome { messages, error }
}

/// Re-encoding a decoded message gives a frame that decodes to the same message.
fn check_round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M) {
    let bytes = match frame::encode_to_vec(msg, usize::MAX) {
        Ok(bytes) => bytes,
        Err(error) => panic!("encoding without a limit failed: {error}"),
    };
    let again: M = match FrameDecoder::new(usize::MAX).decode_exact(&bytes) {
        Ok(again) => again,
        Err(error) => panic!("a re-encoded frame does not decode: {error}"),
    };
    assert_eq!(&again, msg);
}

fn stream<M: Message + Default + PartialEq + std::fmt::Debug>(input: &Input) {
    let limit = input.limit.map_or(MAX_FRAME_BYTES, usize::from);
    let dec = FrameDecoder::new(limit);
    let chunked: Outcome<M> = feed(dec, &input.chunks, &input.data);
    let whole: Outcome<M> = feed(dec, &[], &input.data);
    assert_eq!(chunked, whole, "the chunking changed the outcome");
    for msg in &chunked.messages {
        check_round_trip(msg);
    }
    // A request stream holds exactly one frame: decode_exact agrees with the stream decoder.
    match dec.decode_exact::<M>(&input.data) {
        Ok(msg) => {
            assert_eq!(chunked.messages.len(), 1);
            assert_eq!(chunked.error, None);
            assert_eq!(chunked.messages[0], msg);
        }
        Err(FrameError::TrailingBytes { extra }) => {
            assert!(extra >= 1);
            assert!(!chunked.messages.is_empty());
        }
        Err(error) => {
            assert!(chunked.messages.is_empty() || chunked.error.is_some());
            if chunked.messages.is_empty() {
                if let Some(stream_error) = &chunked.error {
                    assert_eq!(stream_error, &error);
                }
            }
        }
    }
}

fn datagram(input: &Input) {
    let limit = input.limit.map_or(1200, usize::from);
    match frame::decode_datagram(&input.data, limit) {
        Ok(msg) => {
            assert!(input.data.len() <= limit);
            let bytes = match frame::encode_datagram(&msg, usize::MAX) {
                Ok(bytes) => bytes,
                Err(error) => panic!("encoding without a limit failed: {error}"),
            };
            assert_eq!(pb::Datagram::decode(bytes.as_slice()).ok(), Some(msg));
        }
        Err(FrameError::Oversize { len, max }) => {
            assert_eq!(len, input.data.len() as u64);
            assert_eq!(max, limit);
            assert!(input.data.len() > limit);
        }
        Err(FrameError::Decode(_)) => assert!(input.data.len() <= limit),
        Err(other) => panic!("unexpected datagram error: {other}"),
    }
}

fuzz_target!(|input: Input| {
    match input.target {
        Target::Request => stream::<pb::Request>(&input),
        Target::Response => stream::<pb::Response>(&input),
        Target::Event => stream::<pb::Event>(&input),
        Target::Datagram => datagram(&input),
    }
});
