//! A webhook receiver on loopback, as an SMS or push gateway runs one: it checks each call's
//! signature and timestamp (spec 16.3) with its own HMAC-SHA256, records every call, and answers
//! 503 while told to fail, 401 to a call whose signature does not match. Over plain HTTP, or
//! over HTTPS with a certificate for 127.0.0.1 made here (its PEM is the caller's CA).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, StatusCode};

/// Calls whose timestamp is further than this from the receiver's clock are replays.
const MAX_SKEW_S: i64 = 300;

/// One call the receiver got.
#[derive(Debug, Clone)]
pub struct Call {
    /// The request path.
    pub path: String,
    /// `X-Chat-Delivery`.
    pub delivery: String,
    /// The body.
    pub body: String,
    /// Whether signature and timestamp were valid.
    pub authentic: bool,
    /// `X-Chat-Timestamp`.
    pub timestamp: String,
    /// `X-Chat-Signature`: one `v1=<hex>` per secret the call was signed with, comma-separated.
    pub signature: String,
    /// The status it was answered with.
    pub status: u16,
}

impl Call {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("json body")
    }
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    failing: AtomicBool,
}

/// A running receiver; stops when dropped.
pub struct WebhookReceiver {
    /// `http://127.0.0.1:PORT`, or `https://...` for [`WebhookReceiver::start_tls`].
    pub base: String,
    /// The PEM of the certificate it serves HTTPS with; empty over plain HTTP.
    pub ca_pem: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether one of the signatures of `header` (`v1=<hex>`, comma-separated: several while the
/// sender rotates its secret) is the HMAC-SHA256 with `secret` of `"{timestamp}.{body}"`, made
/// within [`MAX_SKEW_S`] of now.
pub fn verify(secret: &[u8], timestamp: &str, header: &str, body: &[u8]) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    if (now - ts).abs() > MAX_SKEW_S {
        return false;
    }
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    header.split(',').any(|signature| {
        signature
            .trim()
            .strip_prefix("v1=")
            .and_then(|tag| hex::decode(tag).ok())
            .is_some_and(|tag| ring::hmac::verify(&key, &signed, &tag).is_ok())
    })
}

impl WebhookReceiver {
    /// Starts a receiver over plain HTTP that checks signatures made with `secret`.
    pub async fn start(secret: &[u8]) -> WebhookReceiver {
        Self::serve(secret, None).await
    }

    /// The same over HTTPS.
    pub async fn start_tls(secret: &[u8]) -> WebhookReceiver {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
        let cert = params.self_signed(&key).expect("certificate");
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("tls versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("tls config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut receiver = Self::serve(
            secret,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await;
        receiver.ca_pem = cert.pem();
        receiver
    }

    async fn serve(secret: &[u8], tls: Option<tokio_rustls::TlsAcceptor>) -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook receiver");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared::default());
        let secret = secret.to_vec();
        let state = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (state, secret, tls) = (state.clone(), secret.clone(), tls.clone());
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (state, secret) = (state.clone(), secret.clone());
                            async move {
                                let header = |name: &str| {
                                    req.headers()
                                        .get(name)
                                        .and_then(|v| v.to_str().ok())
                                        .unwrap_or("")
                                        .to_owned()
                                };
                                let (timestamp, signature) =
                                    (header("x-chat-timestamp"), header("x-chat-signature"));
                                let delivery = header("x-chat-delivery");
                                let path = req.uri().path().to_owned();
                                let body = req.into_body().collect().await?.to_bytes();
                                let authentic = verify(&secret, &timestamp, &signature, &body);
                                let status = if !authentic {
                                    StatusCode::UNAUTHORIZED
                                } else if state.failing.load(Ordering::SeqCst) {
                                    StatusCode::SERVICE_UNAVAILABLE
                                } else {
                                    StatusCode::NO_CONTENT
                                };
                                state.calls.lock().expect("calls").push(Call {
                                    path,
                                    delivery,
                                    body: String::from_utf8_lossy(&body).into_owned(),
                                    authentic,
                                    timestamp,
                                    signature,
                                    status: status.as_u16(),
                                });
                                let mut response = Response::new(Full::new(Bytes::new()));
                                *response.status_mut() = status;
                                Ok::<_, hyper::Error>(response)
                            }
                        });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let io = hyper_util::rt::TokioIo::new(stream);
                                let _ = http.serve_connection(io, service).await;
                            }
                        }
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, service).await;
                        }
                    }
                });
            }
        });
        WebhookReceiver {
            base,
            ca_pem: String::new(),
            shared,
            task,
        }
    }

    /// Answer every next call with 503 (`true`) or accept it (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().expect("calls").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_checked_over_timestamp_and_body() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            .to_string();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
        let tag = ring::hmac::sign(&key, format!("{now}.{{}}").as_bytes());
        let sig = format!("v1={}", hex::encode(tag.as_ref()));
        assert!(verify(b"k", &now, &sig, b"{}"));
        assert!(!verify(b"k", &now, &sig, b"{ }"));
        assert!(!verify(b"other", &now, &sig, b"{}"));
        assert!(!verify(b"k", "1000", &sig, b"{}"), "a replay from long ago");
        // During a rotation: either signature of the list will do.
        let other = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"new");
        let new_tag = ring::hmac::sign(&other, format!("{now}.{{}}").as_bytes());
        let both = format!("v1={},{sig}", hex::encode(new_tag.as_ref()));
        assert!(verify(b"k", &now, &both, b"{}"));
        assert!(verify(b"new", &now, &both, b"{}"));
        assert!(!verify(b"third", &now, &both, b"{}"));
    }
}
