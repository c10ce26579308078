//! Rate limits are shared by the nodes through Redis.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::support::client::Client;
use crate::support::redis::RedisServer;
use crate::support::{serial, start_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_limit_holds_across_nodes() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let shared = tempfile::tempdir().expect("temp dir");
    let limit = ["--limit-send=1/m burst 3"];
    let a = start_node("node-a", Some(&redis.url()), Some(shared.path()), &limit).await;
    let b = start_node("node-b", Some(&redis.url()), Some(shared.path()), &limit).await;

    let mut on_a = Client::register(a.addr, "alice").await;
    let mut on_b = Client::login(b.addr, "alice").await;
    let chat = on_a.create_group("notes", &[]).await;
    assert!(matches!(
        on_a.send_text(chat, "1").await,
        Answer::Message(_)
    ));
    assert!(matches!(
        on_a.send_text(chat, "2").await,
        Answer::Message(_)
    ));
    assert!(matches!(
        on_b.send_text(chat, "3").await,
        Answer::Message(_)
    ));
    // Three sent across both nodes: the burst is spent everywhere, although node B alone saw
    // only one.
    for client in [&mut on_b, &mut on_a] {
        match client.send_text(chat, "one too many").await {
            Answer::Error(e) => {
                assert_eq!(e.code(), pb::ErrorCode::RateLimited);
                assert!(e.retry_after_ms > 0 && e.retry_after_ms <= 60_000, "{e:?}");
            }
            other => panic!("not limited: {other:?}"),
        }
    }
    let key = format!("chatd:rl:send:{}", on_a.user_id);
    assert_eq!(
        redis.cli(&["EXISTS", &key]),
        "1",
        "the bucket lives in redis"
    );
    let ttl: i64 = redis.cli(&["PTTL", &key]).parse().expect("pttl");
    assert!(
        ttl > 0 && ttl <= 180_001,
        "the bucket expires when full again: {ttl}"
    );
}
