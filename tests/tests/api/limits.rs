//! Rate limits end to end: a budget runs out, the answer is RATE_LIMITED with a usable
//! retry_after, and the budget comes back.

use std::time::Duration;

use chatproto::client::{Client, ClientConfig};
use chatproto::pb;
use chatproto::pb::ErrorCode;
use chatproto::pb::request::Kind;
use tests::client::{PASSWORD, config_for, remote};
use tests::raw::{RawConn, error_code};
use tests::server::TestServer;

/// A client that surfaces RATE_LIMITED instead of waiting and retrying (the SDK's default).
async fn impatient(server: &TestServer) -> Client {
    let mut config: ClientConfig = config_for(server.addr(), &server.fingerprint());
    config.retry.max_retry_wait = Duration::ZERO;
    config.retry.max_retries = 0;
    Client::connect(config).await.expect("connect")
}

async fn register(client: &Client, name: &str) -> u64 {
    let auth = client
        .register_user(name, &format!("{name}@example.test"), PASSWORD, "")
        .await
        .expect("register");
    auth.user.expect("user").id
}

#[tokio::test]
async fn sends_beyond_the_budget_are_rate_limited() {
    let server = TestServer::start_with(&["--limit-send=2/s burst 3"]).await;
    let alice = impatient(&server).await;
    register(&alice, "alice").await;
    let chat = alice
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "t".into(),
            ..Default::default()
        })
        .await
        .expect("group");
    for i in 0..3 {
        alice
            .send_text(chat.id, &format!("m{i}"))
            .await
            .expect("within the burst");
    }
    let err = remote(alice.send_text(chat.id, "one too many").await);
    assert_eq!(err.code, ErrorCode::RateLimited);
    let retry = err.retry_after.expect("retry_after is set");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_millis(500),
        "retry_after {retry:?}"
    );
    // Reads are a separate budget.
    alice.get_me(pb::GetMe {}).await.expect("reads still work");
    tokio::time::sleep(retry + Duration::from_millis(20)).await;
    alice
        .send_text(chat.id, "after waiting")
        .await
        .expect("budget refilled");
    // Nothing was written by the refused send.
    let history = alice
        .get_history(pb::GetHistory {
            chat_id: chat.id,
            limit: 50,
            ..Default::default()
        })
        .await
        .expect("history");
    let texts: Vec<_> = history.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["m0", "m1", "m2", "after waiting"]);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let server = TestServer::start_with(&["--limit-login-account=1/60s burst 3"]).await;
    let alice = impatient(&server).await;
    register(&alice, "alice").await;
    let other = impatient(&server).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(remote(other.login("alice", "wrong password", "x").await).code);
    }
    assert_eq!(&codes[..3], &[ErrorCode::Unauthenticated; 3]);
    assert_eq!(&codes[3..], &[ErrorCode::RateLimited; 2]);
    // Even the right password waits now: the account is throttled, not the guess.
    assert_eq!(
        remote(other.login("alice", PASSWORD, "x").await).code,
        ErrorCode::RateLimited
    );
    // Another account is unaffected.
    let bob = impatient(&server).await;
    register(&bob, "bob").await;
}

#[tokio::test]
async fn requests_are_limited_per_address() {
    let server = TestServer::start_with(&["--limit-address-request=1/60s burst 5"]).await;
    // A raw connection, so that every request is one we send (the SDK adds its own, e.g. Sync).
    let conn = RawConn::connect(server.addr(), &server.fingerprint()).await;
    assert_eq!(error_code(&conn.hello().await), None);
    for _ in 0..4 {
        let answer = conn.request(Kind::GetMe(pb::GetMe {})).await;
        assert_eq!(
            error_code(&answer),
            Some(ErrorCode::Unauthenticated),
            "within the address budget"
        );
    }
    let refused = conn.request(Kind::GetMe(pb::GetMe {})).await;
    let Some(pb::response::Result::Error(err)) = refused.result else {
        panic!("expected an error")
    };
    assert_eq!(err.code(), ErrorCode::RateLimited);
    assert!(
        err.retry_after_ms > 1000,
        "retry_after_ms {}",
        err.retry_after_ms
    );
    // The budget is per address: every connection from here shares it.
    let other = RawConn::connect(server.addr(), &server.fingerprint()).await;
    assert_eq!(
        error_code(&other.hello().await),
        Some(ErrorCode::RateLimited)
    );
}
