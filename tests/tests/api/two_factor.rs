//! Two-factor login (spec section 17) end to end: turning it on with a code from an
//! authenticator computed from the URI chatd hands out, login asking for the code after the
//! password, codes and recovery codes that work once, replacing and turning off, the secret
//! kept sealed in the database and across a restart, and admins held to it where required.

use std::sync::Arc;
use std::time::Duration;

use chatd::testing::Fail;
use chatproto::client::{Client, ClientError};
use chatproto::pb;
use tests::authenticator::{Authenticator, TurnedOn, turn_on};
use tests::client::PASSWORD;
use tests::server::TestServer;

use crate::support::{User, assert_code, config, register, register_admin, start, start_with};

/// A fresh connection of the server, not signed in.
async fn connect(server: &TestServer) -> Client {
    Client::connect(config(server)).await.expect("connect")
}

/// Logs `name` in on a new connection with `code`.
async fn login(server: &TestServer, name: &str, code: &str) -> Result<pb::AuthResult, ClientError> {
    connect(server)
        .await
        .login_with_code(name, PASSWORD, code, "second device")
        .await
}

/// Asserts the answer that asks for a (new) code.
#[track_caller]
fn assert_needs_code(result: Result<pb::AuthResult, ClientError>) {
    let e = result.expect_err("logged in without a right code");
    assert!(e.needs_two_factor_code(), "{e}");
}

async fn two_factor_on(user: &User) -> bool {
    user.client
        .get_me(pb::GetMe {})
        .await
        .expect("get me")
        .two_factor_enabled
}

async fn begin(user: &User) -> (pb::TwoFactorSetup, Authenticator) {
    let setup = user
        .client
        .begin_two_factor(pb::BeginTwoFactor {
            password: PASSWORD.into(),
        })
        .await
        .expect("begin");
    let app = Authenticator::from_uri(&setup.otpauth_uri);
    (setup, app)
}

#[tokio::test]
async fn a_login_asks_for_a_code_after_the_password_and_each_code_works_once() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    assert!(!two_factor_on(&alice).await);
    let (setup, app) = begin(&alice).await;
    assert_eq!((setup.digits, setup.period_seconds), (6, 30));
    assert_eq!(app.secret().len(), 20, "160 bits");
    assert_eq!(setup.secret.len(), 32, "20 bytes in base32 without padding");
    assert!(
        setup.otpauth_uri.starts_with("otpauth://totp/chat:alice?"),
        "{}",
        setup.otpauth_uri
    );
    // Pending: nothing changes yet.
    assert!(!two_factor_on(&alice).await);
    login(&server, "alice", "")
        .await
        .expect("a pending secret does not affect login");

    let step = app.fresh_step(Duration::from_secs(10)).await;
    let recovery = alice
        .client
        .enable_two_factor(pb::EnableTwoFactor {
            code: app.code(step - 1),
        })
        .await
        .expect("enable")
        .codes;
    assert_eq!(recovery.len(), 10);
    assert_eq!(
        recovery
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        10
    );
    assert!(two_factor_on(&alice).await);

    // The password first: a wrong one gets the answer of any wrong password.
    let wrong = connect(&server)
        .await
        .login("alice", "wrong password", "x")
        .await;
    let e = assert_code(wrong, pb::ErrorCode::Unauthenticated);
    assert!(e.field.is_empty() && !e.needs_two_factor_code(), "{e}");
    // The right password without a code, or with a wrong one, asks for the code.
    assert_needs_code(login(&server, "alice", "").await);
    assert_needs_code(login(&server, "alice", &app.wrong_code()).await);
    // The code that turned it on is spent.
    assert_needs_code(login(&server, "alice", &app.code(step - 1)).await);
    login(&server, "alice", &app.code(step))
        .await
        .expect("log in with the current code");
    assert_needs_code(login(&server, "alice", &app.code(step)).await);

    // A recovery code, however typed, works once.
    let retyped = recovery[0].to_uppercase().replace('-', " ");
    login(&server, "alice", &retyped)
        .await
        .expect("log in with a recovery code");
    assert_needs_code(login(&server, "alice", &recovery[0]).await);
    // Offered on a connection signed in as someone else, a code is refused before it is
    // checked, and stays good.
    let bob = register(&server, "bob").await;
    let elsewhere = bob
        .client
        .login_with_code("alice", PASSWORD, &recovery[2], "bob's device")
        .await;
    assert_code(elsewhere, pb::ErrorCode::FailedPrecondition);
    login(&server, "alice", &recovery[2])
        .await
        .expect("the recovery code is still good");

    // New recovery codes replace the old ones.
    let fresh = alice
        .client
        .regenerate_recovery_codes(pb::RegenerateRecoveryCodes {
            code: app.code(step + 1),
        })
        .await
        .expect("regenerate")
        .codes;
    assert_needs_code(login(&server, "alice", &recovery[1]).await);
    login(&server, "alice", &fresh[0])
        .await
        .expect("a new recovery code");

    // Off with a recovery code: logins need no code again.
    alice
        .client
        .disable_two_factor(pb::DisableTwoFactor {
            code: fresh[1].clone(),
        })
        .await
        .expect("disable");
    assert!(!two_factor_on(&alice).await);
    login(&server, "alice", "").await.expect("no code needed");
}

#[tokio::test]
async fn of_two_logins_with_the_same_code_at_once_one_succeeds() {
    let server = start().await;
    let bob = register(&server, "bob").await;
    let TurnedOn { app, step, .. } = turn_on(&bob.client, PASSWORD).await;
    let code = app.code(step + 1);
    let (a, b) = tokio::join!(login(&server, "bob", &code), login(&server, "bob", &code));
    assert_eq!(
        usize::from(a.is_ok()) + usize::from(b.is_ok()),
        1,
        "{a:?} / {b:?}"
    );
}

/// A login whose session cannot be opened (the store failing) spends no code: a recovery code
/// stays good for the next try, the SDK's own after UNAVAILABLE included. Turning the login
/// off likewise leaves the code unspent when it fails.
#[tokio::test]
async fn a_login_that_fails_after_the_code_was_checked_leaves_the_code_good() {
    let server = start().await;
    let dana = register(&server, "dana").await;
    let TurnedOn { recovery_codes, .. } = turn_on(&dana.client, PASSWORD).await;
    // Every attempt the SDK makes fails: the error is seen, and the code is not spent.
    server.fail_store_calls("create_session", Fail::BeforeCall, 1000);
    let failed = login(&server, "dana", &recovery_codes[0]).await;
    server.fail_store_calls("create_session", Fail::BeforeCall, 0);
    assert_code(failed, pb::ErrorCode::Unavailable);
    // One failure: the SDK's repeat logs in with the same code.
    server.fail_store_calls("create_session", Fail::BeforeCall, 1);
    login(&server, "dana", &recovery_codes[0])
        .await
        .expect("the recovery code is still good");
    assert_needs_code(login(&server, "dana", &recovery_codes[0]).await);

    server.fail_store_calls("disable_two_factor", Fail::BeforeCall, 1000);
    let disable = pb::DisableTwoFactor {
        code: recovery_codes[1].clone(),
    };
    let failed = dana.client.disable_two_factor(disable.clone()).await;
    server.fail_store_calls("disable_two_factor", Fail::BeforeCall, 0);
    assert_code(failed, pb::ErrorCode::Unavailable);
    dana.client
        .disable_two_factor(disable)
        .await
        .expect("the same recovery code turns it off");
    assert!(!two_factor_on(&dana).await);
}

/// A login whose code cannot be spent (the store fails, or another login spent it first)
/// signs nothing in, and costs the account nothing: at the session cap, the device the login
/// would have signed out stays signed in.
#[tokio::test]
async fn a_login_that_cannot_spend_its_code_signs_nothing_in_and_signs_nobody_out() {
    let server = start_with(&["--max-sessions-per-user", "2"]).await;
    let erin = register(&server, "erin").await;
    let TurnedOn { recovery_codes, .. } = turn_on(&erin.client, PASSWORD).await;
    let second = connect(&server).await;
    second
        .login_with_code("erin", PASSWORD, &recovery_codes[0], "second")
        .await
        .expect("second device");
    server.fail_store_calls("spend_recovery_code", Fail::BeforeCall, 1000);
    let third = connect(&server).await;
    let failed = third
        .login_with_code("erin", PASSWORD, &recovery_codes[1], "third")
        .await;
    server.fail_store_calls("spend_recovery_code", Fail::BeforeCall, 0);
    assert_code(failed, pb::ErrorCode::Unavailable);
    assert_code(
        third.get_me(pb::GetMe {}).await,
        pb::ErrorCode::Unauthenticated,
    );
    for device in [&erin.client, &second] {
        device
            .get_me(pb::GetMe {})
            .await
            .expect("still signed in: nothing was trimmed for a login that failed");
    }
    let sessions = erin
        .client
        .list_sessions(pb::ListSessions {})
        .await
        .expect("sessions");
    assert_eq!(
        sessions.sessions.len(),
        2,
        "the failed login's session went again"
    );
    third
        .login_with_code("erin", PASSWORD, &recovery_codes[1], "third")
        .await
        .expect("the code is still good");
}

#[tokio::test]
async fn the_secret_is_sealed_in_the_database_and_opens_after_a_restart() {
    let server = start().await;
    let carol = register(&server, "carol").await;
    let (setup, app) = begin(&carol).await;
    let step = app.fresh_step(Duration::from_secs(10)).await;
    let recovery = carol
        .client
        .enable_two_factor(pb::EnableTwoFactor {
            code: app.code(step - 1),
        })
        .await
        .expect("enable")
        .codes;
    drop(carol);
    let dir: Arc<tempfile::TempDir> = server.stop().await;
    // Neither the secret (raw or base32) nor a recovery code is in any file of the database.
    for entry in std::fs::read_dir(dir.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("chatd.sqlite3"))
        {
            continue;
        }
        // The write-ahead log may go as the listing is read: what is gone holds nothing.
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("read {}: {e}", path.display()),
        };
        for needle in [
            app.secret(),
            setup.secret.as_bytes(),
            recovery[2].as_bytes(),
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a secret in the clear",
                path.display()
            );
        }
    }
    let server = TestServer::start_in(dir, &[]).await;
    assert_needs_code(login(&server, "carol", "").await);
    login(&server, "carol", &app.code(step))
        .await
        .expect("the same authenticator after a restart");
    login(&server, "carol", &recovery[2])
        .await
        .expect("a recovery code after a restart");
}

#[tokio::test]
async fn admins_are_held_to_two_factor_login_where_the_server_requires_it() {
    let server = start_with(&["--require-admin-two-factor"]).await;
    let root = register_admin(&server, "root").await;
    let dave = register(&server, "dave").await;
    let list = || pb::AdminListUsers {
        limit: 10,
        ..Default::default()
    };
    let e = assert_code(
        root.client.admin_list_users(list()).await,
        pb::ErrorCode::PermissionDenied,
    );
    assert!(e.message.contains("two-factor"), "{e}");
    // Everything else works, so the admin can turn it on.
    turn_on(&root.client, PASSWORD).await;
    root.client
        .admin_list_users(list())
        .await
        .expect("an admin with two-factor login");

    // A user who lost everything: an admin turns it off, and the audit log records it.
    turn_on(&dave.client, PASSWORD).await;
    root.client
        .admin_disable_two_factor(pb::AdminDisableTwoFactor { user_id: dave.id })
        .await
        .expect("admin turns it off");
    assert!(!two_factor_on(&dave).await);
    login(&server, "dave", "").await.expect("no code needed");
    let audit = root
        .client
        .admin_list_audit(pb::AdminListAudit {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("audit");
    assert!(
        audit
            .entries
            .iter()
            .any(|e| e.action == "admin_disable_two_factor"
                && e.subject == format!("user:{}", dave.id)),
        "{audit:?}"
    );
}

#[tokio::test]
async fn chat_tui_asks_for_the_code_and_signs_in_with_it() {
    let server = start().await;
    let erin = register(&server, "erin").await;
    let TurnedOn { app, step, .. } = turn_on(&erin.client, PASSWORD).await;
    let tui = crate::tui::Tui::sign_in_with_code(&server, "erin", &app.code(step)).await;
    assert_eq!(tui.model.me.as_ref().map(|me| me.id), Some(erin.id));
}

#[tokio::test]
async fn chat_tui_turns_two_factor_login_on_with_a_code_and_shows_the_recovery_codes() {
    use chat_tui::model::Overlay;
    let server = start().await;
    let mut tui = crate::tui::Tui::register(&server, "fay").await;
    tui.type_line("/2fa on");
    tui.type_keys(PASSWORD);
    tui.apply(crate::tui::key("enter"));
    let uri = tui
        .until("the key to add", |m| match &m.overlay {
            Some(Overlay::Prompt(p)) => p
                .note
                .iter()
                .map(|l| l.trim())
                .find(|l| l.starts_with("otpauth://"))
                .map(str::to_owned),
            _ => None,
        })
        .await;
    let app = Authenticator::from_uri(&uri);
    let step = app.fresh_step(Duration::from_secs(10)).await;
    tui.type_keys(&app.code(step - 1));
    tui.apply(crate::tui::key("enter"));
    let codes = tui
        .until("the recovery codes", |m| match &m.overlay {
            Some(Overlay::Info(info)) if info.title == "Recovery codes" => Some(
                info.lines
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| l.len() == 11 && l.as_bytes()[5] == b'-')
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert_needs_code(login(&server, "fay", "").await);
    login(&server, "fay", &codes[0])
        .await
        .expect("a recovery code chat-tui showed");
}
