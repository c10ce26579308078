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
    let credential = async || {
        let ice = alice
            .client
            .get_ice_servers(pb::GetIceServers {})
            .await
            .expect("get_ice_servers");
        let [entry] = ice.servers.as_slice() else {
            panic!("one TURN server: {ice:?}");
        };
        (entry.username.clone(), entry.credential.clone())
    };
    let (user, before) = credential().await;
    let expiry: i64 = user
        .split(':')
        .next()
        .and_then(|e| e.parse().ok())
        .expect("expiry");
    let old = TurnSecret::new(SECRET).expect("a secret");
    assert_eq!(turn_credentials(&old, alice.id, expiry).1, before);
    admin
        .client
        .admin_rotate_key(pb::AdminRotateKey {
            kind: pb::KeyKind::Turn as i32,
            secret: NEW.as_bytes().to_vec(),
        })
        .await
        .expect("rotate the TURN secret");
    let (user, after) = credential().await;
    let expiry: i64 = user
        .split(':')
        .next()
        .and_then(|e| e.parse().ok())
        .expect("expiry");
    let new = TurnSecret::new(NEW).expect("a secret");
    assert_eq!(
        turn_credentials(&new, alice.id, expiry),
        (user.clone(), after.clone())
    );
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
