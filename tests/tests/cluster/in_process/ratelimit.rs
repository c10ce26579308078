//! Rate limits are shared by the nodes through Redis.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;
use tests::raw::RawSession;
use tests::redis::RedisServer;

use super::{exists, serial, two_nodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_limit_holds_across_nodes() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let limit = ["--limit-send=1/m burst 3"];
    let (a, b) = two_nodes(&redis, &limit).await;

    let mut on_a = RawSession::register(&a, "alice").await;
    let mut on_b = RawSession::login(&b, "alice").await;
    let chat = on_a.create_group("notes", &[]).await;
    assert!(matches!(
        on_a.send_text(chat, "1").await,
        Answer::Message(_)
    ));
    assert!(matches!(
        on_a.send_text(chat, "2").await,
        Answer::Message(_)
    ));
    assert!(matches!(
        on_b.send_text(chat, "3").await,
        Answer::Message(_)
    ));
    // Three sent across both nodes: the burst is spent everywhere, although node B alone saw
    // only one.
    for client in [&mut on_b, &mut on_a] {
        match client.send_text(chat, "one too many").await {
            Answer::Error(e) => {
                assert_eq!(e.code(), pb::ErrorCode::RateLimited);
                assert!(e.retry_after_ms > 0 && e.retry_after_ms <= 60_000, "{e:?}");
            }
            other => panic!("not limited: {other:?}"),
        }
    }
    let key = format!("chatd:rl:send:{}", on_a.user_id);
    assert!(exists(&redis, &key), "the bucket lives in redis");
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg(&key)).expect("pttl");
    assert!(
        ttl > 0 && ttl <= 180_001,
        "the bucket expires when full again: {ttl}"
    );
}

/// A login attempt for `username` with a wrong password on a greeted connection.
async fn wrong_login(client: &mut RawSession, username: &str) -> pb::ErrorCode {
    match client
        .request(pb::request::Kind::Login(pb::Login {
            username: username.into(),
            password: "not the password".into(),
            device_name: "test".into(),
            two_factor_code: String::new(),
        }))
        .await
    {
        Answer::Error(e) => e.code(),
        other => panic!("login with a wrong password answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_password_change_throttles_hold_across_nodes_in_their_own_buckets() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let limit = [
        "--limit-login-account-address=1/m burst 2",
        "--limit-login-account=1/m burst 10",
    ];
    let (a, b) = two_nodes(&redis, &limit).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let mut guess_a = RawSession::connect(&a).await;
    guess_a.hello(&[]).await;
    let mut guess_b = RawSession::connect(&b).await;
    guess_b.hello(&[]).await;
    assert_eq!(
        wrong_login(&mut guess_a, "alice").await,
        pb::ErrorCode::Unauthenticated
    );
    assert_eq!(
        wrong_login(&mut guess_b, "alice").await,
        pb::ErrorCode::Unauthenticated
    );
    // Two attempts from this address across both nodes: the pair's burst is spent everywhere.
    for guesser in [&mut guess_a, &mut guess_b] {
        assert_eq!(
            wrong_login(guesser, "alice").await,
            pb::ErrorCode::RateLimited
        );
    }
    let pair = "chatd:rl:login_account_address:alice|127.0.0.1";
    assert!(exists(&redis, pair), "the pair's bucket is in redis");
    assert!(exists(&redis, "chatd:rl:login_account:alice"));

    // A password change is not a login: its own bucket, keyed by user id in its own scope.
    let change = alice
        .request(pb::request::Kind::ChangePassword(pb::ChangePassword {
            old_password: "not the password".into(),
            new_password: "a new password".into(),
        }))
        .await;
    match change {
        Answer::Error(e) => assert_eq!(e.code(), pb::ErrorCode::PermissionDenied, "{e:?}"),
        other => panic!("wrong old password answered {other:?}"),
    }
    let key = format!("chatd:rl:password_change:{}", alice.user_id);
    assert!(exists(&redis, &key));
}
