//! Fuzzes the datagram path both ends run on what the network sends: `io::decode_datagram` with
//! the protocol's limit (what chatd's `on_datagram` and the SDK's datagram reader call), then what
//! each does with a decoded datagram.
//!
//! Besides "never panics", it checks:
//! - input over `MAX_DATAGRAM_BYTES` is refused as oversize before decoding;
//! - a decoded datagram re-encodes within the limit to bytes that decode to the same datagram;
//! - a typing datagram becomes the SDK's `ClientEvent::Typing` with the same signal, through
//!   the same conversion as a typing event from the event stream.
#![no_main]

use chatproto::client::ClientEvent;
use chatproto::frame::{self, FrameError};
use chatproto::io::{MAX_DATAGRAM_BYTES, decode_datagram};
use chatproto::pb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let datagram = match decode_datagram(data) {
        Ok(datagram) => datagram,
        Err(FrameError::Oversize { len, max }) => {
            assert_eq!(max, MAX_DATAGRAM_BYTES);
            assert_eq!(len, data.len() as u64);
            assert!(data.len() > MAX_DATAGRAM_BYTES);
            return;
        }
        Err(FrameError::Decode(_)) => {
            assert!(data.len() <= MAX_DATAGRAM_BYTES);
            return;
        }
        Err(other) => panic!("unexpected datagram error: {other}"),
    };
    assert!(data.len() <= MAX_DATAGRAM_BYTES);
    // Re-encoding drops unknown fields, so it is never longer than what arrived.
    let bytes = match frame::encode_datagram(&datagram, MAX_DATAGRAM_BYTES) {
        Ok(bytes) => bytes,
        Err(error) => panic!("a decoded datagram does not re-encode within the limit: {error}"),
    };
    assert_eq!(decode_datagram(&bytes).ok(), Some(datagram.clone()));
    if let Some(pb::datagram::Kind::Typing(typing)) = datagram.kind {
        let event = pb::Event {
            kind: Some(pb::event::Kind::Typing(typing.clone())),
        };
        assert_eq!(
            ClientEvent::from_pb(event),
            Some(ClientEvent::Typing(typing))
        );
    }
});
