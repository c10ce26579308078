//! Webhook calls (protocol.md 16.3): one HTTP/1.1 `POST` of a JSON body per notification to the
//! endpoint configured for its kind, over TLS for https:// (the public roots plus an optional
//! CA), cut off at the timeout. A 2xx answer delivers; anything else fails the attempt.
//!
//! The receiver authenticates a call and rejects replays with two headers: [`TIMESTAMP_HEADER`],
//! the Unix time in seconds when the call was signed, and [`SIGNATURE_HEADER`], `v1=` and the
//! lowercase hex HMAC-SHA256, keyed with the shared secret, of the timestamp, a `.`, and the
//! body ([`signature`]). While the secret rotates (the `webhook` key ring) the header holds one
//! such signature per secret that verifies, the newest first, separated by commas
//! ([`signatures`]), so a receiver that knows either secret accepts the call. `X-Chat-Delivery` names the outbox entry: the same on every retry of
//! one call, so a receiver can drop a call it already took.

use std::sync::Arc;

use bytes::Bytes;
use chatproto::pb;
use http_body_util::{BodyExt as _, Full};
use hyper::Uri;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use hyper_util::rt::TokioIo;
use ring::hmac;
use rustls_pki_types::ServerName;

use crate::clock::now_ms;
use crate::ops::config::{WebhookSettings, kind_name};

/// The header with the time of signing, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "x-chat-timestamp";
/// The header with the signature, `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-chat-signature";
/// The header naming the outbox entry (the same on every retry).
const DELIVERY_HEADER: &str = "x-chat-delivery";

/// The signature of `body` sent at `timestamp` (Unix seconds) with `secret`: `v1=` and the hex
/// HMAC-SHA256 of `"{timestamp}.{body}"`.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    format!("v1={}", hex::encode(tag.as_ref()))
}

/// The signature header of `body` sent at `timestamp` under every secret of `secrets`, newest
/// first: `v1=<hex>` each, separated by commas.
pub fn signatures(secrets: &[Vec<u8>], timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .map(|s| signature(s, timestamp, body))
        .collect::<Vec<_>>()
        .join(",")
}

/// The JSON body of the call for notification `n` of `user`.
pub(super) fn body(user: u64, n: &pb::Notification) -> String {
    serde_json::json!({
        "notification_id": n.id,
        "kind": kind_name(n.kind()),
        "user_id": user,
        "chat_id": n.chat_id,
        "message_seq": n.message_seq,
        "actor_id": n.actor_id,
        "created_at_ms": n.created_at_ms,
        "silent": n.silent,
        "preview": n.preview,
    })
    .to_string()
}

/// Makes webhook calls.
pub(super) struct Caller {
    keys: Arc<crate::auth::keys::Keys>,
    tls: tokio_rustls::TlsConnector,
    timeout: std::time::Duration,
}

impl Caller {
    /// A caller with the settings' trust and timeout, signing with the `webhook` keys of
    /// `keys` (the settings' secret until the first rotation).
    pub fn new(
        settings: &WebhookSettings,
        keys: Arc<crate::auth::keys::Keys>,
    ) -> Result<Caller, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &settings.ca_pem {
            use rustls_pki_types::pem::PemObject as _;
            let mut any = false;
            for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("webhook CA: {e}"))?;
                roots.add(cert).map_err(|e| format!("webhook CA: {e}"))?;
                any = true;
            }
            if !any {
                return Err("webhook CA: no certificate in the file".into());
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("webhook TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Caller {
            keys,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            timeout: settings.timeout,
        })
    }

    /// Posts `body` to `url` for outbox entry `id`.
    pub async fn call(&self, id: u64, url: &str, body: &str) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.post(id, url, body)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    async fn post(&self, id: u64, url: &str, body: &str) -> Result<(), String> {
        let uri: Uri = url.parse().map_err(|e| format!("url {url:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("url {url:?}: not http or https")),
        };
        let host = uri.host().ok_or_else(|| format!("url {url:?}: no host"))?;
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let now = now_ms();
        let timestamp = now.div_euclid(1000);
        let secrets: Vec<Vec<u8>> = self
            .keys
            .verifying(pb::KeyKind::Webhook, now)
            .into_iter()
            .map(|k| k.secret)
            .collect();
        if secrets.is_empty() {
            return Err("no webhook secret".into());
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let authority = uri.authority().map_or(host, |a| a.as_str());
        let request = hyper::Request::post(path)
            .header(HOST, authority)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, "chatd-webhooks")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signatures(&secrets, timestamp, body))
            .header(DELIVERY_HEADER, HeaderValue::from(id))
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| format!("request: {e}"))?;
        let status = if https {
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
                .map_err(|e| format!("url {url:?}: {e}"))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("tls with {host}: {e}"))?;
            exchange(TokioIo::new(tls), request).await?
        } else {
            exchange(TokioIo::new(tcp), request).await?
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }
}

async fn exchange<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::StatusCode, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("http: {e}"))?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("http: {e}"))?;
        let status = response.status();
        // Read the answer to its end (bounded by the caller's timeout), then let go.
        let _ = response.into_body().collect().await;
        Ok(status)
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let s = signature(b"secret", 1_700_000_000, "{\"a\":1}");
        assert!(s.starts_with("v1="));
        assert_eq!(s.len(), 3 + 64);
        assert_ne!(s, signature(b"secret", 1_700_000_001, "{\"a\":1}"));
        assert_ne!(s, signature(b"secret", 1_700_000_000, "{\"a\":2}"));
        assert_ne!(s, signature(b"other", 1_700_000_000, "{\"a\":1}"));
        assert_eq!(s, signature(b"secret", 1_700_000_000, "{\"a\":1}"));
        let both = signatures(
            &[b"new".to_vec(), b"secret".to_vec()],
            1_700_000_000,
            "{\"a\":1}",
        );
        assert_eq!(
            both,
            format!("{},{s}", signature(b"new", 1_700_000_000, "{\"a\":1}"))
        );
    }
}
