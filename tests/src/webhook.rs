//! A webhook receiver on loopback, as an SMS or push gateway runs one: it checks each call's
//! signature and timestamp (spec 16.3) with its own HMAC-SHA256, records every call, and answers
//! 503 while told to fail, 401 to a call whose signature does not match.

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
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `signature` (`v1=<hex>`) is the HMAC-SHA256 with `secret` of `"{timestamp}.{body}"`.
fn verify(secret: &[u8], timestamp: &str, signature: &str, body: &[u8]) -> bool {
    let Some(hex_tag) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Ok(tag) = hex::decode(hex_tag) else {
        return false;
    };
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
    ring::hmac::verify(&key, &signed, &tag).is_ok()
}

impl WebhookReceiver {
    /// Starts a receiver that checks signatures made with `secret`.
    pub async fn start(secret: &[u8]) -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared::default());
        let secret = secret.to_vec();
        let state = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (state, secret) = (state.clone(), secret.clone());
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
                                    status: status.as_u16(),
                                });
                                let mut response = Response::new(Full::new(Bytes::new()));
                                *response.status_mut() = status;
                                Ok::<_, hyper::Error>(response)
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        WebhookReceiver { base, shared, task }
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
    }
}
