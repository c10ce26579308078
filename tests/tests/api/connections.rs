//! Connection limits end to end: unauthenticated connections per address and in total,
//! authenticated connections per address, the deadline to authenticate, and the budget of
//! request bytes before authentication. Each limit fires on raw connections from one loopback
//! address while another (127.0.0.2, ...) is still served.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use chatproto::client::ClientEvent;
use chatproto::error::CloseCode;
use chatproto::io::{FrameReader, encode_frames};
use chatproto::pb;
use chatproto::pb::ErrorCode;
use chatproto::pb::request::Kind;
use tests::client::{PASSWORD, wait_event};
use tests::raw::{RawConn, error_code};
use tests::server::TestServer;

fn from(last: u8) -> IpAddr {
    Ipv4Addr::new(127, 0, 0, last).into()
}

fn busy(reason: &str) -> (u64, String) {
    (CloseCode::ServerBusy.code().into(), reason.to_owned())
}

/// A connection from 127.0.0.`last` that sent nothing yet.
async fn raw(server: &TestServer, last: u8) -> RawConn {
    RawConn::connect_from(server.addr(), &server.fingerprint(), from(last)).await
}

/// A connection from 127.0.0.`last` that said hello.
async fn greeted(server: &TestServer, last: u8) -> RawConn {
    let conn = raw(server, last).await;
    assert_eq!(error_code(&conn.hello().await), None, "hello");
    conn
}

fn error_message(response: &pb::Response) -> String {
    match &response.result {
        Some(pb::response::Result::Error(e)) => e.message.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn unauthenticated_connections_are_capped_per_address() {
    let server = TestServer::start_with(&["--max-unauthenticated-per-address=2"]).await;
    let first = greeted(&server, 1).await;
    let _second = greeted(&server, 1).await;
    let refused = raw(&server, 1).await;
    assert_eq!(
        refused.closed_by_server().await,
        busy("too many unauthenticated connections from this address")
    );
    // Another address is served meanwhile.
    let other = greeted(&server, 2).await;
    assert_eq!(error_code(&other.register("carol").await), None);
    // An authenticated connection no longer counts: the address has room again.
    assert_eq!(error_code(&first.register("alice").await), None);
    let third = greeted(&server, 1).await;
    assert_eq!(
        error_code(&third.login("alice", PASSWORD).await),
        None,
        "admitted and served"
    );
}

#[tokio::test]
async fn unauthenticated_connections_are_capped_in_total_below_the_global_cap() {
    let server = TestServer::start_with(&["--max-connections=4", "--max-unauthenticated=2"]).await;
    let a = greeted(&server, 1).await;
    let b = greeted(&server, 2).await;
    let refused = raw(&server, 3).await;
    assert_eq!(
        refused.closed_by_server().await,
        busy("server busy: too many unauthenticated connections")
    );
    // The places left under the global cap are for connections that authenticate.
    assert_eq!(error_code(&a.register("alice").await), None);
    let _c = greeted(&server, 3).await;
    assert_eq!(error_code(&b.register("bob").await), None);
    let _d = greeted(&server, 4).await;
    let over = raw(&server, 5).await;
    assert_eq!(over.closed_by_server().await, busy("server busy"));
}

#[tokio::test]
async fn authenticated_connections_are_capped_per_address() {
    let server = TestServer::start_with(&["--max-authenticated-per-address=1"]).await;
    let first = greeted(&server, 1).await;
    assert_eq!(error_code(&first.register("alice").await), None);
    let second = greeted(&server, 1).await;
    let answer = second.login("alice", PASSWORD).await;
    assert_eq!(error_code(&answer), Some(ErrorCode::Unavailable));
    assert_eq!(
        error_message(&answer),
        "too many connections from this address"
    );
    assert_eq!(
        second.closed_by_server().await.0,
        u64::from(CloseCode::ServerBusy.code())
    );
    // The same account from another address is served.
    let elsewhere = greeted(&server, 2).await;
    assert_eq!(error_code(&elsewhere.login("alice", PASSWORD).await), None);
    // The first connection was never affected.
    assert_eq!(
        error_code(&first.request(Kind::GetMe(pb::GetMe {})).await),
        None
    );
}

#[tokio::test]
async fn connections_that_do_not_authenticate_in_time_are_closed() {
    let deadline = Duration::from_millis(1500);
    let server = TestServer::start_with(&["--auth-deadline=1500ms"]).await;
    let started = Instant::now();
    let authenticated = greeted(&server, 1).await;
    assert_eq!(error_code(&authenticated.register("alice").await), None);
    let silent = raw(&server, 2).await;
    let greeted_only = greeted(&server, 3).await;
    let not_in_time = (
        u64::from(CloseCode::NoError.code()),
        "not authenticated in time".to_owned(),
    );
    assert_eq!(silent.closed_by_server().await, not_in_time);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= deadline && elapsed < deadline * 4,
        "closed after {elapsed:?}"
    );
    assert_eq!(greeted_only.closed_by_server().await, not_in_time);
    // Past the deadline, the authenticated connection is served as before.
    assert!(started.elapsed() >= deadline);
    assert_eq!(
        error_code(&authenticated.request(Kind::GetMe(pb::GetMe {})).await),
        None
    );
    // A logout makes it unauthenticated again, and the clock starts over.
    let logged_out = Instant::now();
    assert_eq!(
        error_code(&authenticated.request(Kind::Logout(pb::Logout {})).await),
        None
    );
    assert_eq!(authenticated.closed_by_server().await, not_in_time);
    assert!(logged_out.elapsed() >= deadline);
}

#[tokio::test]
async fn unauthenticated_connections_buffer_a_bounded_number_of_request_bytes() {
    // Two requests being read (8 KiB and a length prefix each) fit, a third does not.
    let server = TestServer::start_with(&["--max-unauthenticated-bytes=20000"]).await;
    let conn = greeted(&server, 1).await;
    // More than 8 KiB in one frame is refused before authentication...
    let big = Kind::GetUsers(pb::GetUsers {
        user_ids: vec![u64::MAX; 1000],
    });
    let answer = conn.request(big.clone()).await;
    assert_eq!(error_code(&answer), Some(ErrorCode::TooLarge));
    assert!(
        error_message(&answer).contains("exceeds the limit of 8192 bytes"),
        "{answer:?}"
    );

    // Two requests in flight, half sent, hold the budget...
    let login = pb::Request {
        request_id: 7,
        kind: Some(Kind::Login(pb::Login {
            username: "nobody".into(),
            password: "wrong password".into(),
            device_name: String::new(),
            two_factor_code: String::new(),
        })),
    };
    let frame = encode_frames([&login], chatproto::frame::MAX_FRAME_BYTES).expect("encode");
    let (half, rest) = frame.split_at(frame.len() / 2);
    let mut pending = Vec::new();
    for _ in 0..2 {
        let (mut send, recv) = conn.conn.open_bi().await.expect("open");
        send.write_all(half).await.expect("write half");
        pending.push((send, recv));
    }
    // ...so the next one is answered TOO_LARGE without being read.
    let refused = conn.hello().await;
    assert_eq!(error_code(&refused), Some(ErrorCode::TooLarge));
    assert!(
        error_message(&refused).contains("at most 20000 request bytes"),
        "{refused:?}"
    );
    // Once a held request is complete and answered, its share is back: the next request is
    // admitted, not refused. It is answered once the other held request, ahead of it in line
    // (requests before authentication are served in stream order, protocol.md 2.5), is given up.
    let read = |recv| async move {
        let answer: pb::Response = FrameReader::new(recv, chatproto::frame::MAX_FRAME_BYTES)
            .read_only()
            .await
            .expect("answer");
        answer
    };
    let (mut send, recv) = pending.remove(0);
    send.write_all(rest).await.expect("write rest");
    send.finish().expect("finish");
    assert_eq!(
        error_code(&read(recv).await),
        Some(ErrorCode::Unauthenticated)
    );
    let (mut send, recv) = conn.conn.open_bi().await.expect("open");
    send.write_all(&frame).await.expect("write");
    send.finish().expect("finish");
    let (mut held, _) = pending.remove(0);
    held.reset(0u32.into()).expect("reset");
    assert_eq!(
        error_code(&read(recv).await),
        Some(ErrorCode::Unauthenticated)
    );
    assert_eq!(error_code(&conn.register("alice").await), None);
    // Authenticated, the same large frame is read (and answered for its content).
    let answer = conn.request(big).await;
    assert_eq!(
        error_code(&answer),
        Some(ErrorCode::InvalidArgument),
        "{answer:?}"
    );
}

#[tokio::test]
async fn an_sdk_client_that_waits_past_the_deadline_still_logs_in() {
    let server = TestServer::start_with(&["--auth-deadline=300ms"]).await;
    tests::client::register(&server, "alice").await;
    let client = tests::client::connect(&server).await;
    wait_event(&client, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::Disconnected { .. }).then_some(())
    })
    .await;
    client
        .login("alice", PASSWORD, "late")
        .await
        .expect("the SDK reconnects and logs in");
}

/// The SDK tells a refusal at a connection limit from other failures, so that callers (and its
/// own reconnects) back off as protocol.md 3.7 asks.
#[tokio::test]
async fn the_sdk_reports_a_server_at_its_limit_as_busy() {
    let server = TestServer::start_with(&["--max-connections=3", "--max-unauthenticated=1"]).await;
    let (_alice, _) = tests::client::register(&server, "alice").await;
    let _waiting = greeted(&server, 2).await;
    let err = chatproto::client::Client::connect(tests::client::config_for(
        server.addr(),
        &server.fingerprint(),
    ))
    .await
    .expect_err("the server is full");
    assert!(
        matches!(&err, chatproto::client::ClientError::ServerBusy(m)
            if m.contains("too many unauthenticated connections")),
        "{err}"
    );
}

/// The value of the counter `name` in the server's metrics (0 before its first count).
async fn counter(server: &TestServer, name: &str) -> u64 {
    server
        .metrics()
        .await
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Beyond `--retry-above-handshakes` handshakes in progress (here 0: always), an attempt from
/// an address not yet validated is answered with a QUIC Retry first (spec 11.6); a real client
/// answers it and is served as usual. Below it, nobody is sent one.
#[tokio::test]
async fn under_a_load_of_handshakes_a_client_answers_a_retry_first() {
    const RETRIED: &str = "chatd_connections_retried_total ";
    let strict = TestServer::start_with(&["--retry-above-handshakes=0"]).await;
    let raw = RawConn::connect(strict.addr(), &strict.fingerprint()).await;
    assert_eq!(error_code(&raw.hello().await), None);
    assert_eq!(error_code(&raw.register("rita").await), None);
    assert_eq!(counter(&strict, RETRIED).await, 1);

    let calm = TestServer::start().await;
    let raw = RawConn::connect(calm.addr(), &calm.fingerprint()).await;
    assert_eq!(error_code(&raw.hello().await), None);
    assert_eq!(counter(&calm, RETRIED).await, 0);
}
