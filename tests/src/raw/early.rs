//! A bare QUIC client that sends chosen requests in 0-RTT data (spec 2.5), for tests of what
//! a server does with them: which it serves, in which order, and what a replay does.

use std::net::{Ipv4Addr, SocketAddr};

use chatproto::fingerprint::parse_fingerprint;
use chatproto::io::{FrameReader, encode_frames};
use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::tls::{Verification, client_config};

use super::error_code;
use crate::server::TestServer;

/// A bare QUIC client endpoint holding session tickets like the SDK's (the process's cache for
/// the server's pin), for sending chosen requests in 0-RTT data.
pub struct EarlyClient {
    /// The endpoint.
    pub endpoint: quinn::Endpoint,
}

impl EarlyClient {
    /// A client for `server`, pinned to its certificate.
    pub fn new(server: &TestServer) -> EarlyClient {
        let pin = parse_fingerprint(&server.fingerprint()).expect("fingerprint");
        let mut endpoint =
            quinn::Endpoint::client(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("endpoint");
        endpoint.set_default_client_config(client_config(&Verification::Pin(pin)).expect("tls"));
        EarlyClient { endpoint }
    }

    /// A full handshake to `addr` and one request, so the server's tickets arrive.
    pub async fn take_tickets(&self, addr: SocketAddr) {
        let conn = self
            .endpoint
            .connect(addr, "localhost")
            .expect("connect")
            .await
            .expect("handshake");
        let welcome = exchange(&conn, &[hello()]).await;
        assert!(error_code(&welcome[0]).is_none(), "{welcome:?}");
        conn.close(0u32.into(), b"done");
    }

    /// Connects to `addr` sending `requests` in 0-RTT data (it panics without a ticket), and
    /// returns the connection, their answers and whether the server accepted the 0-RTT data.
    pub async fn send_early(
        &self,
        addr: SocketAddr,
        requests: &[Kind],
    ) -> (quinn::Connection, Option<Vec<pb::Response>>) {
        let (conn, accepted) = self
            .endpoint
            .connect(addr, "localhost")
            .expect("connect")
            .into_0rtt()
            .unwrap_or_else(|_| panic!("no ticket for 0-RTT"));
        let streams = write_all(&conn, requests).await;
        if !accepted.await {
            return (conn, None);
        }
        let mut answers = Vec::new();
        for recv in streams {
            answers.push(read(recv).await);
        }
        (conn, Some(answers))
    }
}

/// `hello` for this protocol version, offering `zero_rtt`.
pub fn hello() -> Kind {
    Kind::Hello(pb::Hello {
        protocol_major: 1,
        protocol_minor: chatproto::PROTOCOL_MINOR,
        capabilities: vec![chatproto::capability::Capability::ZeroRtt.name().into()],
        client_name: "early".into(),
    })
}

/// Opens one stream per request, in order, and writes each.
pub async fn write_all(conn: &quinn::Connection, requests: &[Kind]) -> Vec<quinn::RecvStream> {
    let mut streams = Vec::new();
    for (i, kind) in requests.iter().enumerate() {
        let request = pb::Request {
            request_id: i as u64 + 1,
            kind: Some(kind.clone()),
        };
        let bytes = encode_frames([&request], chatproto::frame::MAX_FRAME_BYTES).expect("encode");
        let (mut send, recv) = conn.open_bi().await.expect("open stream");
        send.write_all(&bytes).await.expect("write");
        send.finish().expect("finish");
        streams.push(recv);
    }
    streams
}

/// Reads the one response of a request stream.
pub async fn read(recv: quinn::RecvStream) -> pb::Response {
    FrameReader::new(recv, chatproto::frame::MAX_FRAME_BYTES)
        .read_only::<pb::Response>()
        .await
        .expect("response")
}

/// Sends `requests` after the handshake and returns their answers.
pub async fn exchange(conn: &quinn::Connection, requests: &[Kind]) -> Vec<pb::Response> {
    let mut answers = Vec::new();
    for recv in write_all(conn, requests).await {
        answers.push(read(recv).await);
    }
    answers
}
