//! On a Redis Cluster, killing every pub/sub connection (`CLIENT KILL TYPE pubsub` on every
//! node) does not stop delivery: the nodes reconnect and resubscribe each sharded channel on its
//! own, so no channel is lost to a CROSSSLOT rejection.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chatproto::pb::response::Result as Answer;

use crate::support::client::{Client, message_text};
use crate::support::redis::RedisCluster;
use crate::support::{eventually, serial, start_node};

const WAIT: Duration = Duration::from_secs(10);

/// How many clients are subscribed to a shard channel, asked of the master serving it.
fn subscribers(cluster: &RedisCluster, channel: &str) -> u64 {
    let master = cluster.master_of_slot(cluster.slot_of(channel));
    let node = cluster
        .nodes
        .iter()
        .find(|n| n.port == master)
        .expect("master is a node");
    let reply = node.cli(&["PUBSUB", "SHARDNUMSUB", channel]);
    reply
        .lines()
        .nth(1)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_delivery_resumes_after_every_pubsub_connection_is_killed() {
    let _serial = serial().await;
    let cluster = RedisCluster::start();
    let url = cluster.url();
    let shared = tempfile::tempdir().expect("temp dir");
    let a = start_node("node-a", Some(&url), Some(shared.path()), &[]).await;
    let b = start_node("node-b", Some(&url), Some(shared.path()), &[]).await;

    let mut alice = Client::register(a.addr, "alice").await;
    let mut bob = Client::register(b.addr, "bob").await;
    let mut chats = Vec::new();
    for i in 0..8 {
        chats.push(
            bob.create_group(&format!("room {i}"), &[alice.user_id])
                .await,
        );
    }
    let mut channels: Vec<String> = chats.iter().map(|c| format!("chat:{c}")).collect();
    channels.push(format!("user:{}", alice.user_id));
    channels.push(format!("user:{}", bob.user_id));
    channels.push("global".into());

    // The case that breaks the redis crate's own resubscription: one master serving several of
    // these channels in different slots.
    let mut by_master: HashMap<u16, HashSet<u16>> = HashMap::new();
    for channel in &channels {
        let slot = cluster.slot_of(channel);
        by_master
            .entry(cluster.master_of_slot(slot))
            .or_default()
            .insert(slot);
    }
    assert!(
        by_master.values().any(|slots| slots.len() >= 2),
        "no master with channels in two slots: {by_master:?}"
    );

    let all_subscribed = async || {
        channels.iter().all(|c| {
            let want = if c.starts_with("user:") { 1 } else { 2 };
            subscribers(&cluster, c) >= want
        })
    };
    assert!(
        eventually(WAIT, all_subscribed).await,
        "not every channel is subscribed before the kill"
    );
    for &chat in &chats {
        assert!(matches!(
            bob.send_text(chat, "before").await,
            Answer::Message(_)
        ));
        let got = alice
            .wait_for(WAIT, |e| message_text(e).filter(|m| m.0 == chat))
            .await;
        assert!(got.is_some(), "chat {chat} not delivered before the kill");
    }

    let killed = cluster.kill_pubsub_clients();
    assert!(
        killed >= 2,
        "expected both nodes' pub/sub connections to be killed, killed {killed}"
    );
    assert!(
        eventually(WAIT, all_subscribed).await,
        "some channels were not resubscribed after the kill"
    );

    for &chat in &chats {
        assert!(matches!(
            bob.send_text(chat, "after").await,
            Answer::Message(_)
        ));
    }
    let mut delivered = HashSet::new();
    while delivered.len() < chats.len() {
        let Some((chat, _, text)) = alice.wait_for(WAIT, message_text).await else {
            panic!(
                "after the kill only {} of {} chats delivered: {delivered:?}",
                delivered.len(),
                chats.len()
            );
        };
        if text == "after" {
            delivered.insert(chat);
        }
    }
    // The user channels came back too: a chat created on node B with Alice reaches her node
    // through her user channel.
    let newer = bob.create_group("after the kill", &[alice.user_id]).await;
    let joined = alice
        .wait_for(WAIT, |e| match &e.kind {
            Some(chatproto::pb::event::Kind::Chat(c)) if c.chat_id == newer => Some(c.seq),
            _ => None,
        })
        .await;
    assert_eq!(joined, Some(1), "the user channel works after the kill");
}
