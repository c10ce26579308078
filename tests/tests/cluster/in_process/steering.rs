//! Least-connections steering: an overloaded node redirects new clients that follow redirects.

use std::time::Duration;

use tests::raw::RawSession;
use tests::redis::RedisServer;

use super::{eventually, serial, two_nodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_node_redirects_new_clients_to_the_least_loaded_one() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &["--steering"]).await;

    let mut crowd = Vec::new();
    for i in 0..5 {
        crowd.push(RawSession::register(&a, &format!("user{i}")).await);
    }
    // Both nodes heartbeat their loads every 500 ms: ask node A until it has read node B's and
    // steers a newcomer that follows redirects (a newcomer it serves meanwhile leaves again).
    let mut steered = None;
    let found = eventually(Duration::from_secs(5), async || {
        let mut newcomer = RawSession::connect(&a).await;
        match newcomer.hello(&["redirect"]).await.redirect {
            Some(redirect) => {
                steered = Some((newcomer, redirect));
                true
            }
            None => {
                newcomer.conn().close(0u32.into(), b"served");
                false
            }
        }
    })
    .await;
    assert!(found, "node A (5 connections, node B 0) does not steer");
    let (newcomer, redirect) = steered.expect("the steered newcomer");
    assert_eq!(redirect.addresses, [b.addr().to_string()]);

    // A client that does not follow redirects is served, steering or not.
    let mut plain = RawSession::connect(&a).await;
    assert_eq!(plain.hello(&[]).await.redirect, None);

    let closed = tokio::time::timeout(Duration::from_secs(3), newcomer.conn().closed())
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
    let mut on_b = RawSession::connect(&b).await;
    assert_eq!(on_b.hello(&["redirect"]).await.redirect, None);
}
