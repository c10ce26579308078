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

/// A greeted raw connection from 127.0.0.`last` (loopback answers every 127/8 address, so
/// each plays another client address).
async fn from(server: &TestServer, last: u8) -> RawConn {
    let ip = std::net::Ipv4Addr::new(127, 0, 0, last).into();
    let conn = RawConn::connect_from(server.addr(), &server.fingerprint(), ip).await;
    assert_eq!(error_code(&conn.hello().await), None, "hello");
    conn
}

/// The error of a response (panics on success).
fn error_of(response: &pb::Response) -> pb::Error {
    match &response.result {
        Some(pb::response::Result::Error(e)) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

const WRONG: &str = "wrong password";

#[tokio::test]
async fn a_guesser_is_throttled_but_the_owner_logs_in_from_another_address() {
    let server = TestServer::start_with(&["--limit-login-account-address=1/60s burst 3"]).await;
    let owner = from(&server, 1).await;
    assert_eq!(error_code(&owner.register("alice").await), None);
    let guesser = from(&server, 2).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(error_code(&guesser.login("alice", WRONG).await));
    }
    assert_eq!(&codes[..3], &[Some(ErrorCode::Unauthenticated); 3]);
    assert_eq!(&codes[3..], &[Some(ErrorCode::RateLimited); 2]);
    // The guesser waits even with the right password: the pair is throttled, not the guess.
    let refused = error_of(&guesser.login("alice", PASSWORD).await);
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    assert!(refused.retry_after_ms > 1000, "{refused:?}");
    // The owner, from another address, is not locked out.
    let elsewhere = from(&server, 3).await;
    assert_eq!(error_code(&elsewhere.login("alice", PASSWORD).await), None);
}

#[tokio::test]
async fn logins_are_throttled_per_address_across_accounts() {
    let server = TestServer::start_with(&["--limit-login-address=1/60s burst 4"]).await;
    // Registrations share the address budget: alice registers from an address of her own.
    let owner = from(&server, 1).await;
    assert_eq!(error_code(&owner.register("alice").await), None);
    let sprayer = from(&server, 2).await;
    for name in ["bob", "carol", "dave", "erin"] {
        assert_eq!(
            error_code(&sprayer.login(name, WRONG).await),
            Some(ErrorCode::Unauthenticated),
            "{name}"
        );
    }
    assert_eq!(
        error_code(&sprayer.login("alice", PASSWORD).await),
        Some(ErrorCode::RateLimited),
        "a fifth account from the same address"
    );
    let elsewhere = from(&server, 3).await;
    assert_eq!(error_code(&elsewhere.login("alice", PASSWORD).await), None);
}

#[tokio::test]
async fn an_account_has_a_ceiling_across_addresses() {
    let server = TestServer::start_with(&["--limit-login-account=1/60s burst 4"]).await;
    let owner = from(&server, 1).await;
    assert_eq!(error_code(&owner.register("alice").await), None);
    assert_eq!(
        error_code(&from(&server, 2).await.register("bob").await),
        None
    );
    // Guesses from four addresses, each well within its own budget, use up the ceiling...
    for last in 3..7 {
        assert_eq!(
            error_code(&from(&server, last).await.login("alice", WRONG).await),
            Some(ErrorCode::Unauthenticated),
            "from 127.0.0.{last}"
        );
    }
    // ...so the account waits from every address, right password or not.
    let late = from(&server, 7).await;
    assert_eq!(
        error_code(&late.login("alice", PASSWORD).await),
        Some(ErrorCode::RateLimited)
    );
    // Other accounts are unaffected.
    assert_eq!(error_code(&late.login("bob", PASSWORD).await), None);
}

#[tokio::test]
async fn password_changes_and_logins_never_share_a_bucket() {
    // Logins for one account: 2 per address, 3 in all.
    let server = TestServer::start_with(&[
        "--limit-login-account-address=1/60s burst 2",
        "--limit-login-account=1/60s burst 3",
    ])
    .await;
    let first = from(&server, 1).await;
    assert_eq!(error_code(&first.register("owner").await), None);
    // A user whose id is also a valid username (3 or more digits), and that username.
    let store = server.store();
    let hash = store
        .user_by_username("owner")
        .await
        .expect("store")
        .expect("owner")
        .password_hash;
    let new_user = |username: String| chatd::testing::NewUser {
        email: format!("{username}@example.test"),
        username,
        password_hash: hash.clone(),
        role: pb::Role::User,
        now_ms: 0,
    };
    let mut numbered = store
        .create_user(new_user("filler0".into()))
        .await
        .expect("create");
    for i in 1.. {
        if numbered.id >= 100 {
            break;
        }
        numbered = store
            .create_user(new_user(format!("filler{i}")))
            .await
            .expect("create");
    }
    let id_name = numbered.id.to_string();
    store
        .create_user(new_user(id_name.clone()))
        .await
        .expect("create the username that reads like the id");

    // Logins for the username "<id>" spend their bucket...
    let conn = from(&server, 2).await;
    for _ in 0..2 {
        assert_eq!(
            error_code(&conn.login(&id_name, WRONG).await),
            Some(ErrorCode::Unauthenticated)
        );
    }
    assert_eq!(
        error_code(&conn.login(&id_name, WRONG).await),
        Some(ErrorCode::RateLimited)
    );
    // ...and the user with that id still changes their password from the same address.
    assert_eq!(
        error_code(&conn.login(&numbered.username, PASSWORD).await),
        None
    );
    let change = |old: &str| {
        Kind::ChangePassword(pb::ChangePassword {
            old_password: old.into(),
            new_password: format!("{PASSWORD} 2"),
        })
    };
    assert_eq!(
        error_code(&conn.request(change(WRONG)).await),
        Some(ErrorCode::PermissionDenied)
    );
    assert_eq!(
        error_code(&conn.request(change(WRONG)).await),
        Some(ErrorCode::PermissionDenied)
    );
    // Password changes are throttled in their own bucket...
    assert_eq!(
        error_code(&conn.request(change(PASSWORD)).await),
        Some(ErrorCode::RateLimited)
    );
    // ...which is not the account's either: "<id>" has its third login left, from elsewhere.
    assert_eq!(
        error_code(&from(&server, 3).await.login(&id_name, PASSWORD).await),
        None
    );
}

#[tokio::test]
async fn a_disabled_account_answers_like_a_wrong_password_unless_the_password_is_right() {
    let server = TestServer::start().await;
    let conn = from(&server, 1).await;
    assert_eq!(error_code(&conn.register("alice").await), None);
    let store = server.store();
    let id = store
        .user_by_username("alice")
        .await
        .expect("store")
        .expect("alice")
        .id;
    store.set_disabled(id, true, None).await.expect("disable");
    let probe = from(&server, 2).await;
    let unknown = error_of(&probe.login("nobody", WRONG).await);
    let wrong = error_of(&probe.login("alice", WRONG).await);
    assert_eq!(unknown.code(), ErrorCode::Unauthenticated);
    assert_eq!(
        wrong, unknown,
        "a wrong password tells nothing about the account"
    );
    let right = error_of(&probe.login("alice", PASSWORD).await);
    assert_eq!(right.code(), ErrorCode::Unauthenticated);
    assert_eq!(right.message, "account disabled");
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
