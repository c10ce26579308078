//! Webhook delivery in cluster mode: the outbox lives in the shared database (FerretDB), every
//! node's worker claims from it, and each call is delivered by one node, once, also when the
//! endpoint failed at first and the calls were retried.

use std::collections::BTreeMap;
use std::time::Duration;

use chatproto::pb;
use tests::cluster::{ChatCluster, ClusterSpec};
use tests::process::eventually;
use tests::users::TestUser;
use tests::webhook::WebhookReceiver;

const SECRET: &str = "cluster-webhook-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_is_delivered_once_by_one_node() {
    let receiver = WebhookReceiver::start(SECRET.as_bytes()).await;
    receiver.set_failing(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).expect("secret");
    let args = vec![
        format!("--webhooks=mention={}/mention", receiver.base),
        format!("--webhook-secret-file={}", secret.display()),
        "--delivery-attempts=20".to_owned(),
        "--delivery-retry-base=200ms".to_owned(),
        "--delivery-retry-max=400ms".to_owned(),
        "--delivery-poll=100ms".to_owned(),
    ];
    let mut cluster = tokio::task::spawn_blocking(move || {
        ChatCluster::start_with(ClusterSpec {
            nodes: 2,
            args,
            ..ClusterSpec::default()
        })
    })
    .await
    .expect("start cluster");
    let alice = TestUser::register(cluster.client_config(0), "alice").await;
    let bob = TestUser::register(cluster.client_config(1), "bob").await;
    bob.client
        .set_notification_prefs(pb::SetNotificationPrefs {
            prefs: Some(pb::NotificationPrefs {
                webhook: true,
                ..Default::default()
            }),
        })
        .await
        .expect("prefs");
    let chat = alice
        .client
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "ops".into(),
            description: String::new(),
            member_ids: vec![bob.id],
        })
        .await
        .expect("group");
    const SENT: usize = 10;
    for n in 0..SENT {
        alice
            .client
            .send_text(chat.id, &format!("@bob alert {n}"))
            .await
            .expect("send");
    }
    // Every call fails at first, and is tried again.
    let failing = eventually(
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || receiver.calls().len() >= 2 * SENT,
    )
    .await;
    assert!(failing, "{} calls while failing", receiver.calls().len());
    receiver.set_failing(false);
    let delivered = |calls: &[tests::webhook::Call]| {
        let mut ok: BTreeMap<String, usize> = BTreeMap::new();
        for call in calls.iter().filter(|c| c.status == 204) {
            *ok.entry(call.delivery.clone()).or_default() += 1;
        }
        ok
    };
    let all = eventually(
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || delivered(&receiver.calls()).len() == SENT,
    )
    .await;
    if !all {
        let logs: Vec<String> = (0..2)
            .map(|i| {
                std::fs::read_to_string(cluster.node_mut(i).process().log_path())
                    .unwrap_or_default()
            })
            .collect();
        panic!(
            "delivered: {:?}\nnode0:\n{}\nnode1:\n{}",
            delivered(&receiver.calls()),
            logs[0],
            logs[1]
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = receiver.calls();
    assert!(calls.iter().all(|c| c.authentic), "every call signed");
    let ok = delivered(&calls);
    assert_eq!(ok.len(), SENT);
    assert!(ok.values().all(|&n| n == 1), "each delivered once: {ok:?}");
    drop(cluster);
}
