//! The Redis read cache serves profile and search reads on every node and follows writes made
//! on any node at once; a chat record it failed to invalidate does not hold up the chat's
//! writes.

use std::time::Duration;

use chatd::testing::codec;
use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::pb::response::Result as Answer;
use tests::client::register;
use tests::raw::RawSession;
use tests::redis::RedisServer;

use super::{eventually, exists, serial, two_nodes};

async fn display_name(client: &mut RawSession, user: u64) -> String {
    client.get_users(&[user]).await[0].display_name.clone()
}

async fn search(client: &mut RawSession, query: &str) -> Vec<pb::User> {
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

async fn rename(client: &mut RawSession, name: &str) {
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
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut alice = RawSession::register(&a, "alice").await;
    let mut bob = RawSession::register(&b, "bob").await;
    rename(&mut alice, "Alice One").await;
    assert_eq!(display_name(&mut bob, alice.user_id).await, "Alice One");

    // Node B's read filled the shared cache...
    let key = format!("chatd:cache:0:user:{}", alice.user_id);
    assert!(
        eventually(Duration::from_secs(3), async || exists(&redis, &key)).await,
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
    redis
        .query::<()>(redis::cmd("SET").arg(&key).arg(planted).arg("EX").arg(60))
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
        exists(&redis, "chatd:cache:0:{usearch}")
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
    let (a, b) = two_nodes(&redis, &[]).await;

    let mut alice = RawSession::connect(&a).await;
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
        eventually(Duration::from_secs(3), async || exists(&redis, &key)).await,
        "not cached"
    );

    alice.ok(Kind::Logout(pb::Logout {})).await;
    let mut elsewhere = RawSession::connect(&b).await;
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

/// A chat record the cache kept after a membership change, as when the node that made the
/// change could not reach Redis to invalidate it: a send judged on it is refused by the store
/// (the chat's `members_seq` moved), and the judgement made again reads past the cache, so the
/// send goes through rather than being refused at every try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cached_chat_does_not_hold_up_a_members_writes() {
    let _serial = serial().await;
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, &[]).await;
    let (alice, _) = register(&a, "alice").await;
    let (bob, bob_auth) = register(&b, "bob").await;
    let (_carol, carol_auth) = register(&b, "carol").await;
    let (bob_id, carol_id) = (
        bob_auth.user.expect("bob").id,
        carol_auth.user.expect("carol").id,
    );
    let chat = alice
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "crew".into(),
            description: String::new(),
            member_ids: vec![bob_id, carol_id],
        })
        .await
        .expect("group")
        .id;
    bob.send_text(chat, "before").await.expect("send");
    let stale = b.store().chat(chat).await.expect("read").expect("chat");

    alice
        .remove_member(pb::RemoveMember {
            chat_id: chat,
            user_id: carol_id,
        })
        .await
        .expect("remove carol");
    let key = format!("chatd:cache:0:chat:{chat}");
    redis
        .query::<()>(
            redis::cmd("SET")
                .arg(&key)
                .arg(codec::encode_chat(&stale))
                .arg("EX")
                .arg(60),
        )
        .expect("plant the record from before the removal");
    for n in 0..3 {
        bob.send_text(chat, &format!("after {n}"))
            .await
            .expect("a send past a stale cached chat");
    }
}
