//! Key rotation (spec 9.6, "Key rotation"): rotating the access-token signing keys and the
//! refresh-token pepper logs nobody out — connections stay, tokens and refresh tokens issued
//! before verify during the overlap, and so do tokens from before key rotation existed (no
//! `kid`); ending the overlap refuses them with `UNAUTHENTICATED`. A rotation through one node
//! is honored by another at once, and a scheduled one happens once for two nodes. Admin-only,
//! validated and audited.

use std::sync::Arc;
use std::time::Duration;

use chatproto::pb;
use chatproto::pb::ErrorCode as E;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use tests::client::{code, connect};
use tests::server::TestServer;

use crate::support::{assert_code, assert_field, register, register_admin, start_with};

/// The `kid` in an access token's header (`None`: signed with the key from before rotation).
fn kid(token: &str) -> Option<u32> {
    jsonwebtoken::decode_header(token)
        .expect("a jwt")
        .kid
        .map(|k| k.parse().expect("numeric kid"))
}

#[derive(Serialize)]
struct Claims {
    iss: &'static str,
    aud: &'static str,
    sub: String,
    sid: u64,
    typ: &'static str,
    iat: i64,
    exp: i64,
    role: &'static str,
}

/// An access token for `auth`'s session signed as chatd did before key rotation: HS256 with the
/// token key itself, no `kid`.
fn pre_rotation_token(server: &TestServer, auth: &pb::AuthResult) -> String {
    let hex_key = std::fs::read_to_string(server.data_dir().join("token.key")).expect("token.key");
    let key = hex::decode(hex_key.trim()).expect("hex");
    let now = chatd::testing::now_ms() / 1000;
    let claims = Claims {
        iss: "chatd",
        aud: "chat/1",
        sub: auth.user.as_ref().expect("user").id.to_string(),
        sid: auth.session_id,
        typ: "access",
        iat: now,
        exp: now + 600,
        role: "user",
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&key),
    )
    .expect("sign")
}

fn ring(list: &pb::KeyRingList, kind: pb::KeyKind) -> Vec<(u32, pb::KeyState)> {
    list.rings
        .iter()
        .find(|r| r.kind == kind as i32)
        .expect("ring of the kind")
        .keys
        .iter()
        .map(|k| (k.kid, k.state()))
        .collect()
}

fn rotate(kind: pb::KeyKind) -> pb::AdminRotateKey {
    pb::AdminRotateKey {
        kind: kind as i32,
        secret: Vec::new(),
    }
}

fn retire(kind: pb::KeyKind) -> pb::AdminRetireKeys {
    pb::AdminRetireKeys { kind: kind as i32 }
}

/// Authenticates a new connection with `token`.
async fn authenticate(
    server: &TestServer,
    token: &str,
) -> Result<pb::AuthResult, chatproto::client::ClientError> {
    connect(server).await.authenticate(token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_sessions_alive_until_the_overlap_ends() {
    use pb::KeyKind::{Refresh, Tokens};
    use pb::KeyState::{Current, Retiring};
    let server = start_with(&[]).await;
    let admin = register_admin(&server, "root").await;
    let (alice, alice_auth) = tests::client::register(&server, "alice").await;
    let (_bob, bob_auth) = tests::client::register(&server, "bob").await;
    let legacy = pre_rotation_token(&server, &alice_auth);

    // The upgrade wrote the first rings: kid 1 signs, the key from before (kid 0) verifies.
    let before = admin
        .client
        .admin_list_keys(pb::AdminListKeys {})
        .await
        .expect("list");
    assert_eq!(ring(&before, Tokens), [(1, Current), (0, Retiring)]);
    assert_eq!(ring(&before, Refresh), [(1, Current), (0, Retiring)]);
    assert!(
        ring(&before, pb::KeyKind::Webhook).is_empty(),
        "no webhooks configured"
    );
    assert_eq!(before.overlap_ms, 192 * 3_600_000);
    assert_eq!(before.rotation_interval_ms, 720 * 3_600_000);
    assert_eq!(kid(&alice_auth.access_token), Some(1));
    authenticate(&server, &legacy)
        .await
        .expect("a token from before key rotation verifies during the overlap");

    let after = admin
        .client
        .admin_rotate_key(rotate(Tokens))
        .await
        .expect("rotate tokens");
    assert_eq!(
        ring(&after, Tokens),
        [(2, Current), (1, Retiring), (0, Retiring)]
    );
    admin
        .client
        .admin_rotate_key(rotate(Refresh))
        .await
        .expect("rotate refresh");

    // Alice's connection, authenticated before, goes on; her token and the legacy one still
    // authenticate new connections; new logins get tokens of kid 2.
    alice
        .list_sessions(pb::ListSessions {})
        .await
        .expect("the connection from before the rotation works");
    authenticate(&server, &alice_auth.access_token)
        .await
        .expect("a token signed before the rotation verifies");
    authenticate(&server, &legacy).await.expect("legacy token");
    // The refresh token issued before the refresh rotation refreshes, and the new one (under the
    // new pepper) does too.
    let refresher = connect(&server).await;
    let refreshed = refresher
        .refresh(&alice_auth.refresh_token)
        .await
        .expect("a refresh token from before the rotation refreshes");
    assert_eq!(kid(&refreshed.access_token), Some(2));
    let again = connect(&server)
        .await
        .refresh(&refreshed.refresh_token)
        .await
        .expect("the new refresh token refreshes");

    // Ending the overlap: kid 1 and the legacy token are refused, kid 2 verifies; a refresh
    // token hashed under the retired pepper (bob's, never used) is refused, one under the new
    // pepper refreshes.
    let ended = admin
        .client
        .admin_retire_keys(retire(Tokens))
        .await
        .expect("retire tokens");
    assert_eq!(ring(&ended, Tokens), [(2, Current)]);
    for (name, token) in [("kid 1", &alice_auth.access_token), ("legacy", &legacy)] {
        let e = assert_code(authenticate(&server, token).await, E::Unauthenticated);
        assert!(e.message.contains("retired"), "{name}: {e}");
    }
    authenticate(&server, &again.access_token)
        .await
        .expect("kid 2 verifies");
    admin
        .client
        .admin_retire_keys(retire(Refresh))
        .await
        .expect("retire refresh");
    assert_code(
        connect(&server)
            .await
            .refresh(&bob_auth.refresh_token)
            .await,
        E::Unauthenticated,
    );
    connect(&server)
        .await
        .refresh(&again.refresh_token)
        .await
        .expect("a refresh token under the current pepper refreshes");
    // Alice's open connection stays (ending an overlap closes no connection).
    alice
        .list_sessions(pb::ListSessions {})
        .await
        .expect("still serves");

    // Audited, without any secret.
    let audit = admin
        .client
        .admin_list_audit(pb::AdminListAudit {
            action: "admin_rotate_key".into(),
            ..Default::default()
        })
        .await
        .expect("audit");
    let subjects: Vec<&str> = audit.entries.iter().map(|e| e.subject.as_str()).collect();
    assert_eq!(subjects, ["keys:refresh", "keys:tokens"]);
}

/// A session as chatd stored it before peppers: its refresh token's plain SHA-256. Returns the
/// token.
async fn pre_pepper_session(server: &TestServer, user_id: u64, token: &str) -> String {
    use sha2::Digest as _;
    server
        .store()
        .create_session(chatd::testing::NewSession {
            user_id,
            device_name: "old client".into(),
            address: "127.0.0.1:1".into(),
            refresh_hash: hex::encode(sha2::Sha256::digest(token.as_bytes())),
            now_ms: chatd::testing::now_ms(),
            checked_hash: None,
        })
        .await
        .expect("session");
    token.to_owned()
}

/// Refresh tokens stored before peppers existed (plain SHA-256) refresh during the first
/// pepper's overlap, and the token they get is stored under the pepper; after the overlap they
/// are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_from_before_peppers_refresh_during_the_overlap() {
    let server = start_with(&[]).await;
    let admin = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let used = pre_pepper_session(&server, alice.id, &"A".repeat(43)).await;
    let unused = pre_pepper_session(&server, alice.id, &"B".repeat(43)).await;
    let refreshed = connect(&server)
        .await
        .refresh(&used)
        .await
        .expect("a plain-hashed refresh token refreshes during the overlap");
    // Its successor is stored under the pepper: it survives the end of the overlap.
    admin
        .client
        .admin_retire_keys(retire(pb::KeyKind::Refresh))
        .await
        .expect("retire");
    connect(&server)
        .await
        .refresh(&refreshed.refresh_token)
        .await
        .expect("the successor refreshes under the current pepper");
    assert_code(
        connect(&server).await.refresh(&unused).await,
        E::Unauthenticated,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_requests_are_admin_only_and_validated() {
    let server = start_with(&[]).await;
    let admin = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    assert_code(
        alice.client.admin_list_keys(pb::AdminListKeys {}).await,
        E::PermissionDenied,
    );
    assert_code(
        alice
            .client
            .admin_rotate_key(rotate(pb::KeyKind::Tokens))
            .await,
        E::PermissionDenied,
    );
    assert_field(
        admin
            .client
            .admin_rotate_key(rotate(pb::KeyKind::Unspecified))
            .await,
        E::InvalidArgument,
        "admin_rotate_key.kind",
    );
    assert_field(
        admin
            .client
            .admin_retire_keys(pb::AdminRetireKeys { kind: 99 })
            .await,
        E::InvalidArgument,
        "admin_retire_keys.kind",
    );
    assert_field(
        admin
            .client
            .admin_rotate_key(pb::AdminRotateKey {
                kind: pb::KeyKind::Tokens as i32,
                secret: b"0123456789abcdef".to_vec(),
            })
            .await,
        E::InvalidArgument,
        "admin_rotate_key.secret",
    );
    // No webhooks and no TURN servers here: nothing to rotate.
    assert_code(
        admin
            .client
            .admin_rotate_key(pb::AdminRotateKey {
                kind: pb::KeyKind::Webhook as i32,
                secret: b"0123456789abcdef".to_vec(),
            })
            .await,
        E::FailedPrecondition,
    );
    // Nothing changed.
    let list = admin
        .client
        .admin_list_keys(pb::AdminListKeys {})
        .await
        .expect("list");
    assert_eq!(ring(&list, pb::KeyKind::Tokens).len(), 2);
}

/// Two nodes on one store: a rotation through one is honored by the other at once (it reads
/// the rings again when it meets a key id it does not know).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_through_one_node_is_honored_by_another_at_once() {
    let data = Arc::new(tempfile::tempdir().expect("data dir"));
    let a = TestServer::start_in(data.clone(), &[]).await;
    let b = TestServer::start_in(data, &[]).await;
    let admin = register_admin(&a, "root").await;
    admin
        .client
        .admin_rotate_key(rotate(pb::KeyKind::Tokens))
        .await
        .expect("rotate");
    admin
        .client
        .admin_rotate_key(rotate(pb::KeyKind::Refresh))
        .await
        .expect("rotate");
    let (_alice, auth) = tests::client::register(&a, "alice").await;
    assert_eq!(kid(&auth.access_token), Some(2));
    authenticate(&b, &auth.access_token)
        .await
        .expect("node b verifies a token of the key node a made a moment ago");
    connect(&b)
        .await
        .refresh(&auth.refresh_token)
        .await
        .expect("node b finds a refresh token hashed under node a's new pepper");
    // A kid no node made is refused after that read.
    let forged = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("77".into());
        jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": "1"}),
            &EncodingKey::from_secret(b"x"),
        )
        .expect("sign")
    };
    for _ in 0..3 {
        assert_eq!(code(authenticate(&b, &forged).await), E::Unauthenticated);
    }
}

/// Two nodes rotating on a schedule: when the current key comes of age both find it due, and
/// the ring moves on by one rotation, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_rotation_happens_once_for_two_nodes() {
    let args = [
        "--access-token-ttl=1s",
        "--key-overlap=7s",
        "--key-rotation-interval=7s",
    ];
    let data = Arc::new(tempfile::tempdir().expect("data dir"));
    let a = TestServer::start_in(data.clone(), &args).await;
    let _b = TestServer::start_in(data, &args).await;
    let store = a.store();
    let ring = async || {
        store
            .key_ring(pb::KeyKind::Tokens)
            .await
            .expect("read")
            .expect("a ring")
    };
    let first = ring().await;
    assert_eq!(first.version, 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let rotated = loop {
        let now = ring().await;
        if now.version > 1 {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scheduled rotation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Both nodes look every 2 s: give the second one two looks at the new ring.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let later = ring().await;
    assert_eq!((rotated.version, later.version), (2, 2), "{later:?}");
    assert_eq!(later.keys.iter().map(|k| k.kid).max(), Some(2));
}
