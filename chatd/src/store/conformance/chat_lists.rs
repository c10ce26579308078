//! Conformance cases for the per-user chat list, sync heads and shared peers.

use super::*;

async fn list<S: Store>(s: &S, user_id: u64, include_archived: bool) -> Vec<u64> {
    s.user_chats(
        user_id,
        UserChatsQuery {
            include_archived,
            after: None,
            limit: 100,
        },
    )
    .await
    .expect("user chats")
    .iter()
    .map(|e| e.chat.id)
    .collect()
}

/// The list is pinned first, then newest activity first, then highest id; archived chats only on
/// request; former and deleted chats never; pages continue strictly after the cursor.
pub async fn lists_user_chats_order_pins_archive_paging<S: Store + 'static>(s: S) {
    let u = user(&s, "u").await;
    let p: Vec<u64> = [
        user(&s, "p1").await,
        user(&s, "p2").await,
        user(&s, "p3").await,
        user(&s, "p4").await,
        user(&s, "p5").await,
        user(&s, "p6").await,
    ]
    .to_vec();
    let c1 = s
        .open_private_chat(u, p[0], T0 + 1)
        .await
        .expect("open")
        .0
        .id;
    let c2 = s
        .open_private_chat(u, p[1], T0 + 2)
        .await
        .expect("open")
        .0
        .id;
    let c3 = s
        .open_private_chat(u, p[2], T0 + 3)
        .await
        .expect("open")
        .0
        .id;
    let (g, _) = s
        .create_group(NewGroup {
            kind: pb::ChatKind::Group,
            title: "g".into(),
            description: String::new(),
            owner: p[3],
            member_ids: vec![u],
            now_ms: T0 + 4,
        })
        .await
        .expect("group");
    let g = g.id;
    send(&s, c1, p[0], "news", T0 + 10).await;
    assert_eq!(list(&s, u, false).await, vec![c1, g, c3, c2]);

    // Equal activity: the higher id first.
    let c5 = s
        .open_private_chat(u, p[4], T0 + 50)
        .await
        .expect("open")
        .0
        .id;
    let c6 = s
        .open_private_chat(u, p[5], T0 + 50)
        .await
        .expect("open")
        .0
        .id;
    assert!(c6 > c5);
    assert_eq!(list(&s, u, false).await, vec![c6, c5, c1, g, c3, c2]);

    let pin = UserChatPatch {
        pinned: Some(true),
        ..Default::default()
    };
    s.set_user_state(c2, u, pin).await.expect("pin");
    let archive = UserChatPatch {
        archived: Some(true),
        ..Default::default()
    };
    s.set_user_state(g, u, archive).await.expect("archive");
    assert_eq!(list(&s, u, false).await, vec![c2, c6, c5, c1, c3]);
    let everything = vec![c2, c6, c5, c1, g, c3];
    assert_eq!(list(&s, u, true).await, everything);

    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .user_chats(
                u,
                UserChatsQuery {
                    include_archived: true,
                    after,
                    limit: 4,
                },
            )
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some((last.state.pinned, last.chat.last_activity_ms, last.chat.id));
        paged.extend(page.iter().map(|e| e.chat.id));
    }
    assert_eq!(paged, everything);

    s.remove_member(g, Actor::unjudged(p[3]), u, true, T0 + 60)
        .await
        .expect("leave");
    s.delete_chat(c3, Actor::unjudged(u), T0 + 61)
        .await
        .expect("delete");
    assert_eq!(list(&s, u, true).await, vec![c2, c6, c5, c1]);
    let entry = s
        .user_chats(
            u,
            UserChatsQuery {
                include_archived: false,
                after: None,
                limit: 1,
            },
        )
        .await
        .expect("first");
    assert_eq!(entry.len(), 1);
    assert_eq!(
        entry[0].chat,
        s.chat(c2).await.expect("chat").expect("exists")
    );
    assert_eq!(
        entry[0].member,
        s.member(c2, u).await.expect("m").expect("exists")
    );
    assert!(entry[0].state.pinned);
}

/// Unread counts messages from others after the read cursor that are neither deleted nor hidden;
/// the last message is the newest the user can see.
pub async fn lists_unread_and_last_message<S: Store + 'static>(s: S) {
    let u = user(&s, "u").await;
    let p = user(&s, "p").await;
    let c = private(&s, u, p).await;
    let m1 = send(&s, c, p, "one", T0 + 1).await;
    let m2 = send(&s, c, p, "two", T0 + 2).await;
    let m3 = send(&s, c, p, "three", T0 + 3).await;
    let m4 = send(&s, c, u, "four", T0 + 4).await;
    assert_eq!(
        seqs(&[m1.clone(), m2.clone(), m3.clone(), m4.clone()]),
        vec![2, 3, 4, 5]
    );

    let view = |who| {
        let s = &s;
        async move { s.user_chat(c, who).await.expect("view").expect("member") }
    };
    let mine = view(u).await;
    assert_eq!(mine.unread_count, 3);
    assert_eq!(mine.last_message.as_ref(), Some(&m4));
    assert_eq!(view(p).await.unread_count, 1);

    s.mark_receipt(c, u, pb::ReceiptKind::Read, m2.seq)
        .await
        .expect("read");
    assert_eq!(view(u).await.unread_count, 1);
    s.hide_message(c, m3.seq, u).await.expect("hide");
    assert_eq!(view(u).await.unread_count, 0);

    s.delete_message(c, m4.seq, Actor::unjudged(u), T0 + 5)
        .await
        .expect("delete");
    assert_eq!(view(u).await.last_message.map(|m| m.seq), Some(m2.seq));
    assert_eq!(view(p).await.last_message.map(|m| m.seq), Some(m3.seq));
    assert_eq!(
        view(p).await.unread_count,
        0,
        "deleted messages are not unread"
    );

    let listed = s
        .user_chats(
            u,
            UserChatsQuery {
                include_archived: false,
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert_eq!(listed, vec![view(u).await]);
}

/// Messages from before a member joined do not count as unread for them.
pub async fn lists_unread_starts_at_joining<S: Store + 'static>(s: S) {
    let o = user(&s, "o").await;
    let late = user(&s, "late").await;
    let g = group(&s, o, &[]).await;
    send(&s, g, o, "before one", T0 + 1).await;
    send(&s, g, o, "before two", T0 + 2).await;
    s.add_members(g, Actor::unjudged(o), &[late], u32::MAX, T0 + 3)
        .await
        .expect("add");
    send(&s, g, o, "after", T0 + 4).await;
    let view = s.user_chat(g, late).await.expect("view").expect("member");
    assert_eq!(view.unread_count, 1);
}

/// A former member sees the chat up to the event that removed them.
pub async fn lists_former_member_view<S: Store + 'static>(s: S) {
    let o = user(&s, "o").await;
    let u = user(&s, "u").await;
    let g = group(&s, o, &[u]).await;
    let before = send(&s, g, o, "before", T0 + 1).await;
    let removed = s
        .remove_member(g, Actor::unjudged(o), u, false, T0 + 2)
        .await
        .expect("remove");
    send(&s, g, o, "after", T0 + 3).await;
    let view = s
        .user_chat(g, u)
        .await
        .expect("view")
        .expect("former member");
    assert_eq!(view.member.left_at_seq, Some(removed.seq));
    assert_eq!(view.last_message.map(|m| m.seq), Some(before.seq));
    assert_eq!(view.unread_count, 1);
    assert!(
        s.user_chats(
            u,
            UserChatsQuery {
                include_archived: true,
                after: None,
                limit: 10
            }
        )
        .await
        .expect("list")
        .is_empty()
    );
    let stranger = user(&s, "x").await;
    assert_eq!(s.user_chat(g, stranger).await.expect("view"), None);
}

/// Heads list every current chat and, among the known ones, those the user left or lost.
pub async fn lists_heads<S: Store + 'static>(s: S) {
    let u = user(&s, "u").await;
    let a = user(&s, "a").await;
    let p = private(&s, u, a).await;
    let removed_from = group(&s, a, &[u]).await;
    let left = group(&s, a, &[u]).await;
    let deleted = group(&s, a, &[u]).await;
    let never = group(&s, a, &[]).await;
    send(&s, p, a, "hello", T0).await;

    let r = s
        .remove_member(removed_from, Actor::unjudged(a), u, false, T0)
        .await
        .expect("remove")
        .seq;
    let l = s
        .remove_member(left, Actor::unjudged(u), u, true, T0)
        .await
        .expect("leave")
        .seq;
    let d = s
        .delete_chat(deleted, Actor::unjudged(a), T0)
        .await
        .expect("delete")
        .seq;
    send(&s, removed_from, a, "after removal", T0).await;

    let head = |chat_id, last_seq, member| pb::ChatHead {
        chat_id,
        last_seq,
        member,
    };
    let known = [p, removed_from, left, deleted, never, 999_999];
    let heads = s.heads(u, &known).await.expect("heads");
    let mut want = vec![
        head(p, 2, true),
        head(removed_from, r, false),
        head(left, l, false),
        head(deleted, d, false),
    ];
    want.sort_by_key(|h| h.chat_id);
    let mut got = heads;
    got.sort_by_key(|h| h.chat_id);
    assert_eq!(got, want);
    assert_eq!(
        s.heads(u, &[]).await.expect("heads"),
        vec![head(p, 2, true)]
    );
    // With the unread notifications, in one call: what sync answers.
    for seq in [1, 2] {
        let n = pb::Notification {
            kind: pb::NotificationKind::PrivateMessage as i32,
            chat_id: p,
            message_seq: seq,
            actor_id: a,
            created_at_ms: T0,
            ..Default::default()
        };
        s.append_notification(u, n, 100).await.expect("notify");
    }
    let (heads, unread) = s.sync_state(u, &known).await.expect("sync state");
    let mut heads = heads;
    heads.sort_by_key(|h| h.chat_id);
    assert_eq!((heads, unread), (want, 2));
}

/// Peers are the other current members of the user's current chats.
pub async fn lists_shared_chat_peers<S: Store + 'static>(s: S) {
    let u = user(&s, "u").await;
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = user(&s, "c").await;
    let d = user(&s, "d").await;
    let e = user(&s, "e").await;
    let f = user(&s, "f").await;
    private(&s, u, a).await;
    group(&s, b, &[u, c]).await;
    group(&s, d, &[]).await;
    let gone = group(&s, e, &[u]).await;
    s.remove_member(gone, Actor::unjudged(e), u, false, T0)
        .await
        .expect("remove");
    let deleted = group(&s, f, &[u]).await;
    s.delete_chat(deleted, Actor::unjudged(f), T0)
        .await
        .expect("delete");
    let mut peers = s.shared_chat_peers(u).await.expect("peers");
    peers.sort_unstable();
    assert_eq!(peers, vec![a, b, c]);
    assert_eq!(
        s.shared_chat_peers(d).await.expect("peers"),
        Vec::<u64>::new()
    );
}
