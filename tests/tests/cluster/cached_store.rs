//! The store conformance suite through the store a cluster node's handlers use: SQLite behind
//! the `GuardedStore` behind the `CachedStore`, over a real Redis. Every case has its own Redis
//! server (a fresh store reuses ids from 1, which must not meet another case's cache entries).

use std::sync::Arc;
use std::time::Duration;

use chatd::testing::{
    CacheTtls, CachedStore, GuardedStore, Metrics, Redis, RedisTarget, SqliteStore,
};
use tests::redis::RedisServer;

chatd::store_conformance!(cached_over_redis, async {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = RedisServer::start();
    let metrics = Arc::new(Metrics::new());
    let sqlite = SqliteStore::open(dir.path().join("chat.db")).expect("open store");
    let guarded = GuardedStore::new(Arc::new(sqlite), Duration::from_secs(10), metrics.clone());
    let target = RedisTarget::parse(&redis.url()).expect("redis url");
    let client = Redis::connect(target, Duration::from_secs(3), metrics).expect("redis client");
    let store = CachedStore::new(Arc::new(guarded), client, CacheTtls::default());
    (store, (redis, dir))
});
