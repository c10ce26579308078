//! Events published on one node reach clients connected to another, in sequence order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatd::testing::delivery::{Body, Envelope};
use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::pb::response::Result as Answer;
use tests::raw::{RawSession, message_text};
use tests::redis::RedisServer;

use super::{serial, two_nodes};

const WAIT: Duration = Duration::from_secs(5);

/// Every message the nodes publish on Redis while it listens (a pattern subscription of its
/// own), decoded.
struct Overheard {
    stop: Arc<AtomicBool>,
    listener: std::thread::JoinHandle<Vec<Envelope>>,
}

impl Overheard {
    /// Listens from now on.
    fn start(redis: &RedisServer) -> Overheard {
        let client = redis::Client::open(redis.url()).expect("redis client");
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, listening) = std::sync::mpsc::channel();
        let listener = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut conn = client.get_connection().expect("redis connection");
                let mut pubsub = conn.as_pubsub();
                pubsub.psubscribe("*").expect("PSUBSCRIBE");
                pubsub
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .expect("read timeout");
                ready.send(()).expect("ready");
                let mut heard = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(message) = pubsub.get_message() {
                        heard.extend(Envelope::from_bytes(message.get_payload_bytes()).ok());
                    }
                }
                heard
            }
        });
        listening.recv().expect("listening");
        Overheard { stop, listener }
    }

    /// Stops listening; what was heard.
    fn stop(self) -> Vec<Envelope> {
        self.stop.store(true, Ordering::Relaxed);
        self.listener.join().expect("listener")
    }
}

fn chat_created(event: &pb::Event) -> Option<(u64, u64)> {
    match &event.kind {
        Some(pb::event::Kind::Chat(c))
            if matches!(c.body, Some(pb::chat_event::Body::ChatCreated(_))) =>
        {
            Some((c.chat_id, c.seq))
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_events_reach_other_nodes_in_order() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let mut bob = RawSession::register(&b, "bob").await;
    let chat = bob.create_group("crew", &[alice.user_id]).await;
    // Alice was added on node B: her node hears of it through her user channel.
    assert_eq!(alice.wait_for(WAIT, chat_created).await, Some((chat, 1)));

    // Three connections of Bob send concurrently, so handlers on node B commit and publish in
    // interleaved order; node A must still hand them to Alice in sequence order.
    let mut senders = vec![bob];
    for _ in 0..2 {
        senders.push(RawSession::login(&b, "bob").await);
    }
    let sends = senders
        .iter_mut()
        .enumerate()
        .map(|(n, client)| async move {
            for i in 0..10 {
                assert!(matches!(
                    client.send_text(chat, &format!("c{n}-{i}")).await,
                    Answer::Message(_)
                ));
            }
        });
    futures_util::future::join_all(sends).await;
    let mut seqs = Vec::new();
    while seqs.len() < 30 {
        let Some((_, seq, _)) = alice
            .wait_for(WAIT, |e| message_text(e).filter(|(c, _, _)| *c == chat))
            .await
        else {
            panic!(
                "only {} of 30 messages from node B reached node A: {seqs:?}",
                seqs.len()
            );
        };
        seqs.push(seq);
    }
    assert_eq!(
        seqs,
        (2..32).collect::<Vec<u64>>(),
        "in sequence order, each once"
    );

    // And the other way round.
    let mut bob = senders.swap_remove(0);
    bob.drain_events();
    assert!(matches!(
        alice.send_text(chat, "from a").await,
        Answer::Message(_)
    ));
    // Bob's connection may still be receiving his own 10 messages: pick Alice's.
    let got = bob
        .wait_for(WAIT, |e| message_text(e).filter(|m| m.2 == "from a"))
        .await
        .expect("node B hears node A");
    assert_eq!((got.0, got.1), (chat, 32));
}

/// Members added many at once get one copy of the event for all of them on `global`, not one
/// each: a group created with thousands of members would otherwise publish thousands of copies
/// of its whole member list. Those connected to another node get it there and hear the chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_members_added_at_once_get_one_copy_for_all() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;
    const ADDED: usize = 20;
    let mut joiners = Vec::new();
    for i in 0..3 {
        joiners.push(RawSession::register(&a, &format!("joiner{i}")).await);
    }
    let mut ids: Vec<u64> = joiners.iter().map(|j| j.user_id).collect();
    // The others never connect (made in the store: no presence to publish meanwhile); their
    // copy has nobody to reach.
    for i in 3..ADDED {
        let user = chatd::testing::NewUser {
            username: format!("joiner{i}"),
            email: format!("joiner{i}@example.test"),
            password_hash: "never used".into(),
            role: pb::Role::User,
            now_ms: chatd::testing::now_ms(),
        };
        ids.push(b.store().create_user(user).await.expect("user").id);
    }
    let mut bob = RawSession::register(&b, "bob").await;
    let heard = Overheard::start(&redis);
    let chat = bob.create_group("crowd", &ids).await;
    for joiner in &mut joiners {
        let created = joiner.wait_for(WAIT, chat_created).await;
        assert_eq!(created.map(|c| c.0), Some(chat), "the copy reaches node A");
    }
    let copies = heard
        .stop()
        .iter()
        .filter(|e| matches!(&e.body, Some(Body::Chat(c)) if c.chat_id == chat))
        .count();
    // The joiners' copy, and the chat's, published after it (and maybe not yet heard).
    assert!((1..=2).contains(&copies), "{copies} copies");
    let subscribed =
        super::eventually(WAIT, async || a.is_subscribed(&format!("chat:{chat}"))).await;
    assert!(subscribed, "node A subscribes the chat for its new members");
    assert!(matches!(
        bob.send_text(chat, "hello all").await,
        Answer::Message(_)
    ));
    for joiner in &mut joiners {
        let got = joiner
            .wait_for(WAIT, message_text)
            .await
            .expect("later messages");
        assert_eq!(got.2, "hello all");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_added_on_another_node_start_hearing_the_chat() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut carol = RawSession::register(&a, "carol").await;
    let mut bob = RawSession::register(&b, "bob").await;
    let dave = RawSession::register(&b, "dave").await;
    // Nobody on node A is in this chat: node A is not subscribed to it.
    let chat = bob.create_group("b only", &[dave.user_id]).await;
    assert!(!a.is_subscribed(&format!("chat:{chat}")));

    assert!(matches!(
        bob.request(Kind::AddMembers(pb::AddMembers {
            chat_id: chat,
            user_ids: vec![carol.user_id]
        }))
        .await,
        Answer::Chat(_)
    ));
    let added = carol
        .wait_for(WAIT, |e| match &e.kind {
            Some(pb::event::Kind::Chat(c))
                if matches!(c.body, Some(pb::chat_event::Body::MembersAdded(_))) =>
            {
                Some(c.chat_id)
            }
            _ => None,
        })
        .await;
    assert_eq!(
        added,
        Some(chat),
        "the joiner's copy reaches the new member's node"
    );
    let subscribed =
        super::eventually(WAIT, async || a.is_subscribed(&format!("chat:{chat}"))).await;
    assert!(subscribed, "node A subscribes the chat for its new member");
    assert!(matches!(
        bob.send_text(chat, "welcome").await,
        Answer::Message(_)
    ));
    let got = carol
        .wait_for(WAIT, message_text)
        .await
        .expect("later messages reach the new member");
    assert_eq!(got.2, "welcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_on_one_node_invalidate_member_caches_on_others() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let mut carol = RawSession::register(&a, "carol").await;
    let mut bob = RawSession::register(&b, "bob").await;
    let chat = bob.create_group("crew", &[alice.user_id]).await;
    // Node A caches the member list (Bob and Alice) when Alice posts; Carol is refused.
    assert!(matches!(
        alice.send_text(chat, "hi").await,
        Answer::Message(_)
    ));
    match carol.send_text(chat, "let me in").await {
        Answer::Error(e) => assert_eq!(e.code(), pb::ErrorCode::NotFound),
        other => panic!("a non-member posted: {other:?}"),
    }
    // Node B adds Carol, then removes Alice: node A must drop its cached list at once.
    bob.ok(Kind::AddMembers(pb::AddMembers {
        chat_id: chat,
        user_ids: vec![carol.user_id],
    }))
    .await;
    bob.ok(Kind::RemoveMember(pb::RemoveMember {
        chat_id: chat,
        user_id: alice.user_id,
    }))
    .await;
    let posted = super::eventually(Duration::from_secs(2), async || {
        matches!(carol.send_text(chat, "in").await, Answer::Message(_))
    })
    .await;
    assert!(posted, "node A still refuses the member added on node B");
    match alice.send_text(chat, "still here?").await {
        Answer::Error(e) => assert_eq!(e.code(), pb::ErrorCode::NotFound),
        other => panic!("a removed member posted: {other:?}"),
    }
}

fn typing_from(event: &pb::Event) -> Option<(u64, u64)> {
    match &event.kind {
        Some(pb::event::Kind::Typing(t)) => Some((t.chat_id, t.user_id)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_crosses_nodes_except_to_those_who_blocked_the_sender() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let mut carol = RawSession::register(&a, "carol").await;
    let mut bob = RawSession::register(&b, "bob").await;
    let chat = bob
        .create_group("crew", &[alice.user_id, carol.user_id])
        .await;
    // Carol blocks Bob: his typing must not reach her, while Alice on the same node sees it.
    carol
        .ok(Kind::BlockUser(pb::BlockUser {
            user_id: bob.user_id,
        }))
        .await;
    alice.drain_events();
    carol.drain_events();
    bob.ok(Kind::SendTyping(pb::SendTyping { chat_id: chat }))
        .await;
    assert_eq!(
        alice.wait_for(WAIT, typing_from).await,
        Some((chat, bob.user_id))
    );
    assert_eq!(
        carol.wait_for(Duration::from_secs(1), typing_from).await,
        None
    );
}
