//! Revoking a session or disabling an account closes the user's connections on every node.

use std::time::Duration;

use chatproto::pb;
use chatproto::pb::request::Kind;
use tests::raw::RawSession;
use tests::redis::RedisServer;

use super::{serial, two_nodes};

const WAIT: Duration = Duration::from_secs(5);

/// Waits for SessionRevoked on the event stream and the close with SESSION_REVOKED.
async fn expect_kicked(client: &mut RawSession) {
    let revoked = client
        .wait_for(WAIT, |e| {
            matches!(e.kind, Some(pb::event::Kind::SessionRevoked(_))).then_some(())
        })
        .await;
    assert!(revoked.is_some(), "no SessionRevoked event");
    let closed = tokio::time::timeout(WAIT, client.conn().closed())
        .await
        .expect("connection closed");
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                close.error_code,
                quinn::VarInt::from_u32(chatproto::error::CloseCode::SessionRevoked.code())
            );
        }
        other => panic!("closed otherwise: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_disabling_close_connections_on_every_node() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let mut alice_on_b = RawSession::login(&b, "alice").await;
    alice
        .ok(Kind::RevokeOtherSessions(pb::RevokeOtherSessions {}))
        .await;
    expect_kicked(&mut alice_on_b).await;

    // An admin on node A disables a user connected to node B.
    a.store()
        .set_role(alice.user_id, pb::Role::Admin)
        .await
        .expect("make alice admin");
    let mut bob = RawSession::register(&b, "bob").await;
    alice
        .ok(Kind::AdminSetUserDisabled(pb::AdminSetUserDisabled {
            user_id: bob.user_id,
            disabled: true,
        }))
        .await;
    expect_kicked(&mut bob).await;
}
