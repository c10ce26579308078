//! chatd's TURN credentials against a real TURN server (spec 14.5): coturn, started on loopback
//! with `use-auth-secret` and the same secret as chatd's `--turn-secret-file`, lets a client
//! allocate a relay with the credentials `get_ice_servers` answers, and refuses the same user's
//! credentials once expired and credentials made with another secret.

use chatd::testing::{TurnSecret, turn_credentials};
use chatproto::pb;
use tests::turn::TurnServer;

use crate::support::*;

const SECRET: &str = "shared-with-coturn";

#[tokio::test]
async fn coturn_accepts_the_credentials_chatd_hands_out_and_refuses_expired_ones() {
    let turn = TurnServer::start(SECRET);
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
