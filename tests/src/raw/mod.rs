//! A raw chat/1 connection without the SDK, for tests of what the SDK would never send:
//! requests out of order, malformed or oversize frames.
//!
//! # Layout
//! - this module: [`RawConn`], a bare connection that sends bytes or single requests.
//! - [`early`]: a client that sends chosen requests in 0-RTT data.
//! - `session`: [`RawSession`], a raw connection that signs in and collects its events, for
//!   tests that watch the protocol itself (a redirect in the Welcome, a close code) across nodes.

pub mod early;
mod session;

pub use session::{RawSession, message_text, presence};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use chatproto::fingerprint::parse_fingerprint;
use chatproto::io::{FrameReader, encode_frames};
use chatproto::pb;
use chatproto::tls::{Verification, client_config};

/// A bare QUIC connection to chatd.
pub struct RawConn {
    /// The connection.
    pub conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

impl RawConn {
    /// Connects with the pinned certificate, sending nothing.
    pub async fn connect(addr: SocketAddr, fingerprint: &str) -> RawConn {
        Self::connect_with(addr, fingerprint, quinn::TransportConfig::default()).await
    }

    /// Connects with the given transport settings (e.g. a small receive window, to play a
    /// client that does not read its event stream), sending nothing.
    pub async fn connect_with(
        addr: SocketAddr,
        fingerprint: &str,
        transport: quinn::TransportConfig,
    ) -> RawConn {
        Self::connect_as(addr, fingerprint, transport, Ipv4Addr::LOCALHOST.into()).await
    }

    /// Connects from the local address `from`, sending nothing: any of 127.0.0.0/8 plays
    /// another client address on loopback (Linux answers them all).
    pub async fn connect_from(addr: SocketAddr, fingerprint: &str, from: IpAddr) -> RawConn {
        Self::connect_as(addr, fingerprint, quinn::TransportConfig::default(), from).await
    }

    async fn connect_as(
        addr: SocketAddr,
        fingerprint: &str,
        transport: quinn::TransportConfig,
        from: IpAddr,
    ) -> RawConn {
        let pin = parse_fingerprint(fingerprint).expect("fingerprint");
        let mut endpoint = quinn::Endpoint::client(SocketAddr::new(from, 0)).expect("endpoint");
        let mut config = client_config(&Verification::Pin(pin)).expect("client config");
        config.transport_config(std::sync::Arc::new(transport));
        endpoint.set_default_client_config(config);
        let conn = endpoint
            .connect(addr, "localhost")
            .expect("connect")
            .await
            .expect("handshake");
        RawConn {
            conn,
            _endpoint: endpoint,
        }
    }

    /// Sends `bytes` on a new request stream, finishes it, and reads the one response.
    pub async fn send_bytes(&self, bytes: &[u8]) -> pb::Response {
        let (mut send, recv) = self.conn.open_bi().await.expect("open stream");
        // The server may stop reading early (oversize): a failed write is expected then.
        let _ = send.write_all(bytes).await;
        let _ = send.finish();
        let mut reader = FrameReader::new(recv, chatproto::frame::MAX_FRAME_BYTES);
        reader
            .read_only::<pb::Response>()
            .await
            .expect("one response frame")
    }

    /// Sends one request and reads its response.
    pub async fn request(&self, kind: pb::request::Kind) -> pb::Response {
        self.call(42, kind).await
    }

    /// Sends one request numbered `request_id` and reads its response.
    pub async fn call(&self, request_id: u64, kind: pb::request::Kind) -> pb::Response {
        let request = pb::Request {
            request_id,
            kind: Some(kind),
        };
        let bytes = encode_frames([&request], chatproto::frame::MAX_FRAME_BYTES).expect("encode");
        self.send_bytes(&bytes).await
    }

    /// Sends Hello with protocol 1.0.
    pub async fn hello(&self) -> pb::Response {
        self.request(pb::request::Kind::Hello(pb::Hello {
            protocol_major: 1,
            protocol_minor: 0,
            capabilities: vec![],
            client_name: "raw".into(),
        }))
        .await
    }
}

impl RawConn {
    /// Sends `register` for `username` (with the test password) and returns the answer.
    pub async fn register(&self, username: &str) -> pb::Response {
        self.request(pb::request::Kind::Register(pb::Register {
            username: username.into(),
            email: format!("{username}@example.test"),
            password: crate::client::PASSWORD.into(),
            device_name: "raw".into(),
        }))
        .await
    }

    /// Sends `login` and returns the answer.
    pub async fn login(&self, username: &str, password: &str) -> pb::Response {
        self.request(pb::request::Kind::Login(pb::Login {
            username: username.into(),
            password: password.into(),
            device_name: "raw".into(),
            two_factor_code: String::new(),
        }))
        .await
    }

    /// Waits until the server closes the connection; returns its application close code and
    /// reason (panics on any other end).
    pub async fn closed_by_server(&self) -> (u64, String) {
        match self.conn.closed().await {
            quinn::ConnectionError::ApplicationClosed(close) => (
                close.error_code.into_inner(),
                String::from_utf8_lossy(&close.reason).into_owned(),
            ),
            other => panic!("the connection ended otherwise: {other}"),
        }
    }
}

/// The error code of a response, or `None` for a success.
pub fn error_code(response: &pb::Response) -> Option<pb::ErrorCode> {
    match &response.result {
        Some(pb::response::Result::Error(e)) => Some(e.code()),
        _ => None,
    }
}
