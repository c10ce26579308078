//! Admin broadcasts (spec 9.6, 15.1): an announcement recorded for every active user, sent live
//! to each of their connections and found by offline users on their next sync; admins only, the
//! text checked, preferences not in the way, and every attempt in the audit log.

use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::ErrorCode as E;
use chatproto::pb::NotificationKind as K;

use crate::support::{User, assert_code, assert_field, device, register, register_admin, start};

const TEXT: &str = "Maintenance tonight at 22:00 UTC.\nExpect a minute of reconnects.";

async fn next_broadcast(user: &User) -> pb::Notification {
    user.wait_for(|e| match e {
        ClientEvent::Notification(n) if n.kind() == K::Broadcast => Some(n),
        _ => None,
    })
    .await
}

async fn broadcasts(user: &User) -> Vec<pb::Notification> {
    let list = user
        .client
        .list_notifications(pb::ListNotifications {
            limit: 100,
            cursor: String::new(),
            unread_only: false,
        })
        .await
        .expect("list notifications");
    list.notifications
        .into_iter()
        .filter(|n| n.kind() == K::Broadcast)
        .collect()
}

fn broadcast(text: &str) -> pb::AdminBroadcast {
    pb::AdminBroadcast { text: text.into() }
}

#[tokio::test]
async fn a_broadcast_reaches_every_user_live_and_offline_users_on_their_next_sync() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let alice_phone = device(&server, &alice).await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    // Alice turned notifications off: an announcement is the server's, not a chat's, and still
    // reaches her.
    alice
        .client
        .set_notification_prefs(pb::SetNotificationPrefs {
            prefs: Some(pb::NotificationPrefs {
                disabled: true,
                ..Default::default()
            }),
        })
        .await
        .expect("prefs");
    bob.client.close().await;
    server
        .store()
        .set_disabled(carol.id, true, None)
        .await
        .expect("disable carol");

    let sent = root
        .client
        .admin_broadcast(broadcast(TEXT))
        .await
        .expect("broadcast");
    assert_eq!(
        sent.recipients, 3,
        "root, alice and bob; not carol (disabled)"
    );
    assert!(sent.sent_at_ms > 0);

    for each in [&alice, &alice_phone] {
        let live = next_broadcast(each).await;
        assert_eq!(
            (live.chat_id, live.message_seq, live.actor_id),
            (0, 0, root.id)
        );
        assert_eq!(live.preview, TEXT);
        assert_eq!(live.created_at_ms, sent.sent_at_ms);
        assert!(!live.read && !live.silent);
        assert_eq!(broadcasts(&alice).await, vec![live]);
    }
    let mine = next_broadcast(&root).await;
    assert_eq!(mine.preview, TEXT);

    // Bob was offline: his next sync counts it, and his list holds it.
    let bob = device(&server, &bob).await;
    let synced = bob.client.sync(pb::Sync::default()).await.expect("sync");
    assert_eq!(synced.unread_notifications, 1);
    let found = broadcasts(&bob).await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].preview.as_str(), found[0].actor_id),
        (TEXT, root.id)
    );
    // It is an ordinary notification from then on.
    let marked = bob
        .client
        .mark_notifications_read(pb::MarkNotificationsRead {
            ids: vec![found[0].id],
        })
        .await
        .expect("mark read");
    assert_eq!(marked.unread_count, 0);

    // Carol was disabled when it was sent: enabled again, she has none.
    server
        .store()
        .set_disabled(carol.id, false, None)
        .await
        .expect("enable carol");
    let carol = device(&server, &carol).await;
    assert!(broadcasts(&carol).await.is_empty());
}

#[tokio::test]
async fn only_admins_broadcast_the_text_is_checked_and_every_attempt_is_audited() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;

    assert_code(
        alice.client.admin_broadcast(broadcast("hello all")).await,
        E::PermissionDenied,
    );
    for blank in ["", "  \n\t "] {
        assert_field(
            root.client.admin_broadcast(broadcast(blank)).await,
            E::InvalidArgument,
            "admin_broadcast.text",
        );
    }
    assert_field(
        root.client
            .admin_broadcast(broadcast(&"é".repeat(1001)))
            .await,
        E::TooLarge,
        "admin_broadcast.text",
    );
    assert_field(
        root.client.admin_broadcast(broadcast("bell\u{7}")).await,
        E::InvalidArgument,
        "admin_broadcast.text",
    );
    // Nothing of those was recorded.
    assert!(broadcasts(&alice).await.is_empty());

    let longest = "é".repeat(1000);
    let sent = root
        .client
        .admin_broadcast(broadcast(&longest))
        .await
        .expect("1000 characters");
    assert_eq!(sent.recipients, 2);
    assert_eq!(next_broadcast(&alice).await.preview, longest);

    let log = root
        .client
        .admin_list_audit(pb::AdminListAudit {
            action: "admin_broadcast".into(),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit");
    let seen: Vec<(u64, &str, &str, E)> = log
        .entries
        .iter()
        .map(|e| {
            let outcome = E::try_from(e.outcome).expect("known code");
            (e.actor_id, e.subject.as_str(), e.detail.as_str(), outcome)
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (root.id, "users:all", "chars=1000", E::Unspecified),
            (root.id, "users:all", "chars=5", E::InvalidArgument),
            (root.id, "users:all", "chars=1001", E::TooLarge),
            (root.id, "users:all", "chars=5", E::InvalidArgument),
            (root.id, "users:all", "chars=0", E::InvalidArgument),
            (alice.id, "users:all", "chars=9", E::PermissionDenied),
        ]
    );
}
