//! Admins over a cluster's nodes: any node lists every live one from the registry (and refuses
//! a backup, which is of the embedded database only), and a drain
//! asked through one node reaches another at its heartbeat: its clients are told to go, it
//! exits 0 and leaves the registry; the process that replaces it under the same id serves.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use chatproto::client::ClientEvent;
use chatproto::pb;
use tests::cluster::{ChatCluster, ClusterSpec, DRAIN_TIMEOUT};
use tests::users::{PASSWORD, TestUser};

/// How long a drain request may take to be seen (a few heartbeats of 200 ms) and acted on.
const NOTICED: Duration = Duration::from_secs(10);

/// Creates the admin `root` in the cluster's database, as an operator does the first one.
fn add_admin(cluster: &ChatCluster) {
    add_admin_on(&cluster.database_uri(), &[]);
}

/// `chatd user add root --admin` on the database at `uri`, with `extra` flags (a master key).
pub(crate) fn add_admin_on(uri: &str, extra: &[&str]) {
    let mut child = Command::new(tests::tools::chatd_binary())
        .args(["user", "add", "root", "--admin", "--password-stdin"])
        .args(extra)
        .env("CHATD_MONGO_URI", uri)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chatd user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("write the password");
    let out = child.wait_with_output().expect("chatd user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A cluster of two nodes started with `args`, with the admin `root` signed in on node0.
pub(crate) async fn two_nodes_and_root(args: Vec<String>) -> (ChatCluster, TestUser) {
    let cluster = tokio::task::spawn_blocking(|| {
        ChatCluster::start_with(ClusterSpec {
            nodes: 2,
            args,
            ..ClusterSpec::default()
        })
    })
    .await
    .expect("start cluster");
    let cluster_ref = &cluster;
    tokio::task::block_in_place(|| add_admin(cluster_ref));
    let root = TestUser::login(cluster.client_config(0), "root").await;
    (cluster, root)
}

async fn nodes(root: &TestUser) -> Vec<pb::NodeStatus> {
    let list = root
        .client
        .admin_list_nodes(pb::AdminListNodes {})
        .await
        .expect("nodes");
    list.nodes
}

async fn node_ids(root: &TestUser) -> Vec<String> {
    nodes(root).await.into_iter().map(|n| n.node_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_listed_from_the_registry_and_one_drains_when_asked_through_another() {
    let (mut cluster, root) = two_nodes_and_root(vec!["--heartbeat-interval=200ms".into()]).await;
    let bob = TestUser::register(cluster.client_config(1), "bob").await;
    assert_eq!(bob.node_id().as_deref(), Some("node1"));

    // Backups are of the embedded database only: on MongoDB, the answer names mongodump.
    let refused = root
        .client
        .admin_backup_to_writer(&mut Vec::new(), |_, _| {})
        .await
        .expect_err("a backup on mongodb");
    let refused = match refused {
        chatproto::client::ClientError::Remote(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused.code,
        pb::ErrorCode::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message.contains("mongodump"), "{refused:?}");

    let list = root
        .client
        .admin_list_nodes(pb::AdminListNodes {})
        .await
        .expect("nodes");
    let ids: Vec<&str> = list.nodes.iter().map(|n| n.node_id.as_str()).collect();
    assert_eq!(ids, ["node0", "node1"]);
    let addrs: Vec<String> = cluster.addrs().iter().map(ToString::to_string).collect();
    for (node, addr) in list.nodes.iter().zip(&addrs) {
        assert_eq!(&node.addr, addr);
        assert!(node.heartbeat_at_ms > 0 && !node.draining, "{node:?}");
        assert_eq!(node.version, env!("CARGO_PKG_VERSION"));
    }
    assert!(list.nodes[0].answering && !list.nodes[1].answering);

    root.client
        .admin_drain_node(pb::AdminDrainNode {
            node_id: "node1".into(),
        })
        .await
        .expect("drain node1");
    let went = bob
        .log
        .wait_for(NOTICED, |events| {
            events
                .iter()
                .any(|e| matches!(e, ClientEvent::GoAway(_)))
                .then_some(())
        })
        .await;
    assert!(went.is_some(), "bob on node1 was told to go");
    let node1 = cluster.node_mut(1);
    let status = tokio::task::block_in_place(|| node1.wait_exit(DRAIN_TIMEOUT));
    assert_eq!(status.code(), Some(0), "node1 drained and exited");
    // It left the registry on its way out; node0 serves on.
    let deadline = tokio::time::Instant::now() + NOTICED;
    while node_ids(&root).await != ["node0"] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node1 still listed: {:?}",
            node_ids(&root).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A rolling restart: the new process under the same id finds the request, which was for
    // the old one, and serves on through heartbeats.
    tokio::task::block_in_place(|| cluster.node_mut(1).restart());
    let mut seen: Vec<i64> = Vec::new();
    let deadline = tokio::time::Instant::now() + NOTICED;
    while seen.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "heartbeats: {seen:?}"
        );
        if let Some(node1) = nodes(&root)
            .await
            .into_iter()
            .find(|n| n.node_id == "node1")
        {
            assert!(!node1.draining, "{node1:?}");
            if seen.last() != Some(&node1.heartbeat_at_ms) {
                seen.push(node1.heartbeat_at_ms);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cluster.node_mut(1).is_running(), "the new node1 serves");
    TestUser::register(cluster.client_config(1), "carol").await;
}
