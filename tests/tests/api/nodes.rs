//! Server admins over nodes on the embedded default: the answering node is the only one, and
//! draining it tells its clients to go (those authenticating meanwhile too) and stops the server.

use chatproto::client::{Client, ClientEvent};
use chatproto::pb;
use chatproto::pb::ErrorCode as E;

use crate::support::{PASSWORD, WAIT, assert_code, config, register, register_admin, start};

#[tokio::test]
async fn the_embedded_node_lists_itself_and_drains_when_asked() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;

    let list = root
        .client
        .admin_list_nodes(pb::AdminListNodes {})
        .await
        .expect("nodes");
    assert!(!list.more);
    let [node] = list.nodes.as_slice() else {
        panic!("one node: {list:?}");
    };
    assert!(node.answering && !node.draining, "{node:?}");
    assert_eq!(node.addr, server.addr().to_string());
    assert_eq!(node.connections, 2, "root and alice");
    assert_eq!(node.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(node.heartbeat_at_ms, 0, "no registry, no heartbeat");
    assert!(node.started_at_ms > 0 && !node.node_id.is_empty());

    // Nobody else drains it, and no other node exists here.
    assert_code(
        alice
            .client
            .admin_drain_node(pb::AdminDrainNode::default())
            .await,
        E::PermissionDenied,
    );
    assert_code(
        root.client
            .admin_drain_node(pb::AdminDrainNode {
                node_id: "another-node".into(),
            })
            .await,
        E::NotFound,
    );
    // The answer comes first, then every client is told to go.
    root.client
        .admin_drain_node(pb::AdminDrainNode {
            node_id: node.node_id.clone(),
        })
        .await
        .expect("drain");
    alice
        .wait_for(|e| match e {
            ClientEvent::GoAway(g) => Some(g),
            _ => None,
        })
        .await;
    // And it takes no new connection.
    let mut refused = config(&server);
    refused.retry.connect_timeout = std::time::Duration::from_secs(2);
    refused.retry.reconnect = false;
    assert!(
        Client::connect(refused).await.is_err(),
        "a drained node accepts no connection"
    );
}

/// A connection whose `login` is in flight when the node drains is authenticated by it during
/// the drain, and then told to go like every other connection (with its reconnect delay), not
/// closed without a word.
#[tokio::test]
async fn a_login_in_flight_at_a_drain_gets_its_go_away_too() {
    const LOGINS: usize = 12;
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let bob = register(&server, "bob").await;
    let list = root
        .client
        .admin_list_nodes(pb::AdminListNodes {})
        .await
        .expect("nodes");
    let node_id = list.nodes.first().expect("one node").node_id.clone();

    // Connections that have not authenticated yet, each about to log in as bob. Password
    // hashing runs a few at a time, so most logins are still running after the first one ends.
    let mut logins = tokio::task::JoinSet::new();
    let (first_tx, first_rx) = tokio::sync::mpsc::channel::<()>(LOGINS);
    for _ in 0..LOGINS {
        let mut config = config(&server);
        config.retry.reconnect = false;
        let client = Client::connect(config).await.expect("connect");
        let (name, first_tx) = (bob.name.clone(), first_tx.clone());
        logins.spawn(async move {
            let logged_in = client.login(&name, PASSWORD, "drain").await.is_ok();
            let _ = first_tx.send(()).await;
            (client, logged_in, std::time::Instant::now())
        });
    }
    let mut first_rx = first_rx;
    first_rx.recv().await.expect("a login ended");
    root.client
        .admin_drain_node(pb::AdminDrainNode { node_id })
        .await
        .expect("drain");
    let drained = std::time::Instant::now();

    let mut told = 0;
    let mut authenticated_during_the_drain = 0;
    while let Some(login) = logins.join_next().await {
        let (client, logged_in, at) = login.expect("login task");
        if !logged_in {
            // Refused as the node drains (its request came too late): nothing to be told.
            continue;
        }
        if at > drained {
            authenticated_during_the_drain += 1;
        }
        let go_away = tokio::time::timeout(WAIT, async {
            while let Some(event) = client.next_event().await {
                if let ClientEvent::GoAway(g) = event {
                    return Some(g);
                }
            }
            None
        })
        .await
        .expect("a logged-in connection hears from the node before it closes");
        let go_away = go_away.expect("a logged-in connection is told to go, not just closed");
        assert!(go_away.reconnect_after_ms >= 500, "{go_away:?}");
        told += 1;
    }
    assert!(
        authenticated_during_the_drain > 0,
        "no login was still running when the drain began ({told} told): the case was not tested"
    );
}
