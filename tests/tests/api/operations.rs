//! The admin HTTP port: Prometheus metrics, liveness and readiness.

use std::net::SocketAddr;

use chatproto::pb;
use tests::client::register;
use tests::server::TestServer;

/// GET on the admin port. The server runs in this test's runtime, so the blocking client
/// ([`tests::chatd::http_get`]) runs on a blocking thread.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || tests::chatd::http_get(addr, &path))
        .await
        .expect("join")
        .expect("admin GET")
}

/// The value of an unlabelled metric in a Prometheus text body (0 when absent).
fn counter(body: &str, name: &str) -> f64 {
    loadgen::scrape::metric_sum(body, name).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let server = TestServer::start().await;
    let (alice, _) = register(&server, "alice").await;
    alice.get_me(pb::GetMe {}).await.expect("get_me");
    let chat = alice
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "m".into(),
            ..Default::default()
        })
        .await
        .expect("group");
    alice.send_text(chat.id, "counted").await.expect("send");
    let _ = alice.get_chat(pb::GetChat { chat_id: 12345 }).await;

    assert_eq!(http_get(server.admin_addr(), "/healthz").await.0, 200);
    assert_eq!(http_get(server.admin_addr(), "/readyz").await.0, 200);
    assert_eq!(http_get(server.admin_addr(), "/nope").await.0, 404);

    // Alice's own connection gets her message as an event; the counter follows the write.
    let mut body = String::new();
    for _ in 0..100 {
        let (status, text) = http_get(server.admin_addr(), "/metrics").await;
        assert_eq!(status, 200);
        body = text;
        if counter(&body, "chatd_events_sent_total") >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        counter(&body, "chatd_events_sent_total") >= 1.0,
        "no event counted as sent:\n{body}"
    );
    for needle in [
        "chatd_connections_open",
        "kind=\"get_me\"",
        "kind=\"register\"",
        "outcome=\"not_found\"",
        "chatd_request_duration_seconds",
        "process_resident_memory_bytes",
        "chatd_messages_persisted_total 1",
    ] {
        assert!(body.contains(needle), "metrics lack {needle}:\n{body}");
    }
}
