//! An admin broadcast in a cluster: asked of one node, recorded in the shared MongoDB store for
//! every user, and sent live through Redis to a user connected to another node; a user who was
//! offline finds it with their next sync on any node.

use std::time::Duration;

use chatproto::client::ClientEvent;
use chatproto::pb;
use tests::users::TestUser;

use crate::nodes::two_nodes_and_root;

/// How long the live event may take from node0 through Redis to node1.
const LIVE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_through_one_node_reaches_users_on_the_other() {
    let (cluster, root) = two_nodes_and_root(Vec::new()).await;
    let bob = TestUser::register(cluster.client_config(1), "bob").await;
    assert_eq!(bob.node_id().as_deref(), Some("node1"));
    let carol = TestUser::register(cluster.client_config(1), "carol").await;
    carol.client.close().await;

    let sent = root
        .client
        .admin_broadcast(pb::AdminBroadcast {
            text: "Rolling restart in 5 minutes.".into(),
        })
        .await
        .expect("broadcast");
    assert_eq!(sent.recipients, 3, "root, bob and carol");

    let live = bob
        .log
        .wait_for(LIVE, |events| {
            events.iter().find_map(|e| match e {
                ClientEvent::Notification(n) if n.kind() == pb::NotificationKind::Broadcast => {
                    Some(n.clone())
                }
                _ => None,
            })
        })
        .await
        .expect("bob on node1 gets the broadcast live");
    assert_eq!(
        (live.preview.as_str(), live.actor_id),
        ("Rolling restart in 5 minutes.", root.id)
    );

    let carol = TestUser::login(cluster.client_config(0), "carol").await;
    let synced = carol.client.sync(pb::Sync::default()).await.expect("sync");
    assert_eq!(synced.unread_notifications, 1);
    let listed = carol
        .client
        .list_notifications(pb::ListNotifications {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.notifications.len(), 1);
    assert_eq!(
        listed.notifications[0].kind(),
        pb::NotificationKind::Broadcast
    );
    drop(cluster);
}
