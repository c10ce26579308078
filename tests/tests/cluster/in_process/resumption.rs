//! Resumption across nodes (spec 2.5): a node tells the others of the session tickets it
//! issues, so a returning client resumes, with its first requests in 0-RTT data, on any node.

use std::time::Duration;

use tests::raw::early::{EarlyClient, exchange, hello};
use tests::raw::error_code;
use tests::redis::RedisServer;

use super::{eventually, serial, two_nodes};

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_from_one_node_resumes_with_0rtt_data_on_another() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;
    // The nodes share a data directory, so a certificate: the client is pinned to it.
    let client = EarlyClient::new(&a);
    client.take_tickets(a.addr()).await;
    // Node A issued two tickets; node B hears of them through Redis (nothing else goes between
    // the nodes here: the client never authenticated).
    let heard = eventually(WAIT, async || {
        let metrics = b.metrics().await;
        loadgen::scrape::metric_sum(&metrics, "chatd_cluster_received_total").unwrap_or(0.0) >= 2.0
    })
    .await;
    assert!(heard, "node B never heard of node A's tickets");

    let (conn, answers) = client.send_early(b.addr(), &[hello()]).await;
    let answers = answers.expect("node B resumed node A's ticket with 0-RTT data");
    assert!(error_code(&answers[0]).is_none(), "{answers:?}");
    let again = exchange(&conn, &[hello()]).await;
    assert!(
        error_code(&again[0]).is_some(),
        "a second hello is refused: {again:?}"
    );
}
