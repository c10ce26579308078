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
