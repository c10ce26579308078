//! The `chat/1` protocol: wire messages, framing, session logic and an async QUIC client SDK.
//!
//! # Layout
//! - [`pb`]: the messages, generated at build time from `spec/chat.proto`.
//! - [`capability`]: the capability names of chat/1.
//! - [`calls`]: calls as one device sees them (incoming, outgoing, active, ended), sans-IO.
//! - [`fingerprint`]: certificate fingerprints (SHA-256 of the DER): the one parser and format.
//! - [`frame`]: the varint length-prefixed frame codec (sans-IO).
//! - [`request`]: the request table, generated from the annotations in `spec/chat.proto`: each
//!   kind's name, caller, repeat safety and typed answer.
//! - [`error`]: error constructors, retry rules, [`error::RemoteError`] and the QUIC application
//!   error codes.
//! - [`session`]: the sans-IO client session core: per-chat ordering and gap filling, the resume
//!   after a reconnect, and reconnect backoff. No runtime, no sockets.
//! - `net` feature (default): `io` (async frame I/O over quinn streams), `server` (request and
//!   event stream helpers for servers), `tls` (client certificate verification: CA, pinned
//!   fingerprint, insecure; the quinn client configuration), `udp` (endpoints on sockets with
//!   burst-sized kernel buffers) and `client` (the async client SDK: connect, typed requests,
//!   events, automatic reconnect).
//! - `vectors` feature: the golden vectors of `spec/vectors/`.
//! - `arbitrary` feature: proptest `Arbitrary` for every message in [`pb`].

pub mod calls;
pub mod capability;
pub mod error;
pub mod fingerprint;
pub mod frame;
#[cfg(feature = "net")]
pub mod io;
#[macro_use]
pub mod request;
#[cfg(feature = "net")]
pub mod client;
#[cfg(feature = "net")]
pub mod server;
pub mod session;
#[cfg(feature = "net")]
pub mod tls;
#[cfg(feature = "net")]
pub mod udp;
#[cfg(feature = "vectors")]
pub mod vectors;

/// The `chat.v1` messages, generated from `spec/chat.proto` (see that file for the documentation
/// of every message and field).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/chat.v1.rs"));
}

/// The ALPN protocol identifier every chat/1 connection negotiates.
pub const ALPN: &[u8] = b"chat/1";

/// The protocol major version this crate speaks.
pub const PROTOCOL_MAJOR: u32 = 1;

/// The protocol minor version this crate speaks: 1.1 adds files (capability `files`), 1.2 calls
/// (capability `calls`), 1.3 screen sharing in calls (capability `screen_share`), 1.4 group
/// calls, notifications, broadcasts, email and webhooks, two-factor login and connection
/// migration, 1.5 account recovery (`account_recovery`) and 0-RTT resumption (`zero_rtt`), 1.6 key
/// rotation (`key_rotation`) and 24 concurrent requests by default.
pub const PROTOCOL_MINOR: u32 = 6;
