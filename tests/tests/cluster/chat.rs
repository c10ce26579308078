//! Three chatd nodes on one FerretDB and one Redis Cluster: users connected to different nodes
//! chat in real time, in order, and see each other's receipts, typing and presence.

use std::time::Duration;

use chatproto::client::ClientEvent;
use chatproto::pb;
use tests::cluster::ChatCluster;
use tests::traffic::{Traffic, assert_views};
use tests::users::{TestUser, create_group};

/// How long an event may take to cross nodes.
const LIVE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_different_nodes_chat_in_real_time() {
    let cluster = tokio::task::spawn_blocking(ChatCluster::start)
        .await
        .expect("start cluster");
    let alice = TestUser::register(cluster.client_config(0), "alice").await;
    let bob = TestUser::register(cluster.client_config(1), "bob").await;
    let carol = TestUser::register(cluster.client_config(2), "carol").await;
    for (user, node) in [(&alice, "node0"), (&bob, "node1"), (&carol, "node2")] {
        assert_eq!(
            user.node_id().as_deref(),
            Some(node),
            "{} is on the wrong node",
            user.name
        );
    }
    let chat = create_group(&alice, "three nodes", &[&bob, &carol]).await;

    // Messages from every node reach every node, each once and in seq order.
    let traffic = Traffic::start(
        &[&alice, &bob, &carol],
        chat.id,
        Duration::from_millis(20),
        20,
    );
    let acked = traffic.join().await;
    assert_eq!(acked.len(), 60);
    assert_views(&[&alice, &bob, &carol], chat.id, &acked, LIVE).await;
    let last = acked.last().map(|a| a.seq).unwrap_or_default();

    // A read receipt from node1 reaches node0 and node2.
    bob.client
        .mark_receipt(pb::MarkReceipt {
            chat_id: chat.id,
            kind: pb::ReceiptKind::Read as i32,
            up_to_seq: last,
        })
        .await
        .expect("mark read");
    for user in [&alice, &carol] {
        let seen = user
            .log
            .wait_for(LIVE, |events| {
                events.iter().find_map(|e| match e {
                    ClientEvent::Receipt(r)
                        if r.chat_id == chat.id && r.user_id == bob.id && r.read_seq == last =>
                    {
                        Some(())
                    }
                    _ => None,
                })
            })
            .await;
        assert!(
            seen.is_some(),
            "{} did not see bob's read receipt at {last}",
            user.name
        );
    }

    // Typing on node2 shows on node0 and node1.
    carol.client.send_typing(chat.id).await.expect("typing");
    for user in [&alice, &bob] {
        let seen = user
            .log
            .wait_for(LIVE, |events| {
                events.iter().find_map(|e| match e {
                    ClientEvent::Typing(t) if t.chat_id == chat.id && t.user_id == carol.id => {
                        Some(())
                    }
                    _ => None,
                })
            })
            .await;
        assert!(seen.is_some(), "{} did not see carol typing", user.name);
    }

    // Presence: bob leaves (node1) and comes back on node2; alice on node0 sees both.
    let presence = |user: &TestUser, status: pb::UserStatus, after: usize| {
        let log = user.log.clone();
        let bob_id = bob.id;
        async move {
            log.wait_for(LIVE, |events| {
                events[after.min(events.len())..]
                    .iter()
                    .find_map(|e| match e {
                        ClientEvent::Presence(p)
                            if p.user_id == bob_id && p.status == status as i32 =>
                        {
                            Some(())
                        }
                        _ => None,
                    })
            })
            .await
        }
    };
    let mark = alice.log.snapshot().len();
    bob.client.close().await;
    assert!(
        presence(&alice, pb::UserStatus::Offline, mark)
            .await
            .is_some(),
        "alice did not see bob go offline"
    );
    let mark = alice.log.snapshot().len();
    let bob_again = TestUser::login(cluster.client_config(2), "bob").await;
    assert_eq!(bob_again.node_id().as_deref(), Some("node2"));
    assert!(
        presence(&alice, pb::UserStatus::Online, mark)
            .await
            .is_some(),
        "alice did not see bob come back"
    );
    // What bob missed is in his history on the new node.
    let history = bob_again.history(chat.id).await.expect("history");
    assert_eq!(history.last().map(|m| m.seq), Some(last));
}

/// The message `seq` of `chat_id` as `user` got it live, once it arrived.
async fn live_message(user: &TestUser, chat_id: u64, seq: u64) -> Option<pb::Message> {
    user.log
        .wait_for(LIVE, |events| {
            events.iter().find_map(|e| match e {
                ClientEvent::Chat(ev) if ev.chat_id == chat_id && ev.seq == seq => match &ev.body {
                    Some(pb::chat_event::Body::MessageCreated(m)) => Some(m.clone()),
                    _ => None,
                },
                _ => None,
            })
        })
        .await
}

/// A block crosses nodes: the blocked user posts on one node, a member on another sees the
/// text, and the blocker on a third gets the placeholder (spec 9.2), live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocker_on_another_node_gets_placeholders_live() {
    let cluster = tokio::task::spawn_blocking(ChatCluster::start)
        .await
        .expect("start cluster");
    let alice = TestUser::register(cluster.client_config(0), "alice").await;
    let bob = TestUser::register(cluster.client_config(1), "bob").await;
    let carol = TestUser::register(cluster.client_config(2), "carol").await;
    let chat = create_group(&carol, "blocks across nodes", &[&alice, &bob]).await;
    alice
        .client
        .block_user(pb::BlockUser { user_id: bob.id })
        .await
        .expect("block");
    let sent = bob
        .client
        .send_text(chat.id, "across the cluster")
        .await
        .expect("send");
    let carol_saw = live_message(&carol, chat.id, sent.seq)
        .await
        .expect("carol got bob's message live");
    assert_eq!(carol_saw.text, "across the cluster");
    let alice_saw = live_message(&alice, chat.id, sent.seq)
        .await
        .expect("alice got the placeholder live");
    assert!(alice_saw.from_blocked_user && alice_saw.text.is_empty());
}
