//! Redis fails under a chat cluster: a master is killed (its replica takes over), and every
//! pub/sub connection is cut (`CLIENT KILL TYPE pubsub`, which redis-rs's own resubscription
//! handles wrongly for sharded channels in different slots). Live delivery across nodes resumes
//! in every chat, and nothing is lost: what live delivery dropped while the nodes resubscribed
//! reaches every member through gap detection once later events arrive.

use std::time::Duration;

use tests::cluster::ChatCluster;
use tests::redis::RedisCluster;
use tests::traffic::{Acked, assert_views};
use tests::users::{TestUser, create_group, messages_in};

/// Groups, so that their channels fall in different slots and on different masters.
const GROUPS: usize = 4;
/// How long live delivery may take to resume after the failure has been dealt with.
const RESUME: Duration = Duration::from_secs(30);
/// How long one probe round waits for live delivery.
const PROBE_WAIT: Duration = Duration::from_secs(2);

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
