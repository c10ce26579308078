//! Cluster mode with in-process nodes: two chatd daemons in the test process sharing one Redis
//! (standalone, or a Redis Cluster) and one store (a shared SQLite database in place of MongoDB),
//! and raw sessions over QUIC on loopback that see exactly what each node says and how it
//! closes. In-process nodes expose what a process hides (subscriptions, the store, a node that
//! stops talking to Redis without dying), and start in milliseconds.
//!
//! Every test starts its own redis-server processes on free ports; a test that cannot start
//! redis-server fails and says so.

mod cache;
mod calls;
mod fanout;
mod kick;
mod presence;
mod ratelimit;
mod resilience;
mod resumption;
mod routing;
mod steering;

use std::sync::Arc;
use std::time::Duration;

use tests::process;
use tests::redis::RedisServer;
use tests::server::TestServer;

/// Several of these tests assert how long something took (presence expiry, fail-fast): they
/// run one at a time so that their timings are not at the mercy of each other.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Settings every node gets: a node id, and presence that expires fast (TTL 2 s, heartbeat every
/// 500 ms), so that a dead node's users go offline within a test's patience.
fn node_args<'a>(node_id: &'a str, redis_url: Option<&'a str>, extra: &[&'a str]) -> Vec<String> {
    let mut args = vec![
        format!("--node-id={node_id}"),
        "--presence-ttl=2s".to_string(),
        "--heartbeat-interval=500ms".to_string(),
        "--log=warn".to_string(),
    ];
    args.extend(redis_url.map(|url| format!("--redis-url={url}")));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// Starts node `node_id` on `redis_url` (if any) with extra flags, storing in `store`: the data
/// directory several nodes share like cluster nodes share MongoDB.
pub async fn start_node(
    node_id: &str,
    redis_url: Option<&str>,
    store: &Arc<tempfile::TempDir>,
    extra: &[&str],
) -> TestServer {
    let args = node_args(node_id, redis_url, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestServer::start_in(store.clone(), &args).await
}

/// A new data directory for nodes to share.
pub fn shared_store() -> Arc<tempfile::TempDir> {
    Arc::new(tempfile::tempdir().expect("temp dir"))
}

/// Two nodes, `node-a` and `node-b`, on one standalone Redis and one store, with extra flags.
pub async fn two_nodes(redis: &RedisServer, extra: &[&str]) -> (TestServer, TestServer) {
    let store = shared_store();
    let a = start_node("node-a", Some(&redis.url()), &store, extra).await;
    let b = start_node("node-b", Some(&redis.url()), &store, extra).await;
    (a, b)
}

/// Polls `check` every 50 ms until it is true or `wait` passed.
pub async fn eventually(wait: Duration, check: impl AsyncFnMut() -> bool) -> bool {
    process::eventually(wait, Duration::from_millis(50), check).await
}

/// Whether `key` exists in `redis`.
pub fn exists(redis: &RedisServer, key: &str) -> bool {
    redis
        .query(redis::cmd("EXISTS").arg(key))
        .unwrap_or_else(|e| redis.fail(&format!("EXISTS {key}: {e}")))
}
