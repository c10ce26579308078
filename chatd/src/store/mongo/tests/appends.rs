//! Group commit of appends and bulk membership writes: what they cost in database commands
//! (round trips), counted by the driver, and that batching changes nothing of the outcome.

use std::collections::BTreeMap;
use std::time::Duration;

use chatproto::pb;
use prometheus_client::metrics::counter::Counter;

use super::{group, text, users};
use crate::store::mongo::testserver;
use crate::store::mongo::{CommandLog, MongoOptions, MongoStore};
use crate::store::{Actor, ChatStore, MessageStore, NewGroup, SendOutcome};

/// Sends `sends` messages at once: the n-th through `stores[n % len]` to `chats[n % len]` from
/// `senders[n % len]`, started `spread * n` after the first. Every outcome, in send order.
async fn send_all(
    stores: &[MongoStore],
    chats: &[u64],
    senders: &[u64],
    sends: usize,
    spread: Duration,
) -> Vec<SendOutcome> {
    let tasks: Vec<_> = (0..sends)
        .map(|n| {
            let store = stores[n % stores.len()].clone();
            let (chat, sender) = (chats[n % chats.len()], senders[n % senders.len()]);
            tokio::spawn(async move {
                if !spread.is_zero() {
                    tokio::time::sleep(spread * n as u32).await;
                }
                store
                    .append_message(text(
                        chat,
                        sender,
                        &format!("k{n}"),
                        &format!("m{n}"),
                        5_000,
                    ))
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(sends);
    for task in tasks {
        outcomes.push(task.await.expect("task").expect("send"));
    }
    outcomes
}

/// Every chat among `outcomes` got seqs 2, 3, ... (after `chat_created`), `per_chat` of them,
/// each once.
fn assert_gap_free(outcomes: &[SendOutcome], per_chat: usize) {
    let mut seqs: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for outcome in outcomes {
        seqs.entry(outcome.message.chat_id)
            .or_default()
            .push(outcome.message.seq);
    }
    for (chat, mut got) in seqs {
        got.sort_unstable();
        let expected: Vec<u64> = (2..2 + per_chat as u64).collect();
        assert_eq!(got, expected, "chat {chat}");
    }
}

async fn counted() -> (MongoStore, Counter) {
    let counter = Counter::default();
    let store = testserver::store_with(MongoOptions {
        command_counter: Some(counter.clone()),
        repair_after: Duration::from_secs(2),
        ..MongoOptions::default()
    })
    .await;
    (store, counter)
}

/// A store that keeps every command it sends.
async fn logged() -> (MongoStore, CommandLog) {
    let log = CommandLog::default();
    let store = testserver::store_with(MongoOptions {
        command_log: Some(log.clone()),
        ..MongoOptions::default()
    })
    .await;
    (store, log)
}

/// Many sends at once, to several chats: every one gets its own seq, gap-free per chat, and the
/// whole costs well under one database command per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_share_their_round_trips() {
    const CHATS: usize = 8;
    const SENDS: usize = 400;
    let (store, commands) = counted().await;
    let ids = users(&store, &["ann", "bob", "cid"]).await;
    let mut chats = Vec::new();
    for _ in 0..CHATS {
        chats.push(group(&store, ids[0], &ids[1..]).await);
    }
    let before = commands.get();
    let outcomes = send_all(
        std::slice::from_ref(&store),
        &chats,
        &ids,
        SENDS,
        Duration::ZERO,
    )
    .await;
    for outcome in &outcomes {
        let event = outcome
            .event
            .as_ref()
            .expect("a new message appends an event");
        assert_eq!(event.seq, outcome.message.seq);
    }
    let used = commands.get() - before;
    assert_gap_free(&outcomes, SENDS / CHATS);
    for chat in chats {
        assert_eq!(
            store
                .chat(chat)
                .await
                .expect("chat")
                .expect("exists")
                .last_seq,
            1 + (SENDS / CHATS) as u64
        );
    }
    assert!(
        used * 2 <= SENDS as u64,
        "{used} commands for {SENDS} concurrent sends"
    );
    assert_claims_cleaned(&store).await;
}

/// Once nothing waits, every committed claim soon gives up its copy of the op and the mark
/// that it holds one (cleaning runs in the background).
async fn assert_claims_cleaned(store: &MongoStore) {
    let mut holding = u64::MAX;
    for _ in 0..100 {
        holding = store
            .c
            .events
            .count_documents(mongodb::bson::doc! {
                "$or": [{ "op": { "$ne": null } }, { "holds_op": { "$exists": true } }],
            })
            .await
            .expect("count claims");
        if holding == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(holding, 0, "claims still holding their op after 5 s");
}

/// Cleaning selects committed claims by `holds_op: true`, an equality FerretDB's PostgreSQL
/// handler has PostgreSQL filter on, so FerretDB decodes only the claims it clears; a filter on
/// `op` itself (not null) is not handed down, and FerretDB decoded the chat's whole log for
/// every statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaning_selects_claims_by_their_mark() {
    let (store, log) = logged().await;
    let ids = users(&store, &["ann", "bob"]).await;
    let chats = [
        group(&store, ids[0], &[ids[1]]).await,
        group(&store, ids[1], &[ids[0]]).await,
    ];
    log.lock().expect("log").clear();
    let outcomes = send_all(
        std::slice::from_ref(&store),
        &chats,
        &ids,
        16,
        Duration::ZERO,
    )
    .await;
    assert_gap_free(&outcomes, 8);
    assert_claims_cleaned(&store).await;

    let log = log.lock().expect("log");
    let cleanings: Vec<&mongodb::bson::Document> = log
        .iter()
        .filter(|c| c.get_str("update").is_ok_and(|name| name == "events"))
        .filter_map(|c| c.get_array("updates").ok())
        .flatten()
        .filter_map(|u| u.as_document())
        .filter(|u| u.get_bool("multi").unwrap_or(false))
        .filter_map(|u| u.get_document("q").ok())
        .collect();
    assert!(!cleanings.is_empty(), "no cleaning statement was sent");
    for filter in cleanings {
        assert!(filter.get_bool("holds_op").unwrap_or(false), "{filter}");
        assert!(!filter.contains_key("op"), "{filter}");
    }
}

/// One send at a time, to a chat this store wrote before, from a sender it knows: one command
/// per step and no read (claim, decide, insert the message, move the head; clear the claim when
/// nothing waits). A retry is found by the key insert, not by reading the round's keys first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_send_reads_nothing() {
    const SENDS: u64 = 6;
    let (store, commands) = counted().await;
    let ids = users(&store, &["ann", "bob"]).await;
    let chat = group(&store, ids[0], &[ids[1]]).await;
    store
        .append_message(text(chat, ids[0], "warm", "first", 3_000))
        .await
        .expect("first");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = commands.get();
    for n in 0..SENDS {
        store
            .append_message(text(chat, ids[0], &format!("k{n}"), "next", 3_000))
            .await
            .expect("send");
    }
    // The last round's clean-up runs after its answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let used = commands.get() - before;
    assert!(
        (4 * SENDS..=5 * SENDS).contains(&used),
        "{used} commands for {SENDS} sends one at a time"
    );
}

/// A round with retries, identical sends and new messages answers each as one at a time would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_answers_retries_and_identical_sends_with_the_original() {
    let (store, _) = counted().await;
    let ids = users(&store, &["ann", "bob"]).await;
    let chat = group(&store, ids[0], &[ids[1]]).await;
    let first = store
        .append_message(text(chat, ids[0], "once", "original", 3_000))
        .await
        .expect("first");
    let sends: Vec<_> = (0..20)
        .map(|n| {
            let store = store.clone();
            // Every fourth repeats the first; every fourth after it repeats one key among them.
            let key = match n % 4 {
                0 => "once".to_string(),
                1 => "twice".to_string(),
                _ => format!("new{n}"),
            };
            let sender = ids[0];
            tokio::spawn(async move {
                store
                    .append_message(text(chat, sender, &key, &format!("text {n}"), 4_000))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    let mut twice = Vec::new();
    for (n, send) in sends.into_iter().enumerate() {
        let outcome = send.await.expect("task").expect("send");
        match n % 4 {
            0 => assert_eq!(
                (outcome.message.clone(), outcome.event),
                (first.message.clone(), None)
            ),
            1 => twice.push(outcome.message),
            _ => {}
        }
        created += usize::from(n % 4 >= 2);
    }
    assert!(
        twice.windows(2).all(|w| w[0] == w[1]),
        "one message for one key"
    );
    let head = store
        .chat(chat)
        .await
        .expect("chat")
        .expect("exists")
        .last_seq;
    // chat_created, the first, "twice" once, and the new ones.
    assert_eq!(head, 1 + 1 + 1 + created as u64);
}

/// Creating a group, and adding members, costs a few commands, not a few per member.
#[tokio::test]
async fn membership_is_written_in_bulk() {
    let (store, commands) = counted().await;
    let names: Vec<String> = (0..60).map(|n| format!("user{n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids = users(&store, &names).await;
    let before = commands.get();
    let (chat, _) = store
        .create_group(NewGroup {
            kind: pb::ChatKind::Group,
            title: "big".into(),
            description: String::new(),
            owner: ids[0],
            member_ids: ids[1..40].to_vec(),
            now_ms: 2_000,
        })
        .await
        .expect("group");
    let created = commands.get() - before;
    assert!(created <= 12, "{created} commands to create a group of 40");
    assert_eq!(store.members(chat.id).await.expect("members").len(), 40);
    let before = commands.get();
    store
        .add_members(
            chat.id,
            Actor::unjudged(ids[0]),
            &ids[40..],
            u32::MAX,
            3_000,
        )
        .await
        .expect("add");
    let added = commands.get() - before;
    assert!(added <= 12, "{added} commands to add 20 members");
    assert_eq!(store.members(chat.id).await.expect("members").len(), 60);
}

/// Two instances (two chatd nodes) sending to the same chats at once, their rounds interleaving
/// and losing claims to each other: every send is answered and seqs stay gap-free per chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_sending_to_the_same_chats_interleave_their_rounds() {
    const CHATS: usize = 4;
    const SENDS: usize = 200;
    let first = testserver::store().await;
    let second = testserver::another_instance(&first).await;
    let ids = users(&first, &["ann", "bob"]).await;
    let mut chats = Vec::new();
    for _ in 0..CHATS {
        chats.push(group(&first, ids[0], &ids[1..]).await);
    }
    // Spread over time, so that rounds of both instances interleave.
    let outcomes = send_all(
        &[first, second],
        &chats,
        &ids,
        SENDS,
        Duration::from_millis(5),
    )
    .await;
    assert_gap_free(&outcomes, SENDS / CHATS);
}

/// The `filter` of every `find` on `users` among `commands`.
fn user_reads(commands: &[mongodb::bson::Document]) -> Vec<mongodb::bson::Document> {
    commands
        .iter()
        .filter(|c| c.get_str("find") == Ok("users"))
        .map(|c| c.get_document("filter").cloned().unwrap_or_default())
        .collect()
}

/// A node that has not seen a round's senders reads each by `_id` equality (FerretDB decodes
/// the whole collection for a `$in`), once; many unknown members at once are read with one
/// `$in`. Either way an account that does not exist is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_senders_are_read_by_id() {
    use crate::store::StoreError;
    use crate::store::mongo::appends::accounts::POINT_READS;

    let (first, log) = logged().await;
    let names: Vec<String> = (0..POINT_READS + 4).map(|n| format!("u{n}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids = users(&first, &names).await;
    let chat = group(&first, ids[0], &ids[1..4]).await;

    // Another node sends from four accounts it has never seen, at once.
    let other = testserver::another_instance(&first).await;
    log.lock().expect("log").clear();
    let outcomes = send_all(
        std::slice::from_ref(&other),
        &[chat],
        &ids[..4],
        8,
        Duration::ZERO,
    )
    .await;
    assert_gap_free(&outcomes, 8);
    let reads = user_reads(&log.lock().expect("log"));
    let mut read: Vec<i64> = reads
        .iter()
        .map(|filter| {
            filter
                .get_i64("_id")
                .unwrap_or_else(|_| panic!("a read of senders by more than `_id`: {filter}"))
        })
        .collect();
    read.sort_unstable();
    let expected: Vec<i64> = ids[..4].iter().map(|&id| id as i64).collect();
    assert_eq!(read, expected, "each unknown sender read once");

    // A group of more members than that, created by a node that knows none: one read.
    let third = testserver::another_instance(&first).await;
    log.lock().expect("log").clear();
    group(&third, ids[0], &ids[1..]).await;
    let reads = user_reads(&log.lock().expect("log"));
    assert_eq!(
        reads.len(),
        1,
        "one read of {} members: {reads:?}",
        ids.len()
    );
    assert!(
        reads[0]
            .get_document("_id")
            .is_ok_and(|f| f.contains_key("$in"))
    );

    // Unknown accounts are refused on both paths.
    let fourth = testserver::another_instance(&first).await;
    let refused = fourth
        .append_message(text(chat, 999_999, "k", "ghost", 9_000))
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound("user"))),
        "{refused:?}"
    );
    let mut many = ids.clone();
    many.push(999_999);
    let refused = fourth
        .create_group(NewGroup {
            kind: pb::ChatKind::Group,
            title: "ghosts".to_string(),
            description: String::new(),
            owner: ids[0],
            member_ids: many,
            now_ms: 9_000,
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound("user"))),
        "{refused:?}"
    );
}
