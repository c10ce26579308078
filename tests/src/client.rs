//! SDK clients connected to a test server.

use std::time::Duration;

use chatproto::client::{Client, ClientConfig, ClientError, ClientEvent};
use chatproto::fingerprint::parse_fingerprint;
use chatproto::pb;
use chatproto::tls::Verification;

use crate::server::TestServer;

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery staple";

/// A client configuration that pins the server's certificate.
pub fn config_for(addr: impl ToString, fingerprint: &str) -> ClientConfig {
    let pin = parse_fingerprint(fingerprint).expect("server fingerprint parses");
    let mut config = ClientConfig::new(addr.to_string(), Verification::Pin(pin));
    config.client_name = "e2e-tests".into();
    config
}

/// A connected, not yet authenticated client.
pub async fn connect(server: &TestServer) -> Client {
    Client::connect(config_for(server.addr(), &server.fingerprint()))
        .await
        .expect("connect")
}

/// A new account, logged in: `(client, auth result)`.
pub async fn register(server: &TestServer, username: &str) -> (Client, pb::AuthResult) {
    let client = connect(server).await;
    let auth = client
        .register_user(
            username,
            &format!("{username}@example.test"),
            PASSWORD,
            "test",
        )
        .await
        .unwrap_or_else(|e| panic!("register {username}: {e}"));
    (client, auth)
}

/// The error code of a failed call, panicking on success or a transport error.
pub fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> pb::ErrorCode {
    match result {
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("expected a remote error, got {e}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// The remote error of a failed call (code, field, retry hint).
pub fn remote<T: std::fmt::Debug>(
    result: Result<T, ClientError>,
) -> chatproto::client::RemoteError {
    match result {
        Err(ClientError::Remote(e)) => e,
        Err(e) => panic!("expected a remote error, got {e}"),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// Waits for the next event matching `pred`, skipping others; panics after `timeout`.
pub async fn wait_event<T>(
    client: &Client,
    timeout: Duration,
    mut pred: impl FnMut(&ClientEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, client.next_event()).await {
            Ok(Some(event)) => {
                if let Some(found) = pred(&event) {
                    return found;
                }
            }
            Ok(None) => panic!("event stream ended while waiting"),
            Err(_) => panic!("no matching event within {timeout:?}"),
        }
    }
}

/// Waits for a chat event of `chat_id` matching `pred`.
pub async fn wait_chat_event(
    client: &Client,
    chat_id: u64,
    mut pred: impl FnMut(&pb::ChatEvent) -> bool,
) -> pb::ChatEvent {
    wait_event(client, Duration::from_secs(10), |e| match e {
        ClientEvent::Chat(ev) if ev.chat_id == chat_id && pred(ev) => Some(ev.clone()),
        _ => None,
    })
    .await
}
