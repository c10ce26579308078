//! The database goes down under a running cluster: sends are answered UNAVAILABLE quickly
//! (no hanging requests), readiness reports it, and once the database is back the same chatd
//! processes serve again, with nothing lost or duplicated.

use std::time::{Duration, Instant};

use chatproto::client::{ClientError, new_client_msg_id};
use chatproto::pb;
use tests::cluster::{ChatCluster, ClusterSpec};
use tests::process::poll_until;
use tests::users::{TestUser, create_group};

/// The promise under test: an answer within this long while the database is down.
const UNAVAILABLE_WITHIN: Duration = Duration::from_secs(2);
/// How long the service may take to serve again after the database is back.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);

fn text(chat_id: u64, client_msg_id: &str, text: &str) -> pb::SendMessage {
    pb::SendMessage {
        chat_id,
        client_msg_id: client_msg_id.to_string(),
        kind: pb::MessageKind::Text as i32,
        text: text.to_string(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_unavailable_and_recovers_without_restarting_chatd() {
    let mut cluster =
        tokio::task::spawn_blocking(|| ChatCluster::start_with(ClusterSpec::default()))
            .await
            .expect("start cluster");
    let mut alice_config = cluster.client_config(0);
    // The SDK retries UNAVAILABLE by itself; this test wants to see the answer.
    alice_config.retry.max_retries = 0;
    let alice = TestUser::register(alice_config, "alice").await;
    let bob = TestUser::register(cluster.client_config(1), "bob").await;
    let chat = create_group(&alice, "outage", &[&bob]).await;
    let before = alice
        .client
        .send_message(text(chat.id, &new_client_msg_id(), "before the outage"))
        .await
        .expect("send before");
    bob.expect_texts(
        chat.id,
        &["before the outage".to_string()],
        Duration::from_secs(10),
    )
    .await;

    let pids: Vec<u32> = (0..cluster.len())
        .map(|i| cluster.node_mut(i).process().pid())
        .collect();
    let mut cluster = tokio::task::spawn_blocking(move || {
        cluster.ferretdb().stop();
        cluster
    })
    .await
    .expect("stop ferretdb");

    // Every send during the outage is answered UNAVAILABLE, quickly.
    let mut refused = Vec::new();
    for i in 0..3 {
        let id = new_client_msg_id();
        let body = format!("during the outage {i}");
        let started = Instant::now();
        let result = alice.client.send_message(text(chat.id, &id, &body)).await;
        let took = started.elapsed();
        match result {
            Err(ClientError::Remote(e)) if e.code == pb::ErrorCode::Unavailable => {}
            other => panic!("send {i} during the outage: expected UNAVAILABLE, got {other:?}"),
        }
        assert!(
            took < UNAVAILABLE_WITHIN,
            "send {i} during the outage took {took:?}"
        );
        refused.push((id, body));
    }
    let admin0 = cluster.node(0).admin_addr();
    let not_ready = tokio::task::spawn_blocking(move || {
        poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
            tests::chatd::http_get(admin0, "/readyz")
                .ok()
                .filter(|(status, _)| *status != 200)
        })
    })
    .await
    .expect("readyz task");
    assert!(
        not_ready.is_some(),
        "/readyz stayed 200 while the database was down"
    );

    let mut cluster = tokio::task::spawn_blocking(move || {
        cluster.ferretdb().restart();
        cluster
    })
    .await
    .expect("restart ferretdb");

    // The same processes serve again: the refused sends, retried with their ids, go through.
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    let mut accepted = Vec::new();
    for (id, body) in &refused {
        loop {
            match alice.client.send_message(text(chat.id, id, body)).await {
                Ok(message) => {
                    accepted.push(message);
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "not yet recovered");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!(
                    "sends still fail {RECOVERY_TIMEOUT:?} after the database came back: {e}"
                ),
            }
        }
    }
    for (i, pid) in pids.iter().enumerate() {
        let node = cluster.node_mut(i);
        assert!(node.is_running(), "node {i} died during the outage");
        assert_eq!(node.process().pid(), *pid, "node {i} was restarted");
    }
    let texts: Vec<String> = refused.iter().map(|(_, body)| body.clone()).collect();
    bob.expect_texts(chat.id, &texts, Duration::from_secs(10))
        .await;

    // History: the message from before, then each retried send exactly once, in seq order.
    let history = bob.history(chat.id).await.expect("history");
    let messages: Vec<(u64, String)> = history.iter().map(|m| (m.seq, m.text.clone())).collect();
    let mut expected = vec![(before.seq, before.text.clone())];
    expected.extend(accepted.iter().map(|m| (m.seq, m.text.clone())));
    assert_eq!(messages, expected, "history after the outage");
    assert!(
        messages.windows(2).all(|w| w[0].0 < w[1].0),
        "history out of seq order: {messages:?}"
    );
    // Node 0's sends went to the chat's owner node, so node 0's own breaker may still be open:
    // it is ready again once the breaker lets a probe through (its cooldown, then one ping).
    let admin0 = cluster.node(0).admin_addr();
    let ready = tokio::task::spawn_blocking(move || {
        poll_until(RECOVERY_TIMEOUT, Duration::from_millis(100), || {
            tests::chatd::http_get(admin0, "/readyz")
                .ok()
                .filter(|(status, _)| *status == 200)
        })
    })
    .await
    .expect("readyz task");
    assert!(
        ready.is_some(),
        "/readyz not 200 {RECOVERY_TIMEOUT:?} after the database came back"
    );
}
