//! The connection state machine and framing rules, checked with a raw connection (what the SDK
//! would never send).

use chatproto::pb;
use chatproto::pb::ErrorCode;
use chatproto::pb::request::Kind;
use tests::raw::{RawConn, error_code};
use tests::server::TestServer;

#[tokio::test]
async fn hello_must_come_first_and_only_once() {
    let server = TestServer::start().await;
    let conn = RawConn::connect(server.addr(), &server.fingerprint()).await;
    let early = conn.request(Kind::GetMe(pb::GetMe {})).await;
    assert_eq!(error_code(&early), Some(ErrorCode::FailedPrecondition));
    assert_eq!(early.request_id, 42, "the request id is echoed");

    let welcome = match conn.hello().await.result {
        Some(pb::response::Result::Welcome(w)) => w,
        other => panic!("expected welcome, got {other:?}"),
    };
    assert_eq!(welcome.protocol_major, 1);
    assert!(welcome.server_name.starts_with("chatd/"));
    let limits = welcome.limits.expect("limits");
    assert_eq!(limits.max_frame_bytes, 256 * 1024);
    assert_eq!(limits.max_text_chars, 4096);
    assert!(
        welcome.capabilities.is_empty(),
        "nothing offered, nothing negotiated"
    );

    assert_eq!(
        error_code(&conn.hello().await),
        Some(ErrorCode::FailedPrecondition)
    );
    // A second Hello is refused as such whatever it says: one of another major version does
    // not close the connection, and a bad name is not judged.
    for (protocol_major, client_name) in [(2, "raw"), (1, "bad\u{7}name")] {
        let again = conn
            .request(Kind::Hello(pb::Hello {
                protocol_major,
                client_name: client_name.into(),
                ..Default::default()
            }))
            .await;
        assert_eq!(error_code(&again), Some(ErrorCode::FailedPrecondition));
    }
    assert_eq!(
        error_code(&conn.request(Kind::GetMe(pb::GetMe {})).await),
        Some(ErrorCode::Unauthenticated)
    );
}

#[tokio::test]
async fn capabilities_are_negotiated() {
    let server = TestServer::start().await;
    let conn = RawConn::connect(server.addr(), &server.fingerprint()).await;
    let response = conn
        .request(Kind::Hello(pb::Hello {
            protocol_major: 1,
            protocol_minor: 7,
            capabilities: vec!["datagrams".into(), "teleportation".into()],
            client_name: "raw".into(),
        }))
        .await;
    let Some(pb::response::Result::Welcome(welcome)) = response.result else {
        panic!("no welcome")
    };
    assert_eq!(welcome.capabilities, vec!["datagrams".to_string()]);
}

#[tokio::test]
async fn an_unsupported_major_version_closes_the_connection() {
    let server = TestServer::start().await;
    let conn = RawConn::connect(server.addr(), &server.fingerprint()).await;
    let response = conn
        .request(Kind::Hello(pb::Hello {
            protocol_major: 2,
            protocol_minor: 0,
            capabilities: vec![],
            client_name: "future".into(),
        }))
        .await;
    assert_eq!(error_code(&response), Some(ErrorCode::FailedPrecondition));
    let reason = tokio::time::timeout(std::time::Duration::from_secs(5), conn.conn.closed())
        .await
        .expect("closed");
    match reason {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                u64::from(close.error_code),
                u64::from(chatproto::error::CloseCode::VersionMismatch.code())
            )
        }
        other => panic!("unexpected close {other:?}"),
    }
}

#[tokio::test]
async fn malformed_oversize_and_empty_requests_get_typed_errors() {
    let server = TestServer::start().await;
    let conn = RawConn::connect(server.addr(), &server.fingerprint()).await;
    conn.hello().await;

    // A length prefix announcing 1 MiB: refused from the prefix alone.
    let oversize = conn.send_bytes(&[0x80, 0x80, 0x40]).await;
    assert_eq!(error_code(&oversize), Some(ErrorCode::TooLarge));

    // A frame whose payload is not protobuf (field 1 with wire type 7).
    let garbage = conn.send_bytes(&[0x02, 0x0f, 0x01]).await;
    assert_eq!(error_code(&garbage), Some(ErrorCode::InvalidArgument));

    // A truncated frame: the prefix promises 10 bytes, 2 arrive before the stream ends.
    let truncated = conn.send_bytes(&[0x0a, 0x08, 0x01]).await;
    assert_eq!(error_code(&truncated), Some(ErrorCode::InvalidArgument));

    // Two frames on one request stream.
    let one = chatproto::io::encode_frames(
        [&pb::Request {
            request_id: 1,
            kind: Some(Kind::GetMe(pb::GetMe {})),
        }],
        1 << 18,
    )
    .expect("encode");
    let two = [one.as_ref(), one.as_ref()].concat();
    assert_eq!(
        error_code(&conn.send_bytes(&two).await),
        Some(ErrorCode::InvalidArgument)
    );

    // A request with no kind (e.g. from a newer client): UNIMPLEMENTED.
    let empty = conn.send_bytes(&[0x02, 0x08, 0x05]).await;
    assert_eq!(error_code(&empty), Some(ErrorCode::Unimplemented));
    assert_eq!(
        empty.request_id, 5,
        "the request id is echoed even for an unknown kind"
    );

    // The connection is still healthy after all of that.
    let reg = conn
        .request(Kind::Register(pb::Register {
            username: "still_fine".into(),
            email: "s@example.test".into(),
            password: "long enough password".into(),
            device_name: String::new(),
        }))
        .await;
    assert_eq!(error_code(&reg), None);
}

#[tokio::test]
async fn unidirectional_streams_without_files_are_stopped() {
    let server = TestServer::start().await;
    let conn = RawConn::connect(server.addr(), &server.fingerprint()).await;
    // The credit exists for uploads (capability `files`); a connection that did not negotiate it
    // (here: not even greeted) has its stream stopped with FRAME_ERROR, and stays healthy.
    let send = conn.conn.open_uni().await.expect("uni stream credit");
    assert_eq!(
        tests::files::stop_code(send, b"\x05hello").await,
        u64::from(chatproto::error::StreamCode::FrameError.code())
    );
    assert_eq!(error_code(&conn.hello().await), None);
}

/// Client-supplied names reach the logs: control characters in them are refused (spec 10), the
/// field is named, and nothing is half-done (a refused Hello leaves the connection in state New).
#[tokio::test]
async fn control_characters_in_client_and_device_names_are_refused() {
    let server = TestServer::start().await;
    let conn = RawConn::connect(server.addr(), &server.fingerprint()).await;
    let hello = |client_name: &str| {
        Kind::Hello(pb::Hello {
            protocol_major: 1,
            protocol_minor: 0,
            capabilities: vec![],
            client_name: client_name.into(),
        })
    };
    for (name, code) in [
        ("evil\x1b[31m", ErrorCode::InvalidArgument),
        ("two\nlines", ErrorCode::InvalidArgument),
        ("nul\0", ErrorCode::InvalidArgument),
        (&"x".repeat(65), ErrorCode::TooLarge),
    ] {
        let answer = conn.request(hello(name)).await;
        match &answer.result {
            Some(pb::response::Result::Error(e)) => {
                assert_eq!(
                    (e.code(), e.field.as_str()),
                    (code, "hello.client_name"),
                    "{name:?}"
                )
            }
            other => panic!("{name:?}: expected an error, got {other:?}"),
        }
    }
    // Still in state New: a valid Hello is the first one that counts.
    let welcome = conn.request(hello(&"é".repeat(32))).await;
    assert!(
        matches!(welcome.result, Some(pb::response::Result::Welcome(_))),
        "{welcome:?}"
    );
    let login = conn
        .request(Kind::Login(pb::Login {
            username: "nobody".into(),
            password: "whatever password".into(),
            device_name: "phone\u{7}".into(),
            two_factor_code: String::new(),
        }))
        .await;
    match &login.result {
        Some(pb::response::Result::Error(e)) => assert_eq!(
            (e.code(), e.field.as_str()),
            (ErrorCode::InvalidArgument, "login.device_name")
        ),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// `max_concurrent_requests` holds at every point of a connection (protocol.md 2.3, 4.5): after
/// a few requests whose stream credit the server has not given back yet, a client can still
/// have that many requests open at once, and the server answers them all.
#[tokio::test]
async fn the_announced_concurrent_requests_stay_open_after_earlier_requests() {
    use std::time::Duration;

    let server = TestServer::start().await;
    let conn = RawConn::connect(server.addr(), &server.fingerprint()).await;
    let limit = match conn.hello().await.result {
        Some(pb::response::Result::Welcome(w)) => w.limits.expect("limits").max_concurrent_requests,
        other => panic!("expected welcome, got {other:?}"),
    };
    assert_eq!(error_code(&conn.register("streams").await), None);
    // Three closed streams: fewer than a batch, so their credit may still be the server's.
    assert_eq!(
        error_code(&conn.request(Kind::GetMe(pb::GetMe {})).await),
        None
    );

    let request = pb::Request {
        request_id: 7,
        kind: Some(Kind::GetMe(pb::GetMe {})),
    };
    let frame = chatproto::io::encode_frames([&request], chatproto::frame::MAX_FRAME_BYTES)
        .expect("encode");
    let mut open = Vec::new();
    for i in 0..limit {
        let opened = tokio::time::timeout(Duration::from_secs(2), conn.conn.open_bi()).await;
        let (mut send, recv) = opened
            .unwrap_or_else(|_| panic!("request {} of {limit} found no stream credit", i + 1))
            .expect("open stream");
        // Sent but not finished: the client holds the stream open.
        send.write_all(&frame).await.expect("write request");
        open.push((send, recv));
    }
    for (mut send, recv) in open {
        // The server may have answered and stopped reading already.
        let _ = send.finish();
        let mut reader = chatproto::io::FrameReader::new(recv, chatproto::frame::MAX_FRAME_BYTES);
        let response: pb::Response = reader.read_only().await.expect("one response frame");
        assert_eq!(error_code(&response), None, "{response:?}");
    }
}

/// Before authentication the server serves requests in stream order (protocol.md 2.5), whether
/// or not their streams came in 0-RTT data: a first flight is often handled after the
/// handshake. Here `hello` is opened first but completed last, and `authenticate` behind it
/// still waits for it instead of failing with FAILED_PRECONDITION.
#[tokio::test]
async fn requests_before_authentication_are_served_in_stream_order() {
    use chatproto::frame::MAX_FRAME_BYTES;
    use chatproto::io::{FrameReader, encode_frames};

    let server = TestServer::start().await;
    let first = RawConn::connect(server.addr(), &server.fingerprint()).await;
    first.hello().await;
    let token = match first.register("ordered").await.result {
        Some(pb::response::Result::Auth(auth)) => auth.access_token,
        other => panic!("expected auth, got {other:?}"),
    };

    let conn = RawConn::connect(server.addr(), &server.fingerprint()).await;
    let frame = |request_id, kind| {
        encode_frames(
            [&pb::Request {
                request_id,
                kind: Some(kind),
            }],
            MAX_FRAME_BYTES,
        )
        .expect("encode")
    };
    let hello = frame(
        1,
        Kind::Hello(pb::Hello {
            protocol_major: 1,
            protocol_minor: 0,
            capabilities: vec![],
            client_name: "raw".into(),
        }),
    );
    let authenticate = frame(
        2,
        Kind::Authenticate(pb::Authenticate {
            access_token: token,
        }),
    );
    let (mut hello_send, hello_recv) = conn.conn.open_bi().await.expect("open");
    let (hello_start, hello_end) = hello.split_at(hello.len() - 1);
    hello_send
        .write_all(hello_start)
        .await
        .expect("write hello");
    let (mut auth_send, auth_recv) = conn.conn.open_bi().await.expect("open");
    auth_send
        .write_all(&authenticate)
        .await
        .expect("write authenticate");
    auth_send.finish().expect("finish");
    // The authenticate is complete long before the hello ahead of it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    hello_send
        .write_all(hello_end)
        .await
        .expect("complete hello");
    hello_send.finish().expect("finish");

    let read = |recv| async move {
        let response: pb::Response = FrameReader::new(recv, MAX_FRAME_BYTES)
            .read_only()
            .await
            .expect("one response frame");
        response
    };
    let welcome = read(hello_recv).await;
    assert!(
        matches!(welcome.result, Some(pb::response::Result::Welcome(_))),
        "{welcome:?}"
    );
    let auth = read(auth_recv).await;
    assert_eq!(error_code(&auth), None, "{auth:?}");
}

/// A client that does not take an answer (its stream's flow control window stays shut) holds
/// it for at most `ANSWER_TIMEOUT`: then the stream is reset with REQUEST_TIMEOUT, and what
/// the server held for it is let go.
#[tokio::test]
async fn an_answer_the_client_does_not_take_is_reset_after_its_timeout() {
    let server = TestServer::start().await;
    let mut transport = quinn::TransportConfig::default();
    // Room for the small answers of hello and register, not for a chat with a long description.
    transport.stream_receive_window(2048u32.into());
    transport.keep_alive_interval(Some(std::time::Duration::from_secs(2)));
    let raw = RawConn::connect_with(server.addr(), &server.fingerprint(), transport).await;
    assert_eq!(error_code(&raw.hello().await), None);
    assert_eq!(error_code(&raw.register("ursula").await), None);
    let request = pb::Request {
        request_id: 7,
        kind: Some(Kind::CreateGroup(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "long".into(),
            description: "€".repeat(1000),
            member_ids: vec![],
        })),
    };
    let bytes = chatproto::io::encode_frames([&request], chatproto::frame::MAX_FRAME_BYTES)
        .expect("encode");
    let (mut send, mut recv) = raw.conn.open_bi().await.expect("open");
    send.write_all(&bytes).await.expect("write");
    send.finish().expect("finish");
    tokio::time::sleep(chatproto::server::ANSWER_TIMEOUT + std::time::Duration::from_secs(2)).await;
    let mut answer = Vec::new();
    let read = loop {
        let mut chunk = [0u8; 4096];
        match recv.read(&mut chunk).await {
            Ok(Some(n)) => answer.extend_from_slice(&chunk[..n]),
            other => break other,
        }
    };
    let timed_out = quinn::VarInt::from_u32(chatproto::error::StreamCode::RequestTimeout.code());
    assert!(
        matches!(read, Err(quinn::ReadError::Reset(code)) if code == timed_out),
        "{read:?} after {} bytes",
        answer.len()
    );
}

/// The server answers a request as soon as its frame is complete (spec 4.1), without waiting
/// for the client's FIN; bytes that came behind the frame make it INVALID_ARGUMENT.
#[tokio::test]
async fn a_request_is_answered_before_its_stream_ends() {
    let server = TestServer::start().await;
    let raw = RawConn::connect(server.addr(), &server.fingerprint()).await;
    let hello = pb::Request {
        request_id: 3,
        kind: Some(Kind::Hello(pb::Hello {
            protocol_major: 1,
            protocol_minor: 0,
            capabilities: vec![],
            client_name: "raw".into(),
        })),
    };
    let frame =
        chatproto::io::encode_frames([&hello], chatproto::frame::MAX_FRAME_BYTES).expect("encode");
    let (mut send, recv) = raw.conn.open_bi().await.expect("open");
    send.write_all(&frame).await.expect("write");
    let mut reader = chatproto::io::FrameReader::new(recv, chatproto::frame::MAX_FRAME_BYTES);
    let answer = tokio::time::timeout(std::time::Duration::from_secs(3), reader.read_only())
        .await
        .expect("answered before the FIN")
        .expect("one response frame");
    let answer: pb::Response = answer;
    assert!(
        matches!(answer.result, Some(pb::response::Result::Welcome(_))),
        "{answer:?}"
    );
    let mut twice = frame.to_vec();
    twice.extend_from_slice(&frame);
    let trailing = raw.send_bytes(&twice).await;
    assert_eq!(error_code(&trailing), Some(ErrorCode::InvalidArgument));
}

/// A request stream is reset only when it makes no progress for `REQUEST_READ_TIMEOUT` (spec
/// 4.1): a request that keeps arriving a byte at a time for longer than that is answered, and
/// one that stops halfway is reset with REQUEST_TIMEOUT.
#[tokio::test]
async fn a_slow_request_is_served_and_a_stalled_one_reset() {
    let server = TestServer::start().await;
    let raw = RawConn::connect(server.addr(), &server.fingerprint()).await;
    assert_eq!(error_code(&raw.hello().await), None);
    assert_eq!(error_code(&raw.register("sloane").await), None);
    let frame = |request_id| {
        let request = pb::Request {
            request_id,
            kind: Some(Kind::GetMe(pb::GetMe {})),
        };
        chatproto::io::encode_frames([&request], chatproto::frame::MAX_FRAME_BYTES).expect("encode")
    };
    let idle = chatproto::server::REQUEST_READ_TIMEOUT;
    let slow = async {
        let bytes = frame(u64::MAX);
        let pause = (idle + idle / 2) / u32::try_from(bytes.len()).expect("short frame");
        assert!(pause < idle / 2, "{} bytes", bytes.len());
        let (mut send, recv) = raw.conn.open_bi().await.expect("open");
        for byte in bytes.iter() {
            send.write_all(&[*byte]).await.expect("write");
            tokio::time::sleep(pause).await;
        }
        send.finish().expect("finish");
        chatproto::io::FrameReader::new(recv, chatproto::frame::MAX_FRAME_BYTES)
            .read_only::<pb::Response>()
            .await
            .expect("answered")
    };
    let stalled = async {
        let bytes = frame(2);
        let (mut send, mut recv) = raw.conn.open_bi().await.expect("open");
        send.write_all(&bytes[..bytes.len() / 2])
            .await
            .expect("write");
        tokio::time::timeout(idle * 2, recv.read_to_end(1 << 20)).await
    };
    let (answer, stalled) = tokio::join!(slow, stalled);
    assert!(
        matches!(answer.result, Some(pb::response::Result::User(_))),
        "{answer:?}"
    );
    let timed_out = quinn::VarInt::from_u32(chatproto::error::StreamCode::RequestTimeout.code());
    assert!(
        matches!(stalled, Ok(Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code)))) if code == timed_out),
        "{stalled:?}"
    );
}
