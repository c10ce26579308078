//! Redis fails under a chat cluster: a master is killed (its replica takes over), and every
//! pub/sub connection is cut (`CLIENT KILL TYPE pubsub`, which redis-rs's own resubscription
//! handles wrongly for sharded channels in different slots). Live delivery across nodes resumes
//! in every chat, and nothing is lost: what live delivery dropped while the nodes resubscribed
//! reaches every member through gap detection once later events arrive.
//!
//! The same cut with two in-process nodes checks the subscriptions themselves: every chat, user
//! and global channel is subscribed again on the master serving it, including a master that
//! serves several of them in different slots (the case redis-rs gets wrong).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chatproto::pb::response::Result as Answer;
use tests::cluster::{ChatCluster, redis_cluster_url};
use tests::raw::{RawSession, message_text};
use tests::redis::RedisCluster;
use tests::traffic::{Acked, assert_views};
use tests::users::{TestUser, create_group, messages_in};

use crate::in_process::{eventually, serial, shared_store, start_node};

/// Groups, so that their channels fall in different slots and on different masters.
const GROUPS: usize = 4;
/// How long live delivery may take to resume after the failure has been dealt with.
const RESUME: Duration = Duration::from_secs(30);
/// How long one probe round waits for live delivery.
const PROBE_WAIT: Duration = Duration::from_secs(2);
/// How long the in-process nodes may take to (re)subscribe or deliver.
const WAIT: Duration = Duration::from_secs(10);

/// One user per node and `GROUPS` groups of all three, owned by users on every node.
async fn users_and_groups(cluster: &ChatCluster) -> (Vec<TestUser>, Vec<u64>) {
    let mut users = Vec::new();
    for i in 0..cluster.len() {
        users.push(TestUser::register(cluster.client_config(i), &format!("user{i}")).await);
    }
    let mut chats = Vec::new();
    for g in 0..GROUPS {
        let owner = g % users.len();
        let others: Vec<&TestUser> = users
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != owner)
            .map(|(_, u)| u)
            .collect();
        chats.push(
            create_group(&users[owner], &format!("group {g}"), &others)
                .await
                .id,
        );
    }
    (users, chats)
}

/// Every user sends one message in every group (appended to `sent` as acknowledged); true when
/// every member received all of them within `wait`.
async fn probe(
    users: &[TestUser],
    chats: &[u64],
    tag: &str,
    wait: Duration,
    sent: &mut Vec<(u64, String)>,
) -> bool {
    let first = sent.len();
    for &chat in chats {
        for user in users {
            let text = format!("{tag} {} in {chat}", user.name);
            user.client
                .send_text(chat, &text)
                .await
                .unwrap_or_else(|e| panic!("{tag}: {} cannot send in {chat}: {e}", user.name));
            sent.push((chat, text));
        }
    }
    let sent = &sent[first..];
    for user in users {
        let all_arrived = user
            .log
            .wait_for(wait, |events| {
                sent.iter()
                    .all(|(chat, text)| {
                        messages_in(events, *chat)
                            .iter()
                            .any(|(_, m)| &m.text == text)
                    })
                    .then_some(())
            })
            .await;
        if all_arrived.is_none() {
            return false;
        }
    }
    true
}

/// Probes until a round is delivered live to everyone (at most [`RESUME`]), then checks every
/// member's view of every chat against its history: each message once, in seq order.
async fn delivery_resumes(users: &[TestUser], chats: &[u64], what: &str) {
    let deadline = tokio::time::Instant::now() + RESUME;
    let mut round = 0;
    let mut sent = Vec::new();
    while !probe(
        users,
        chats,
        &format!("{what} {round}"),
        PROBE_WAIT,
        &mut sent,
    )
    .await
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "live delivery did not resume within {RESUME:?} {what}"
        );
        round += 1;
    }
    let all: Vec<&TestUser> = users.iter().collect();
    for &chat in chats {
        let history: Vec<Acked> = users[0]
            .history(chat)
            .await
            .expect("history")
            .into_iter()
            .map(|m| Acked {
                seq: m.seq,
                text: m.text,
            })
            .collect();
        for (_, text) in sent.iter().filter(|(c, _)| *c == chat) {
            assert!(
                history.iter().any(|m| &m.text == text),
                "chat {chat}: acknowledged {text:?} is not in the history"
            );
        }
        assert_views(&all, chat, &history, RESUME).await;
    }
}

/// Active pub/sub channels (sharded and plain) per node.
fn channels_per_node(redis: &RedisCluster) -> Vec<usize> {
    redis
        .nodes()
        .iter()
        .map(|node| {
            let sharded: Vec<String> = node
                .query(redis::cmd("PUBSUB").arg("SHARDCHANNELS"))
                .unwrap_or_default();
            let plain: Vec<String> = node
                .query(redis::cmd("PUBSUB").arg("CHANNELS"))
                .unwrap_or_default();
            sharded.len() + plain.len()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_resumes_after_a_redis_master_is_killed() {
    let mut cluster = tokio::task::spawn_blocking(ChatCluster::start)
        .await
        .expect("start cluster");
    let (users, chats) = users_and_groups(&cluster).await;
    assert!(
        probe(&users, &chats, "before", RESUME, &mut Vec::new()).await,
        "no live delivery across nodes to begin with"
    );

    // Kill the master that carries the most subscribed channels.
    let mut cluster = tokio::task::spawn_blocking(move || {
        let redis = cluster.redis().expect("redis");
        let channels = channels_per_node(redis);
        let masters = redis.masters(0).expect("masters");
        let (rank, busiest) = masters
            .iter()
            .enumerate()
            .max_by_key(|(_, node)| channels[**node])
            .map(|(rank, node)| (rank, *node))
            .expect("three masters");
        assert!(
            channels[busiest] > 0,
            "no master has a subscribed channel: {channels:?}"
        );
        assert_eq!(redis.kill_master(rank), busiest);
        cluster
    })
    .await
    .expect("kill a redis master");

    delivery_resumes(&users, &chats, "after the failover").await;
    for i in 0..cluster.len() {
        assert!(
            cluster.node_mut(i).is_running(),
            "node{i} died with the redis master"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_resumes_after_every_pubsub_connection_is_killed() {
    let mut cluster = tokio::task::spawn_blocking(ChatCluster::start)
        .await
        .expect("start cluster");
    let (users, chats) = users_and_groups(&cluster).await;
    assert!(
        probe(&users, &chats, "before", RESUME, &mut Vec::new()).await,
        "no live delivery across nodes to begin with"
    );

    let mut cluster = tokio::task::spawn_blocking(move || {
        let killed = cluster.redis().expect("redis").client_kill_pubsub_all();
        assert!(killed > 0, "chatd had no pub/sub connection to kill");
        cluster
    })
    .await
    .expect("kill pub/sub connections");
    delivery_resumes(&users, &chats, "after the kill").await;

    // Once more: this time the connections chatd opened to resubscribe are the ones killed.
    cluster = tokio::task::spawn_blocking(move || {
        let killed = cluster.redis().expect("redis").client_kill_pubsub_all();
        assert!(killed > 0, "chatd did not resubscribe");
        cluster
    })
    .await
    .expect("kill pub/sub connections again");
    delivery_resumes(&users, &chats, "after the second kill").await;
    drop(cluster);
}

/// How many clients are subscribed to a shard channel, asked of the master serving it.
fn subscribers(cluster: &RedisCluster, channel: &str) -> u64 {
    let node = &cluster.nodes()[cluster.master_of_slot(0, cluster.slot_of(channel))];
    let (_, count): (String, u64) = node
        .query(redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel))
        .unwrap_or_else(|e| node.fail(&format!("PUBSUB SHARDNUMSUB {channel}: {e}")));
    count
}

/// Whether every channel has its subscribers: both nodes for a chat or `global`, the one node
/// of its user for a user channel.
fn all_subscribed(cluster: &RedisCluster, channels: &[String]) -> bool {
    channels.iter().all(|c| {
        let want = if c.starts_with("user:") { 1 } else { 2 };
        subscribers(cluster, c) >= want
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_delivery_of_in_process_nodes_resumes_after_every_pubsub_connection_is_killed() {
    let _serial = serial().await;
    let mut cluster = RedisCluster::start();
    let url = redis_cluster_url(&cluster.urls());
    let store = shared_store();
    let a = start_node("node-a", Some(&url), &store, &[]).await;
    let b = start_node("node-b", Some(&url), &store, &[]).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let mut bob = RawSession::register(&b, "bob").await;
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
    let mut by_master: HashMap<usize, HashSet<u16>> = HashMap::new();
    for channel in &channels {
        let slot = cluster.slot_of(channel);
        by_master
            .entry(cluster.master_of_slot(0, slot))
            .or_default()
            .insert(slot);
    }
    assert!(
        by_master.values().any(|slots| slots.len() >= 2),
        "no master with channels in two slots: {by_master:?}"
    );

    assert!(
        eventually(WAIT, async || all_subscribed(&cluster, &channels)).await,
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

    let killed = cluster.client_kill_pubsub_all();
    assert!(
        killed >= 2,
        "expected both nodes' pub/sub connections to be killed, killed {killed}"
    );
    assert!(
        eventually(WAIT, async || all_subscribed(&cluster, &channels)).await,
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
