//! chatd nodes fail or restart under steady traffic: a node killed with SIGKILL, and a rolling
//! restart (SIGTERM, drain, start again) of every node. Clients move to other nodes and catch
//! up; every acknowledged message is in every member's view exactly once, in seq order.
//!
//! Each test runs its own cluster (nodes are stopped here), with two users per node.

use std::time::Duration;

use chatproto::client::ClientEvent;
use tests::cluster::ChatCluster;
use tests::traffic::{Traffic, assert_views};
use tests::users::{TestUser, create_group};

/// Time for every member to have received everything once the traffic has stopped (a client of
/// a killed node may still be timing out its old connection).
const SETTLE: Duration = Duration::from_secs(60);

/// Two users per node, user `2i` and `2i+1` on node `i`, and a group of all of them.
async fn users_and_group(cluster: &ChatCluster) -> (Vec<TestUser>, u64) {
    let mut users = Vec::new();
    for i in 0..cluster.len() * 2 {
        let node = i / 2;
        let user = TestUser::register(cluster.client_config(node), &format!("user{i}")).await;
        assert_eq!(user.node_id(), Some(format!("node{node}")));
        users.push(user);
    }
    let others: Vec<&TestUser> = users[1..].iter().collect();
    let chat = create_group(&users[0], "failover", &others).await;
    (users, chat.id)
}

/// Whether `user` was told to go away (a drain) and connected again afterwards.
fn reconnected_after_goaway(user: &TestUser) -> bool {
    let events = user.log.snapshot();
    let goaway = events
        .iter()
        .position(|e| matches!(e, ClientEvent::GoAway(_)));
    goaway.is_some_and(|at| {
        events[at..]
            .iter()
            .any(|e| matches!(e, ClientEvent::Connected { .. }))
    })
}

/// Whether `user` has been connected to a node other than `node` since it started.
fn moved_off(user: &TestUser, node: &str) -> bool {
    user.log
        .snapshot()
        .iter()
        .any(|e| matches!(e, ClientEvent::Connected { node_id, .. } if node_id != node))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_node_loses_no_acknowledged_message() {
    let mut cluster = tokio::task::spawn_blocking(ChatCluster::start)
        .await
        .expect("start cluster");
    let (users, chat_id) = users_and_group(&cluster).await;
    let all: Vec<&TestUser> = users.iter().collect();

    let traffic = Traffic::start(&all, chat_id, Duration::from_millis(100), 30);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut cluster = tokio::task::spawn_blocking(move || {
        let status = cluster.node_mut(1).sigkill();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
        cluster
    })
    .await
    .expect("kill node1");
    let acked = traffic.join().await;
    assert_eq!(
        acked.len(),
        30 * all.len(),
        "every message was acknowledged in the end"
    );

    assert_views(&all, chat_id, &acked, SETTLE).await;
    for user in &users[2..4] {
        assert!(
            moved_off(user, "node1"),
            "{} did not reconnect to another node",
            user.name
        );
    }
    assert!(!cluster.node_mut(1).is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_loses_nothing() {
    let mut cluster = tokio::task::spawn_blocking(ChatCluster::start)
        .await
        .expect("start cluster");
    let (users, chat_id) = users_and_group(&cluster).await;
    let all: Vec<&TestUser> = users.iter().collect();

    // Enough messages to outlast three restarts; stopped once they are done.
    let traffic = Traffic::start(&all, chat_id, Duration::from_millis(150), 200);
    for i in 0..cluster.len() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster = tokio::task::spawn_blocking(move || {
            cluster.drain(i);
            cluster.node_mut(i).restart();
            cluster
        })
        .await
        .unwrap_or_else(|e| panic!("restart node{i}: {e}"));
        let (status, body) = cluster.node(i).admin_get("/readyz").expect("readyz");
        assert_eq!(status, 200, "node{i} not ready after its restart: {body}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked = traffic.finish().await;
    assert!(
        acked.len() >= all.len() * 5,
        "too little traffic to mean anything: {}",
        acked.len()
    );

    assert_views(&all, chat_id, &acked, SETTLE).await;
    // Every client was drained once (its node restarted) and reconnected, to another node or
    // to its own once it was back.
    for user in &users {
        assert!(
            reconnected_after_goaway(user),
            "{} was not drained and reconnected",
            user.name
        );
    }
}
