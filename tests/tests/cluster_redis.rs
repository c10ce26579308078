//! Redis fails under a chat cluster: a master is killed (its replica takes over), and every
//! pub/sub connection is cut (`CLIENT KILL TYPE pubsub`, which redis-rs's own resubscription
//! handles wrongly for sharded channels in different slots). Live delivery across nodes resumes
//! in every chat; nothing acknowledged is lost.

use std::time::Duration;

use tests::cluster::ChatCluster;
use tests::redis::RedisCluster;
use tests::traffic::{Traffic, assert_views};
use tests::users::{TestUser, create_group};

/// Groups, so that their channels fall in different slots and on different masters.
const GROUPS: usize = 4;
/// How long delivery may take to resume after the failure has been dealt with.
const RESUME: Duration = Duration::from_secs(30);

/// One user per node and `GROUPS` groups of all three.
async fn users_and_groups(cluster: &ChatCluster) -> (Vec<TestUser>, Vec<u64>) {
    let mut users = Vec::new();
    for i in 0..cluster.len() {
        users.push(TestUser::register(cluster.client_config(i), &format!("user{i}")).await);
    }
    let mut chats = Vec::new();
    for g in 0..GROUPS {
        // Owners on every node.
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

/// Every user sends a few messages in every group; every member must get all of them live.
async fn delivery_works(users: &[TestUser], chats: &[u64], round: &str) {
    let all: Vec<&TestUser> = users.iter().collect();
    for &chat in chats {
        let mut texts = Vec::new();
        for user in &all {
            let text = format!("{round} {} in {chat}", user.name);
            user.client
                .send_text(chat, &text)
                .await
                .unwrap_or_else(|e| panic!("{round}: {} cannot send: {e}", user.name));
            texts.push(text);
        }
        for user in &all {
            user.expect_texts(chat, &texts, RESUME).await;
        }
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
    delivery_works(&users, &chats, "before").await;

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

    // Traffic right after the failover, then every chat live again.
    let all: Vec<&TestUser> = users.iter().collect();
    let traffic = Traffic::start(&all, chats[0], Duration::from_millis(50), 10);
    let acked = traffic.join().await;
    delivery_works(&users, &chats, "after failover").await;
    // Every member's events of the busiest chat match its history, which holds every message
    // acknowledged around the failover.
    let history = acked_with_earlier(&users[0], chats[0]).await;
    let missing: Vec<_> = acked.iter().filter(|a| !history.contains(a)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the history: {missing:?}"
    );
    assert_views(&all, chats[0], &history, RESUME).await;
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
    delivery_works(&users, &chats, "before").await;

    let mut cluster = tokio::task::spawn_blocking(move || {
        let killed = cluster.redis().expect("redis").client_kill_pubsub_all();
        assert!(killed > 0, "chatd had no pub/sub connection to kill");
        cluster
    })
    .await
    .expect("kill pub/sub connections");
    delivery_works(&users, &chats, "after the kill").await;

    // Once more: the resubscribed connections are the ones killed this time.
    cluster = tokio::task::spawn_blocking(move || {
        let killed = cluster.redis().expect("redis").client_kill_pubsub_all();
        assert!(killed > 0, "chatd did not resubscribe");
        cluster
    })
    .await
    .expect("kill pub/sub connections again");
    delivery_works(&users, &chats, "after the second kill").await;
    drop(cluster);
}

/// Every message of `chat` as acknowledged history, from `user`'s point of view (the messages
/// sent by `delivery_works` and the traffic together).
async fn acked_with_earlier(user: &TestUser, chat: u64) -> Vec<tests::traffic::Acked> {
    user.history(chat)
        .await
        .expect("history")
        .into_iter()
        .map(|m| tests::traffic::Acked {
            seq: m.seq,
            text: m.text,
        })
        .collect()
}
