//! Conformance cases for messages, the chat log, reactions and receipts.

use std::sync::Arc;

use super::*;

/// Adds a reaction under the protocol's emoji limit.
const ADD: ReactionChange = ReactionChange::Add { max_emoji: 20 };

/// A message is stored with every field and appended as `message_created`.
pub async fn messages_append_and_read<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let out = s
        .append_message(NewMessage {
            mention_ids: vec![b],
            client_msg_id: "m-1".into(),
            ..text_message(c, a, "hello", T0 + 5)
        })
        .await
        .expect("append");
    let m = out.message.clone();
    assert_eq!((m.chat_id, m.seq, m.sender_id), (c, 2, a));
    assert_eq!(m.kind, pb::MessageKind::Text as i32);
    assert_eq!(
        (m.text.as_str(), m.client_msg_id.as_str()),
        ("hello", "m-1")
    );
    assert_eq!((m.sent_at_ms, m.mention_ids.clone()), (T0 + 5, vec![b]));
    assert!(!m.edited && !m.deleted && m.reactions.is_empty());
    let event = out.event.expect("event");
    assert_eq!(
        (event.chat_id, event.seq, event.actor_id, event.at_ms),
        (c, 2, a, T0 + 5)
    );
    assert_eq!(body(&event), &Body::MessageCreated(m.clone()));
    assert_eq!(s.message(c, 2).await.expect("get"), Some(m.clone()));
    let chat = s.chat(c).await.expect("chat").expect("exists");
    assert_eq!((chat.last_seq, chat.last_activity_ms), (2, T0 + 5));

    let forwarded = pb::ForwardedFrom {
        chat_id: 77,
        seq: 3,
        sender_id: b,
        sent_at_ms: 5,
    };
    let media = s
        .append_message(NewMessage {
            kind: pb::MessageKind::Image,
            file_id: "file-1".into(),
            attachment: None,
            reply_to_seq: 2,
            forwarded_from: Some(forwarded),
            ..text_message(c, b, "caption", T0 + 6)
        })
        .await
        .expect("append")
        .message;
    assert_eq!(media.seq, 3);
    let stored = s.message(c, 3).await.expect("get").expect("exists");
    assert_eq!(stored, media);
    assert_eq!(stored.kind, pb::MessageKind::Image as i32);
    assert_eq!(
        (
            stored.file_id.as_str(),
            stored.reply_to_seq,
            stored.forwarded_from
        ),
        ("file-1", 2, Some(forwarded))
    );
    assert_eq!(s.message(c, 999).await.expect("get"), None);
    assert_not_found(
        s.append_message(text_message(999_999, a, "x", T0)).await,
        "chat",
    );
}

/// Eight concurrent senders get strictly increasing, gap-free sequence numbers.
pub async fn messages_seq_concurrent_senders<S: Store + 'static>(s: S) {
    const SENDERS: usize = 8;
    const EACH: usize = 50;
    let owner = user(&s, "owner").await;
    let mut senders = vec![owner];
    for i in 1..SENDERS {
        senders.push(user(&s, &format!("sender{i}")).await);
    }
    let g = group(&s, owner, &senders).await;
    let s = Arc::new(s);
    let tasks: Vec<_> = senders
        .iter()
        .map(|&sender| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                let mut mine = Vec::with_capacity(EACH);
                for k in 0..EACH {
                    let out = s
                        .append_message(text_message(g, sender, &format!("m{k}"), T0 + 1))
                        .await
                        .expect("append");
                    let event = out.event.expect("event");
                    assert_eq!(event.seq, out.message.seq);
                    mine.push(event.seq);
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let mine = task.await.expect("task");
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "one sender's seqs increase"
        );
        all.extend(mine);
    }
    all.sort_unstable();
    let total = (SENDERS * EACH) as u64;
    assert_eq!(all, (2..=total + 1).collect::<Vec<_>>());
    assert_eq!(
        s.chat(g).await.expect("chat").expect("exists").last_seq,
        total + 1
    );
    let events = all_events(&*s, g).await;
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=total + 1).collect::<Vec<_>>()
    );
    for event in &events[1..] {
        match body(event) {
            Body::MessageCreated(m) => {
                assert_eq!((m.seq, m.sender_id), (event.seq, event.actor_id))
            }
            other => panic!("expected message_created, got {other:?}"),
        }
    }
}

/// A repeated client_msg_id returns the original and appends nothing, in any chat.
pub async fn messages_idempotent_append<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let g = group(&s, a, &[b]).await;
    let first = s
        .append_message(NewMessage {
            client_msg_id: "dup".into(),
            ..text_message(c, a, "one", T0 + 1)
        })
        .await
        .expect("first");
    assert!(first.event.is_some());
    for (chat, text) in [(c, "two"), (g, "three")] {
        let again = s
            .append_message(NewMessage {
                client_msg_id: "dup".into(),
                ..text_message(chat, a, text, T0 + 2)
            })
            .await
            .expect("again");
        assert_eq!(again.event, None);
        assert_eq!(again.message, first.message);
    }
    assert_eq!(s.chat(c).await.expect("chat").expect("exists").last_seq, 2);
    assert_eq!(s.chat(g).await.expect("chat").expect("exists").last_seq, 1);
    let theirs = s
        .append_message(NewMessage {
            client_msg_id: "dup".into(),
            ..text_message(c, b, "b's own", T0 + 3)
        })
        .await
        .expect("other sender");
    assert_eq!(theirs.message.seq, 3, "the key is per sender");
    assert!(theirs.event.is_some());
    // What a retry is answered with, read without sending.
    let found = |sender, id: &'static str| s.sent_message(sender, id);
    assert_eq!(found(a, "dup").await.expect("read"), Some(first.message));
    assert_eq!(found(b, "dup").await.expect("read"), Some(theirs.message));
    assert_eq!(found(a, "never").await.expect("read"), None);
}

/// Identical sends racing each other store one message and one event.
pub async fn messages_idempotent_append_concurrent<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let s = Arc::new(s);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.append_message(NewMessage {
                    client_msg_id: "race".into(),
                    ..text_message(c, a, "same", T0 + 1)
                })
                .await
            })
        })
        .collect();
    let mut created = 0;
    let mut seqs_seen = Vec::new();
    for task in tasks {
        let out = task.await.expect("task").expect("append");
        created += usize::from(out.event.is_some());
        seqs_seen.push(out.message.seq);
    }
    assert_eq!(created, 1);
    assert!(seqs_seen.iter().all(|&seq| seq == 2));
    assert_eq!(s.chat(c).await.expect("chat").expect("exists").last_seq, 2);
    assert_eq!(seqs(&full_history(&*s, c, a).await), vec![2]);
}

/// A message edited past [`MAX_KEPT_EDITS`] keeps the newest replaced texts only.
pub async fn messages_edit_history_keeps_the_newest<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let m = send(&s, c, a, "v0", T0).await;
    let edits = MAX_KEPT_EDITS + 3;
    for n in 1..=edits {
        let at = T0 + n as i64;
        s.edit_message(c, m.seq, Actor::unjudged(a), &format!("v{n}"), at)
            .await
            .expect("edit");
    }
    let kept = s.edits(c, m.seq).await.expect("edits");
    let texts: Vec<&str> = kept.iter().map(|e| e.text.as_str()).collect();
    let expected: Vec<String> = (3..edits).map(|n| format!("v{n}")).collect();
    assert_eq!(texts, expected);
    assert_eq!(kept.first().map(|e| e.at_ms), Some(T0 + 3));
    let now = s.message(c, m.seq).await.expect("get").expect("exists");
    assert_eq!(now.text, format!("v{edits}"));
}

/// Edits replace the text, keep the replaced texts in order and show in `message_created`.
pub async fn messages_edit_history<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let m = send(&s, c, a, "v1", T0 + 1).await;
    let (edited, event) = s
        .edit_message(c, m.seq, Actor::unjudged(a), "v2", T0 + 2)
        .await
        .expect("edit");
    assert_eq!(
        (edited.text.as_str(), edited.edited, edited.edited_at_ms),
        ("v2", true, T0 + 2)
    );
    assert_eq!(
        (event.seq, event.actor_id, event.at_ms),
        (m.seq + 1, a, T0 + 2)
    );
    assert_eq!(
        body(&event),
        &Body::MessageEdited(pb::MessageEdited {
            message_seq: m.seq,
            text: "v2".into(),
            edited_at_ms: T0 + 2
        })
    );
    s.edit_message(c, m.seq, Actor::unjudged(a), "v3", T0 + 3)
        .await
        .expect("edit");
    assert_eq!(
        s.edits(c, m.seq).await.expect("edits"),
        vec![
            pb::MessageEdit {
                text: "v1".into(),
                at_ms: T0 + 1
            },
            pb::MessageEdit {
                text: "v2".into(),
                at_ms: T0 + 2
            },
        ]
    );
    let now = s.message(c, m.seq).await.expect("get").expect("exists");
    assert_eq!((now.text.as_str(), now.edited_at_ms), ("v3", T0 + 3));
    match body(&all_events(&s, c).await[1]) {
        Body::MessageCreated(shown) => assert_eq!(shown, &now),
        other => panic!("expected message_created, got {other:?}"),
    }
    assert_not_found(
        s.edit_message(c, 999, Actor::unjudged(a), "x", T0).await,
        "message",
    );
    assert_not_found(s.edits(c, 999).await, "message");
    assert_not_found(
        s.edit_message(999_999, 2, Actor::unjudged(a), "x", T0)
            .await,
        "chat",
    );
}

/// Deleting for everyone purges text, file, reactions and edit history everywhere it shows, and
/// leaves a tombstone.
pub async fn messages_delete_purges_content<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let m = s
        .append_message(NewMessage {
            kind: pb::MessageKind::File,
            file_id: "file-9".into(),
            attachment: None,
            mention_ids: vec![b],
            ..text_message(c, a, "secret plan alpha", T0 + 1)
        })
        .await
        .expect("append")
        .message;
    s.edit_message(c, m.seq, Actor::unjudged(a), "secret plan beta", T0 + 2)
        .await
        .expect("edit");
    s.set_reaction(c, m.seq, Actor::unjudged(b), "👍", ADD, T0 + 3)
        .await
        .expect("react");
    let scope = vec![(c, MAX)];
    let find = |text: &'static str| {
        let s = &s;
        let scope = scope.clone();
        async move {
            searched(
                s,
                SearchQuery {
                    viewer: b,
                    text: text.into(),
                    chats: scope,
                    before: None,
                    limit: 10,
                    senders_blocked: Vec::new(),
                },
            )
            .await
        }
    };
    if let Some(found) = find("secret").await {
        assert_eq!(seqs(&found), vec![m.seq], "found before deletion");
    }

    let event = s
        .delete_message(c, m.seq, Actor::unjudged(a), T0 + 9)
        .await
        .expect("delete");
    assert_eq!(
        body(&event),
        &Body::MessageDeleted(pb::MessageDeleted { message_seq: m.seq })
    );
    let tomb = s.message(c, m.seq).await.expect("get").expect("tombstone");
    assert!(tomb.deleted);
    assert_eq!(tomb.deleted_at_ms, T0 + 9);
    assert_eq!((tomb.text.as_str(), tomb.file_id.as_str()), ("", ""));
    assert!(tomb.reactions.is_empty() && tomb.mention_ids.is_empty());
    assert!(s.edits(c, m.seq).await.expect("edits").is_empty());
    for word in ["secret", "plan", "alpha", "beta", "secr"] {
        let found = find(word).await;
        assert!(found.is_none_or(|f| f.is_empty()), "{word} still found");
    }
    let history = full_history(&s, c, b).await;
    assert_eq!(history, vec![tomb.clone()]);

    let events = all_events(&s, c).await;
    let mut saw_edit = false;
    for e in &events {
        match body(e) {
            Body::MessageCreated(shown) => assert_eq!(shown, &tomb),
            Body::MessageEdited(edit) => {
                saw_edit = true;
                assert_eq!(edit.text, "", "edit text purged");
            }
            _ => {}
        }
    }
    assert!(saw_edit);
    assert_eq!(events.last(), Some(&event));

    assert_conflict(
        s.edit_message(c, m.seq, Actor::unjudged(a), "again", T0)
            .await,
        ConflictKind::MessageDeleted,
    );
    assert_conflict(
        s.set_reaction(c, m.seq, Actor::unjudged(b), "👍", ADD, T0)
            .await,
        ConflictKind::MessageDeleted,
    );
    assert_conflict(
        s.delete_message(c, m.seq, Actor::unjudged(a), T0).await,
        ConflictKind::MessageDeleted,
    );
    assert_not_found(
        s.delete_message(c, 999, Actor::unjudged(a), T0).await,
        "message",
    );
}

/// Hiding removes a message from one user's history and search only.
pub async fn messages_hide_for_one_user<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let m1 = send(&s, c, a, "hidden words", T0 + 1).await;
    let m2 = send(&s, c, a, "visible", T0 + 2).await;
    s.hide_message(c, m1.seq, b).await.expect("hide");
    s.hide_message(c, m1.seq, b).await.expect("hide again");
    assert_eq!(seqs(&full_history(&s, c, b).await), vec![m2.seq]);
    assert_eq!(seqs(&full_history(&s, c, a).await), vec![m1.seq, m2.seq]);
    let search = |viewer| {
        let s = &s;
        async move {
            searched(
                s,
                SearchQuery {
                    viewer,
                    text: "hidden".into(),
                    chats: vec![(c, MAX)],
                    before: None,
                    limit: 10,
                    senders_blocked: Vec::new(),
                },
            )
            .await
        }
    };
    assert!(search(b).await.is_none_or(|f| f.is_empty()));
    if let Some(found) = search(a).await {
        assert_eq!(seqs(&found), vec![m1.seq]);
    }
    assert_eq!(s.message(c, m1.seq).await.expect("get"), Some(m1));
    assert_eq!(
        s.chat(c).await.expect("chat").expect("exists").last_seq,
        3,
        "no event"
    );
    assert_not_found(s.hide_message(c, 999, b).await, "message");
}

/// Reactions add and remove once per user and emoji, grouped by emoji in order.
pub async fn messages_reactions<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let c = private(&s, a, b).await;
    let m = send(&s, c, a, "react to me", T0).await;
    let reaction = |emoji: &str, users: &[u64]| pb::Reaction {
        emoji: emoji.into(),
        user_ids: users.to_vec(),
        count: u32::try_from(users.len()).expect("a few users"),
    };

    let (msg, event) = s
        .set_reaction(c, m.seq, Actor::unjudged(b), "👍", ADD, T0 + 1)
        .await
        .expect("react");
    let event = event.expect("changed");
    assert_eq!(msg.reactions, vec![reaction("👍", &[b])]);
    assert_eq!(
        (event.seq, event.actor_id, event.at_ms),
        (m.seq + 1, b, T0 + 1)
    );
    assert_eq!(
        body(&event),
        &Body::ReactionChanged(pb::ReactionChanged {
            message_seq: m.seq,
            emoji: "👍".into(),
            user_id: b,
            added: true
        })
    );
    // Nothing changes, and the answer is the message as it is.
    assert_eq!(
        s.set_reaction(c, m.seq, Actor::unjudged(b), "👍", ADD, T0)
            .await
            .expect("no-op"),
        (msg.clone(), None)
    );
    assert_eq!(
        s.chat(c).await.expect("chat").expect("exists").last_seq,
        m.seq + 1
    );

    s.set_reaction(c, m.seq, Actor::unjudged(a), "👍", ADD, T0 + 2)
        .await
        .expect("react");
    let (msg, _) = s
        .set_reaction(c, m.seq, Actor::unjudged(b), "🎉", ADD, T0 + 3)
        .await
        .expect("react");
    assert_eq!(
        msg.reactions,
        vec![reaction("👍", &[b, a]), reaction("🎉", &[b])]
    );

    let (msg, event) = s
        .set_reaction(
            c,
            m.seq,
            Actor::unjudged(b),
            "👍",
            ReactionChange::Remove,
            T0 + 4,
        )
        .await
        .expect("unreact");
    let event = event.expect("changed");
    assert_eq!(
        msg.reactions,
        vec![reaction("👍", &[a]), reaction("🎉", &[b])]
    );
    assert!(matches!(body(&event), Body::ReactionChanged(r) if !r.added));
    assert_eq!(
        s.set_reaction(
            c,
            m.seq,
            Actor::unjudged(b),
            "👍",
            ReactionChange::Remove,
            T0
        )
        .await
        .expect("no-op"),
        (msg.clone(), None)
    );
    assert_eq!(
        s.message(c, m.seq).await.expect("get").expect("exists"),
        msg
    );
    match body(&all_events(&s, c).await[1]) {
        Body::MessageCreated(shown) => assert_eq!(shown.reactions, msg.reactions),
        other => panic!("expected message_created, got {other:?}"),
    }
    assert_not_found(
        s.set_reaction(c, 999, Actor::unjudged(b), "👍", ADD, T0)
            .await,
        "message",
    );

    // The emoji limit counts different emoji, and holds for new ones only.
    let two = ReactionChange::Add { max_emoji: 2 };
    assert_conflict(
        s.set_reaction(c, m.seq, Actor::unjudged(a), "🔥", two, T0 + 5)
            .await,
        ConflictKind::TooManyEmoji { max_emoji: 2 },
    );
    let (msg, event) = s
        .set_reaction(c, m.seq, Actor::unjudged(b), "👍", two, T0 + 5)
        .await
        .expect("an emoji the message has");
    assert!(event.is_some());
    assert_eq!(
        msg.reactions,
        vec![reaction("👍", &[a, b]), reaction("🎉", &[b])]
    );
    assert_eq!(
        s.message(c, m.seq).await.expect("get").expect("exists"),
        msg
    );
}

/// History pages: latest, before, after, capped by up_to_seq, skipping non-message events.
pub async fn messages_history_paging<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let g = group(&s, a, &[]).await;
    for i in 0..10 {
        send(&s, g, a, &format!("m{i}"), T0 + i).await;
    }
    s.update_chat(g, Actor::unjudged(a), ChatPatch::default(), T0 + 20)
        .await
        .expect("update");
    send(&s, g, a, "last", T0 + 21).await;
    // Messages are at seqs 2..=11 and 13; 12 is chat_updated.
    let page = |before_seq, after_seq, up_to_seq, limit| {
        let s = &s;
        async move {
            seqs(
                &s.history(HistoryQuery {
                    chat_id: g,
                    viewer: a,
                    before_seq,
                    after_seq,
                    up_to_seq,
                    limit,
                })
                .await
                .expect("history"),
            )
        }
    };
    assert_eq!(page(0, 0, MAX, 3).await, vec![10, 11, 13]);
    assert_eq!(page(10, 0, MAX, 3).await, vec![7, 8, 9]);
    assert_eq!(page(4, 0, MAX, 5).await, vec![2, 3]);
    assert_eq!(page(0, 5, MAX, 3).await, vec![6, 7, 8]);
    assert_eq!(page(0, 10, MAX, 10).await, vec![11, 13]);
    assert_eq!(page(0, 0, 7, 3).await, vec![5, 6, 7]);
    assert_eq!(page(0, 5, 7, 10).await, vec![6, 7]);
    assert_eq!(page(10, 5, MAX, 2).await, vec![6, 7]);
    assert_eq!(page(10, 5, MAX, 10).await, vec![6, 7, 8, 9]);
    assert_eq!(page(0, 13, MAX, 10).await, Vec::<u64>::new());
    assert_eq!(page(2, 0, MAX, 10).await, Vec::<u64>::new());
}

/// Event ranges are `after < seq <= up_to`, ascending and contiguous, at most `limit`.
pub async fn messages_events_range<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let g = group(&s, a, &[]).await;
    for i in 0..5 {
        send(&s, g, a, "m", T0 + i).await;
    }
    s.update_chat(g, Actor::unjudged(a), ChatPatch::default(), T0 + 9)
        .await
        .expect("update");
    let range = |after, up_to, limit| {
        let s = &s;
        async move {
            s.events(g, after, up_to, limit)
                .await
                .expect("events")
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(range(0, MAX, 100).await, vec![1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(range(2, 5, 100).await, vec![3, 4, 5]);
    assert_eq!(range(2, MAX, 2).await, vec![3, 4]);
    assert_eq!(range(7, MAX, 10).await, Vec::<u64>::new());
    assert_eq!(range(0, 0, 10).await, Vec::<u64>::new());
    let events = s.events(g, 5, 7, 10).await.expect("events");
    assert!(matches!(body(&events[0]), Body::MessageCreated(m) if m.seq == 6));
    assert!(matches!(body(&events[1]), Body::ChatUpdated(_)));
    assert_eq!((events[1].actor_id, events[1].at_ms), (a, T0 + 9));
}

/// Receipt cursors only move forward, never past the log, and read implies delivered.
pub async fn messages_receipts<S: Store + 'static>(s: S) {
    let a = user(&s, "a").await;
    let b = user(&s, "b").await;
    let x = user(&s, "x").await;
    let c = private(&s, a, b).await;
    for i in 0..3 {
        send(&s, c, b, "m", T0 + i).await;
    }
    // Seqs 2, 3 and 4 are messages.
    let mark = |kind, up_to| {
        let s = &s;
        async move { s.mark_receipt(c, a, kind, up_to).await.expect("mark") }
    };
    use pb::ReceiptKind::{Delivered, Read};
    assert_eq!(mark(Delivered, 3).await, Some((3, 0)));
    assert_eq!(mark(Delivered, 2).await, None);
    assert_eq!(mark(Read, 2).await, Some((3, 2)));
    assert_eq!(mark(Read, 4).await, Some((4, 4)));
    assert_eq!(mark(Read, 100).await, None, "capped at the last seq");
    send(&s, c, b, "m", T0 + 5).await;
    assert_eq!(mark(Read, 100).await, Some((5, 5)));
    assert_eq!(mark(Delivered, 5).await, None);

    let mut receipts = s.receipts(c).await.expect("receipts");
    receipts.sort_by_key(|r| r.user_id);
    assert_eq!(
        receipts,
        vec![
            pb::MemberReceipt {
                user_id: a,
                delivered_seq: 5,
                read_seq: 5
            },
            pb::MemberReceipt {
                user_id: b,
                delivered_seq: 0,
                read_seq: 0
            },
        ]
    );
    assert_not_found(s.mark_receipt(c, x, Read, 1).await, "member");
    let g = group(&s, a, &[x]).await;
    s.remove_member(g, Actor::unjudged(a), x, true, T0)
        .await
        .expect("leave");
    assert_not_found(s.mark_receipt(g, x, Read, 1).await, "member");
    assert_eq!(
        s.receipts(g)
            .await
            .expect("receipts")
            .iter()
            .map(|r| r.user_id)
            .collect::<Vec<_>>(),
        vec![a]
    );
}
