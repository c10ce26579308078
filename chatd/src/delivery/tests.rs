//! Delivery as a whole on real stores: ordering by the sharded sequencer, within one node and
//! across in-process nodes, redaction per viewer, and interest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chatproto::pb;
use chatproto::pb::chat_event::Body;

use super::members::{Audience, ChatMembers, MemberCache};
use super::outbox::Outbox;
use super::redact::ChatEventFrames;
use super::registry::ConnHandle;
use super::relay::{InProcessBus, InProcessRelay, Inbound, Relay};
use super::sequencer::REORDER_WAIT;
use super::{Attached, Delivery, KickMark};
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

struct Node {
    delivery: Arc<Delivery>,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("chat.db")).expect("open");
    (Arc::new(store), dir)
}

fn node_with(relay: Arc<dyn Relay>) -> Node {
    let (store, dir) = sqlite();
    Node {
        delivery: Delivery::new(store.clone(), relay, MemberCache::new()),
        store,
        _dir: dir,
    }
}

/// Two nodes joined by one in-process bus (kept alive by the caller), each on its own store.
fn two_nodes() -> (Node, Node, Arc<InProcessBus>) {
    let bus = InProcessBus::new();
    let (relay_a, relay_b) = (bus.relay(), bus.relay());
    let (index_a, index_b) = (relay_a.index(), relay_b.index());
    let a = node_with(Arc::new(relay_a));
    let b = node_with(Arc::new(relay_b));
    bus.join(index_a, &a.delivery);
    bus.join(index_b, &b.delivery);
    (a, b, bus)
}

fn solo() -> Node {
    node_with(Arc::new(InProcessRelay::solo()))
}

async fn user(store: &dyn Store, name: &str) -> u64 {
    store
        .create_user(crate::store::NewUser {
            username: name.into(),
            email: format!("{name}@example.test"),
            password_hash: String::new(),
            role: pb::Role::User,
            now_ms: 1,
        })
        .await
        .expect("user")
        .id
}

/// Connects a connection of `user` and returns its queue.
async fn connect(delivery: &Delivery, user: u64) -> Arc<Outbox> {
    connect_as(delivery, user, delivery.next_conn_id()).await
}

async fn connect_as(delivery: &Delivery, user: u64, conn_id: u64) -> Arc<Outbox> {
    let mark = delivery.kick_mark();
    attach(delivery, user, conn_id, mark).await.0
}

/// Attaches a connection of `user` whose sign-in began at `mark`.
async fn attach(
    delivery: &Delivery,
    user: u64,
    conn_id: u64,
    mark: KickMark,
) -> (Arc<Outbox>, Attached) {
    let (handle, outbox) = ConnHandle::detached(conn_id, user);
    let attached = delivery.attach(handle, mark).await.expect("attach");
    (outbox, attached)
}

fn message(chat_id: u64, seq: u64, sender: u64) -> pb::ChatEvent {
    pb::ChatEvent {
        chat_id,
        seq,
        actor_id: sender,
        body: Some(Body::MessageCreated(pb::Message {
            chat_id,
            seq,
            sender_id: sender,
            text: format!("m{seq}"),
            client_msg_id: format!("c{seq}"),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn members(ids: &[u64]) -> Audience {
    Audience::members(Arc::new(ChatMembers::new(
        pb::ChatKind::Group,
        ids.iter().map(|&u| (u, pb::MemberRole::Member)),
    )))
}

/// The chat events queued so far, as (chat, seq, message).
async fn drain(outbox: &Outbox) -> Vec<(u64, u64, Option<pb::Message>)> {
    let mut frames = Vec::new();
    while !outbox.is_empty() {
        outbox.next_batch(&mut frames, usize::MAX).await;
    }
    frames
        .into_iter()
        .map(|bytes| {
            let event: pb::Event = chatproto::frame::FrameDecoder::default()
                .decode_exact(&bytes)
                .expect("decode");
            event
        })
        .map(|event| match event.kind {
            Some(pb::event::Kind::Chat(e)) => {
                let m = match e.body {
                    Some(Body::MessageCreated(m)) => Some(m),
                    _ => None,
                };
                (e.chat_id, e.seq, m)
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn seqs_of(events: &[(u64, u64, Option<pb::Message>)], chat: u64) -> Vec<u64> {
    events
        .iter()
        .filter(|(c, _, _)| *c == chat)
        .map(|(_, s, _)| *s)
        .collect()
}

#[tokio::test]
async fn events_committed_out_of_order_leave_in_order() {
    let node = solo();
    let inbox = connect(&node.delivery, 7).await;
    for seq in [1, 3, 2, 5, 4] {
        node.delivery.append(message(1, seq, 8), members(&[7, 8]));
    }
    assert_eq!(seqs_of(&drain(&inbox).await, 1), vec![1, 2, 3, 4, 5]);
}

/// A relayed event with a seq no chat has (from a faulty node, a corrupt message) is dropped,
/// and the chat's order goes on.
#[tokio::test]
async fn a_relayed_event_with_an_impossible_seq_is_dropped() {
    let node = solo();
    let inbox = connect(&node.delivery, 7).await;
    // First heard of the chat: taken as where its order starts, it would hold back the rest.
    for seq in [u64::MAX, 0] {
        let frames = ChatEventFrames::committed(message(1, seq, 8));
        node.delivery.relayed_chat_event(frames, None, Vec::new());
    }
    for seq in [1, 2] {
        node.delivery.append(message(1, seq, 8), members(&[7]));
    }
    assert_eq!(seqs_of(&drain(&inbox).await, 1), vec![1, 2]);
}

/// The copies of one relayed event for different routes (the chat's, and that of the members
/// it adds) both held back behind a missing predecessor: both are released, neither replaces
/// the other.
#[tokio::test]
async fn two_copies_of_one_held_event_are_both_released() {
    let node = solo();
    let joiner = connect(&node.delivery, 7).await;
    let relay = |seq: u64, joiners: Vec<u64>| {
        let change = super::members::MembershipChange {
            added: vec![7],
            removed: Vec::new(),
            deleted: false,
        };
        let frames = ChatEventFrames::committed(message(1, seq, 8));
        node.delivery
            .relayed_chat_event(frames, Some(change), joiners);
    };
    // Seq 1 starts the chat's order here; 3 arrives before 2, the joiners' copy first.
    relay(1, Vec::new());
    relay(3, vec![7]);
    relay(3, Vec::new());
    relay(2, Vec::new());
    assert_eq!(seqs_of(&drain(&joiner).await, 1), vec![3]);
}

#[tokio::test]
async fn a_missing_event_holds_back_its_successors_only_for_the_reorder_wait() {
    let node = solo();
    let inbox = connect(&node.delivery, 7).await;
    node.delivery.append(message(1, 1, 8), members(&[7]));
    node.delivery.append(message(1, 3, 8), members(&[7]));
    assert_eq!(seqs_of(&drain(&inbox).await, 1), vec![1]);
    node.delivery.flush_stale(Instant::now()).await;
    assert!(drain(&inbox).await.is_empty(), "held within the wait");
    // The store does not have it either (this chat exists only here): clients fetch the gap.
    node.delivery
        .flush_stale(Instant::now() + REORDER_WAIT)
        .await;
    assert_eq!(seqs_of(&drain(&inbox).await, 1), vec![3]);
}

/// An event committed but never handed to delivery (its handler failed after the commit, or
/// another node is slow to relay it) is read from the store once the wait is over, and reaches
/// every member here before the events held back behind it.
#[tokio::test]
async fn a_gap_is_filled_from_the_store_before_its_successors_leave() {
    let node = solo();
    let (alice, bob) = (
        user(&*node.store, "alice").await,
        user(&*node.store, "bob").await,
    );
    // Connected before they share a chat: no presence updates in the inboxes.
    let inboxes = [
        connect(&node.delivery, alice).await,
        connect(&node.delivery, bob).await,
    ];
    let (chat, created) = node
        .store
        .create_group(crate::store::NewGroup {
            kind: pb::ChatKind::Group,
            title: "gap".into(),
            description: String::new(),
            owner: alice,
            member_ids: vec![bob],
            now_ms: 1,
        })
        .await
        .expect("group");
    let mut sent = Vec::new();
    for n in 0..3 {
        let outcome = node
            .store
            .append_message(crate::store::NewMessage {
                chat_id: chat.id,
                sender_id: alice,
                client_msg_id: format!("c{n}"),
                kind: pb::MessageKind::Text,
                text: format!("m{n}"),
                file_id: String::new(),
                attachment: None,
                reply_to_seq: 0,
                forwarded_from: None,
                mention_ids: Vec::new(),
                now_ms: 2 + n,
                members_seq: None,
            })
            .await
            .expect("send");
        sent.push(outcome.event.expect("appended"));
    }
    let audience = || members(&[alice, bob]);
    node.delivery.append(created.clone(), audience());
    node.delivery.append(sent[0].clone(), audience());
    // sent[1] is committed, never appended.
    node.delivery.append(sent[2].clone(), audience());
    let head = created.seq;
    for inbox in &inboxes {
        assert_eq!(seqs_of(&drain(inbox).await, chat.id), vec![head, head + 1]);
    }
    node.delivery
        .flush_stale(Instant::now() + REORDER_WAIT)
        .await;
    for inbox in &inboxes {
        let events = drain(inbox).await;
        assert_eq!(seqs_of(&events, chat.id), vec![head + 2, head + 3]);
        let filled = events[0].2.as_ref().expect("a message");
        assert_eq!(filled.text, "m1");
    }
}

/// Many threads committing and publishing one chat's events at once (as concurrent handlers
/// do, each publishing in whatever order it finishes): every member gets every event once, in
/// seq order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_to_one_chat_stay_totally_ordered() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 500;
    let node = solo();
    let audience: Vec<u64> = (1..=20).collect();
    let mut inboxes = Vec::new();
    for &user in &audience {
        inboxes.push(connect(&node.delivery, user).await);
    }
    // The chat's first event, before the race: the sequencer takes the first event it sees as
    // the start of a chat's order (after a restart it cannot know what came before), so a
    // later seq that won the race to be first would be delivered before its predecessors.
    node.delivery
        .append(message(42, 1, 100), members(&audience));
    let next_seq = Arc::new(AtomicU64::new(1));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (delivery, next_seq, audience) =
                (node.delivery.clone(), next_seq.clone(), audience.clone());
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    // The seq is allocated (committed) first, then published: between the two,
                    // other threads commit and publish later seqs.
                    let seq = next_seq.fetch_add(1, Ordering::SeqCst) + 1;
                    std::thread::yield_now();
                    delivery.append(message(42, seq, 100 + t), members(&audience));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("publisher");
    }
    let all: Vec<u64> = (1..=THREADS * PER_THREAD + 1).collect();
    for inbox in &inboxes {
        assert_eq!(seqs_of(&drain(inbox).await, 42), all);
    }
}

/// A chat waiting for a missing event, or busy under its lock, does not delay another chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_different_chats_do_not_wait_on_each_other() {
    let node = solo();
    let inbox = connect(&node.delivery, 7).await;
    let busy_chat = 1;
    let other_chat = (2..100)
        .find(|c| super::sharded::shard_of(*c) != super::sharded::shard_of(busy_chat))
        .expect("a chat in another shard");
    // The busy chat waits for its seq 2.
    node.delivery
        .append(message(busy_chat, 1, 8), members(&[7]));
    node.delivery
        .append(message(busy_chat, 3, 8), members(&[7]));
    // And its shard's lock is held, as by a long delivery.
    let guard = node.delivery.sequencer.hold_shard_of(busy_chat);
    let delivery = node.delivery.clone();
    let other = std::thread::spawn(move || {
        for seq in 1..=100 {
            delivery.append(message(other_chat, seq, 8), members(&[7]));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !other.is_finished() {
        assert!(
            Instant::now() < deadline,
            "sends to another chat waited for the busy chat's lock"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(guard);
    other.join().expect("publisher");
    let got = drain(&inbox).await;
    assert_eq!(seqs_of(&got, other_chat), (1..=100).collect::<Vec<_>>());
    assert_eq!(seqs_of(&got, busy_chat), vec![1], "3 still waits for 2");
}

#[tokio::test]
async fn each_viewer_gets_their_redacted_form() {
    let node = solo();
    let sender = user(&*node.store, "sender").await;
    let blocker = user(&*node.store, "blocker").await;
    node.store.block(blocker, sender).await.expect("block");
    let friend = blocker + 1000;
    let (blocker_inbox, friend_inbox) = (
        connect(&node.delivery, blocker).await,
        connect(&node.delivery, friend).await,
    );
    node.delivery
        .append(message(5, 1, sender), members(&[sender, blocker, friend]));
    let seen = |events: Vec<(u64, u64, Option<pb::Message>)>| {
        events
            .into_iter()
            .next()
            .and_then(|(_, _, m)| m)
            .expect("a message")
    };
    let friend_sees = seen(drain(&friend_inbox).await);
    assert_eq!(friend_sees.text, "m1");
    assert!(friend_sees.client_msg_id.is_empty());
    let placeholder = seen(drain(&blocker_inbox).await);
    assert_eq!((placeholder.seq, placeholder.sender_id), (1, sender));
    assert!(placeholder.from_blocked_user && placeholder.text.is_empty());
    // Unblocking shows the content of the next message at once.
    node.store.unblock(blocker, sender).await.expect("unblock");
    node.delivery
        .blocks_changed(blocker)
        .await
        .expect("blocks changed");
    node.delivery
        .append(message(5, 2, sender), members(&[sender, blocker, friend]));
    assert_eq!(seen(drain(&blocker_inbox).await).text, "m2");
}

/// An event held back for ordering reaches every viewer class once released: the member and
/// the blocker of its author each get it after its predecessor, in their own form.
#[tokio::test]
async fn every_form_of_a_held_event_is_released_in_order() {
    let node = solo();
    let sender = user(&*node.store, "sender").await;
    let blocker = user(&*node.store, "blocker").await;
    let friend = user(&*node.store, "friend").await;
    node.store.block(blocker, sender).await.expect("block");
    let (blocker_inbox, friend_inbox) = (
        connect(&node.delivery, blocker).await,
        connect(&node.delivery, friend).await,
    );
    let audience = [sender, blocker, friend];
    node.delivery
        .append(message(5, 1, friend), members(&audience));
    // Seq 3 (from the blocked sender) arrives before 2: held, neither form lost.
    node.delivery
        .append(message(5, 3, sender), members(&audience));
    node.delivery
        .append(message(5, 2, friend), members(&audience));
    let friend_got = drain(&friend_inbox).await;
    let blocker_got = drain(&blocker_inbox).await;
    assert_eq!(seqs_of(&friend_got, 5), vec![1, 2, 3]);
    assert_eq!(seqs_of(&blocker_got, 5), vec![1, 2, 3]);
    let last = |got: &[(u64, u64, Option<pb::Message>)]| {
        got.last()
            .and_then(|(_, _, m)| m.clone())
            .expect("a message")
    };
    assert_eq!(last(&friend_got).text, "m3");
    let placeholder = last(&blocker_got);
    assert!(placeholder.from_blocked_user && placeholder.text.is_empty());
}

/// Two nodes in one process: events committed on both, for one chat, reach a member on either
/// node in seq order; the member's node resolves them from the chat's interest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_deliver_each_others_events_in_seq_order() {
    let (a, b, _bus) = two_nodes();
    // Both nodes read memberships from one store in a real cluster; here each has its own, so
    // the chat is created in B's store for B's member to be found.
    let owner = user(&*b.store, "owner").await;
    let member = user(&*b.store, "member").await;
    let (chat, _) = b
        .store
        .create_group(crate::store::NewGroup {
            kind: pb::ChatKind::Group,
            title: "g".into(),
            description: String::new(),
            owner,
            member_ids: vec![member],
            now_ms: 1,
        })
        .await
        .expect("group");
    let on_b = connect_as(&b.delivery, member, 77).await;
    assert_eq!(
        b.delivery.chats_heard(),
        1,
        "B hears the chat of its member"
    );
    let audience = [owner, member];
    // The first event B sees of a chat starts its order there (a node that just began to hear
    // a chat cannot know what came before; clients fill that from the store): seq 2 goes first,
    // so what is checked below is the order of the concurrent rest.
    b.delivery
        .append(message(chat.id, 2, owner), members(&audience));
    let next_seq = Arc::new(AtomicU64::new(2));
    let publishers: Vec<_> = [a.delivery.clone(), b.delivery.clone()]
        .into_iter()
        .map(|delivery| {
            let next_seq = next_seq.clone();
            std::thread::spawn(move || {
                for _ in 0..300 {
                    let seq = next_seq.fetch_add(1, Ordering::SeqCst) + 1;
                    delivery.append(message(chat.id, seq, owner), members(&audience));
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.join().expect("publisher");
    }
    let got = seqs_of(&drain(&on_b).await, chat.id);
    assert_eq!(got, (2..=602).collect::<Vec<_>>());
    // The member leaves B: B stops hearing the chat.
    b.delivery.detach(member, 77).await;
    assert_eq!(b.delivery.chats_heard(), 0);
}

/// The missing event arrives while the node reads it from the store: it is delivered once, in
/// order, and the read's copy is dropped.
#[tokio::test]
async fn an_event_that_arrives_during_its_gap_fill_is_delivered_once() {
    use super::sequencer::{Route, Sequenced};
    let node = solo();
    let inbox = connect(&node.delivery, 7).await;
    node.delivery.append(message(1, 1, 8), members(&[7]));
    node.delivery.append(message(1, 3, 8), members(&[7]));
    let gaps = node
        .delivery
        .sequencer
        .take_gaps(Instant::now() + REORDER_WAIT);
    assert_eq!(gaps.len(), 1);
    assert!(
        node.delivery
            .sequencer
            .take_gaps(Instant::now() + REORDER_WAIT)
            .is_empty(),
        "one read per gap at a time"
    );
    node.delivery.append(message(1, 2, 8), members(&[7]));
    assert_eq!(seqs_of(&drain(&inbox).await, 1), vec![1, 2, 3]);
    let read = Sequenced {
        frames: super::redact::ChatEventFrames::committed(message(1, 2, 8)),
        route: Route::Audience(members(&[7])),
        change: None,
    };
    node.delivery
        .sequencer
        .filled(&node.delivery.context(), gaps[0], vec![read]);
    assert!(drain(&inbox).await.is_empty(), "nothing twice");
}

/// A sign-in that read its session before a kick and registers after it is told to read the
/// session again: the kick found no connection of it to close. One that began after the kick,
/// or saw none, is not.
#[tokio::test]
async fn a_kick_between_the_session_read_and_the_registration_asks_for_a_recheck() {
    let node = solo();
    let (alice, bob) = (
        user(&*node.store, "alice").await,
        user(&*node.store, "bob").await,
    );
    let farewell = pb::Event {
        kind: Some(pb::event::Kind::SessionRevoked(
            pb::SessionRevoked::default(),
        )),
    };
    let before = node.delivery.kick_mark();
    node.delivery.kick(alice, None, &farewell);
    let (_, missed) = attach(&node.delivery, alice, 1, before).await;
    assert_eq!(missed, Attached::Recheck);
    let after = node.delivery.kick_mark();
    let (_, sure) = attach(&node.delivery, bob, 2, after).await;
    assert_eq!(sure, Attached::Sure);
}

/// A user's first connection on a node of a cluster only now hears the kicks other nodes
/// publish for them: one published before it subscribed is missed, so it reads its session
/// again; a second connection there is sure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_connection_on_a_node_of_a_cluster_asks_for_a_recheck() {
    let (_a, b, _bus) = two_nodes();
    let alice = user(&*b.store, "alice").await;
    let mark = b.delivery.kick_mark();
    assert_eq!(
        attach(&b.delivery, alice, 1, mark).await.1,
        Attached::Recheck
    );
    let mark = b.delivery.kick_mark();
    assert_eq!(attach(&b.delivery, alice, 2, mark).await.1, Attached::Sure);
}

/// A second connection that registers while the first one's subscription to the user's kicks
/// is still being made waits for it, and then reads its session again: a kick published before
/// the subscription was live reached neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_registered_before_the_subscription_is_live_asks_for_a_recheck() {
    let (_a, b, _bus) = two_nodes();
    let alice = user(&*b.store, "alice").await;
    // The first connection registered; its subscription is not confirmed yet.
    let (first, _) = super::registry::tests::conn(&b.delivery.registry, alice);
    assert!(b.delivery.registry.register(
        first,
        Arc::new(super::redact::Viewer::new(alice, [])),
        0
    ));
    let mark = b.delivery.kick_mark();
    let delivery = Arc::clone(&b.delivery);
    let second = tokio::spawn(async move { attach(&delivery, alice, 2, mark).await.1 });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!second.is_finished(), "it waits for the subscription");
    b.delivery.registry.mark_heard(alice);
    assert_eq!(second.await.expect("task"), Attached::Recheck);
    let mark = b.delivery.kick_mark();
    assert_eq!(attach(&b.delivery, alice, 3, mark).await.1, Attached::Sure);
}
