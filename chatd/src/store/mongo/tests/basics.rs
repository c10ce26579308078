//! Connecting, indexes, errors and the refresh-rotation steps.

use std::time::{Duration, Instant};

use mongodb::bson::doc;

use super::users;
use crate::store::mongo::{MongoOptions, MongoStore, testserver};
use crate::store::{
    ConflictKind, NewSession, RefreshOutcome, SessionStore, Store, StoreError, UserStore,
};

#[tokio::test]
async fn an_unreachable_server_is_unavailable_within_the_selection_timeout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let options = MongoOptions {
        server_selection_timeout: Duration::from_millis(500),
        ..MongoOptions::default()
    };
    let result = MongoStore::connect(&format!("mongodb://127.0.0.1:{port}/"), options).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_fast_as_unavailable_once_the_server_is_gone() {
    let server = testserver::start()
        .unwrap_or_else(|e| panic!("the MongoDB-backend tests need FerretDB: {e}"));
    let options = MongoOptions {
        database: testserver::fresh_database(),
        ..MongoOptions::default()
    };
    let store = MongoStore::connect(&server.uri, options).await.unwrap();
    users(&store, &["ann"]).await;
    server.stop();
    // Each call within the 2 s a request may take, also after the first failure.
    for attempt in 0..2 {
        let started = Instant::now();
        let write = store.touch_last_seen(1, 5).await;
        assert!(
            matches!(write, Err(StoreError::Unavailable(_))),
            "{write:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "write {attempt} took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let ping = store.ping().await;
        assert!(matches!(ping, Err(StoreError::Unavailable(_))), "{ping:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "ping {attempt} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn majority_and_retryable_writes_unless_the_uri_or_options_say_otherwise() {
    use mongodb::options::{Acknowledgment, ClientOptions};
    let resolve = |uri: &'static str, options: MongoOptions| async move {
        let mut client = ClientOptions::parse(uri).await.unwrap();
        crate::store::mongo::apply_options(&mut client, &options);
        (
            client.write_concern.and_then(|w| w.w),
            client.retry_writes,
            client.server_selection_timeout,
        )
    };
    let defaults = resolve("mongodb://db1,db2/?replicaSet=rs0", MongoOptions::default()).await;
    assert_eq!(
        defaults,
        (
            Some(Acknowledgment::Majority),
            Some(true),
            Some(Duration::from_millis(1500))
        )
    );
    let from_uri = resolve(
        "mongodb://db1/?w=1&retryWrites=false&serverSelectionTimeoutMS=300",
        MongoOptions::default(),
    )
    .await;
    assert_eq!(
        from_uri,
        (
            Some(Acknowledgment::Nodes(1)),
            Some(false),
            Some(Duration::from_millis(300))
        )
    );
    let relaxed = MongoOptions {
        write_concern_majority: false,
        retry_writes: false,
        ..MongoOptions::default()
    };
    assert_eq!(resolve("mongodb://db1/", relaxed).await.0, None);
}

#[tokio::test]
async fn a_malformed_uri_is_refused() {
    let result = MongoStore::connect("postgres://nope", MongoOptions::default()).await;
    assert!(
        matches!(result, Err(StoreError::Internal(ref m)) if m.contains("invalid mongodb uri")),
        "{result:?}"
    );
}

#[tokio::test]
async fn connecting_again_keeps_indexes_and_data() {
    let database = testserver::fresh_database();
    let options = MongoOptions {
        database: database.clone(),
        ..MongoOptions::default()
    };
    let first = MongoStore::connect(&testserver::uri(), options.clone())
        .await
        .unwrap();
    let ids = users(&first, &["ann"]).await;
    let second = MongoStore::connect(&testserver::uri(), options)
        .await
        .unwrap();
    assert_eq!(second.backend(), "mongodb");
    second.ping().await.unwrap();
    assert_eq!(second.user(ids[0]).await.unwrap().unwrap().username, "ann");
    // The unique index survived the second start.
    let again = users_result(&second, "ANN").await;
    assert!(
        matches!(
            again,
            Err(StoreError::Conflict(ConflictKind::UsernameTaken))
        ),
        "{again:?}"
    );
}

async fn users_result(
    store: &MongoStore,
    name: &str,
) -> Result<crate::store::UserRecord, StoreError> {
    store
        .create_user(crate::store::NewUser {
            username: name.to_string(),
            email: String::new(),
            password_hash: String::new(),
            role: chatproto::pb::Role::User,
            now_ms: 1,
        })
        .await
}

#[tokio::test]
async fn ferretdb_has_no_text_index_so_search_uses_the_fallback() {
    let store = testserver::store().await;
    assert!(!store.has_text_index());
}

fn session(user_id: u64, hash: &str) -> NewSession {
    NewSession {
        user_id,
        device_name: "laptop".into(),
        address: "127.0.0.1:1".into(),
        refresh_hash: hash.into(),
        now_ms: 10,
        checked_hash: None,
    }
}

#[tokio::test]
async fn rotation_rotates_once_then_detects_reuse() {
    let store = testserver::store().await;
    let ids = users(&store, &["ann"]).await;
    let s = store.create_session(session(ids[0], "h1")).await.unwrap();
    let rotated = store.rotate_refresh("h1", "h2", 20).await.unwrap();
    assert!(
        matches!(rotated, RefreshOutcome::Rotated(ref r) if r.id == s.id && r.last_seen_at_ms == 20),
        "{rotated:?}"
    );
    let clash = store.rotate_refresh("h2", "h1", 25).await;
    assert!(
        matches!(
            clash,
            Err(StoreError::Conflict(ConflictKind::RefreshTokenReused))
        ),
        "{clash:?}"
    );
    let reused = store.rotate_refresh("h1", "h3", 30).await.unwrap();
    assert_eq!(
        reused,
        RefreshOutcome::Reused {
            session_id: s.id,
            user_id: ids[0]
        }
    );
    assert_eq!(
        store.rotate_refresh("h2", "h4", 40).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(
        store
            .session(s.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at_ms
            .is_some()
    );
}

#[tokio::test]
async fn a_rotation_interrupted_after_its_claim_fails_safe() {
    let options = MongoOptions {
        repair_after: Duration::from_millis(50),
        ..MongoOptions::default()
    };
    let store = testserver::store_with(options).await;
    let ids = users(&store, &["ann"]).await;
    let s = store.create_session(session(ids[0], "h1")).await.unwrap();
    // What a crash after the claim leaves: h1 recorded as used, still the live token.
    store
        .c
        .used_refresh
        .insert_one(doc! { "_id": "h1", "session_id": s.id as i64, "user_id": ids[0] as i64 })
        .await
        .unwrap();
    // Presenting it again cannot be told from a replay: the session ends.
    let outcome = store.rotate_refresh("h1", "h2", 20).await.unwrap();
    assert_eq!(
        outcome,
        RefreshOutcome::Reused {
            session_id: s.id,
            user_id: ids[0]
        }
    );
    assert!(
        store
            .session(s.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at_ms
            .is_some()
    );
    assert_eq!(
        store.rotate_refresh("h1", "h3", 30).await.unwrap(),
        RefreshOutcome::Invalid
    );
}

#[tokio::test]
async fn concurrent_rotations_of_one_token_rotate_once_and_revoke() {
    let store = testserver::store().await;
    let ids = users(&store, &["ann"]).await;
    let s = store.create_session(session(ids[0], "h1")).await.unwrap();
    let (a, b) = tokio::join!(
        store.rotate_refresh("h1", "a2", 20),
        store.rotate_refresh("h1", "b2", 20)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    let rotated = outcomes
        .iter()
        .filter(|o| matches!(o, RefreshOutcome::Rotated(_)))
        .count();
    let reused = outcomes
        .iter()
        .filter(|o| matches!(o, RefreshOutcome::Reused { .. }))
        .count();
    assert_eq!((rotated, reused), (1, 1), "{outcomes:?}");
    assert!(
        store
            .session(s.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at_ms
            .is_some()
    );
}
