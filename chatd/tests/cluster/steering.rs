//! Least-connections steering: an overloaded node redirects new clients that follow redirects.

use std::time::Duration;

use crate::support::client::Client;
use crate::support::redis::RedisServer;
use crate::support::{serial, start_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_node_redirects_new_clients_to_the_least_loaded_one() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let shared = tempfile::tempdir().expect("temp dir");
    let a = start_node(
        "node-a",
        Some(&redis.url()),
        Some(shared.path()),
        &["--steering"],
    )
    .await;
    let b = start_node(
        "node-b",
        Some(&redis.url()),
        Some(shared.path()),
        &["--steering"],
    )
    .await;

    let mut crowd = Vec::new();
    for i in 0..5 {
        crowd.push(Client::register(a.addr, &format!("user{i}")).await);
    }
    // Let both nodes heartbeat their loads (every 500 ms) and node A read them.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // A client that does not follow redirects is served.
    let mut plain = Client::connect(a.addr).await;
    assert_eq!(plain.hello(&[]).await.redirect, None);

    let mut newcomer = Client::connect(a.addr).await;
    let welcome = newcomer.hello(&["redirect"]).await;
    let redirect = welcome
        .redirect
        .expect("node A (5 connections, node B 0) steers");
    assert_eq!(redirect.addresses, [b.addr.to_string()]);
    let closed = tokio::time::timeout(Duration::from_secs(3), newcomer.conn.closed())
        .await
        .expect("closed");
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                close.error_code,
                quinn::VarInt::from_u32(chatproto::error::CloseCode::Redirected.code())
            );
        }
        other => panic!("closed otherwise: {other}"),
    }

    // Node B is below its share: it serves.
    let mut on_b = Client::connect(b.addr).await;
    assert_eq!(on_b.hello(&["redirect"]).await.redirect, None);
}
