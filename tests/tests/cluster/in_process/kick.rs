//! Revoking a session or disabling an account closes the user's connections on every node.

use std::time::Duration;

use chatproto::pb;
use chatproto::pb::request::Kind;
use tests::raw::RawSession;
use tests::redis::RedisServer;

use super::{eventually, serial, two_nodes};

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
        .set_role(alice.user_id, pb::Role::Admin, None)
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

/// A user's first connection on node B signs in while node A revokes the session: node B
/// only hears the user's kicks once it subscribed for them, after the session was read, so the
/// kick A publishes meanwhile reaches nobody there. The sign-in reads the session again and is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_on_one_node_overtaken_by_its_revocation_on_another_is_refused() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;
    let (holder, auth) = tests::client::register(&a, "racer").await;
    let joiner = tests::client::connect(&b).await;
    let held = b.hold_sign_ins().await;
    let joining = tokio::spawn(async move {
        let joined = joiner.authenticate(&auth.access_token).await;
        (joiner, joined)
    });
    let waited = eventually(WAIT, async || b.sign_ins_held() == 1).await;
    assert!(waited, "the sign-in never reached its registration");
    holder.logout().await.expect("logout");
    drop(held);
    let (joiner, joined) = joining.await.expect("task");
    assert_eq!(tests::client::code(joined), pb::ErrorCode::Unauthenticated);
    assert_eq!(
        tests::client::code(joiner.list_sessions(pb::ListSessions {}).await),
        pb::ErrorCode::Unauthenticated
    );
}
