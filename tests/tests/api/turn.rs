//! chatd's TURN credentials against a real TURN server (spec 14.5): coturn, started on loopback
//! with `use-auth-secret` and the same secret as chatd's `--turn-secret-file`, lets a client
//! allocate a relay with the credentials `get_ice_servers` answers, and refuses the same user's
//! credentials once expired and credentials made with another secret.

use chatd::testing::{TurnSecret, turn_credentials};
use chatproto::pb;
use tests::turn::TurnServer;

use crate::support::*;

const SECRET: &str = "shared-with-coturn";

/// A chatd whose TURN server is `turn`, with [`SECRET`] in its `--turn-secret-file`; the URL
/// clients get, and the directory of the secret's file, to keep.
async fn chatd_with(turn: &TurnServer) -> (tests::server::TestServer, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("turn.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write the secret");
    let url = format!("turn:127.0.0.1:{}?transport=udp", turn.port);
    let server = start_with(&[
        "--ice-servers",
        &url,
        "--turn-secret-file",
        &secret_file.to_string_lossy(),
    ])
    .await;
    (server, url, dir)
}

#[tokio::test]
async fn coturn_accepts_the_credentials_chatd_hands_out_and_refuses_expired_ones() {
    let turn = TurnServer::start(SECRET);
    let (server, url, _dir) = chatd_with(&turn).await;
    let alice = register(&server, "alice").await;
    let ice = alice
        .client
        .get_ice_servers(pb::GetIceServers {})
        .await
        .expect("get_ice_servers");
    let [server_entry] = ice.servers.as_slice() else {
        panic!("one TURN server: {ice:?}");
    };
    assert_eq!(server_entry.urls, [url]);

    let ok = turn.allocate(&server_entry.username, &server_entry.credential);
    assert!(
        ok.status.success() && ok.stdout.contains("Total lost packets 0"),
        "coturn refused chatd's credentials: {ok:?}\n{}",
        turn.log_tail()
    );

    // The same user's credentials, by the same code, with an expiry a minute ago.
    let now_s = chatd::testing::now_ms() / 1000;
    let secret = TurnSecret::new(SECRET).expect("a secret");
    let (username, credential) = turn_credentials(&secret, alice.id, now_s - 60);
    let expired = turn.allocate(&username, &credential);
    assert!(
        !expired.status.success() && expired.stdout.contains("Cannot complete Allocation"),
        "coturn accepted expired credentials: {expired:?}"
    );
    // Unexpired credentials made with another secret are refused too.
    let other = TurnSecret::new("not-the-secret").expect("a secret");
    let (username, credential) = turn_credentials(&other, alice.id, now_s + 3600);
    let forged = turn.allocate(&username, &credential);
    assert!(
        !forged.status.success(),
        "coturn accepted credentials of another secret: {forged:?}"
    );
}

/// The TURN username and credential `user` gets (one TURN server configured).
async fn credential(user: &User) -> (String, String) {
    let ice = user
        .client
        .get_ice_servers(pb::GetIceServers {})
        .await
        .expect("get_ice_servers");
    let [entry] = ice.servers.as_slice() else {
        panic!("one TURN server: {ice:?}");
    };
    (entry.username.clone(), entry.credential.clone())
}

/// Whether `credential` is the TURN REST API's for `user_id` under `secret`.
fn made_with(secret: &str, user_id: u64, (username, password): &(String, String)) -> bool {
    let expiry: i64 = username
        .split(':')
        .next()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let secret = TurnSecret::new(secret).expect("a secret");
    turn_credentials(&secret, user_id, expiry) == (username.clone(), password.clone())
}

/// Rotates the TURN secret to `new` through `admin`.
async fn rotate(admin: &User, new: &str) {
    admin
        .client
        .admin_rotate_key(pb::AdminRotateKey {
            kind: pb::KeyKind::Turn as i32,
            secret: new.as_bytes().to_vec(),
        })
        .await
        .expect("rotate the TURN secret");
}

/// Rotating the TURN secret as the docs say: coturn gets the new secret beside the old one
/// first, then chatd signs with the new one (`admin_rotate_key`), and coturn accepts what it
/// hands out; a coturn that knows only the old secret would not. The credentials are the TURN
/// REST API's under the new secret.
#[tokio::test]
async fn after_a_rotation_credentials_are_made_with_the_new_secret() {
    const NEW: &str = "the-next-turn-secret-2027";
    let both = TurnServer::start_with_secrets(&[SECRET, NEW]);
    let old_only = TurnServer::start(SECRET);
    let (server, _url, _dir) = chatd_with(&both).await;
    let admin = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    assert!(made_with(SECRET, alice.id, &credential(&alice).await));
    rotate(&admin, NEW).await;
    let (user, after) = credential(&alice).await;
    assert!(made_with(NEW, alice.id, &(user.clone(), after.clone())));
    let ok = both.allocate(&user, &after);
    assert!(
        ok.status.success() && ok.stdout.contains("Total lost packets 0"),
        "coturn with both secrets refused the new credentials: {ok:?}\n{}",
        both.log_tail()
    );
    let refused = old_only.allocate(&user, &after);
    assert!(
        !refused.status.success(),
        "a coturn without the new secret accepted its credentials: {refused:?}"
    );
}

/// TURN secrets published through coturn's database: coturn runs with no secret of its own and
/// reads chatd's; a rotation reaches coturn before chatd signs with the new secret (after the
/// publication lead), credentials made before keep working through the overlap, and ending the
/// overlap takes the old secret out of coturn at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_follows_the_ring_through_its_database() {
    const NEW: &str = "the-next-turn-secret-2028";
    let dir = tempfile::tempdir().expect("tempdir");
    let userdb = dir.path().join("turndb");
    let turn = TurnServer::start_with_secret_db(&userdb);
    let secret_file = dir.path().join("turn.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write the secret");
    let url = format!("turn:127.0.0.1:{}?transport=udp", turn.port);
    let realm = format!("--turn-realm={}", tests::turn::REALM);
    let server = start_with(&[
        "--ice-servers",
        &url,
        "--turn-secret-file",
        &secret_file.to_string_lossy(),
        "--turn-secret-db",
        &userdb.to_string_lossy(),
        &realm,
        "--turn-credential-ttl=1m",
        "--access-token-ttl=1s",
        "--key-overlap=2m",
    ])
    .await;
    let admin = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let allocates = |(user, password): &(String, String)| {
        let out = turn.allocate(user, password);
        out.status.success() && out.stdout.contains("Total lost packets 0")
    };
    let old = credential(&alice).await;
    assert!(
        allocates(&old),
        "coturn refused chatd's credentials: {}",
        turn.log_tail()
    );
    rotate(&admin, NEW).await;
    // Until the lead has passed chatd keeps signing with the secret every coturn knows.
    assert!(made_with(SECRET, alice.id, &credential(&alice).await));
    let switched = tests::process::eventually(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(250),
        async || made_with(NEW, alice.id, &credential(&alice).await),
    )
    .await;
    assert!(switched, "chatd never signed with the new TURN secret");
    let new = credential(&alice).await;
    assert!(
        allocates(&new) && allocates(&old),
        "coturn holds both secrets during the overlap: {}",
        turn.log_tail()
    );
    admin
        .client
        .admin_retire_keys(pb::AdminRetireKeys {
            kind: pb::KeyKind::Turn as i32,
        })
        .await
        .expect("end the overlap");
    assert!(!allocates(&old), "coturn still accepts the retired secret");
    assert!(allocates(&new), "{}", turn.log_tail());
    // The admin reads what coturn holds.
    let given = admin
        .client
        .admin_get_key_secrets(pb::AdminGetKeySecrets {
            kind: pb::KeyKind::Turn as i32,
        })
        .await
        .expect("TURN secrets");
    let secrets: Vec<&[u8]> = given.keys.iter().map(|k| k.secret.as_slice()).collect();
    assert_eq!(secrets, [NEW.as_bytes()]);
}
