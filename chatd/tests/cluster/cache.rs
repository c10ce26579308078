//! The Redis read cache serves profile and search reads on every node and follows writes made
//! on any node at once.

use std::time::Duration;

use chatd::testing::codec;
use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::pb::response::Result as Answer;

use crate::support::client::Client;
use crate::support::redis::RedisServer;
use crate::support::{eventually, serial, start_node};

async fn display_name(client: &mut Client, user: u64) -> String {
    client.get_users(&[user]).await[0].display_name.clone()
}

async fn search(client: &mut Client, query: &str) -> Vec<pb::User> {
    match client
        .ok(Kind::SearchUsers(pb::SearchUsers {
            query: query.into(),
            limit: 10,
            cursor: String::new(),
        }))
        .await
    {
        Answer::Users(list) => list.users,
        other => panic!("search: {other:?}"),
    }
}

async fn rename(client: &mut Client, name: &str) {
    client
        .ok(Kind::UpdateProfile(pb::UpdateProfile {
            display_name: Some(name.into()),
            ..Default::default()
        }))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_and_search_caches_follow_writes_on_other_nodes() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let shared = tempfile::tempdir().expect("temp dir");
    let a = start_node("node-a", Some(&redis.url()), Some(shared.path()), &[]).await;
    let b = start_node("node-b", Some(&redis.url()), Some(shared.path()), &[]).await;

    let mut alice = Client::register(a.addr, "alice").await;
    let mut bob = Client::register(b.addr, "bob").await;
    rename(&mut alice, "Alice One").await;
    assert_eq!(display_name(&mut bob, alice.user_id).await, "Alice One");

    // Node B's read filled the shared cache...
    let key = format!("chatd:cache:0:user:{}", alice.user_id);
    assert!(
        eventually(Duration::from_secs(3), async || redis
            .cli(&["EXISTS", &key])
            == "1")
        .await,
        "not cached"
    );
    // ...and reads are served from it: a value planted there is what node B answers.
    let mut record = b
        .store()
        .user(alice.user_id)
        .await
        .expect("read")
        .expect("alice");
    record.display_name = "Planted".into();
    let planted = codec::encode_user(&record);
    let mut conn = redis::Client::open(redis.url())
        .expect("client")
        .get_connection()
        .expect("connect");
    redis::cmd("SET")
        .arg(&key)
        .arg(planted)
        .arg("EX")
        .arg(60)
        .query::<()>(&mut conn)
        .expect("plant");
    assert_eq!(
        display_name(&mut bob, alice.user_id).await,
        "Planted",
        "served from the cache"
    );

    // A write on node A invalidates for every node.
    rename(&mut alice, "Alice Two").await;
    assert_eq!(display_name(&mut bob, alice.user_id).await, "Alice Two");

    // Search pages likewise. The rename left a tombstone that keeps pages from being cached for
    // a few seconds (so a page read before it cannot come back): search until one is cached.
    let cached = eventually(Duration::from_secs(8), async || {
        let found = search(&mut bob, "ali").await;
        assert_eq!(
            found
                .iter()
                .map(|u| u.display_name.as_str())
                .collect::<Vec<_>>(),
            ["Alice Two"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        redis.cli(&["EXISTS", "chatd:cache:0:{usearch}"]) == "1"
    })
    .await;
    assert!(cached, "search page not cached");
    rename(&mut alice, "Alice Three").await;
    let found = search(&mut bob, "ali").await;
    assert_eq!(
        found
            .iter()
            .map(|u| u.display_name.as_str())
            .collect::<Vec<_>>(),
        ["Alice Three"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_on_one_node_is_refused_on_the_others() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let shared = tempfile::tempdir().expect("temp dir");
    let a = start_node("node-a", Some(&redis.url()), Some(shared.path()), &[]).await;
    let b = start_node("node-b", Some(&redis.url()), Some(shared.path()), &[]).await;

    let mut alice = Client::connect(a.addr).await;
    alice.hello(&[]).await;
    let auth = match alice
        .request(Kind::Register(pb::Register {
            username: "alice".into(),
            email: "alice@example.com".into(),
            password: "password123".into(),
            device_name: "laptop".into(),
        }))
        .await
    {
        Answer::Auth(auth) => auth,
        other => panic!("register: {other:?}"),
    };
    // Node B has the session cached.
    let session = b
        .store()
        .session(auth.session_id)
        .await
        .expect("read")
        .expect("session");
    assert_eq!(session.revoked_at_ms, None);
    let key = format!("chatd:cache:0:session:{}", auth.session_id);
    assert!(
        eventually(Duration::from_secs(3), async || redis
            .cli(&["EXISTS", &key])
            == "1")
        .await,
        "not cached"
    );

    alice.ok(Kind::Logout(pb::Logout {})).await;
    let mut elsewhere = Client::connect(b.addr).await;
    elsewhere.hello(&[]).await;
    match elsewhere
        .request(Kind::Authenticate(pb::Authenticate {
            access_token: auth.access_token,
        }))
        .await
    {
        Answer::Error(e) => assert_eq!(e.code(), pb::ErrorCode::Unauthenticated, "{e:?}"),
        other => panic!("a revoked session authenticated on another node: {other:?}"),
    }
}
