//! Presence across nodes: online while connected to any node, offline when the last connection
//! anywhere closes, and offline within the presence TTL when a node dies.

use std::time::{Duration, Instant};

use chatproto::pb;
use chatproto::pb::request::Kind;
use tests::raw::{RawSession, presence};
use tests::redis::RedisServer;

use super::{exists, serial, shared_store, start_node, two_nodes};

const WAIT: Duration = Duration::from_secs(5);

/// The score of `node` in the registry of live nodes, if it is there.
fn node_score(redis: &RedisServer, node: &str) -> Option<f64> {
    redis
        .query(redis::cmd("ZSCORE").arg("chatd:nodes").arg(node))
        .unwrap_or_else(|e| redis.fail(&format!("ZSCORE chatd:nodes {node}: {e}")))
}

async fn status_seen_by(client: &mut RawSession, user: u64) -> pb::UserStatus {
    client.get_users(&[user]).await[0].status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_users_across_nodes() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let bob = RawSession::register(&b, "bob").await;
    let bob_id = bob.user_id;
    alice
        .ok(Kind::AddContact(pb::AddContact { user_id: bob_id }))
        .await;
    assert_eq!(
        status_seen_by(&mut alice, bob_id).await,
        pb::UserStatus::Online,
        "online on node B"
    );

    bob.conn().close(0u32.into(), b"bye");
    let update = alice
        .wait_for(WAIT, |e| presence(e).filter(|(u, _)| *u == bob_id))
        .await;
    assert_eq!(
        update,
        Some((bob_id, pb::UserStatus::Offline)),
        "node B's disconnect reaches node A"
    );
    assert_eq!(
        status_seen_by(&mut alice, bob_id).await,
        pb::UserStatus::Offline
    );

    let bob_b = RawSession::login(&b, "bob").await;
    let update = alice
        .wait_for(WAIT, |e| presence(e).filter(|(u, _)| *u == bob_id))
        .await;
    assert_eq!(update, Some((bob_id, pb::UserStatus::Online)));

    // Connected to both nodes: leaving one changes nothing for watchers.
    let bob_a = RawSession::login(&a, "bob").await;
    alice.drain_events();
    bob_b.conn().close(0u32.into(), b"bye");
    let update = alice
        .wait_for(Duration::from_millis(1500), |e| {
            presence(e).filter(|(u, _)| *u == bob_id)
        })
        .await;
    assert_eq!(
        update, None,
        "no presence change while still connected to node A"
    );
    assert_eq!(
        status_seen_by(&mut alice, bob_id).await,
        pb::UserStatus::Online
    );
    bob_a.conn().close(0u32.into(), b"bye");
    let update = alice
        .wait_for(WAIT, |e| presence(e).filter(|(u, _)| *u == bob_id))
        .await;
    assert_eq!(update, Some((bob_id, pb::UserStatus::Offline)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_users_go_offline_within_the_presence_ttl() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let bob = RawSession::register(&b, "bob").await;
    alice
        .ok(Kind::AddContact(pb::AddContact {
            user_id: bob.user_id,
        }))
        .await;
    assert_eq!(
        status_seen_by(&mut alice, bob.user_id).await,
        pb::UserStatus::Online
    );
    alice.drain_events();

    // Node B stops talking to Redis, as if it had crashed: no heartbeat, no cleanup.
    let crashed = Instant::now();
    b.halt_cluster();
    let update = alice
        .wait_for(Duration::from_secs(8), |e| {
            presence(e).filter(|(u, _)| *u == bob.user_id)
        })
        .await;
    let took = crashed.elapsed();
    assert_eq!(
        update,
        Some((bob.user_id, pb::UserStatus::Offline)),
        "node A announces the dead node's user"
    );
    // Presence TTL 2 s + heartbeat 500 ms, plus scheduling slack.
    assert!(took <= Duration::from_secs(4), "took {took:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "announced before the node could have expired: {took:?}"
    );
    assert_eq!(
        status_seen_by(&mut alice, bob.user_id).await,
        pb::UserStatus::Offline
    );
    assert!(!exists(&redis, "chatd:presence:node:node-b"), "cleaned up");
    assert_eq!(node_score(&redis, "node-b"), None, "forgotten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orderly_shutdown_announces_its_users_offline_at_once() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let store = shared_store();
    let a = start_node("node-a", Some(&redis.url()), &store, &[]).await;
    let b = start_node(
        "node-b",
        Some(&redis.url()),
        &store,
        &["--shutdown-grace=1s"],
    )
    .await;

    let mut alice = RawSession::register(&a, "alice").await;
    let bob = RawSession::register(&b, "bob").await;
    alice
        .ok(Kind::AddContact(pb::AddContact {
            user_id: bob.user_id,
        }))
        .await;
    alice.drain_events();
    let started = Instant::now();
    b.stop().await;
    let update = alice
        .wait_for(Duration::from_secs(2), |e| {
            presence(e).filter(|(u, _)| *u == bob.user_id)
        })
        .await;
    assert_eq!(update, Some((bob.user_id, pb::UserStatus::Offline)));
    // Well before the presence TTL (2 s) could have expired the node.
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    assert!(!exists(&redis, "chatd:node:node-b"), "deregistered");
    assert_eq!(node_score(&redis, "node-b"), None);
}
