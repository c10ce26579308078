//! Accounts and sessions end to end: SDK clients against a real chatd over QUIC.

use std::time::{Duration, Instant};

use chatd::testing::Fail;
use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::ErrorCode;
use tests::client::{PASSWORD, code, connect, register, remote, wait_event};
use tests::server::TestServer;

fn register_req(username: &str, email: &str, password: &str) -> pb::Register {
    pb::Register {
        username: username.into(),
        email: email.into(),
        password: password.into(),
        device_name: "laptop".into(),
    }
}

#[tokio::test]
async fn register_login_logout_and_login_again() {
    let server = TestServer::start().await;
    let (alice, auth) = register(&server, "Alice").await;
    let user = auth.user.expect("user");
    assert_eq!(user.username, "alice", "usernames are folded to lowercase");
    assert_eq!(user.email, "Alice@example.test");
    assert!(!auth.access_token.is_empty() && !auth.refresh_token.is_empty());
    assert!(auth.access_expires_at_ms > 0);

    let me = alice.get_me(pb::GetMe {}).await.expect("get_me");
    assert_eq!(me.id, user.id);
    assert_eq!(me.status(), pb::UserStatus::Online);

    alice.logout().await.expect("logout");
    assert_eq!(
        code(alice.get_me(pb::GetMe {}).await),
        ErrorCode::Unauthenticated
    );

    let again = connect(&server).await;
    let auth2 = again
        .login("ALICE", PASSWORD, "phone")
        .await
        .expect("login");
    assert_eq!(auth2.user.expect("user").id, user.id);
    assert_ne!(auth2.session_id, auth.session_id);
}

#[tokio::test]
async fn usernames_are_unique_regardless_of_case() {
    let server = TestServer::start().await;
    register(&server, "bob").await;
    let other = connect(&server).await;
    let err = remote(
        other
            .register(register_req("BOB", "b2@example.test", PASSWORD))
            .await,
    );
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(err.field, "register.username");
}

#[tokio::test]
async fn invalid_registrations_name_the_field_and_write_nothing() {
    let server = TestServer::start().await;
    let client = connect(&server).await;
    let long_password = "x".repeat(1025);
    let cases: Vec<(pb::Register, ErrorCode, &str)> = vec![
        (
            register_req("ab", "a@b.test", PASSWORD),
            ErrorCode::InvalidArgument,
            "register.username",
        ),
        (
            register_req(&"a".repeat(33), "a@b.test", PASSWORD),
            ErrorCode::TooLarge,
            "register.username",
        ),
        (
            register_req("bad name", "a@b.test", PASSWORD),
            ErrorCode::InvalidArgument,
            "register.username",
        ),
        (
            register_req("ünïcode", "a@b.test", PASSWORD),
            ErrorCode::InvalidArgument,
            "register.username",
        ),
        (
            register_req("carol", "no-at-sign", PASSWORD),
            ErrorCode::InvalidArgument,
            "register.email",
        ),
        (
            register_req("carol", "a@b\u{7}.test", PASSWORD),
            ErrorCode::InvalidArgument,
            "register.email",
        ),
        (
            register_req("carol", "a@b.test", "short"),
            ErrorCode::InvalidArgument,
            "register.password",
        ),
        (
            register_req("carol", "a@b.test", &long_password),
            ErrorCode::TooLarge,
            "register.password",
        ),
    ];
    for (req, want_code, want_field) in cases {
        let err = remote(client.register(req.clone()).await);
        assert_eq!(
            (err.code, err.field.as_str()),
            (want_code, want_field),
            "case {req:?}"
        );
    }
    // Nothing was written: the name is still free.
    client
        .register(register_req("carol", "c@example.test", PASSWORD))
        .await
        .expect("carol registers");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let server = TestServer::start().await;
    register(&server, "dave").await;
    let client = connect(&server).await;

    let started = Instant::now();
    let unknown = remote(client.login("nobody", PASSWORD, "x").await);
    let unknown_time = started.elapsed();
    let started = Instant::now();
    let wrong = remote(client.login("dave", "wrong password", "x").await);
    let wrong_time = started.elapsed();

    assert_eq!(unknown.code, ErrorCode::Unauthenticated);
    assert_eq!(
        (unknown.code, &unknown.message),
        (wrong.code, &wrong.message)
    );
    // Both paths run one argon2 verification; an unknown user must not answer suspiciously fast.
    assert!(
        unknown_time * 4 > wrong_time,
        "unknown user answered in {unknown_time:?}, wrong password in {wrong_time:?}"
    );
}

#[tokio::test]
async fn a_refresh_token_is_single_use_and_reuse_revokes_the_session() {
    let server = TestServer::start().await;
    let (alice, auth) = register(&server, "erin").await;

    let fresh = connect(&server).await;
    let rotated = fresh
        .refresh(&auth.refresh_token)
        .await
        .expect("first refresh");
    assert_ne!(rotated.refresh_token, auth.refresh_token);
    assert_eq!(rotated.session_id, auth.session_id);

    // The old token again: reuse detected, the whole session (family) is revoked.
    let thief = connect(&server).await;
    let err = remote(thief.refresh(&auth.refresh_token).await);
    assert_eq!(err.code, ErrorCode::Unauthenticated);
    assert!(err.message.contains("reuse"), "{}", err.message);

    // The rotated token died with the session.
    let later = connect(&server).await;
    assert_eq!(
        code(later.refresh(&rotated.refresh_token).await),
        ErrorCode::Unauthenticated
    );
    // Live connections of the session are told and closed.
    wait_event(&alice, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::SessionRevoked(_)).then_some(())
    })
    .await;
    // And its access token no longer authenticates.
    let late = connect(&server).await;
    assert_eq!(
        code(late.authenticate(&auth.access_token).await),
        ErrorCode::Unauthenticated
    );
}

#[tokio::test]
async fn sessions_are_listed_and_revoked() {
    let server = TestServer::start().await;
    let (laptop, first) = register(&server, "frank").await;
    let phone = connect(&server).await;
    let second = phone
        .login("frank", PASSWORD, "phone")
        .await
        .expect("login");
    let tablet = connect(&server).await;
    tablet
        .login("frank", PASSWORD, "tablet")
        .await
        .expect("login");

    let sessions = laptop
        .list_sessions(pb::ListSessions {})
        .await
        .expect("list")
        .sessions;
    assert_eq!(sessions.len(), 3);
    let current: Vec<_> = sessions.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].id, first.session_id);
    assert!(
        sessions
            .iter()
            .any(|s| s.device_name == "phone" && s.address.starts_with("127.0.0.1:"))
    );

    laptop
        .revoke_session(pb::RevokeSession {
            session_id: second.session_id,
        })
        .await
        .expect("revoke");
    wait_event(&phone, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::SessionRevoked(_)).then_some(())
    })
    .await;
    assert_eq!(
        laptop
            .list_sessions(pb::ListSessions {})
            .await
            .expect("list")
            .sessions
            .len(),
        2
    );

    laptop
        .revoke_other_sessions(pb::RevokeOtherSessions {})
        .await
        .expect("revoke others");
    wait_event(&tablet, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::SessionRevoked(_)).then_some(())
    })
    .await;
    let left = laptop
        .list_sessions(pb::ListSessions {})
        .await
        .expect("list")
        .sessions;
    assert_eq!(
        left.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![first.session_id]
    );

    let err = remote(
        laptop
            .revoke_session(pb::RevokeSession {
                session_id: 999_999,
            })
            .await,
    );
    assert_eq!(err.code, ErrorCode::NotFound);

    // Revoking the connection's own session is a logout: unauthenticated, but still connected.
    laptop
        .revoke_session(pb::RevokeSession {
            session_id: first.session_id,
        })
        .await
        .expect("revoke own");
    assert_eq!(
        code(laptop.get_me(pb::GetMe {}).await),
        ErrorCode::Unauthenticated
    );
    laptop
        .login("frank", PASSWORD, "laptop")
        .await
        .expect("log in again on the same connection");
}

#[tokio::test]
async fn changing_the_password_revokes_every_other_session() {
    let server = TestServer::start().await;
    let (main, _) = register(&server, "gina").await;
    let other = connect(&server).await;
    other.login("gina", PASSWORD, "other").await.expect("login");

    let wrong = remote(
        main.change_password(pb::ChangePassword {
            old_password: "not it".into(),
            new_password: "a brand new password".into(),
        })
        .await,
    );
    assert_eq!(wrong.code, ErrorCode::PermissionDenied);
    let short = remote(
        main.change_password(pb::ChangePassword {
            old_password: PASSWORD.into(),
            new_password: "short".into(),
        })
        .await,
    );
    assert_eq!(
        (short.code, short.field.as_str()),
        (ErrorCode::InvalidArgument, "change_password.new_password")
    );

    main.change_password(pb::ChangePassword {
        old_password: PASSWORD.into(),
        new_password: "a brand new password".into(),
    })
    .await
    .expect("change password");
    wait_event(&other, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::SessionRevoked(_)).then_some(())
    })
    .await;
    main.get_me(pb::GetMe {})
        .await
        .expect("this session survives");

    let fresh = connect(&server).await;
    assert_eq!(
        code(fresh.login("gina", PASSWORD, "x").await),
        ErrorCode::Unauthenticated
    );
    fresh
        .login("gina", "a brand new password", "x")
        .await
        .expect("new password works");
}

/// A change whose new password was stored but whose session revocation failed answers an
/// error; repeating it (the old password is wrong now) finishes it: ok, and the other
/// sessions are revoked. The SDK repeats a request answered UNAVAILABLE by itself, so one
/// failure is not even seen. A wrong new password in a repeat is still refused.
#[tokio::test]
async fn a_password_change_whose_revocation_failed_is_finished_by_its_repeat() {
    let server = TestServer::start().await;
    let (main, _) = register(&server, "gail").await;
    let other = connect(&server).await;
    other.login("gail", PASSWORD, "other").await.expect("login");
    let change = |new_password: &str| {
        main.change_password(pb::ChangePassword {
            old_password: PASSWORD.into(),
            new_password: new_password.into(),
        })
    };
    let revoked = |client| async move {
        wait_event(client, Duration::from_secs(5), |e| {
            matches!(e, ClientEvent::SessionRevoked(_)).then_some(())
        })
        .await
    };

    server.fail_store_calls("revoke_user_sessions", Fail::BeforeCall, 1);
    change("the new password")
        .await
        .expect("the SDK's repeat finishes the change");
    revoked(&other).await;

    let other = connect(&server).await;
    other
        .login("gail", "the new password", "other")
        .await
        .expect("login");
    // Failing every attempt the SDK makes: the error is seen.
    server.fail_store_calls("revoke_user_sessions", Fail::BeforeCall, 1000);
    let failed = remote(
        main.change_password(pb::ChangePassword {
            old_password: "the new password".into(),
            new_password: "the newest password".into(),
        })
        .await,
    );
    server.fail_store_calls("revoke_user_sessions", Fail::BeforeCall, 0);
    assert_eq!(failed.code, ErrorCode::Unavailable, "{failed:?}");
    other
        .get_me(pb::GetMe {})
        .await
        .expect("not revoked: the revocation failed");
    let wrong = remote(change("not the newest password").await);
    assert_eq!(
        (wrong.code, wrong.field.as_str()),
        (ErrorCode::PermissionDenied, "change_password.old_password")
    );
    change("the newest password")
        .await
        .expect("the repeat finishes the change");
    revoked(&other).await;
    main.get_me(pb::GetMe {})
        .await
        .expect("this session survives");
    connect(&server)
        .await
        .login("gail", "the newest password", "x")
        .await
        .expect("the new password works");
}

/// Two password changes from the same old password sent at once: one is made, the other is
/// answered as a wrong old password (it is not the password any more), and the password is
/// the one the successful change set.
#[tokio::test]
async fn of_two_password_changes_at_once_from_one_password_one_is_made() {
    let server = TestServer::start().await;
    let (main, _) = register(&server, "hank").await;
    let change = |new_password: &str| {
        main.change_password(pb::ChangePassword {
            old_password: PASSWORD.into(),
            new_password: new_password.into(),
        })
    };
    let (first, second) = tokio::join!(
        change("the first new password"),
        change("the second new password")
    );
    let made = match (&first, &second) {
        (Ok(_), Err(_)) => "the first new password",
        (Err(_), Ok(_)) => "the second new password",
        _ => panic!("one change is made: {first:?} {second:?}"),
    };
    let refused = remote(first.and(second));
    assert_eq!(
        (refused.code, refused.field.as_str()),
        (ErrorCode::PermissionDenied, "change_password.old_password")
    );
    let fresh = connect(&server).await;
    fresh
        .login("hank", made, "x")
        .await
        .expect("the password is the one the change answered Ok set");
}

#[tokio::test]
async fn requests_need_authentication() {
    let server = TestServer::start().await;
    let client = connect(&server).await;
    assert_eq!(
        code(client.get_me(pb::GetMe {}).await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        code(client.list_sessions(pb::ListSessions {}).await),
        ErrorCode::Unauthenticated
    );
}

#[tokio::test]
async fn a_second_user_cannot_log_in_on_an_authenticated_connection() {
    let server = TestServer::start().await;
    let (_, hank) = register(&server, "hank").await;
    let (ivy, _) = register(&server, "ivy").await;
    let err = remote(ivy.login("hank", PASSWORD, "x").await);
    assert_eq!(err.code, ErrorCode::FailedPrecondition);
    // Hank's refresh token is refused there before it is spent: it stays good for him.
    let err = remote(ivy.refresh(&hank.refresh_token).await);
    assert_eq!(err.code, ErrorCode::FailedPrecondition);
    connect(&server)
        .await
        .refresh(&hank.refresh_token)
        .await
        .expect("hank's token is still live");
    assert_eq!(
        ivy.get_me(pb::GetMe {}).await.expect("still ivy").username,
        "ivy"
    );
    // `register` there is refused as such whatever its fields (spec 3.4), and costs nothing.
    for (username, email) in [("jay", "jay@example.test"), ("", "not an address")] {
        let err = remote(
            ivy.register(pb::Register {
                username: username.into(),
                email: email.into(),
                password: PASSWORD.into(),
                device_name: "x".into(),
            })
            .await,
        );
        assert_eq!(
            err.code,
            ErrorCode::FailedPrecondition,
            "{username:?}: {err:?}"
        );
    }
}

/// Spec 3.4: `refresh`, `login` and `authenticate` that resolve to the connection's own user
/// succeed and switch its session. They once locked the connection's state twice on one worker
/// thread; on a server with two workers, two of them stopped everything. The server runs on its
/// own two-worker runtime so that a stuck server fails this test by timing out.
#[test]
fn reauthenticating_as_the_same_user_twice_keeps_the_server_serving() {
    let isolated = tests::server::IsolatedServer::start(2);
    let server = isolated.server();
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let limit = Duration::from_secs(10);
    client_rt.block_on(async {
        let (alice, auth) = register(server, "carol").await;
        let user_id = auth.user.expect("user").id;
        let mut refresh_token = auth.refresh_token;
        let mut session = auth.session_id;
        for round in 0..2 {
            let refreshed = tokio::time::timeout(limit, alice.refresh(&refresh_token))
                .await
                .unwrap_or_else(|_| panic!("round {round}: refresh got no answer"))
                .expect("refresh as the same user");
            assert_eq!(refreshed.session_id, session, "refresh keeps the session");
            let login = tokio::time::timeout(limit, alice.login("carol", PASSWORD, "again"))
                .await
                .unwrap_or_else(|_| panic!("round {round}: login got no answer"))
                .expect("login as the same user");
            assert_eq!(login.user.expect("user").id, user_id);
            assert_ne!(login.session_id, session, "login opens a new session");
            let authenticated =
                tokio::time::timeout(limit, alice.authenticate(&login.access_token))
                    .await
                    .unwrap_or_else(|_| panic!("round {round}: authenticate got no answer"))
                    .expect("authenticate as the same user");
            assert_eq!(authenticated.session_id, login.session_id);
            refresh_token = login.refresh_token;
            session = login.session_id;
        }
        let sessions = tokio::time::timeout(limit, alice.list_sessions(pb::ListSessions {}))
            .await
            .expect("a normal request after re-authentication got no answer")
            .expect("list_sessions");
        let current: Vec<u64> = sessions
            .sessions
            .iter()
            .filter(|s| s.current)
            .map(|s| s.id)
            .collect();
        assert_eq!(
            current,
            vec![session],
            "the connection follows the last session"
        );
        // Another connection is served too, and revoking the session the first connection
        // switched to closes it: fan-out follows the switch.
        let other = connect(server).await;
        tokio::time::timeout(limit, other.login("carol", PASSWORD, "other"))
            .await
            .expect("a new connection was not served")
            .expect("login on another connection");
        tokio::time::timeout(
            limit,
            other.revoke_session(pb::RevokeSession {
                session_id: session,
            }),
        )
        .await
        .expect("revoke_session got no answer")
        .expect("revoke_session");
        wait_event(&alice, limit, |e| {
            matches!(e, ClientEvent::SessionRevoked(_)).then_some(())
        })
        .await;
    });
}

/// A session's last use is written behind the answer to `authenticate` (chatd's
/// `auth::touches`): the device list shows it at once all the same, and a drained server writes
/// it before it stops.
#[tokio::test]
async fn a_session_s_latest_use_is_listed_at_once_and_kept_across_a_restart() {
    let server = TestServer::start().await;
    let (laptop, auth) = register(&server, "grace").await;
    let address_of = |sessions: &[pb::Session]| {
        sessions
            .iter()
            .find(|s| s.id == auth.session_id)
            .map(|s| (s.address.clone(), s.last_seen_at_ms))
            .expect("the session is listed")
    };
    let listed = laptop
        .list_sessions(pb::ListSessions {})
        .await
        .expect("list");
    let (registered_from, registered_at) = address_of(&listed.sessions);

    // The same session authenticates a second connection, from another port.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = connect(&server).await;
    again
        .authenticate(&auth.access_token)
        .await
        .expect("authenticate");
    let listed = laptop
        .list_sessions(pb::ListSessions {})
        .await
        .expect("list");
    let (used_from, used_at) = address_of(&listed.sessions);
    assert_ne!(used_from, registered_from, "the new connection's address");
    assert!(used_at > registered_at, "{used_at} after {registered_at}");

    // Across a drain and a restart, well within the flush interval.
    again.close().await;
    laptop.close().await;
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, &[]).await;
    let phone = connect(&server).await;
    phone
        .login("grace", PASSWORD, "phone")
        .await
        .expect("login");
    let listed = phone
        .list_sessions(pb::ListSessions {})
        .await
        .expect("list");
    assert_eq!(address_of(&listed.sessions), (used_from, used_at));
}

/// A user holds at most `--max-sessions-per-user` live sessions: a login beyond it signs out the
/// least recently used one (its connections get SessionRevoked, as with `revoke_session`), and
/// sessions that expired are not listed (protocol.md 11.3).
#[tokio::test]
async fn a_login_over_the_session_cap_signs_out_the_least_recently_used() {
    let server = TestServer::start_with(&["--max-sessions-per-user", "2"]).await;
    let (laptop, _first) = register(&server, "gina").await;
    let phone = connect(&server).await;
    let second = phone.login("gina", PASSWORD, "phone").await.expect("login");
    let tablet = connect(&server).await;
    let third = tablet
        .login("gina", PASSWORD, "tablet")
        .await
        .expect("login");
    wait_event(&laptop, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::SessionRevoked(_)).then_some(())
    })
    .await;
    let listed = |client: &'static str| {
        let conn = if client == "phone" { &phone } else { &tablet };
        async move {
            let mut ids: Vec<u64> = conn
                .list_sessions(pb::ListSessions {})
                .await
                .expect("list")
                .sessions
                .iter()
                .map(|s| s.id)
                .collect();
            ids.sort_unstable();
            ids
        }
    };
    assert_eq!(
        listed("tablet").await,
        [second.session_id, third.session_id]
    );

    // Logging in again on the phone signs out its own previous session, the least recently
    // used: the connection stays, on its new session.
    let fourth = phone
        .login("gina", PASSWORD, "phone")
        .await
        .expect("login again");
    assert_eq!(listed("phone").await, [third.session_id, fourth.session_id]);

    // The tablet's session turns 31 days old: expired, so no longer listed.
    let db = rusqlite::Connection::open(server.data_dir().join("chatd.sqlite3")).expect("open");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    const DAYS_31_MS: i64 = 31 * 24 * 60 * 60 * 1000;
    let aged = db
        .execute(
            "UPDATE sessions SET created_at_ms = created_at_ms - ?2 WHERE id = ?1",
            rusqlite::params![third.session_id as i64, DAYS_31_MS],
        )
        .expect("age the session");
    assert_eq!(aged, 1);
    assert_eq!(listed("phone").await, [fourth.session_id]);
}

/// A session unused for 7 days is over: its refresh token is refused as expired rather than
/// rotated (a rotation would count as a use and revive it), the session is revoked, and a
/// connection still signed in with it gets `SessionRevoked`.
#[tokio::test]
async fn a_refresh_token_idle_for_seven_days_ends_its_session() {
    const DAYS_8_MS: i64 = 8 * 24 * 60 * 60 * 1000;
    let server = TestServer::start().await;
    let (phone, idle) = register(&server, "hal").await;
    let db = rusqlite::Connection::open(server.data_dir().join("chatd.sqlite3")).expect("open");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let aged = db
        .execute(
            "UPDATE sessions SET created_at_ms = created_at_ms - ?2, \
             last_seen_at_ms = last_seen_at_ms - ?2 WHERE id = ?1",
            rusqlite::params![idle.session_id as i64, DAYS_8_MS],
        )
        .expect("age the session");
    assert_eq!(aged, 1);

    let refused = remote(connect(&server).await.refresh(&idle.refresh_token).await);
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (ErrorCode::Unauthenticated, "session expired: log in again")
    );
    wait_event(&phone, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::SessionRevoked(_)).then_some(())
    })
    .await;
    let again = remote(connect(&server).await.refresh(&idle.refresh_token).await);
    assert_eq!(
        (again.code, again.message.as_str()),
        (
            ErrorCode::Unauthenticated,
            "invalid or revoked refresh token"
        )
    );
    let laptop = connect(&server).await;
    laptop
        .login("hal", PASSWORD, "laptop")
        .await
        .expect("login");
    let listed = laptop
        .list_sessions(pb::ListSessions {})
        .await
        .expect("list");
    assert!(
        listed.sessions.iter().all(|s| s.id != idle.session_id),
        "{listed:?}"
    );
}

/// A session the sweep deleted, a retention period after its logout, answers exactly as a
/// revoked one: its access token and its refresh token get the same errors as before; the
/// user's other session goes on.
#[tokio::test]
async fn a_swept_session_answers_as_a_revoked_one() {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    let server = TestServer::start().await;
    let (phone, gone) = register(&server, "ivy").await;
    let laptop = connect(&server).await;
    let kept = laptop
        .login("ivy", PASSWORD, "laptop")
        .await
        .expect("login");
    phone.logout().await.expect("logout");
    let (at, gone) = (&server, &gone);
    let refused = move || async move {
        let auth = remote(connect(at).await.authenticate(&gone.access_token).await);
        let refresh = remote(connect(at).await.refresh(&gone.refresh_token).await);
        [auth, refresh].map(|e| (e.code, e.message))
    };
    let revoked = refused().await;
    assert!(
        revoked
            .iter()
            .all(|(c, _)| *c == ErrorCode::Unauthenticated),
        "{revoked:?}"
    );

    let now = chatd::testing::now_ms();
    assert_eq!(server.sweep_sessions_as_of(now + DAY_MS).await, 0);
    assert_eq!(server.sweep_sessions_as_of(now + 8 * DAY_MS).await, 1);
    assert_eq!(
        server.store().session(gone.session_id).await.expect("read"),
        None
    );
    assert!(
        server
            .metrics()
            .await
            .contains("chatd_sessions_swept_total 1"),
        "the sweep is counted"
    );
    assert_eq!(refused().await, revoked);

    connect(&server)
        .await
        .authenticate(&kept.access_token)
        .await
        .expect("the other session authenticates");
    connect(&server)
        .await
        .refresh(&kept.refresh_token)
        .await
        .expect("the other session refreshes");
}

/// What the requests of account recovery answer `client`, each with a field that is wrong.
async fn recovery_answers(client: &chatproto::client::Client) -> Vec<(&'static str, ErrorCode)> {
    vec![
        (
            "verify_email",
            code(
                client
                    .verify_email(pb::VerifyEmail { code: "".into() })
                    .await,
            ),
        ),
        (
            "request_email_verification",
            code(
                client
                    .request_email_verification(pb::RequestEmailVerification {})
                    .await,
            ),
        ),
        (
            "request_password_reset",
            code(
                client
                    .request_password_reset(pb::RequestPasswordReset { account: "".into() })
                    .await,
            ),
        ),
        (
            "reset_password",
            code(
                client
                    .reset_password(pb::ResetPassword {
                        account: "".into(),
                        code: "".into(),
                        new_password: "".into(),
                    })
                    .await,
            ),
        ),
        (
            "change_email",
            code(
                client
                    .change_email(pb::ChangeEmail {
                        new_email: "not an address".into(),
                        password: PASSWORD.into(),
                    })
                    .await,
            ),
        ),
    ]
}

/// The requests of account recovery (spec 9.12, 18.1), each with a field that is wrong: the
/// capability is checked first, then, for all but `change_email`, whether the server sends
/// email at all (this one does not); the fields only after those.
#[tokio::test]
async fn recovery_needs_the_capability_and_email_before_its_fields() {
    let server = TestServer::start().await;
    let (with, _) = register(&server, "quinn").await;
    for (name, answer) in recovery_answers(&with).await {
        let expected = if name == "change_email" {
            ErrorCode::InvalidArgument
        } else {
            ErrorCode::FailedPrecondition
        };
        assert_eq!(answer, expected, "{name}");
    }
    let mut config = tests::client::config_for(server.addr(), &server.fingerprint());
    config
        .capabilities
        .retain(|c| c != chatproto::capability::Capability::AccountRecovery.name());
    let without = chatproto::client::Client::connect(config)
        .await
        .expect("connect");
    without
        .login("quinn", PASSWORD, "no recovery")
        .await
        .expect("login");
    for (name, answer) in recovery_answers(&without).await {
        assert_eq!(
            answer,
            ErrorCode::FailedPrecondition,
            "{name} without the capability"
        );
    }
}
