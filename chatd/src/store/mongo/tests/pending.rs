//! The claim protocol: crashes at every step are rolled forward, a claimed duplicate send is
//! cancelled without a gap, concurrent writers get contiguous seqs.

use std::collections::BTreeSet;
use std::time::Duration;

use chatproto::pb;
use chatproto::pb::chat_event::Body;
use mongodb::bson::doc;

use super::{group, text, users};
use crate::store::mongo::docs::{ChatDoc, i};
use crate::store::mongo::messages::message_op;
use crate::store::mongo::pending::{ChatChanges, Effect, PendingOp};
use crate::store::mongo::{MongoOptions, MongoStore, testserver};
use crate::store::{Actor, ChatStore, MessageStore};

/// A store whose writers and readers finish an op in flight after `repair_after`.
async fn store(repair_after: Duration) -> MongoStore {
    testserver::store_with(MongoOptions {
        repair_after,
        ..MongoOptions::default()
    })
    .await
}

async fn chat_doc(store: &MongoStore, chat_id: u64) -> ChatDoc {
    store
        .c
        .chats
        .find_one(doc! { "_id": i(chat_id) })
        .await
        .unwrap()
        .unwrap()
}

/// Claims the next seq of the chat for `op` without finishing it: what a crash right after the
/// claim leaves.
async fn claim_only(store: &MongoStore, chat_id: u64, op: &mut PendingOp) -> i64 {
    let chat = chat_doc(store, chat_id).await;
    store
        .claim(&chat, op)
        .await
        .unwrap()
        .expect("the seq was free")
}

/// Every event, asserting their seqs run 1..=n with no gap and end at the chat's head.
async fn assert_contiguous(store: &MongoStore, chat_id: u64) -> Vec<pb::ChatEvent> {
    let events = store.events(chat_id, 0, u64::MAX, 1000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "events are not contiguous");
    assert_eq!(chat_doc(store, chat_id).await.last_seq, seqs.len() as i64);
    let beyond = store
        .c
        .events
        .count_documents(doc! { "chat_id": i(chat_id), "seq": { "$gt": seqs.len() as i64 } });
    assert_eq!(beyond.await.unwrap(), 0, "a claim beyond the head is left");
    events
}

/// Asserts no event of the chat still holds its op, or the mark that it does, once the store
/// is idle (every op finished normally; group commit clears committed claims right after
/// answering).
async fn assert_no_ops_left(store: &MongoStore, chat_id: u64) {
    let mut left = u64::MAX;
    for _ in 0..200 {
        left = store
            .c
            .events
            .count_documents(doc! {
                "chat_id": i(chat_id),
                "$or": [{ "op": { "$ne": null } }, { "holds_op": { "$exists": true } }],
            })
            .await
            .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(left, 0, "ops still held by committed claims");
}

#[tokio::test]
async fn a_send_interrupted_after_any_step_is_rolled_forward() {
    // Steps of a send after its claim: 1 decide (claim the key), 2 insert message, 3 commit.
    for crash_after in 0..=3 {
        // Long enough for the reader checks below to run before the op counts as abandoned.
        let store = store(Duration::from_millis(400)).await;
        let ids = users(&store, &["ann", "bob"]).await;
        let chat_id = group(&store, ids[0], &[ids[1]]).await;
        let new = text(chat_id, ids[0], "m1", "hello there", 3_000);
        let (mut op, _, _) = message_op(&new);
        let first = claim_only(&store, chat_id, &mut op).await;
        assert_eq!(first, 2);
        if crash_after >= 1 {
            assert!(
                store
                    .decide(i(chat_id), &op, first)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        if crash_after >= 2 {
            for effect in &op.effects {
                store
                    .apply(i(chat_id), &op, first, first, effect)
                    .await
                    .unwrap();
            }
        }
        if crash_after == 3 {
            store.commit(i(chat_id), &op, first).await.unwrap();
        } else {
            // Readers see only the committed head meanwhile.
            assert_eq!(
                store.chat(chat_id).await.unwrap().unwrap().last_seq,
                1,
                "crash after {crash_after}"
            );
            assert_eq!(
                store.events(chat_id, 0, u64::MAX, 10).await.unwrap().len(),
                1
            );
        }
        // The next send finishes the interrupted one first and follows it.
        let next = store
            .append_message(text(chat_id, ids[1], "m2", "second", 4_000))
            .await
            .unwrap();
        assert_eq!(
            next.event.as_ref().map(|e| e.seq),
            Some(3),
            "crash after {crash_after}"
        );
        let events = assert_contiguous(&store, chat_id).await;
        match &events[1].body {
            Some(Body::MessageCreated(m)) => {
                assert_eq!((m.seq, m.text.as_str()), (2, "hello there"))
            }
            other => panic!("crash after {crash_after}: seq 2 is {other:?}"),
        }
        // The interrupted send's retry finds it, and appends nothing.
        let retry = store.append_message(new.clone()).await.unwrap();
        assert_eq!((retry.message.seq, retry.event), (2, None));
        assert_eq!(chat_doc(&store, chat_id).await.last_seq, 3);
    }
}

#[tokio::test]
async fn events_repair_an_abandoned_op_only_once_it_is_stale() {
    let store = store(Duration::from_millis(300)).await;
    let ids = users(&store, &["ann"]).await;
    let chat_id = group(&store, ids[0], &[]).await;
    let (mut op, _, _) = message_op(&text(chat_id, ids[0], "m1", "parked", 3_000));
    claim_only(&store, chat_id, &mut op).await;
    // Fresh: its owner may still be working on it; readers leave it alone.
    assert_eq!(
        store.events(chat_id, 0, u64::MAX, 10).await.unwrap().len(),
        1
    );
    assert!(store.message(chat_id, 2).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(350)).await;
    let events = store.events(chat_id, 0, u64::MAX, 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        store.message(chat_id, 2).await.unwrap().unwrap().text,
        "parked"
    );
    assert_contiguous(&store, chat_id).await;
    assert_no_ops_left(&store, chat_id).await;
}

#[tokio::test]
async fn an_interrupted_member_change_is_completed_by_the_next_writer() {
    let store = store(Duration::from_millis(30)).await;
    let ids = users(&store, &["ann", "bob", "cid"]).await;
    let chat_id = group(&store, ids[0], &[]).await;
    let added = pb::MembersAdded {
        members: ids[1..]
            .iter()
            .map(|&user_id| pb::Member {
                user_id,
                role: pb::MemberRole::Member as i32,
                joined_at_ms: 3_000,
            })
            .collect(),
    };
    let event = pb::ChatEvent {
        chat_id,
        seq: 0,
        at_ms: 3_000,
        actor_id: ids[0],
        body: Some(Body::MembersAdded(added)),
    };
    let effects = ids[1..]
        .iter()
        .map(|&id| Effect::Join {
            user_id: i(id),
            role: pb::MemberRole::Member as i32,
        })
        .collect();
    let commit = ChatChanges {
        member_count: Some(3),
        ..Default::default()
    };
    let mut op = PendingOp::new(3_000, vec![event], effects, commit);
    let first = claim_only(&store, chat_id, &mut op).await;
    // Crash after the first of the two joins.
    store
        .apply(i(chat_id), &op, first, first, &op.effects[0])
        .await
        .unwrap();
    let sent = store
        .append_message(text(chat_id, ids[0], "m1", "welcome", 4_000))
        .await
        .unwrap();
    assert_eq!(sent.event.map(|e| e.seq), Some(3));
    let members: Vec<u64> = store
        .members(chat_id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(members, ids);
    let chat = store.chat(chat_id).await.unwrap().unwrap();
    assert_eq!(
        (chat.member_count, chat.last_seq, chat.last_activity_ms),
        (3, 3, 4_000)
    );
    let joined = store.member(chat_id, ids[2]).await.unwrap().unwrap();
    assert_eq!(joined.joined_at_seq, 2);
    assert_contiguous(&store, chat_id).await;
    assert_no_ops_left(&store, chat_id).await;
}

#[tokio::test]
async fn a_late_replay_of_a_finished_op_does_not_undo_later_ops() {
    let store = store(Duration::from_millis(30)).await;
    let ids = users(&store, &["ann", "bob"]).await;
    let chat_id = group(&store, ids[0], &[ids[1]]).await;
    let sent = store
        .append_message(text(chat_id, ids[1], "m1", "first text", 3_000))
        .await
        .unwrap();
    let seq = sent.message.seq;
    // An edit op, finished, then a delete after it.
    let edit = Effect::EditMessage {
        seq: i(seq),
        text: "edited".into(),
        tokens: vec!["edited".into()],
        history: Vec::new(),
    };
    let body = Body::MessageEdited(pb::MessageEdited {
        message_seq: seq,
        text: "edited".into(),
        edited_at_ms: 4_000,
    });
    let event = pb::ChatEvent {
        chat_id,
        seq: 0,
        at_ms: 4_000,
        actor_id: ids[1],
        body: Some(body),
    };
    let mut op = PendingOp::new(4_000, vec![event], vec![edit], ChatChanges::default());
    let first = claim_only(&store, chat_id, &mut op).await;
    store.finish(i(chat_id), &op, first).await.unwrap();
    assert_eq!(
        store.message(chat_id, seq).await.unwrap().unwrap().text,
        "edited"
    );
    store
        .delete_message(chat_id, seq, Actor::unjudged(ids[1]), 5_000)
        .await
        .unwrap();
    // A slow owner of the edit now replays it: nothing may change.
    store.finish(i(chat_id), &op, first).await.unwrap();
    let message = store.message(chat_id, seq).await.unwrap().unwrap();
    assert!(message.deleted);
    assert_eq!(message.text, "");
    let events = assert_contiguous(&store, chat_id).await;
    match &events[2].body {
        Some(Body::MessageEdited(e)) => assert_eq!(e.text, "", "the edit text was not purged"),
        other => panic!("seq 3 is {other:?}"),
    }
    assert_eq!(chat_doc(&store, chat_id).await.last_seq, 4);
    assert_no_ops_left(&store, chat_id).await;
}

#[tokio::test]
async fn a_claimed_send_whose_key_was_taken_elsewhere_is_cancelled_without_a_gap() {
    let store = store(Duration::from_millis(30)).await;
    let ids = users(&store, &["ann", "bob"]).await;
    let chat_a = group(&store, ids[0], &[ids[1]]).await;
    let chat_b = group(&store, ids[0], &[ids[1]]).await;
    // The send to B claimed seq 2 and stopped before claiming its key...
    let to_b = text(chat_b, ids[0], "same-key", "to b", 3_000);
    let (mut op, _, _) = message_op(&to_b);
    assert_eq!(claim_only(&store, chat_b, &mut op).await, 2);
    // ... while the same key was sent to A.
    let to_a = store
        .append_message(text(chat_a, ids[0], "same-key", "to a", 3_100))
        .await
        .unwrap();
    assert_eq!(to_a.event.as_ref().map(|e| e.seq), Some(2));
    // Finishing B's op finds the key taken: it is undone, B's seq 2 is free again.
    let next_b = store
        .append_message(text(chat_b, ids[1], "other", "hello b", 4_000))
        .await
        .unwrap();
    assert_eq!(next_b.event.as_ref().map(|e| e.seq), Some(2));
    assert_contiguous(&store, chat_a).await;
    assert_contiguous(&store, chat_b).await;
    assert_no_ops_left(&store, chat_b).await;
    let retry = store.append_message(to_b).await.unwrap();
    assert_eq!(
        (
            retry.message.chat_id,
            retry.message.text.as_str(),
            retry.event
        ),
        (chat_a, "to a", None)
    );
}

/// `n` stores on one database, as `n` chatd instances: their claims race in the database.
async fn instances(n: usize, repair_after: Duration) -> Vec<MongoStore> {
    let first = store(repair_after).await;
    let mut all = vec![first.clone()];
    for _ in 1..n {
        all.push(testserver::another_instance(&first).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_from_several_instances_get_contiguous_seqs() {
    let stores = instances(4, Duration::from_secs(2)).await;
    let ids = users(&stores[0], &["ann", "bob"]).await;
    let chat_id = group(&stores[0], ids[0], &[ids[1]]).await;
    let sends = (0..32)
        .map(|n| {
            let store = stores[n % stores.len()].clone();
            let sender = ids[n % 2];
            tokio::spawn(async move {
                store
                    .append_message(text(
                        chat_id,
                        sender,
                        &format!("k{n}"),
                        &format!("m{n}"),
                        3_000 + n as i64,
                    ))
                    .await
            })
        })
        .collect::<Vec<_>>();
    let mut seqs = BTreeSet::new();
    for send in sends {
        let outcome = send.await.unwrap().unwrap();
        let event = outcome.event.expect("a new message appends an event");
        assert_eq!(event.seq, outcome.message.seq);
        assert!(seqs.insert(event.seq), "seq {} given twice", event.seq);
    }
    assert_eq!(seqs, (2..=33).collect());
    let events = assert_contiguous(&stores[0], chat_id).await;
    for event in &events[1..] {
        match &event.body {
            Some(Body::MessageCreated(m)) => assert_eq!(m.seq, event.seq),
            other => panic!("seq {} is {other:?}", event.seq),
        }
    }
    assert_no_ops_left(&stores[0], chat_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicate_sends_from_several_instances_append_once() {
    let stores = instances(4, Duration::from_secs(2)).await;
    let ids = users(&stores[0], &["ann", "bob"]).await;
    let chat_a = group(&stores[0], ids[0], &[ids[1]]).await;
    let chat_b = group(&stores[0], ids[0], &[ids[1]]).await;
    let sender = ids[0];
    // The same key in one chat from every instance, and in a second chat.
    let sends = (0..16)
        .map(|n| {
            let store = stores[n % stores.len()].clone();
            let chat = if n % 3 == 2 { chat_b } else { chat_a };
            tokio::spawn(async move {
                store
                    .append_message(text(chat, sender, "dup", "only once", 3_000))
                    .await
            })
        })
        .collect::<Vec<_>>();
    let mut outcomes = Vec::new();
    for send in sends {
        outcomes.push(send.await.unwrap().unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| o.event.is_some()).count(), 1);
    let original = &outcomes[0].message;
    assert!(outcomes.iter().all(|o| o.message == *original));
    let a = assert_contiguous(&stores[0], chat_a).await.len();
    let b = assert_contiguous(&stores[0], chat_b).await.len();
    assert_eq!(
        a + b,
        3,
        "one chat has the message, the other only its creation"
    );
    assert_no_ops_left(&stores[0], chat_a).await;
    assert_no_ops_left(&stores[0], chat_b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_private_chat_opens_from_several_instances_create_one_chat() {
    let stores = instances(4, Duration::from_secs(2)).await;
    let ids = users(&stores[0], &["ann", "bob"]).await;
    let opens = (0..8)
        .map(|n| {
            let store = stores[n % stores.len()].clone();
            let (a, b) = if n % 2 == 0 {
                (ids[0], ids[1])
            } else {
                (ids[1], ids[0])
            };
            tokio::spawn(async move { store.open_private_chat(a, b, 1_000).await })
        })
        .collect::<Vec<_>>();
    let mut results = Vec::new();
    for open in opens {
        results.push(open.await.unwrap().unwrap());
    }
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    let id = results[0].0.id;
    assert!(
        results
            .iter()
            .all(|(chat, _)| chat.id == id && chat.last_seq == 1 && chat.member_count == 2)
    );
    assert_contiguous(&stores[0], id).await;
}
