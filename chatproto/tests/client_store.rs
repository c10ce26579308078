//! What an application builds on the SDK to never lose a message and to page through state,
//! against a real QUIC server on loopback: the persistent outbox across lost connections and a
//! client restart, the reconnect countdown, and the multi-request reads (every page of the chat
//! list, history windows, profiles for many ids).

mod client_support;

use std::sync::Mutex;
use std::time::Duration;

use chatproto::client::store::{Outbox, OutboxOutcome, TokenFile};
use chatproto::client::{Client, ClientEvent, HistoryRange};
use chatproto::pb;
use client_support::{TestServer, config, init_tracing, register};

const WAIT: Duration = Duration::from_secs(20);

fn text(chat_id: u64, text: &str) -> pb::SendMessage {
    pb::SendMessage {
        chat_id,
        kind: pb::MessageKind::Text as i32,
        text: text.into(),
        ..Default::default()
    }
}

/// The texts of the chat's messages as the server stored them.
fn stored_texts(server: &TestServer, chat_id: u64) -> Vec<String> {
    server.lock().chats[&chat_id]
        .iter()
        .filter_map(|e| match &e.body {
            Some(pb::chat_event::Body::MessageCreated(m)) => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_outbox_entry_is_sent_exactly_once_across_a_lost_answer_and_a_client_restart() {
    init_tracing();
    let server = TestServer::start("outbox").await;
    let dir = tempfile::tempdir().unwrap();
    let outbox_path = dir.path().join("outbox");
    let session = TokenFile::new(dir.path().join("session"));

    // The first client queues two messages; the server commits the first and drops the
    // connection before answering, and this client does not reconnect: it "crashes".
    let mut first_config = config(&[&server]);
    first_config.retry.reconnect = false;
    let first = Client::connect(first_config).await.unwrap();
    register(&first, "alice").await;
    session.save(&first.tokens().unwrap()).unwrap();
    let chat = server.create_chat("notes");
    let outbox = Mutex::new(Outbox::open(&outbox_path).unwrap());
    let id_a = outbox.lock().unwrap().push(text(chat, "one")).unwrap();
    outbox.lock().unwrap().push(text(chat, "two")).unwrap();
    server.lock().knobs.drop_after_commit = true;
    assert!(
        first.send_next(&outbox).await.is_err(),
        "the answer was lost"
    );
    assert_eq!(outbox.lock().unwrap().len(), 2, "nothing leaves unanswered");
    drop(first);
    drop(outbox);
    assert_eq!(stored_texts(&server, chat), ["one"]);

    // A new process resumes the session and the outbox file: "one" is answered with the
    // original message, "two" is sent, and neither exists twice.
    let mut second_config = config(&[&server]);
    second_config.tokens = session.load().unwrap();
    let second = Client::connect(second_config).await.unwrap();
    let outbox = Mutex::new(Outbox::open(&outbox_path).unwrap());
    let mut sent = Vec::new();
    loop {
        match second.send_next(&outbox).await.unwrap() {
            OutboxOutcome::Sent { request, message } => {
                assert_eq!(request.client_msg_id, message.client_msg_id);
                sent.push((request.client_msg_id, message.seq, message.text));
            }
            OutboxOutcome::Rejected { request, error } => panic!("{request:?} rejected: {error}"),
            OutboxOutcome::Empty => break,
        }
    }
    assert_eq!(sent[0].0, id_a);
    assert_eq!((sent[0].1, sent[0].2.as_str()), (2, "one"));
    assert_eq!((sent[1].1, sent[1].2.as_str()), (3, "two"));
    assert_eq!(stored_texts(&server, chat), ["one", "two"]);
    assert!(Outbox::open(&outbox_path).unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_entry_leaves_the_outbox_and_says_why() {
    init_tracing();
    let server = TestServer::start("refused").await;
    let client = Client::connect(config(&[&server])).await.unwrap();
    register(&client, "bob").await;
    let outbox = Mutex::new(Outbox::in_memory());
    outbox
        .lock()
        .unwrap()
        .push(text(424_242, "nowhere"))
        .unwrap();
    match client.send_next(&outbox).await.unwrap() {
        OutboxOutcome::Rejected { request, error } => {
            assert_eq!(request.text, "nowhere");
            assert_eq!(error.code(), Some(pb::ErrorCode::NotFound), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(outbox.lock().unwrap().is_empty());
}

#[tokio::test]
async fn messages_queued_while_the_server_is_down_go_out_when_it_is_back() {
    init_tracing();
    let server = TestServer::start("down").await;
    let client = Client::connect(config(&[&server])).await.unwrap();
    register(&client, "carol").await;
    let chat = server.create_chat("room");

    // The restart takes longer than a few backoff steps: the client counts down to each attempt.
    let restart = {
        let server = server.clone();
        tokio::spawn(async move { server.restart(Duration::from_millis(600)).await })
    };
    let countdown = tokio::time::timeout(WAIT, async {
        loop {
            match client.next_event().await.expect("events") {
                ClientEvent::Reconnecting { after } => return after,
                _ => continue,
            }
        }
    })
    .await
    .expect("a reconnect countdown");
    assert!(countdown <= Duration::from_millis(800), "{countdown:?}");

    let outbox = Mutex::new(Outbox::in_memory());
    outbox
        .lock()
        .unwrap()
        .push(text(chat, "while down"))
        .unwrap();
    restart.await.unwrap();
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            match client.send_next(&outbox).await {
                Ok(outcome) => return outcome,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("sent after the restart");
    assert!(matches!(outcome, OutboxOutcome::Sent { .. }), "{outcome:?}");
    assert_eq!(stored_texts(&server, chat), ["while down"]);
}

#[tokio::test]
async fn multi_page_reads_return_everything_once() {
    init_tracing();
    let server = TestServer::start("pages").await;
    let client = Client::connect(config(&[&server])).await.unwrap();
    let me = register(&client, "dave").await.user.unwrap();

    // 120 chats take three pages of the test server's 50.
    let mut created: Vec<u64> = (0..120)
        .map(|i| server.create_chat(&format!("c{i}")))
        .collect();
    let mut listed: Vec<u64> = client
        .list_all_chats(false)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    created.sort_unstable();
    listed.sort_unstable();
    assert_eq!(listed, created);

    // History windows: latest, below, above, and the ends.
    let chat = created[0];
    for i in 1..=7 {
        server.post(chat, &format!("m{i}"));
    }
    let texts = |page: &chatproto::client::HistoryPage| {
        page.messages
            .iter()
            .map(|m| m.text.clone())
            .collect::<Vec<_>>()
    };
    let latest = client.history(chat, HistoryRange::Latest, 3).await.unwrap();
    assert_eq!(texts(&latest), ["m5", "m6", "m7"]);
    assert!(!latest.end);
    let older = client
        .history(chat, HistoryRange::Before(latest.messages[0].seq), 5)
        .await
        .unwrap();
    assert_eq!(texts(&older), ["m1", "m2", "m3", "m4"]);
    assert!(older.end, "nothing is older than m1");
    let newer = client
        .history(chat, HistoryRange::After(older.messages[1].seq), 3)
        .await
        .unwrap();
    assert_eq!(texts(&newer), ["m3", "m4", "m5"]);
    assert!(!newer.end);

    // Profiles for more ids than one GetUsers may carry; unknown ids are left out.
    let mut ids: Vec<u64> = (1_000_000..1_000_060).collect();
    ids.push(me.id);
    let users = client.users_by_id(&ids).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].username, "dave");
    assert_eq!(server.count("get_users"), 2, "61 ids in pages of 50");
}
