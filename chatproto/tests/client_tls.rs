//! Certificate verification modes against a real QUIC server on loopback: a pinned fingerprint
//! accepts exactly its certificate, a CA accepts certificates it issued for the right name, and
//! the insecure mode accepts anything.

mod client_support;

use std::time::Duration;

use chatproto::client::{Client, ClientConfig, ClientError};
use chatproto::fingerprint::{fingerprint_of_der, format_fingerprint, parse_fingerprint};
use chatproto::tls::Verification;
use client_support::{Identity, TestCa, TestServer, init_tracing};

async fn try_connect(
    server: &TestServer,
    verification: Verification,
    server_name: &str,
) -> Result<Client, ClientError> {
    let mut config = ClientConfig::new(server.address(), verification);
    config.server_name = Some(server_name.into());
    config.retry.connect_timeout = Duration::from_secs(5);
    Client::connect(config).await
}

fn any_addr() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn a_pin_accepts_its_certificate_and_rejects_another() {
    init_tracing();
    let server = TestServer::start("pinned").await;
    let hex = format_fingerprint(&fingerprint_of_der(server.identity.leaf_der()));
    let pin = parse_fingerprint(&hex.to_uppercase()).unwrap();
    let client = try_connect(&server, Verification::Pin(pin), "any-name.example")
        .await
        .expect("the pinned certificate is accepted whatever the name");
    assert_eq!(client.welcome().unwrap().node_id, "pinned");

    let other = Identity::self_signed();
    let err = try_connect(
        &server,
        Verification::Pin(fingerprint_of_der(other.leaf_der())),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    assert_eq!(
        server.lock().counters.hellos,
        1,
        "no Hello over a rejected handshake"
    );
}

#[tokio::test]
async fn a_ca_accepts_its_certificates_for_the_right_name_only() {
    init_tracing();
    let ca = TestCa::new("chat test ca");
    let server = TestServer::start_with(
        "ca-issued",
        ca.issue(&["chat.test", "localhost"]),
        any_addr(),
    )
    .await;
    let client = try_connect(
        &server,
        Verification::CaPem(ca.pem.clone().into_bytes()),
        "chat.test",
    )
    .await
    .expect("a certificate of the CA for the right name");
    assert_eq!(client.welcome().unwrap().node_id, "ca-issued");

    // The same CA from a file.
    let dir = std::env::temp_dir().join(format!("chatproto-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, &ca.pem).unwrap();
    try_connect(&server, Verification::CaFile(path.clone()), "localhost")
        .await
        .expect("CA file");
    let _ = std::fs::remove_dir_all(&dir);

    // Wrong name.
    let err = try_connect(
        &server,
        Verification::CaPem(ca.pem.clone().into_bytes()),
        "other.test",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err}");

    // Untrusted issuer.
    let stranger = TestCa::new("another ca");
    let err = try_connect(
        &server,
        Verification::CaPem(stranger.pem.into_bytes()),
        "chat.test",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err}");

    // A self-signed server certificate is not trusted by the CA either.
    let self_signed = TestServer::start("self-signed").await;
    let err = try_connect(
        &self_signed,
        Verification::CaPem(ca.pem.into_bytes()),
        "localhost",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err}");
}

#[tokio::test]
async fn insecure_mode_accepts_anything() {
    init_tracing();
    let server = TestServer::start("insecure").await;
    let client = try_connect(&server, Verification::InsecureDangerous, "whatever.invalid")
        .await
        .expect("insecure accepts a self-signed certificate for another name");
    assert_eq!(client.welcome().unwrap().node_id, "insecure");
}

#[tokio::test]
async fn trust_on_first_use_records_the_fingerprint_and_refuses_a_changed_one() {
    use chatproto::client::store::{KnownServers, TrustCheck, fetch_fingerprint};
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_servers");
    let server = TestServer::start("tofu").await;
    let address = server.address();

    // First contact: the fingerprint is the certificate's, and nothing is known yet.
    let seen = fetch_fingerprint(&address, None, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(seen, fingerprint_of_der(server.identity.leaf_der()));
    let mut known = KnownServers::load(&path).unwrap();
    assert_eq!(known.check(&address, &seen), TrustCheck::Unknown);
    known.trust(&address, seen).unwrap();

    // Later runs find it trusted and connect with it pinned.
    let known = KnownServers::load(&path).unwrap();
    assert_eq!(known.check(&address, &seen), TrustCheck::Trusted);
    let pin = known.get(&address).unwrap();
    try_connect(&server, Verification::Pin(pin), "localhost")
        .await
        .expect("the recorded fingerprint is accepted");

    // Another certificate at a trusted address (here: a second server whose address was
    // trusted with the first one's fingerprint) is a change, and the pin refuses it.
    let impostor = TestServer::start("impostor").await;
    let mut known = known;
    known.trust(&impostor.address(), pin).unwrap();
    let seen = fetch_fingerprint(&impostor.address(), None, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        known.check(&impostor.address(), &seen),
        TrustCheck::Changed { known: pin }
    );
    assert!(
        try_connect(&impostor, Verification::Pin(pin), "localhost")
            .await
            .is_err(),
        "the pinned fingerprint refuses the impostor"
    );

    // Nothing listening: a connect error that names the address.
    let closed = "127.0.0.1:9".to_string();
    let err = fetch_fingerprint(&closed, None, Duration::from_millis(300))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:9"), "{err}");
}
