//! Runs decoded requests through chatd's real handlers: one in-process server (SQLite in a
//! temporary directory) for the whole fuzzing process, and one QUIC connection on loopback,
//! greeted and signed in as a plain user who shares a group and a private chat with another, so
//! that small ids name real users, chats and messages.
//!
//! Each input is either a `Request` (protobuf bytes; its id is set by the target) sent on its
//! own request stream, or a datagram sent as is (first byte odd). It checks:
//! - the server never panics (libFuzzer's panic hook aborts the process, the server's tasks
//!   included);
//! - every request gets exactly one response, with its request id, that fits the frame limit
//!   (a download's bytes may follow its response);
//! - the connection stays up unless an answer said it closes (then the target reconnects).
//!
//! Requests that would change the fixed connection context (Hello again, the authentication
//! requests, Logout, ChangePassword and session revocation) are left out: the handshake tests
//! cover them, and here they would only end the signed-in context that the rest needs.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use chatd::daemon::Daemon;
use chatd::ops::config::Config;
use chatproto::capability::Capability;
use chatproto::fingerprint::parse_fingerprint;
use chatproto::frame::{FrameDecoder, MAX_FRAME_BYTES, MAX_LENGTH_PREFIX, encode_to_vec};
use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::pb::response::Result as Answer;
use chatproto::tls::{Verification, client_config};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tokio::sync::Mutex;

const PASSWORD: &str = "fuzzing password 1";
/// Rate limits far above what one fuzzing process sends.
const LIMITS: &[&str] = &[
    "--limit-send=1000000/s burst 1000000",
    "--limit-request=1000000/s burst 1000000",
    "--limit-address-request=1000000/s burst 1000000",
    "--limit-login-account=1000000/s burst 1000000",
    "--limit-login-account-address=1000000/s burst 1000000",
    "--limit-login-address=1000000/s burst 1000000",
    "--limit-typing=1000000/s burst 1000000",
    "--limit-upload=1000000/s burst 1000000",
    "--limit-call-signal=1000000/s burst 1000000",
];
/// The most a response stream may carry: one frame, or a download's frame and its bytes.
const MAX_STREAM_BYTES: usize = 64 << 20;

/// The server and the signed-in connection, shared by every input of the process.
struct Harness {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    fingerprint: String,
    conn: Mutex<quinn::Connection>,
    /// Kept for the life of the process: the server and its data directory.
    _daemon: Daemon,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut args = vec![
            "chatd".to_string(),
            format!("--data-dir={}", dir.path().display()),
            "--listen=127.0.0.1:0".into(),
            "--admin-listen=127.0.0.1:0".into(),
        ];
        args.extend(LIMITS.iter().map(|s| s.to_string()));
        let config = Config::load(args.into_iter().map(Into::into), |_| None).expect("config");
        let daemon = rt.block_on(Daemon::start(config)).expect("start chatd");
        let (addr, fingerprint) = (daemon.addr, daemon.fingerprint.clone());
        let conn = rt.block_on(async {
            // A peer to share chats with, then the fuzzing user.
            let peer = connect(addr, &fingerprint).await;
            expect_ok(request(&peer, register("peer")).await);
            let conn = connect(addr, &fingerprint).await;
            expect_ok(request(&conn, register("fuzz")).await);
            fixtures(&conn).await;
            conn
        });
        Harness {
            rt,
            addr,
            fingerprint,
            conn: Mutex::new(conn),
            _daemon: daemon,
            _dir: dir,
        }
    })
}

/// A group with both users and a message in it, and the private chat: ids 1 and up exist.
async fn fixtures(conn: &quinn::Connection) {
    let peer_id = 1;
    let group = request(
        conn,
        Kind::CreateGroup(pb::CreateGroup {
            kind: pb::ChatKind::Group.into(),
            title: "fuzz".into(),
            description: String::new(),
            member_ids: vec![peer_id],
        }),
    )
    .await;
    let Some(Answer::Chat(chat)) = group.result else {
        panic!("creating the group failed: {group:?}");
    };
    expect_ok(
        request(
            conn,
            Kind::SendMessage(pb::SendMessage {
                chat_id: chat.id,
                client_msg_id: "fuzz-1".into(),
                kind: pb::MessageKind::Text.into(),
                text: "hello @peer".into(),
                ..Default::default()
            }),
        )
        .await,
    );
    expect_ok(
        request(
            conn,
            Kind::CreatePrivateChat(pb::CreatePrivateChat { user_id: peer_id }),
        )
        .await,
    );
}

fn expect_ok(response: pb::Response) {
    if let Some(Answer::Error(e)) = &response.result {
        panic!("setting up the fuzzing server failed: {e:?}");
    }
}

fn register(username: &str) -> Kind {
    Kind::Register(pb::Register {
        username: username.into(),
        email: format!("{username}@example.test"),
        password: PASSWORD.into(),
        device_name: "fuzz".into(),
    })
}

/// A connection that said Hello (with every capability), its event stream and datagrams read
/// and dropped so that the server never sees a slow consumer.
async fn connect(addr: SocketAddr, fingerprint: &str) -> quinn::Connection {
    let pin = parse_fingerprint(fingerprint).expect("fingerprint");
    let mut endpoint =
        quinn::Endpoint::client(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0)).expect("endpoint");
    endpoint.set_default_client_config(client_config(&Verification::Pin(pin)).expect("tls"));
    let conn = endpoint
        .connect(addr, "localhost")
        .expect("connect")
        .await
        .expect("handshake");
    let events = conn.clone();
    tokio::spawn(async move {
        while let Ok(mut stream) = events.accept_uni().await {
            tokio::spawn(async move {
                while let Ok(Some(_)) = stream.read_chunk(usize::MAX, true).await {}
            });
        }
    });
    let datagrams = conn.clone();
    tokio::spawn(async move { while datagrams.read_datagram().await.is_ok() {} });
    let hello = Kind::Hello(pb::Hello {
        protocol_major: 1,
        protocol_minor: 0,
        capabilities: Capability::ALL.iter().map(|c| c.name().into()).collect(),
        client_name: "fuzz".into(),
    });
    expect_ok(request(&conn, hello).await);
    conn
}

async fn request(conn: &quinn::Connection, kind: Kind) -> pb::Response {
    let request = pb::Request {
        request_id: 7,
        kind: Some(kind),
    };
    let bytes = encode_to_vec(&request, MAX_FRAME_BYTES).expect("encode");
    exchange(conn, &bytes, false)
        .await
        .expect("the connection is up")
}

/// Sends one request frame on a new stream and checks what comes back: exactly one response
/// within the frame limit (then a download's bytes, when `download`). `None` when the
/// connection was closed meanwhile.
async fn exchange(conn: &quinn::Connection, frame: &[u8], download: bool) -> Option<pb::Response> {
    let (mut send, mut recv) = conn.open_bi().await.ok()?;
    send.write_all(frame).await.ok()?;
    send.finish().ok()?;
    let bytes = match recv.read_to_end(MAX_STREAM_BYTES).await {
        Ok(bytes) => bytes,
        Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(_))) => return None,
        Err(error) => panic!("reading the response: {error}"),
    };
    let decoder = FrameDecoder::new(MAX_FRAME_BYTES);
    let mut buf = bytes::BytesMut::from(bytes.as_slice());
    let response = match decoder.decode::<pb::Response>(&mut buf) {
        Ok(Some(response)) => response,
        Ok(None) => panic!("no complete response frame ({} bytes)", bytes.len()),
        Err(error) => panic!("the response is not one frame within the limit: {error}"),
    };
    let frame_len = bytes.len() - buf.len();
    assert!(frame_len <= MAX_LENGTH_PREFIX + MAX_FRAME_BYTES);
    if !download {
        assert!(buf.is_empty(), "{} bytes after the response", buf.len());
    }
    Some(response)
}

/// Whether a request would change the fixed connection context.
fn changes_context(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Hello(_)
            | Kind::Register(_)
            | Kind::Login(_)
            | Kind::Refresh(_)
            | Kind::Authenticate(_)
            | Kind::Logout(_)
            | Kind::ChangePassword(_)
            | Kind::RevokeSession(_)
            | Kind::RevokeOtherSessions(_)
    )
}

/// The connection, reconnected and signed in again when the server closed it.
async fn live(h: &Harness) -> quinn::Connection {
    let mut conn = h.conn.lock().await;
    if conn.close_reason().is_some() {
        let fresh = connect(h.addr, &h.fingerprint).await;
        let login = Kind::Login(pb::Login {
            username: "fuzz".into(),
            password: PASSWORD.into(),
            device_name: "fuzz".into(),
            two_factor_code: String::new(),
        });
        expect_ok(request(&fresh, login).await);
        *conn = fresh;
    }
    conn.clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let h = harness();
    if selector & 1 == 1 {
        h.rt.block_on(async {
            let conn = live(h).await;
            // A datagram over the path's limit is refused by quinn itself, not the server.
            let _ = conn.send_datagram(bytes::Bytes::copy_from_slice(payload));
        });
        return;
    }
    let Ok(mut request) = pb::Request::decode(payload) else {
        return;
    };
    let Some(kind) = &request.kind else {
        return;
    };
    if changes_context(kind) {
        return;
    }
    let download = matches!(kind, Kind::DownloadFile(_));
    request.request_id = u64::from(selector) + 1;
    let Ok(frame) = encode_to_vec(&request, MAX_FRAME_BYTES) else {
        return;
    };
    h.rt.block_on(async {
        let conn = live(h).await;
        let Some(response) = exchange(&conn, &frame, download).await else {
            // Only an answer that says so may close the connection; it was read before.
            return;
        };
        assert_eq!(response.request_id, request.request_id);
        assert!(response.result.is_some(), "a response without a result");
    });
});
