//! Dependencies going down: requests keep working without Redis and delivery between nodes
//! comes back with it; a stuck store answers UNAVAILABLE quickly, then fails fast, then recovers.

use std::time::{Duration, Instant};

use chatproto::pb;
use chatproto::pb::response::Result as Answer;
use tests::raw::{RawSession, message_text};
use tests::redis::RedisServer;

use super::{eventually, serial, shared_store, start_node, two_nodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_work_without_redis_and_delivery_recovers_when_it_returns() {
    let _serial = serial().await;
    let mut redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let mut bob = RawSession::register(&b, "bob").await;
    let chat = bob.create_group("crew", &[alice.user_id]).await;
    assert!(matches!(
        bob.send_text(chat, "before").await,
        Answer::Message(_)
    ));
    assert!(
        alice
            .wait_for(Duration::from_secs(5), message_text)
            .await
            .is_some()
    );

    redis.kill();
    // Everything a client does keeps working: limits fall back to each node's own, reads skip
    // the cache, local delivery needs no Redis.
    for i in 0..5 {
        let started = Instant::now();
        assert!(matches!(
            alice.send_text(chat, &format!("down {i}")).await,
            Answer::Message(_)
        ));
        assert_eq!(alice.get_users(&[bob.user_id]).await.len(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "requests hang on redis: {:?}",
            started.elapsed()
        );
    }
    assert!(matches!(
        bob.send_text(chat, "down on b").await,
        Answer::Message(_)
    ));

    redis.restart();
    // Pub/sub reconnects and resubscribes by itself; nothing was restarted on the nodes.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut recovered = false;
    alice.drain_events();
    while Instant::now() < deadline && !recovered {
        assert!(matches!(
            bob.send_text(chat, "after").await,
            Answer::Message(_)
        ));
        recovered = alice
            .wait_for(Duration::from_millis(500), |e| {
                message_text(e).filter(|m| m.2 == "after")
            })
            .await
            .is_some();
    }
    assert!(
        recovered,
        "delivery from node B to node A did not come back with redis"
    );
    bob.drain_events();
    assert!(matches!(
        alice.send_text(chat, "both ways").await,
        Answer::Message(_)
    ));
    let got = bob
        .wait_for(Duration::from_secs(5), |e| {
            message_text(e).filter(|m| m.2 == "both ways")
        })
        .await;
    assert!(
        got.is_some(),
        "delivery from node A to node B did not come back"
    );
    // The restarted Redis lost every key: node B wrote its presence again, so Bob is online for
    // node A once more.
    let online = eventually(Duration::from_secs(5), async || {
        alice.get_users(&[bob.user_id]).await[0].status() == pb::UserStatus::Online
    })
    .await;
    assert!(online, "presence was not rewritten after redis lost it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_limits_fall_back_to_each_nodes_own() {
    let _serial = serial().await;
    let mut redis = RedisServer::start();
    let node = start_node(
        "node-a",
        Some(&redis.url()),
        &shared_store(),
        &["--limit-send=1/m burst 3"],
    )
    .await;
    let mut alice = RawSession::register(&node, "alice").await;
    let chat = alice.create_group("notes", &[]).await;
    assert!(matches!(
        alice.send_text(chat, "shared 1").await,
        Answer::Message(_)
    ));
    redis.kill();
    // The shared bucket is out of reach: the node's own, still full, bucket applies (fail open,
    // but bounded).
    for i in 0..3 {
        assert!(matches!(
            alice.send_text(chat, &format!("local {i}")).await,
            Answer::Message(_)
        ));
    }
    match alice.send_text(chat, "one too many").await {
        Answer::Error(e) => assert_eq!(e.code(), pb::ErrorCode::RateLimited),
        other => panic!("unbounded without redis: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_store_answers_unavailable_quickly_then_fails_fast_then_recovers() {
    let _serial = serial().await;
    let node = start_node("solo", None, &shared_store(), &[]).await;
    let mut alice = RawSession::register(&node, "alice").await;
    let chat = alice.create_group("notes", &[]).await;
    assert!(matches!(
        alice.send_text(chat, "fine").await,
        Answer::Message(_)
    ));

    // Another process holds the database's write lock: every write waits for SQLite's busy
    // timeout (5 s), longer than the request may take.
    let db = rusqlite::Connection::open(node.data_dir().join(chatd::ops::datadir::DB_FILE))
        .expect("open the database");
    db.execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");

    let unavailable = |answer: Answer| match answer {
        Answer::Error(e) => e.code() == pb::ErrorCode::Unavailable,
        _ => false,
    };
    let started = Instant::now();
    assert!(unavailable(alice.send_text(chat, "stuck").await));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "UNAVAILABLE took {took:?}");
    // Enough failures open the store's circuit: then requests fail at once.
    for _ in 0..4 {
        assert!(unavailable(alice.send_text(chat, "stuck").await));
    }
    let started = Instant::now();
    assert!(unavailable(alice.send_text(chat, "fast").await));
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "open circuit took {:?}",
        started.elapsed()
    );

    db.execute_batch("ROLLBACK").expect("release the lock");
    drop(db);
    // After the open period a probe goes through, and the node serves again by itself.
    let back = tests::process::eventually(
        Duration::from_secs(10),
        Duration::from_millis(200),
        async || matches!(alice.send_text(chat, "back").await, Answer::Message(_)),
    )
    .await;
    assert!(back, "the store did not come back");
}
