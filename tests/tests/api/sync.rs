//! Gap-free delivery end to end: many concurrent senders into one chat, a reconnect in the middle
//! of a burst, and catching up by hand with Sync and GetChatEvents (paging, limits, former
//! members).

use std::collections::HashMap;

use crate::support::*;
use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::chat_event::Body;
use pb::ErrorCode as E;

/// Reads `user`'s events of `chat_id` until `count` messages arrived; checks that chat events
/// came contiguous and in order, and returns the messages' texts in arrival order.
async fn collect_messages(user: &User, chat_id: u64, count: usize) -> Vec<pb::Message> {
    let mut messages = Vec::with_capacity(count);
    let mut last_seq: Option<u64> = None;
    while messages.len() < count {
        let ev = user.next_chat_event(chat_id).await;
        if let Some(last) = last_seq {
            assert_eq!(
                ev.seq,
                last + 1,
                "{}: chat events out of order or with a gap",
                user.name
            );
        }
        last_seq = Some(ev.seq);
        if let Some(Body::MessageCreated(m)) = ev.body {
            messages.push(m);
        }
    }
    messages
}

/// Checks that each sender's messages arrived in the order they were sent ("s{i}-{j}", j rising).
fn assert_per_sender_order(messages: &[pb::Message]) {
    let mut next: HashMap<String, u32> = HashMap::new();
    for m in messages {
        let (sender, n) = m.text.split_once('-').expect("s{i}-{j}");
        let n: u32 = n.parse().expect("number");
        let expected = next.entry(sender.to_string()).or_insert(0);
        assert_eq!(n, *expected, "messages of {sender} out of order");
        *expected += 1;
    }
}

#[tokio::test]
async fn concurrent_senders_get_gap_free_seqs_and_every_member_receives_all_in_order() {
    const SENDERS: usize = 8;
    const EACH: usize = 50;
    let server = start().await;
    let owner = register(&server, "owner").await;
    let observer = register(&server, "observer").await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        senders.push(register(&server, &format!("sender{i}")).await);
    }
    let mut members: Vec<&User> = senders.iter().collect();
    members.push(&observer);
    let g = group(&owner, pb::ChatKind::Group, "busy", &members)
        .await
        .id;

    let mut tasks = Vec::new();
    for (i, sender) in senders.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::with_capacity(EACH);
            for j in 0..EACH {
                seqs.push(sender.send(g, &format!("s{i}-{j}")).await.seq);
            }
            (sender, seqs)
        }));
    }
    let mut senders = Vec::new();
    let mut all_seqs = Vec::new();
    for task in tasks {
        let (sender, seqs) = task.await.expect("sender task");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one sender's seqs must rise"
        );
        all_seqs.extend(seqs);
        senders.push(sender);
    }
    all_seqs.sort_unstable();
    // seq 1 is chat_created: the messages took 2..=401, each exactly once.
    let expected: Vec<u64> = (2..2 + (SENDERS * EACH) as u64).collect();
    assert_eq!(all_seqs, expected);

    let mut everyone: Vec<&User> = senders.iter().collect();
    everyone.push(&owner);
    everyone.push(&observer);
    for user in everyone {
        let got = collect_messages(user, g, SENDERS * EACH).await;
        assert_eq!(
            seqs(&got),
            expected,
            "{} did not get every message exactly once",
            user.name
        );
        assert_per_sender_order(&got);
    }
}

#[tokio::test]
async fn a_reconnect_in_the_middle_of_a_burst_loses_and_duplicates_nothing() {
    let server = start().await;
    let sender = register(&server, "sender").await;
    let observer = register(&server, "observer").await;
    let g = group(&sender, pb::ChatKind::Group, "burst", &[&observer])
        .await
        .id;

    for j in 0..50 {
        sender.send(g, &format!("s0-{j}")).await;
    }
    let first = collect_messages(&observer, g, 50).await;
    // Drop the observer's connection from the server side, and keep sending while the client
    // is away and reconnecting.
    assert_eq!(server.kick_connections_of(observer.id), 1);
    let burst = tokio::spawn(async move {
        for j in 50..200 {
            sender.send(g, &format!("s0-{j}")).await;
        }
        sender
    });
    let mut reconnected = false;
    let mut rest = Vec::new();
    let mut last_seq = first.last().map(|m| m.seq).unwrap_or(0);
    while rest.len() < 150 {
        match tokio::time::timeout(WAIT, observer.client.next_event())
            .await
            .expect("events")
            .expect("stream")
        {
            ClientEvent::Connected { .. } => reconnected = true,
            ClientEvent::Chat(ev) if ev.chat_id == g => {
                assert_eq!(
                    ev.seq,
                    last_seq + 1,
                    "gap or duplicate across the reconnect"
                );
                last_seq = ev.seq;
                if let Some(Body::MessageCreated(m)) = ev.body {
                    rest.push(m);
                }
            }
            _ => {}
        }
    }
    assert!(reconnected, "the client never reconnected");
    burst.await.expect("burst task");
    let mut all = first;
    all.extend(rest);
    assert_per_sender_order(&all);
    assert_eq!(all.len(), 200);
    let server_side = observer
        .client
        .get_chat_events(pb::GetChatEvents {
            chat_id: g,
            after_seq: 0,
            limit: 500,
        })
        .await
        .unwrap();
    assert_eq!(server_side.events.last().map(|e| e.seq), Some(last_seq));
    assert!(!server_side.more);
}

#[tokio::test]
async fn sync_and_get_chat_events_catch_up_by_hand() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let g = group(&alice, pb::ChatKind::Group, "log", &[&bob]).await.id;
    let mut head = 0;
    for i in 0..30 {
        head = alice.send(g, &format!("entry {i}")).await.seq;
    }
    let c = &bob.client;
    let sync = c
        .sync(pb::Sync {
            cursors: vec![pb::ChatCursor { chat_id: g, seq: 5 }],
            ..Default::default()
        })
        .await
        .unwrap();
    let h = sync.heads.iter().find(|h| h.chat_id == g).expect("head");
    assert_eq!((h.last_seq, h.member), (head, true));
    // Chats left out of the cursors are reported too while one is a member.
    assert!(
        c.sync(pb::Sync::default())
            .await
            .unwrap()
            .heads
            .iter()
            .any(|h| h.chat_id == g)
    );

    let mut after = 5;
    let mut pages = 0;
    loop {
        let page = c
            .get_chat_events(pb::GetChatEvents {
                chat_id: g,
                after_seq: after,
                limit: 10,
            })
            .await
            .unwrap();
        pages += 1;
        for ev in &page.events {
            assert_eq!(ev.seq, after + 1);
            after = ev.seq;
        }
        if !page.more {
            break;
        }
        assert_eq!(page.events.len(), 10);
    }
    assert_eq!((after, pages), (head, 3));
    let empty = c
        .get_chat_events(pb::GetChatEvents {
            chat_id: g,
            after_seq: head,
            limit: 0,
        })
        .await
        .unwrap();
    assert!(empty.events.is_empty() && !empty.more);
    assert!(
        c.get_chat_events(pb::GetChatEvents {
            chat_id: g,
            after_seq: 0,
            limit: 500
        })
        .await
        .is_ok()
    );
    assert_field(
        c.get_chat_events(pb::GetChatEvents {
            chat_id: g,
            after_seq: 0,
            limit: 501,
        })
        .await,
        E::InvalidArgument,
        "get_chat_events.limit",
    );

    // A removed member reads up to the removal and no further; Sync says where it ended.
    alice
        .client
        .remove_member(pb::RemoveMember {
            chat_id: g,
            user_id: bob.id,
        })
        .await
        .unwrap();
    for i in 0..3 {
        alice.send(g, &format!("private {i}")).await;
    }
    let tail = c
        .get_chat_events(pb::GetChatEvents {
            chat_id: g,
            after_seq: head,
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(tail.events.len(), 1);
    assert!(matches!(&tail.events[0].body, Some(Body::MemberRemoved(r)) if r.user_id == bob.id));
    assert!(!tail.more);
    let removed_at = tail.events[0].seq;
    let beyond = c
        .get_chat_events(pb::GetChatEvents {
            chat_id: g,
            after_seq: removed_at,
            limit: 0,
        })
        .await
        .unwrap();
    assert!(beyond.events.is_empty() && !beyond.more);
    let sync = c
        .sync(pb::Sync {
            cursors: vec![pb::ChatCursor {
                chat_id: g,
                seq: head,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let h = sync
        .heads
        .iter()
        .find(|h| h.chat_id == g)
        .expect("head of the left chat");
    assert_eq!((h.last_seq, h.member), (removed_at, false));
    // Not named in the cursors, a chat one left is not reported.
    assert!(
        c.sync(pb::Sync::default())
            .await
            .unwrap()
            .heads
            .iter()
            .all(|h| h.chat_id != g)
    );
}

/// A brand-new client (no stored cursors) starts each chat in the recent past: the SDK's default
/// policy fetches the last `DEFAULT_RECENT_EVENTS` events, and a client may choose otherwise.
#[tokio::test]
async fn a_new_client_catches_up_from_the_recent_past() {
    use chatproto::client::{DEFAULT_RECENT_EVENTS, UnknownChatPolicy};
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let chat = group(&alice, pb::ChatKind::Group, "history", &[&bob]).await;
    let total = DEFAULT_RECENT_EVENTS + 30;
    let mut last = 0;
    for i in 0..total {
        last = alice.send(chat.id, &format!("m{i}")).await.seq;
    }
    // Bob's new device: the first chat event it sees is DEFAULT_RECENT_EVENTS before the head,
    // and every later one follows in order up to the head.
    let fresh = device(&server, &bob).await;
    let first = fresh.next_chat_event(chat.id).await;
    assert_eq!(first.seq, last - DEFAULT_RECENT_EVENTS + 1);
    let mut seq = first.seq;
    while seq < last {
        let ev = fresh.next_chat_event(chat.id).await;
        assert_eq!(ev.seq, seq + 1);
        seq = ev.seq;
    }
    // A client that asks for everything replays from the chat's first event.
    let mut all = config(&server);
    all.unknown_chats = UnknownChatPolicy::Backfill;
    let full = device_with(all, &bob).await;
    assert_eq!(full.next_chat_event(chat.id).await.seq, 1);
}

/// Sync answers a range of chat ids at a time (protocol.md 7.3, "Pages"): the heads in
/// `(after_chat_id, through_chat_id]` by ascending id, with where the next page starts; a bound
/// that is not above the start is INVALID_ARGUMENT.
#[tokio::test]
async fn sync_answers_a_range_of_chat_ids() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            group(&alice, pb::ChatKind::Group, &format!("g{i}"), &[&bob])
                .await
                .id,
        );
    }
    ids.sort_unstable();
    let c = &bob.client;
    let sync = |after_chat_id, through_chat_id| {
        c.sync(pb::Sync {
            cursors: vec![pb::ChatCursor {
                chat_id: ids[3],
                seq: 1,
            }],
            after_chat_id,
            through_chat_id,
        })
    };
    let chat_ids = |r: &pb::SyncResult| r.heads.iter().map(|h| h.chat_id).collect::<Vec<_>>();

    let all = sync(0, 0).await.unwrap();
    assert_eq!((chat_ids(&all), all.next_after_chat_id), (ids.clone(), 0));
    let first = sync(0, ids[1]).await.unwrap();
    assert_eq!(
        (chat_ids(&first), first.next_after_chat_id),
        (ids[..2].to_vec(), ids[1]),
        "a bounded range points past its bound"
    );
    let rest = sync(first.next_after_chat_id, 0).await.unwrap();
    assert_eq!(
        (chat_ids(&rest), rest.next_after_chat_id),
        (ids[2..].to_vec(), 0)
    );

    for through in [ids[1], ids[0]] {
        let err = remote(sync(ids[1], through).await);
        assert_eq!(
            (err.code, err.field.as_str()),
            (E::InvalidArgument, "sync.through_chat_id")
        );
    }
}
