//! Server administration end to end: roles, disabling, deleting, password resets, sessions.

use std::time::Duration;

use chatd::testing::Fail;
use chatproto::client::{Client, ClientEvent};
use chatproto::pb;
use chatproto::pb::ErrorCode;
use tests::client::{PASSWORD, code, connect, register, remote, wait_event};
use tests::server::TestServer;

/// Registers `name` and makes them a server admin directly in the store (what `chatd user add
/// --admin` does offline). The connection stays as it is: the role is read on every request.
async fn admin(server: &TestServer, name: &str) -> (Client, u64) {
    let (client, auth) = register(server, name).await;
    let id = auth.user.expect("user").id;
    server
        .store()
        .set_role(id, pb::Role::Admin, None)
        .await
        .expect("set role");
    (client, id)
}

async fn revoked(client: &Client) {
    wait_event(client, Duration::from_secs(5), |e| {
        matches!(e, ClientEvent::SessionRevoked(_)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn admin_requests_are_refused_to_users() {
    let server = TestServer::start().await;
    let (user, u) = register(&server, "mallory").await;
    let id = u.user.expect("user").id;
    assert_eq!(
        code(user.admin_list_users(pb::AdminListUsers::default()).await),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        code(
            user.admin_set_role(pb::AdminSetRole {
                user_id: id,
                role: pb::Role::Admin as i32
            })
            .await
        ),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        code(
            user.admin_set_user_disabled(pb::AdminSetUserDisabled {
                user_id: id,
                disabled: true
            })
            .await
        ),
        ErrorCode::PermissionDenied
    );
}

#[tokio::test]
async fn disabling_a_user_closes_their_connections_and_stops_logins() {
    let server = TestServer::start().await;
    let (root, _) = admin(&server, "root").await;
    let (victim, v) = register(&server, "victim").await;
    let victim_id = v.user.expect("user").id;

    root.admin_set_user_disabled(pb::AdminSetUserDisabled {
        user_id: victim_id,
        disabled: true,
    })
    .await
    .expect("disable");
    revoked(&victim).await;

    let again = connect(&server).await;
    assert_eq!(
        code(again.login("victim", PASSWORD, "x").await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        code(again.refresh(&v.refresh_token).await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        code(again.authenticate(&v.access_token).await),
        ErrorCode::Unauthenticated
    );
    let listed = root
        .admin_list_users(pb::AdminListUsers {
            query: "vic".into(),
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(listed.users[0].disabled);

    root.admin_set_user_disabled(pb::AdminSetUserDisabled {
        user_id: victim_id,
        disabled: false,
    })
    .await
    .expect("enable");
    connect(&server)
        .await
        .login("victim", PASSWORD, "x")
        .await
        .expect("login after enabling");
}

/// Disabling and deleting close the account's connections even when revoking its sessions
/// then fails (the answer is an error, and a repeat revokes them): a disabled account signs in
/// nowhere, so nothing of it may stay connected meanwhile.
#[tokio::test]
async fn disabling_or_deleting_closes_connections_even_when_the_revocation_fails() {
    let server = TestServer::start().await;
    let (root, _) = admin(&server, "root").await;
    for deleting in [false, true] {
        let name = if deleting { "doomed" } else { "victim" };
        let (victim, v) = register(&server, name).await;
        let user_id = v.user.expect("user").id;
        // More failures than the SDK makes attempts.
        server.fail_store_calls("revoke_user_sessions", Fail::BeforeCall, 1000);
        let failed = if deleting {
            root.admin_delete_user(pb::AdminDeleteUser { user_id })
                .await
        } else {
            let disable = pb::AdminSetUserDisabled {
                user_id,
                disabled: true,
            };
            root.admin_set_user_disabled(disable).await
        };
        server.fail_store_calls("revoke_user_sessions", Fail::BeforeCall, 0);
        assert_eq!(code(failed), ErrorCode::Unavailable, "deleting: {deleting}");
        revoked(&victim).await;
        assert_eq!(
            code(connect(&server).await.refresh(&v.refresh_token).await),
            ErrorCode::Unauthenticated,
            "deleting: {deleting}"
        );
    }
}

#[tokio::test]
async fn roles_password_resets_and_sessions() {
    let server = TestServer::start().await;
    let (root, root_id) = admin(&server, "root").await;
    let (user, u) = register(&server, "user1").await;
    let user_id = u.user.expect("user").id;

    // The admin view shows email and role; listing pages by username.
    let all = root
        .admin_list_users(pb::AdminListUsers {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.users.len(), 1);
    assert!(!all.next_cursor.is_empty());
    let rest = root
        .admin_list_users(pb::AdminListUsers {
            limit: 10,
            cursor: all.next_cursor.clone(),
            ..Default::default()
        })
        .await
        .expect("page 2");
    let names: Vec<_> = all
        .users
        .iter()
        .chain(&rest.users)
        .map(|u| u.username.clone())
        .collect();
    assert_eq!(names, vec!["root", "user1"]);
    assert_eq!(rest.users[0].email, "user1@example.test");

    // Sessions of another user: listed and revoked.
    let sessions = root
        .admin_list_sessions(pb::AdminListSessions { user_id })
        .await
        .expect("sessions")
        .sessions;
    assert_eq!(sessions.len(), 1);
    root.admin_revoke_sessions(pb::AdminRevokeSessions {
        user_id,
        session_id: 0,
    })
    .await
    .expect("revoke all");
    revoked(&user).await;

    // Password reset: the old password stops working.
    root.admin_reset_password(pb::AdminResetPassword {
        user_id,
        new_password: "reset by the admin".into(),
    })
    .await
    .expect("reset");
    let c = connect(&server).await;
    assert_eq!(
        code(c.login("user1", PASSWORD, "x").await),
        ErrorCode::Unauthenticated
    );
    let user = connect(&server).await;
    user.login("user1", "reset by the admin", "x")
        .await
        .expect("new password");

    // Promotion takes effect at once; nobody demotes themselves.
    root.admin_set_role(pb::AdminSetRole {
        user_id,
        role: pb::Role::Admin as i32,
    })
    .await
    .expect("promote");
    user.admin_list_users(pb::AdminListUsers::default())
        .await
        .expect("user1 is an admin now");
    user.admin_set_role(pb::AdminSetRole {
        user_id: root_id,
        role: pb::Role::User as i32,
    })
    .await
    .expect("demote root");
    assert_eq!(
        code(root.admin_list_users(pb::AdminListUsers::default()).await),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        code(
            user.admin_set_role(pb::AdminSetRole {
                user_id,
                role: pb::Role::User as i32
            })
            .await
        ),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        code(
            user.admin_set_role(pb::AdminSetRole {
                user_id: root_id,
                role: 7
            })
            .await
        ),
        ErrorCode::InvalidArgument
    );
}

/// Two deletions of one user sent at once both take the user out of every chat, neither failing
/// on a step the other made first (a transfer, a removal, a chat deletion).
#[tokio::test]
async fn two_deletions_of_one_user_at_once_both_finish() {
    let server = TestServer::start().await;
    let (root, _) = admin(&server, "root").await;
    let (doomed, d) = register(&server, "doomed").await;
    let (member, m) = register(&server, "member").await;
    let doomed_id = d.user.expect("user").id;
    let member_id = m.user.expect("user").id;
    let group = |title: String, member_ids: Vec<u64>| pb::CreateGroup {
        kind: pb::ChatKind::Group as i32,
        title,
        member_ids,
        ..Default::default()
    };
    // Groups the user owns with an heir (handed over), alone (deleted), and of someone else.
    let mut handed = Vec::new();
    for i in 0..4 {
        let chat = doomed.create_group(group(format!("h{i}"), vec![member_id]));
        handed.push(chat.await.unwrap().id);
        let alone = doomed.create_group(group(format!("a{i}"), vec![]));
        alone.await.unwrap();
    }
    let theirs = member.create_group(group("theirs".into(), vec![doomed_id]));
    let theirs = theirs.await.unwrap().id;

    let delete = || root.admin_delete_user(pb::AdminDeleteUser { user_id: doomed_id });
    let (first, second) = tokio::join!(delete(), delete());
    assert!(first.is_ok() || second.is_ok(), "{first:?} {second:?}");
    for answer in [first, second] {
        if answer.is_err() {
            // Only when the other one finished before this one began: the user is gone.
            let e = remote(answer);
            assert_eq!(
                (e.code, e.message.as_str()),
                (ErrorCode::NotFound, "user not found")
            );
        }
    }
    for id in handed.iter().chain([&theirs]) {
        let chat = member.get_chat(pb::GetChat { chat_id: *id }).await.unwrap();
        let ids: Vec<u64> = chat.members.iter().map(|m| m.user_id).collect();
        assert_eq!(ids, [member_id], "chat {id}");
        assert_eq!(chat.owner_id, member_id, "chat {id}");
    }
}

#[tokio::test]
async fn deleting_a_user_purges_the_profile_and_removes_them_from_chats() {
    let server = TestServer::start().await;
    let (root, _) = admin(&server, "root").await;
    let (owner, o) = register(&server, "owner").await;
    let (member, m) = register(&server, "member").await;
    let owner_id = o.user.expect("user").id;
    let member_id = m.user.expect("user").id;
    let group = owner
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "team".into(),
            member_ids: vec![member_id],
            ..Default::default()
        })
        .await
        .expect("group");
    owner
        .send_text(group.id, "hello before deletion")
        .await
        .expect("send");

    root.admin_delete_user(pb::AdminDeleteUser { user_id: owner_id })
        .await
        .expect("delete");
    assert_eq!(
        code(connect(&server).await.login("owner", PASSWORD, "x").await),
        ErrorCode::Unauthenticated
    );
    // The group passed to the remaining member, who now owns it; the message stays.
    let chat = member
        .get_chat(pb::GetChat { chat_id: group.id })
        .await
        .expect("chat");
    assert_eq!(chat.owner_id, member_id);
    assert_eq!(
        chat.members.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![member_id]
    );
    let history = member
        .get_history(pb::GetHistory {
            chat_id: group.id,
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("history");
    assert!(
        history
            .messages
            .iter()
            .any(|m| m.sender_id == owner_id && m.text == "hello before deletion")
    );
    // The username stays reserved.
    let c = connect(&server).await;
    assert_eq!(
        code(
            c.register(pb::Register {
                username: "owner".into(),
                email: "o@example.test".into(),
                password: PASSWORD.into(),
                device_name: String::new()
            })
            .await
        ),
        ErrorCode::Conflict
    );
    // An admin cannot delete or disable themselves.
    let root_id = root.get_me(pb::GetMe {}).await.expect("me").id;
    assert_eq!(
        code(
            root.admin_delete_user(pb::AdminDeleteUser { user_id: root_id })
                .await
        ),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        code(
            root.admin_set_user_disabled(pb::AdminSetUserDisabled {
                user_id: root_id,
                disabled: true
            })
            .await
        ),
        ErrorCode::PermissionDenied
    );
}

#[tokio::test]
async fn server_admin_rights_follow_the_role_on_open_connections() {
    let server = TestServer::start().await;
    // Both connections were authenticated before their user became an admin.
    let (root, root_id) = admin(&server, "root").await;
    let (other, _) = admin(&server, "other").await;
    let (owner, _) = register(&server, "owner").await;
    let team = || pb::CreateGroup {
        kind: pb::ChatKind::Group as i32,
        title: "team".into(),
        ..Default::default()
    };
    let first = owner.create_group(team()).await.expect("group");
    let second = owner.create_group(team()).await.expect("group");
    root.delete_chat(pb::DeleteChat { chat_id: first.id })
        .await
        .expect("a server admin deletes any chat");

    other
        .admin_set_role(pb::AdminSetRole {
            user_id: root_id,
            role: pb::Role::User as i32,
        })
        .await
        .expect("demote root");
    // The same connection, demoted: someone else's chat is not even visible any more.
    assert_eq!(
        code(
            root.delete_chat(pb::DeleteChat { chat_id: second.id })
                .await
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(root.admin_list_users(pb::AdminListUsers::default()).await),
        ErrorCode::PermissionDenied
    );
    owner
        .get_chat(pb::GetChat { chat_id: second.id })
        .await
        .expect("the chat is still there");
}

#[tokio::test]
async fn admins_create_accounts_that_can_log_in_with_the_role_given() {
    let server = TestServer::start().await;
    let (root, root_id) = admin(&server, "root").await;
    let created = root
        .admin_create_user(pb::AdminCreateUser {
            username: "Newcomer".into(),
            email: "newcomer@example.test".into(),
            password: PASSWORD.into(),
            role: pb::Role::Unspecified as i32,
        })
        .await
        .expect("create");
    assert_eq!(created.username, "newcomer", "folded like a registration");
    assert_eq!(created.email, "newcomer@example.test");
    assert_eq!(created.role(), pb::Role::User);
    assert!(!created.disabled);
    let sessions = root
        .admin_list_sessions(pb::AdminListSessions {
            user_id: created.id,
        })
        .await
        .expect("sessions");
    assert!(sessions.sessions.is_empty(), "no session is opened for it");
    let newcomer = connect(&server).await;
    newcomer
        .login("newcomer", PASSWORD, "x")
        .await
        .expect("the new account logs in");
    assert_eq!(
        code(
            newcomer
                .admin_list_users(pb::AdminListUsers::default())
                .await
        ),
        ErrorCode::PermissionDenied
    );

    let second = root
        .admin_create_user(pb::AdminCreateUser {
            username: "deputy".into(),
            email: "deputy@example.test".into(),
            password: PASSWORD.into(),
            role: pb::Role::Admin as i32,
        })
        .await
        .expect("create an admin");
    assert_eq!(second.role(), pb::Role::Admin);
    let deputy = connect(&server).await;
    deputy.login("deputy", PASSWORD, "x").await.expect("login");
    deputy
        .admin_list_users(pb::AdminListUsers::default())
        .await
        .expect("the new admin is one at once");
    assert_ne!(second.id, root_id);

    let bad_role = root
        .admin_create_user(pb::AdminCreateUser {
            username: "odd".into(),
            email: "odd@example.test".into(),
            password: PASSWORD.into(),
            role: 42,
        })
        .await;
    assert_eq!(code(bad_role), ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn health_checks_the_store_with_a_round_trip() {
    let server = TestServer::start().await;
    let (root, _) = admin(&server, "root").await;
    let health = root.admin_health(pb::AdminHealth {}).await.expect("health");
    assert!(health.healthy, "{health:?}");
    let names: Vec<&str> = health.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["store"], "no Redis on the embedded default");
    assert!(health.server_name.starts_with("chatd/"), "{health:?}");
    assert!(!health.node_id.is_empty());
}

#[tokio::test]
async fn health_names_redis_when_it_is_down() {
    let mut redis = tests::redis::RedisServer::start();
    let server = TestServer::start_with(&[&format!("--redis-url={}", redis.url())]).await;
    let (root, _) = admin(&server, "root").await;
    let health = root.admin_health(pb::AdminHealth {}).await.expect("health");
    assert!(health.healthy, "{health:?}");
    let names: Vec<&str> = health.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["store", "redis"]);

    redis.kill();
    let health = root
        .admin_health(pb::AdminHealth {})
        .await
        .expect("the node answers without Redis");
    assert!(!health.healthy, "{health:?}");
    let redis_check = &health.checks[1];
    assert!(
        !redis_check.healthy && !redis_check.detail.is_empty(),
        "{health:?}"
    );
    assert!(health.checks[0].healthy, "the store is fine: {health:?}");
}

/// Takes admin rights away from `target` as `by` does it: demote, disable or delete. True when
/// it passed. A refusal is PERMISSION_DENIED (the last admin, or `by` is no admin any more) or,
/// when the other side disabled or deleted `by` first, a closed connection.
async fn remove_admin(by: &Client, target: u64, how: usize) -> bool {
    let result = match how {
        0 => by
            .admin_set_role(pb::AdminSetRole {
                user_id: target,
                role: pb::Role::User as i32,
            })
            .await
            .map(drop),
        1 => by
            .admin_set_user_disabled(pb::AdminSetUserDisabled {
                user_id: target,
                disabled: true,
            })
            .await
            .map(drop),
        _ => by
            .admin_delete_user(pb::AdminDeleteUser { user_id: target })
            .await
            .map(drop),
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            if let Some(code) = e.code() {
                assert!(
                    matches!(
                        code,
                        ErrorCode::PermissionDenied | ErrorCode::Unauthenticated
                    ),
                    "refused with {code:?}: {e}"
                );
            }
            false
        }
    }
}

/// Two admins remove each other at the same moment, in every combination of demote, disable
/// and delete, beside `others` admins: exactly one request passes (spec 9.6), whether the store
/// refuses the other as the last admin's removal or as made by an admin no more.
async fn removing_each_other_leaves_one_of_them(others: usize) {
    let server = TestServer::start().await;
    let mut retired = Vec::new();
    for round in 0..9 {
        let (a, a_id) = admin(&server, &format!("left{round}")).await;
        let (b, b_id) = admin(&server, &format!("right{round}")).await;
        for n in 0..others {
            admin(&server, &format!("beside{round}x{n}")).await;
        }
        // The previous round's admins step down, so these are the only ones.
        for id in retired.drain(..) {
            let user = server
                .store()
                .user(id)
                .await
                .expect("user")
                .expect("exists");
            if user.role == pb::Role::Admin && !user.disabled {
                server
                    .store()
                    .set_role(id, pb::Role::User, None)
                    .await
                    .expect("retire");
            }
        }
        let admins = |n: usize| 2 + others - n;
        assert_eq!(
            server.store().count_admins().await.expect("count"),
            admins(0) as u64
        );
        let (ra, rb) = tokio::join!(
            remove_admin(&a, b_id, round / 3),
            remove_admin(&b, a_id, round % 3)
        );
        assert!(ra != rb, "round {round}: both passed or both were refused");
        assert_eq!(
            server.store().count_admins().await.expect("count"),
            admins(1) as u64
        );
        for user in server
            .store()
            .list_users("", None, 1000)
            .await
            .expect("list")
        {
            if user.role == pb::Role::Admin && !user.disabled {
                retired.push(user.id);
            }
        }
    }
}

#[tokio::test]
async fn two_admins_removing_each_other_at_once_leave_one() {
    removing_each_other_leaves_one_of_them(0).await;
}

#[tokio::test]
async fn of_admins_removing_each_other_beside_another_one_passes() {
    removing_each_other_leaves_one_of_them(1).await;
}
