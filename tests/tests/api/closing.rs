//! How the server ends connections it cannot keep serving: a client that does not read its
//! event stream is closed with RESYNC (not SESSION_REVOKED), and the SDK answers RESYNC by
//! reconnecting and catching up.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use chatproto::client::ClientEvent;
use chatproto::error::CloseCode;
use chatproto::pb;
use tests::raw::RawConn;

/// The close code a connection ended with, if the server closed it with one.
fn close_code(error: &quinn::ConnectionError) -> Option<CloseCode> {
    match error {
        quinn::ConnectionError::ApplicationClosed(close) => {
            CloseCode::from_code(close.error_code.into_inner())
        }
        _ => None,
    }
}

#[tokio::test]
async fn a_client_that_never_reads_its_event_stream_is_closed_with_resync() {
    let server = start().await;
    let alice = Arc::new(register(&server, "alice").await.client);
    // A client that grants little stream window and never accepts the event stream: the server
    // can write a few KiB, then its queue for the connection fills.
    let mut transport = quinn::TransportConfig::default();
    transport.stream_receive_window(quinn::VarInt::from_u32(4096));
    let raw = RawConn::connect_with(server.addr(), &server.fingerprint(), transport).await;
    raw.hello().await;
    let auth = raw
        .request(pb::request::Kind::Register(pb::Register {
            username: "bob".into(),
            email: "bob@example.test".into(),
            password: PASSWORD.into(),
            device_name: "never reads".into(),
        }))
        .await;
    let Some(pb::response::Result::Auth(auth)) = auth.result else {
        panic!("register answered {auth:?}");
    };
    let bob = auth.user.expect("user").id;
    let chat = alice.create_private_chat(bob).await.expect("chat").id;

    // More events than the server queues per connection, from 16 concurrent senders; they stop
    // as soon as the connection is closed.
    let per_sender = chatd::testing::CONNECTION_QUEUE / 16 + 64;
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..16 {
        let alice = Arc::clone(&alice);
        let conn = raw.conn.clone();
        senders.spawn(async move {
            for i in 0..per_sender {
                if conn.close_reason().is_some() {
                    return;
                }
                alice
                    .send_text(chat, &format!("{s}-{i}"))
                    .await
                    .expect("send");
            }
        });
    }
    let closed = tokio::time::timeout(WAIT * 4, raw.conn.closed())
        .await
        .expect("the server kept a connection that never reads");
    assert_eq!(close_code(&closed), Some(CloseCode::Resync), "{closed}");
    senders.join_all().await;
}

#[tokio::test]
async fn the_sdk_reconnects_and_catches_up_after_resync() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let chat = alice.client.create_private_chat(bob.id).await.unwrap().id;
    let first = alice.send(chat, "before").await;
    assert_eq!(bob.next_message(chat).await.seq, first.seq);

    // The server gives up on bob's connection as it does on a slow consumer.
    assert_eq!(server.kick_connections_of(bob.id), 1);
    let reason = bob
        .wait_for(|e| match e {
            ClientEvent::Disconnected { reason } => Some(reason),
            _ => None,
        })
        .await;
    assert!(reason.contains("RESYNC"), "{reason}");
    // Sent while bob is away: only catching up can bring these.
    let mut sent = Vec::new();
    for text in ["during 1", "during 2", "during 3"] {
        sent.push(alice.send(chat, text).await.seq);
    }
    bob.wait_for(|e| matches!(e, ClientEvent::Connected { .. }).then_some(()))
        .await;
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(bob.next_message(chat).await.seq);
    }
    assert_eq!(got, sent);
    // Still the same session: requests work without logging in again.
    tokio::time::timeout(Duration::from_secs(10), bob.client.get_me(pb::GetMe {}))
        .await
        .expect("get_me after the resync")
        .expect("get_me");
}
