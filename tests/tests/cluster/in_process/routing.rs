//! Send routing: a chat's messages are appended by one node, its owner, which the other nodes
//! forward their sends to; an owner that is gone or does not answer is worked around.

use std::time::{Duration, Instant};

use chatd::testing::{FORWARD_MARGIN, chat_owner};
use chatproto::pb::response::Result as Answer;
use loadgen::scrape::sum_by_label;
use tests::raw::RawSession;
use tests::redis::RedisServer;
use tests::server::TestServer;

use super::{eventually, serial, two_nodes};

/// The nodes' store deadline.
const STORE_TIMEOUT: &str = "--store-timeout=1s";

/// How long a node waits for a chat's owner to answer: the store deadline and the margin.
fn forward_wait() -> Duration {
    Duration::from_secs(1) + FORWARD_MARGIN
}

/// How many of a node's sends took each route (the `chatd_cluster_appends` counter by outcome).
async fn routes(node: &TestServer, route: &str) -> f64 {
    sum_by_label(
        &node.metrics().await,
        "chatd_cluster_appends_total",
        "reason",
    )
    .get(route)
    .copied()
    .unwrap_or(0.0)
}

/// The seq of a sent message; panics on anything else.
fn sent_seq(answer: Answer) -> u64 {
    match answer {
        Answer::Message(m) => m.seq,
        other => panic!("send refused: {other:?}"),
    }
}

/// Two nodes, a group of Alice (node A) and Bob (node B); returns the sessions as (on the
/// chat's owner, on the other node), the nodes likewise, and the chat. Waits until the other
/// node routes to the owner.
async fn routed_chat(
    redis: &RedisServer,
) -> ((TestServer, RawSession), (TestServer, RawSession), u64) {
    let (a, b) = two_nodes(redis, &[STORE_TIMEOUT]).await;
    let alice = RawSession::register(&a, "alice").await;
    let mut bob = RawSession::register(&b, "bob").await;
    let chat = bob.create_group("crew", &[alice.user_id]).await;
    let owner = chat_owner(chat, ["node-a", "node-b"]).expect("an owner");
    let ((owner_node, at_owner), (other_node, mut elsewhere)) = if owner == "node-a" {
        ((a, alice), (b, bob))
    } else {
        ((b, bob), (a, alice))
    };
    // Routing starts once the other node has seen the owner in the registry (a heartbeat).
    let mut n = 0;
    let routed = eventually(Duration::from_secs(5), async || {
        n += 1;
        sent_seq(elsewhere.send_text(chat, &format!("warm-up {n}")).await);
        routes(&other_node, "forwarded").await > 0.0
    })
    .await;
    assert!(
        routed,
        "node {} never routed a send to {owner}",
        other_node.addr()
    );
    ((owner_node, at_owner), (other_node, elsewhere), chat)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_from_both_nodes_are_appended_by_the_chats_owner_in_one_sequence() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let ((owner_node, mut at_owner), (other_node, mut elsewhere), chat) = routed_chat(&redis).await;
    let forwarded = routes(&other_node, "forwarded").await;
    let served = routes(&owner_node, "served").await;

    const EACH: usize = 20;
    let (mine, theirs) = tokio::join!(
        async {
            let mut seqs = Vec::new();
            for i in 0..EACH {
                seqs.push(sent_seq(at_owner.send_text(chat, &format!("o{i}")).await));
            }
            seqs
        },
        async {
            let mut seqs = Vec::new();
            for i in 0..EACH {
                seqs.push(sent_seq(elsewhere.send_text(chat, &format!("e{i}")).await));
            }
            seqs
        }
    );
    // One sequence without gaps or repeats, each sender's messages in its order.
    assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
    assert!(theirs.windows(2).all(|w| w[0] < w[1]), "{theirs:?}");
    let mut all: Vec<u64> = mine.iter().chain(&theirs).copied().collect();
    all.sort_unstable();
    let first = all[0];
    assert_eq!(all, (first..first + 2 * EACH as u64).collect::<Vec<_>>());

    // Every send of the other node went through the owner, which appended it; none fell back.
    assert_eq!(
        routes(&other_node, "forwarded").await - forwarded,
        EACH as f64
    );
    assert_eq!(routes(&owner_node, "served").await - served, EACH as f64);
    assert_eq!(routes(&owner_node, "forwarded").await, 0.0);
    for fallback in ["owner_silent", "retried_here"] {
        assert_eq!(routes(&other_node, fallback).await, 0.0, "{fallback}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_is_gone_is_bypassed_at_once() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let ((owner_node, _at_owner), (other_node, mut elsewhere), chat) = routed_chat(&redis).await;
    let forwarded = routes(&other_node, "forwarded").await;
    let owner = chat_owner(chat, ["node-a", "node-b"]).expect("an owner");

    // The owner is cut off from Redis (as by a crash or a partition), while the registry still
    // lists it: its channel has no subscriber any more.
    owner_node.halt_cluster();
    let channel = format!("node:{owner}");
    let gone = eventually(Duration::from_secs(5), async || {
        let (_, subscribers): (String, i64) = redis
            .query(redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel))
            .unwrap_or_else(|e| redis.fail(&format!("PUBSUB NUMSUB: {e}")));
        subscribers == 0
    })
    .await;
    assert!(gone, "{channel} kept its subscriber after the halt");

    let started = Instant::now();
    let first = sent_seq(elsewhere.send_text(chat, "while the owner is away").await);
    for n in 1..=5 {
        let seq = sent_seq(elsewhere.send_text(chat, &format!("later {n}")).await);
        assert_eq!(seq, first + n);
    }
    assert!(
        started.elapsed() < forward_wait(),
        "sends waited for an owner that is gone ({:?})",
        started.elapsed()
    );
    // Tried once, then left alone.
    assert_eq!(routes(&other_node, "owner_gone").await, 1.0);
    assert_eq!(routes(&other_node, "forwarded").await, forwarded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_that_does_not_answer_is_waited_for_once_and_then_bypassed() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, _b) = two_nodes(&redis, &[STORE_TIMEOUT]).await;
    let mut alice = RawSession::register(&a, "alice").await;

    // A third node that the registry lists and whose channel has a listener, which never
    // answers (a node stuck, or a newer node's bug).
    let listener = redis::Client::open(redis.url()).expect("redis client");
    let mut listening = listener.get_connection().expect("redis connection");
    let mut pubsub = listening.as_pubsub();
    pubsub.subscribe("node:node-z").expect("subscribe");
    let registered: i64 = redis
        .query(
            redis::cmd("HSET")
                .arg("chatd:node:node-z")
                .arg("addr")
                .arg("127.0.0.1:9")
                .arg("conns")
                .arg(0),
        )
        .unwrap_or_else(|e| redis.fail(&format!("HSET: {e}")));
    assert_eq!(registered, 2);
    let _: i64 = redis
        .query(redis::cmd("ZADD").arg("chatd:nodes").arg(0).arg("node-z"))
        .unwrap_or_else(|e| redis.fail(&format!("ZADD: {e}")));

    // A chat node-z owns.
    let mut chat = 0;
    for n in 0..40 {
        let group = alice.create_group(&format!("g{n}"), &[]).await;
        if chat_owner(group, ["node-a", "node-b", "node-z"]) == Some("node-z") {
            chat = group;
            break;
        }
    }
    assert_ne!(chat, 0, "no chat of 40 went to node-z");
    // Node A learns of node-z at a heartbeat (every 500 ms); until then it appends at once.
    let mut first = 0;
    for attempt in 0..20 {
        let started = Instant::now();
        first = sent_seq(
            alice
                .send_text(chat, &format!("to a silent owner {attempt}"))
                .await,
        );
        if routes(&a, "owner_silent").await > 0.0 {
            assert!(
                started.elapsed() >= forward_wait(),
                "the send given up on did not wait for the owner ({:?})",
                started.elapsed()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        routes(&a, "owner_silent").await,
        1.0,
        "node-z was never tried"
    );
    let started = Instant::now();
    for n in 1..=5 {
        let seq = sent_seq(alice.send_text(chat, &format!("later {n}")).await);
        assert_eq!(seq, first + n);
    }
    assert!(
        started.elapsed() < forward_wait(),
        "later sends still waited for the owner ({:?})",
        started.elapsed()
    );
    assert_eq!(routes(&a, "owner_silent").await, 1.0);
    assert_eq!(routes(&a, "forwarded").await, 0.0);
}
