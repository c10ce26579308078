//! The admin audit log (spec 9.6): every admin change is recorded with who, when, from where,
//! on what and how it was answered, refusals included; reads are not; the log pages newest
//! first and filters by actor, action, subject and time.

use chatproto::pb;
use chatproto::pb::ErrorCode as E;

use tests::server::TestServer;

use crate::support::{User, assert_code, device, pair, register, register_admin, start};

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_millis()).expect("ms fit i64")
}

/// The whole log, newest first, read `limit` entries at a time.
async fn whole_log(root: &User, filter: pb::AdminListAudit, limit: u32) -> Vec<pb::AuditEntry> {
    let mut entries = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = root
            .client
            .admin_list_audit(pb::AdminListAudit {
                limit,
                cursor: cursor.clone(),
                ..filter.clone()
            })
            .await
            .expect("audit page");
        assert!(page.entries.len() <= limit as usize);
        entries.extend(page.entries);
        if page.next_cursor.is_empty() {
            return entries;
        }
        cursor = page.next_cursor;
    }
}

fn actions(entries: &[pb::AuditEntry]) -> Vec<(&str, &str, E)> {
    entries
        .iter()
        .map(|e| {
            let outcome = E::try_from(e.outcome).expect("known code");
            (e.action.as_str(), e.subject.as_str(), outcome)
        })
        .collect()
}

#[tokio::test]
async fn admin_changes_are_recorded_with_their_outcome_and_reads_are_not() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let (alice, bob, chat) = pair(&server).await;
    let mallory = register(&server, "mallory").await;
    let before = now_ms();

    // A non-admin probing: refused, and recorded as refused.
    assert_code(
        mallory
            .client
            .admin_delete_user(pb::AdminDeleteUser { user_id: root.id })
            .await,
        E::PermissionDenied,
    );
    // Changes by the admin, one of them failing.
    root.client
        .admin_set_role(pb::AdminSetRole {
            user_id: alice.id,
            role: pb::Role::Admin as i32,
        })
        .await
        .expect("promote alice");
    root.client
        .admin_reset_password(pb::AdminResetPassword {
            user_id: bob.id,
            new_password: "a brand new secret phrase".into(),
        })
        .await
        .expect("reset bob's password");
    let sent = alice.send(chat, "moderate me").await;
    root.client
        .admin_delete_message(pb::AdminDeleteMessage {
            chat_id: chat,
            seq: sent.seq,
        })
        .await
        .expect("delete message");
    assert_code(
        root.client
            .admin_set_user_disabled(pb::AdminSetUserDisabled {
                user_id: 999_999,
                disabled: true,
            })
            .await,
        E::NotFound,
    );
    root.client
        .admin_set_user_disabled(pb::AdminSetUserDisabled {
            user_id: mallory.id,
            disabled: true,
        })
        .await
        .expect("disable mallory");
    // Reads change nothing and are not recorded.
    root.client
        .admin_list_users(pb::AdminListUsers::default())
        .await
        .expect("list users");
    root.client
        .admin_stats(pb::AdminStats {})
        .await
        .expect("stats");

    let log = whole_log(&root, pb::AdminListAudit::default(), 2).await;
    let message = format!("chat:{chat}/seq:{}", sent.seq);
    let user = |id: u64| format!("user:{id}");
    assert_eq!(
        actions(&log),
        vec![
            (
                "admin_set_user_disabled",
                user(mallory.id).as_str(),
                E::Unspecified
            ),
            ("admin_set_user_disabled", "user:999999", E::NotFound),
            ("admin_delete_message", message.as_str(), E::Unspecified),
            (
                "admin_reset_password",
                user(bob.id).as_str(),
                E::Unspecified
            ),
            ("admin_set_role", user(alice.id).as_str(), E::Unspecified),
            (
                "admin_delete_user",
                user(root.id).as_str(),
                E::PermissionDenied
            ),
        ],
        "newest first, every change and refusal, no read"
    );
    assert!(log.windows(2).all(|w| w[0].id > w[1].id));
    let newest = &log[0];
    assert_eq!(newest.actor_id, root.id);
    assert_eq!(newest.actor_username, "root");
    assert_eq!(newest.detail, "disabled=true");
    assert!(newest.at_ms >= before, "{newest:?}");
    assert!(newest.address.starts_with("127.0.0.1:"), "{newest:?}");
    assert_eq!(log[4].detail, "role=ROLE_ADMIN");
    let probe = &log[5];
    assert_eq!(
        (probe.actor_id, probe.actor_username.as_str()),
        (mallory.id, "mallory")
    );
    let everything = format!("{log:?}");
    assert!(
        !everything.contains("brand new secret"),
        "a password is never recorded"
    );

    // Filters, alone and combined.
    let by_mallory = pb::AdminListAudit {
        actor_id: mallory.id,
        ..Default::default()
    };
    assert_eq!(
        actions(&whole_log(&root, by_mallory, 10).await),
        vec![(
            "admin_delete_user",
            user(root.id).as_str(),
            E::PermissionDenied
        )]
    );
    let disables = pb::AdminListAudit {
        action: "admin_set_user_disabled".into(),
        ..Default::default()
    };
    assert_eq!(whole_log(&root, disables.clone(), 10).await.len(), 2);
    let on_mallory = pb::AdminListAudit {
        subject: user(mallory.id),
        ..disables
    };
    assert_eq!(whole_log(&root, on_mallory, 10).await.len(), 1);
    let nothing_yet = pb::AdminListAudit {
        since_ms: newest.at_ms + 60_000,
        ..Default::default()
    };
    assert!(whole_log(&root, nothing_yet, 10).await.is_empty());
    let never_recorded = pb::AdminListAudit {
        action: "admin_list_users".into(),
        ..Default::default()
    };
    assert!(whole_log(&root, never_recorded, 10).await.is_empty());
}

#[tokio::test]
async fn the_log_outlives_a_restart() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    root.client
        .admin_create_user(pb::AdminCreateUser {
            username: "Newcomer".into(),
            email: "newcomer@example.test".into(),
            password: "another long secret phrase".into(),
            role: pb::Role::User as i32,
        })
        .await
        .expect("create user");
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, &[]).await;
    let root = device(&server, &root).await;
    let log = whole_log(&root, pb::AdminListAudit::default(), 10).await;
    assert_eq!(
        actions(&log),
        vec![("admin_create_user", "username:newcomer", E::Unspecified)]
    );
    assert_eq!(log[0].detail, "role=ROLE_USER");
}
