//! Key rotation in a cluster (chatd processes on FerretDB and a Redis Cluster): the rings are in
//! the shared MongoDB database, so a rotation through one node is honored by the other at once
//! (an access token signed, and a refresh token hashed, by node0's new key work on node1), and
//! a scheduled rotation, due on both nodes at once, happens once.

use std::time::{Duration, Instant};

use chatproto::client::{Client, ClientConfig};
use chatproto::pb;

use crate::nodes::two_nodes_and_root;

/// The tokens ring's key ids, current first.
async fn token_kids(root: &Client) -> Vec<u32> {
    let list = root
        .admin_list_keys(pb::AdminListKeys {})
        .await
        .expect("list keys");
    list.rings
        .iter()
        .find(|r| r.kind == pb::KeyKind::Tokens as i32)
        .expect("tokens ring")
        .keys
        .iter()
        .map(|k| k.kid)
        .collect()
}

/// A client of node `i` alone.
fn only(config: ClientConfig) -> ClientConfig {
    let mut config = config;
    config.servers.truncate(1);
    config.retry.reconnect = false;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_are_shared_by_the_nodes_and_a_scheduled_one_happens_once() {
    let (cluster, root) = two_nodes_and_root(vec![
        "--access-token-ttl=1s".into(),
        "--key-overlap=7s".into(),
        "--key-rotation-interval=7s".into(),
    ])
    .await;
    // The schedule: both nodes look every 2 s; when kid 1 comes of age one of them rotates.
    let start = Instant::now();
    let rotated = loop {
        let kids = token_kids(&root.client).await;
        if kids[0] > 1 {
            break kids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no scheduled rotation: {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rotated[0], 2, "{rotated:?}");
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let later = token_kids(&root.client).await;
    assert_eq!(later[0], 2, "a second rotation of the same key: {later:?}");

    // By command through node0: node1 verifies the new key's tokens at once.
    for kind in [pb::KeyKind::Tokens, pb::KeyKind::Refresh] {
        root.client
            .admin_rotate_key(pb::AdminRotateKey {
                kind: kind as i32,
                secret: Vec::new(),
            })
            .await
            .expect("rotate through node0");
    }
    let alice = Client::connect(only(cluster.client_config(0)))
        .await
        .expect("connect to node0");
    let auth = alice
        .register_user("alice", "alice@example.test", tests::client::PASSWORD, "t")
        .await
        .expect("register on node0");
    let kid = jsonwebtoken::decode_header(&auth.access_token)
        .expect("jwt")
        .kid;
    assert_eq!(kid.as_deref(), Some("3"));
    let on_node1 = Client::connect(only(cluster.client_config(1)))
        .await
        .expect("connect to node1");
    on_node1
        .authenticate(&auth.access_token)
        .await
        .expect("node1 verifies node0's new key at once");
    let other = Client::connect(only(cluster.client_config(1)))
        .await
        .expect("connect to node1");
    other
        .refresh(&auth.refresh_token)
        .await
        .expect("node1 finds a refresh token under node0's new pepper");
}
