//! Access rules in a cluster: a ban or allow-list mode set through one node is stored in the
//! shared MongoDB database and enforced by the other node within its refresh interval, without
//! Redis in the path; removing it lets the address in again on both.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use chatproto::client::{Client, ClientConfig};
use chatproto::pb;

use crate::nodes::two_nodes_and_root;

/// The nodes' `--access-refresh`.
const REFRESH: Duration = Duration::from_millis(200);
/// How long a change may take to reach the other node: many refreshes.
const REACHED: Duration = Duration::from_secs(5);

/// Whether a connection from `from` to the one node of `config` is admitted.
async fn admitted(config: &ClientConfig, from: &str) -> bool {
    let mut config = config.clone();
    let bind = SocketAddr::new(from.parse::<IpAddr>().expect("address"), 0);
    config.endpoint = Some(chatproto::udp::client_endpoint(bind).expect("bind"));
    config.retry.connect_timeout = Duration::from_secs(2);
    config.retry.reconnect = false;
    match Client::connect(config).await {
        Ok(client) => {
            client.close().await;
            true
        }
        Err(_) => false,
    }
}

/// How long until a connection from `from` to `config`'s node is `wanted` (admitted or not).
async fn until(config: &ClientConfig, from: &str, wanted: bool) -> Duration {
    let start = Instant::now();
    while admitted(config, from).await != wanted {
        assert!(
            start.elapsed() < REACHED,
            "{from} still {} after {REACHED:?}",
            if wanted { "refused" } else { "admitted" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_and_allow_list_mode_set_through_one_node_are_enforced_by_the_other() {
    let (cluster, root) = two_nodes_and_root(vec![
        format!("--access-refresh={}ms", REFRESH.as_millis()),
        "--access-exempt=127.0.0.3/32".into(),
    ])
    .await;
    let mut node1 = cluster.client_config(1);
    node1.servers.truncate(1);
    assert!(admitted(&node1, "127.0.0.2").await);

    let ban = pb::AdminAddAccessRule {
        cidr: "127.0.0.2".into(),
        kind: pb::AccessRuleKind::Ban as i32,
        reason: "cluster test".into(),
        expires_in_ms: 0,
    };
    root.client
        .admin_add_access_rule(ban)
        .await
        .expect("ban through node0");
    let took = until(&node1, "127.0.0.2", false).await;
    eprintln!("a ban through node0 took {took:?} to refuse on node1 (refresh {REFRESH:?})");
    assert!(admitted(&node1, "127.0.0.1").await);

    root.client
        .admin_add_access_rule(pb::AdminAddAccessRule {
            cidr: "127.0.0.1".into(),
            kind: pb::AccessRuleKind::Allow as i32,
            ..Default::default()
        })
        .await
        .expect("allow root's address");
    let mode = root
        .client
        .admin_set_access_mode(pb::AdminSetAccessMode { allow_list: true })
        .await
        .expect("allow-list mode");
    assert!(mode.allow_list);
    let took = until(&node1, "127.0.0.4", false).await;
    eprintln!("allow-list mode took {took:?} to refuse on node1");
    assert!(admitted(&node1, "127.0.0.1").await, "allowed");
    assert!(admitted(&node1, "127.0.0.3").await, "exempt");

    root.client
        .admin_set_access_mode(pb::AdminSetAccessMode { allow_list: false })
        .await
        .expect("open");
    root.client
        .admin_remove_access_rule(pb::AdminRemoveAccessRule {
            cidr: "127.0.0.2/32".into(),
            kind: pb::AccessRuleKind::Ban as i32,
        })
        .await
        .expect("unban");
    let took = until(&node1, "127.0.0.2", true).await;
    eprintln!("removing the ban took {took:?} to admit on node1");
    assert!(admitted(&node1, "127.0.0.4").await);
    drop(cluster);
}
