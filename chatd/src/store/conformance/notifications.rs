//! Conformance cases for the notification center ([`NotificationStore`]).

use super::*;

fn mention(chat_id: u64, seq: u64, actor_id: u64) -> pb::Notification {
    pb::Notification {
        id: 0,
        kind: pb::NotificationKind::Mention as i32,
        chat_id,
        message_seq: seq,
        actor_id,
        created_at_ms: T0,
        read: false,
        silent: seq.is_multiple_of(2),
        preview: format!("@you in {seq}"),
    }
}

fn query(user_id: u64, unread_only: bool, before_id: Option<u64>, limit: u32) -> NotificationQuery {
    NotificationQuery {
        user_id,
        unread_only,
        before_id,
        limit,
    }
}

async fn ids<S: Store>(s: &S, q: NotificationQuery) -> Vec<u64> {
    let found = s.notifications(q).await.expect("notifications");
    found.iter().map(|n| n.id).collect()
}

/// Appended notifications come back as written (unread, with increasing ids), newest first,
/// per user, and page backwards by id.
pub async fn notifications_append_list_and_page<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    assert!(ids(&s, query(a, false, None, 10)).await.is_empty());
    let mut written = Vec::new();
    for seq in 1..=4 {
        let mut n = mention(7, seq, b);
        // The caller's id and read flag are ignored.
        n.id = 999;
        n.read = true;
        let stored = s.append_notification(a, n, 100).await.expect("append");
        assert!(!stored.read);
        assert_eq!(stored.message_seq, seq);
        written.push(stored);
    }
    s.append_notification(b, mention(7, 9, a), 100)
        .await
        .expect("append for b");
    assert!(written.windows(2).all(|w| w[0].id < w[1].id));
    let read = s
        .notifications(query(a, false, None, 10))
        .await
        .expect("list");
    let newest_first: Vec<pb::Notification> = written.iter().rev().cloned().collect();
    assert_eq!(read, newest_first);
    let first = ids(&s, query(a, false, None, 2)).await;
    assert_eq!(first, vec![written[3].id, written[2].id]);
    let second = ids(&s, query(a, false, Some(written[2].id), 2)).await;
    assert_eq!(second, vec![written[1].id, written[0].id]);
    assert!(ids(&s, query(a, false, None, 0)).await.is_empty());
    assert_eq!(s.unread_notifications(a).await.expect("unread"), 4);
    assert_eq!(s.unread_notifications(b).await.expect("unread"), 1);
}

/// Marking read by ids and up to an id, and deleting, touch only the user's own notifications
/// and report how many changed.
pub async fn notifications_mark_read_and_clear<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let mut mine = Vec::new();
    for seq in 1..=5 {
        let n = s
            .append_notification(a, mention(7, seq, b), 100)
            .await
            .expect("append");
        mine.push(n.id);
    }
    let theirs = s
        .append_notification(b, mention(7, 9, a), 100)
        .await
        .expect("append")
        .id;
    let marked = s
        .mark_notifications_read(a, NotificationSet::Ids(vec![mine[0], mine[1], theirs]))
        .await
        .expect("mark");
    assert_eq!(marked, 2, "b's notification is not a's to mark");
    assert_eq!(s.unread_notifications(b).await.expect("unread"), 1);
    let again = s
        .mark_notifications_read(a, NotificationSet::Ids(vec![mine[0]]))
        .await
        .expect("mark again");
    assert_eq!(again, 0);
    assert_eq!(
        ids(&s, query(a, true, None, 10)).await,
        vec![mine[4], mine[3], mine[2]]
    );
    let up_to = s
        .mark_notifications_read(a, NotificationSet::UpTo(mine[3]))
        .await
        .expect("mark up to");
    assert_eq!(up_to, 2);
    assert_eq!(ids(&s, query(a, true, None, 10)).await, vec![mine[4]]);
    let listed = s
        .notifications(query(a, false, None, 10))
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|n| n.read).collect::<Vec<_>>(),
        vec![false, true, true, true, true]
    );
    let deleted = s
        .delete_notifications(a, NotificationSet::Ids(vec![mine[0], theirs]))
        .await
        .expect("delete");
    assert_eq!(deleted, 1);
    let deleted = s
        .delete_notifications(a, NotificationSet::UpTo(mine[3]))
        .await
        .expect("delete up to");
    assert_eq!(deleted, 3);
    assert_eq!(ids(&s, query(a, false, None, 10)).await, vec![mine[4]]);
    assert_eq!(ids(&s, query(b, false, None, 10)).await, vec![theirs]);
}

/// Each user keeps their newest `keep` notifications; others' are untouched.
pub async fn notifications_retention<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    s.append_notification(b, mention(7, 1, a), 3)
        .await
        .expect("append for b");
    let mut mine = Vec::new();
    for seq in 1..=5 {
        let n = s
            .append_notification(a, mention(7, seq, b), 3)
            .await
            .expect("append");
        mine.push(n.id);
    }
    assert_eq!(
        ids(&s, query(a, false, None, 10)).await,
        vec![mine[4], mine[3], mine[2]]
    );
    assert_eq!(s.unread_notifications(a).await.expect("unread"), 3);
    assert_eq!(ids(&s, query(b, false, None, 10)).await.len(), 1);
}

fn announcement(admin: u64) -> pb::Notification {
    pb::Notification {
        id: 0,
        kind: pb::NotificationKind::Broadcast as i32,
        chat_id: 0,
        message_seq: 0,
        actor_id: admin,
        created_at_ms: T0,
        read: false,
        silent: false,
        preview: "maintenance at 22:00\nback by 23:00".into(),
    }
}

/// A broadcast records one unread copy for every user neither disabled nor deleted, each with
/// its own id above every earlier one, and trims each of them to the newest `keep`.
pub async fn notifications_broadcast<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let off = user(&s, "off").await;
    let gone = user(&s, "gone").await;
    s.set_disabled(off, true, None).await.expect("disable");
    s.delete_user(gone, T0, None).await.expect("delete");
    let mut older = Vec::new();
    for seq in 1..=2 {
        let n = s
            .append_notification(a, mention(7, seq, b), 2)
            .await
            .expect("append");
        older.push(n.id);
    }
    let mut sent = announcement(b);
    sent.id = 999;
    sent.read = true;
    let recorded = s.broadcast_notification(sent, 2).await.expect("broadcast");
    let users: Vec<u64> = recorded.iter().map(|(u, _)| *u).collect();
    assert_eq!(users, vec![a, b], "active users only, ascending");
    assert!(recorded.iter().all(|(_, id)| *id > older[1]));
    assert_ne!(recorded[0].1, recorded[1].1);
    let mine = s
        .notifications(query(a, false, None, 10))
        .await
        .expect("list");
    let expected = pb::Notification {
        id: recorded[0].1,
        ..announcement(b)
    };
    assert_eq!(mine.first(), Some(&expected));
    assert_eq!(
        ids(&s, query(a, false, None, 10)).await,
        vec![recorded[0].1, older[1]],
        "a keeps the newest two"
    );
    assert_eq!(ids(&s, query(b, true, None, 10)).await, vec![recorded[1].1]);
    assert!(ids(&s, query(off, false, None, 10)).await.is_empty());
    assert!(ids(&s, query(gone, false, None, 10)).await.is_empty());
    let next = s
        .append_notification(b, mention(7, 3, a), 2)
        .await
        .expect("append after");
    assert!(next.id > recorded[1].1);
}

/// Preferences are absent until set, then read back as set; unknown users are `NotFound`.
pub async fn notifications_prefs<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    assert_eq!(s.notification_prefs(a).await.expect("prefs"), None);
    let prefs = pb::NotificationPrefs {
        disabled: false,
        do_not_disturb: Some(pb::DoNotDisturb {
            enabled: true,
            start_minute: 1320,
            end_minute: 420,
            utc_offset_minutes: -300,
        }),
        mentions_in_muted_chats: true,
        email: true,
        email_digest_minutes: 60,
        webhook: false,
    };
    s.set_notification_prefs(a, prefs).await.expect("set");
    assert_eq!(s.notification_prefs(a).await.expect("prefs"), Some(prefs));
    let off = pb::NotificationPrefs {
        disabled: true,
        ..Default::default()
    };
    s.set_notification_prefs(a, off).await.expect("replace");
    assert_eq!(s.notification_prefs(a).await.expect("prefs"), Some(off));
    assert_not_found(s.set_notification_prefs(999_999, prefs).await, "user");
}

/// A batch appends each notification for its user, in order, as one at a time would: unread,
/// ids increasing in the batch's order and above every earlier one, each user trimmed to the
/// newest `keep`.
pub async fn notifications_append_batch<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let before = s
        .append_notification(a, mention(7, 1, b), 2)
        .await
        .expect("append");
    let mut first = mention(7, 2, b);
    first.id = 999;
    first.read = true;
    let stored = s
        .append_notifications(
            vec![(a, first), (b, mention(7, 3, a)), (a, mention(7, 4, b))],
            2,
        )
        .await
        .expect("batch");
    let seqs: Vec<u64> = stored.iter().map(|n| n.message_seq).collect();
    assert_eq!(seqs, vec![2, 3, 4]);
    assert!(stored.iter().all(|n| !n.read));
    assert!(before.id < stored[0].id);
    assert!(stored.windows(2).all(|w| w[0].id < w[1].id));
    let mine = s
        .notifications(query(a, false, None, 10))
        .await
        .expect("list");
    assert_eq!(
        mine,
        vec![stored[2].clone(), stored[0].clone()],
        "a keeps the newest two"
    );
    assert_eq!(ids(&s, query(b, false, None, 10)).await, vec![stored[1].id]);
    let one = s
        .append_notifications(vec![(b, mention(7, 5, a))], 2)
        .await
        .expect("a batch of one");
    assert!(one[0].id > stored[2].id);
    assert!(
        s.append_notifications(Vec::new(), 2)
            .await
            .expect("empty")
            .is_empty()
    );
}

/// The preferences of many users in one read: those who set any, by ascending user id.
pub async fn notifications_prefs_of_many<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let quiet = pb::NotificationPrefs {
        mentions_in_muted_chats: true,
        ..Default::default()
    };
    let off = pb::NotificationPrefs {
        disabled: true,
        ..Default::default()
    };
    s.set_notification_prefs(c, quiet).await.expect("set c");
    s.set_notification_prefs(a, off).await.expect("set a");
    let found = s
        .notification_prefs_of(&[c, b, 999_999, a])
        .await
        .expect("prefs of many");
    assert_eq!(found, vec![(a, off), (c, quiet)]);
    assert!(s.notification_prefs_of(&[]).await.expect("none").is_empty());
}
