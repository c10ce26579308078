//! Server admins over nodes on the embedded default: the answering node is the only one, and
//! draining it tells its clients to go and stops the server.

use chatproto::client::{Client, ClientEvent};
use chatproto::pb;
use chatproto::pb::ErrorCode as E;

use crate::support::{assert_code, config, register, register_admin, start};

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
