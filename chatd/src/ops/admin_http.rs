//! The admin HTTP server (HTTP/1.1 only): `GET /metrics` (OpenMetrics text), `GET /healthz`
//! (200 while the process serves) and `GET /readyz` (200 when the server's readiness check
//! passes, 503 with its reason otherwise). Other paths are 404; other methods on these paths
//! are 405.
//!
//! Bind it to a private address: it has no authentication. Slow clients are bounded by a
//! header read timeout and by `http_conn` (places per address and in all; a connection that
//! moves no byte for a while is dropped), and each readiness check by [`READINESS_TIMEOUT`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ops::http_conn::{
    Places, Progress, Refusals, STALL_TIMEOUT, Watched, stalled, take_place,
};
use crate::ops::metrics::{self, Metrics};

/// Longest a readiness check may take before `/readyz` answers 503.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for in-flight admin requests.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The readiness check: `Ok(())` when ready, `Err(reason)` otherwise (e.g. "draining",
/// "database unavailable").
pub type ReadinessCheck =
    Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static>;

/// What the admin server reads.
#[derive(Clone)]
pub struct AdminState {
    /// The metrics to expose.
    pub metrics: Arc<Metrics>,
    /// The readiness check behind `/readyz`.
    pub readiness: ReadinessCheck,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState").finish_non_exhaustive()
    }
}

type HttpResponse = Response<Full<Bytes>>;

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

const PLAIN: &str = "text/plain; charset=utf-8";

async fn handle(state: AdminState, req: Request<Incoming>) -> HttpResponse {
    route(&state, req.method(), req.uri().path(), READINESS_TIMEOUT).await
}

async fn route(
    state: &AdminState,
    method: &Method,
    path: &str,
    readiness_timeout: Duration,
) -> HttpResponse {
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(StatusCode::NOT_FOUND, PLAIN, "not found\n");
    }
    if method != Method::GET {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            PLAIN,
            "method not allowed\n",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return resp;
    }
    match path {
        "/metrics" => text(
            StatusCode::OK,
            metrics::CONTENT_TYPE,
            state.metrics.encode(),
        ),
        "/healthz" => text(StatusCode::OK, PLAIN, "ok\n"),
        _ => match tokio::time::timeout(readiness_timeout, (state.readiness)()).await {
            Ok(Ok(())) => text(StatusCode::OK, PLAIN, "ready\n"),
            Ok(Err(reason)) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                format!("not ready: {reason}\n"),
            ),
            Err(_) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                "not ready: readiness check timed out\n",
            ),
        },
    }
}

/// Serves admin requests on `listener` until `shutdown` completes, then lets in-flight
/// requests finish (up to [`SHUTDOWN_WAIT`]) and returns.
pub async fn serve(listener: TcpListener, state: AdminState, shutdown: impl Future<Output = ()>) {
    serve_with(
        listener,
        None,
        move |req| handle(state.clone(), req),
        shutdown,
    )
    .await;
}

/// The HTTP/1.1 server loop shared by chatd's HTTP servers: accepts on `listener` (with TLS
/// when `tls` is given), answers each request with `handler`, bounds header reads by
/// [`HEADER_READ_TIMEOUT`], and on `shutdown` lets in-flight requests finish (up to
/// [`SHUTDOWN_WAIT`]).
pub async fn serve_with<H, F, B>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let places = Arc::new(Places::default());
    let mut refusals = Refusals::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually fd exhaustion: back off instead of spinning on the error.
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(place) = take_place(&places, peer.ip()) else {
            refusals.note(peer);
            continue;
        };
        let handler = handler.clone();
        let cancel = cancel.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            let _place = place;
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let progress = Progress::new();
            let stream = Watched::new(stream, progress.clone());
            match tls {
                None => serve_connection(stream, progress, service, cancel).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, progress, service, cancel).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "tls handshake failed"),
                        Err(_) => tracing::debug!("tls handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_WAIT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("http connections still open after shutdown wait");
    }
}

/// Serves one connection until it ends, the server shuts down (gracefully), or no byte moved
/// for [`STALL_TIMEOUT`] (dropped).
async fn serve_connection<I, S, B>(io: I, progress: Progress, service: S, cancel: CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = B> + Send,
    S::Future: Send,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stalled(&progress, STALL_TIMEOUT) => {
            tracing::debug!("http connection dropped: no byte moved for {STALL_TIMEOUT:?}");
            return;
        }
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn => r,
                () = stalled(&progress, STALL_TIMEOUT) => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "http connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("{method} {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read");
        let raw = String::from_utf8(raw).expect("utf-8 response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
        let mut lines = head.lines();
        let status_line = lines.next().expect("status line");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    #[tokio::test]
    async fn routes_over_real_tcp_and_graceful_shutdown() {
        let metrics = Arc::new(Metrics::new());
        metrics.connection_opened();
        let ready = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&ready);
        let readiness: ReadinessCheck = Arc::new(move || {
            let ok = flag.load(Ordering::SeqCst);
            Box::pin(async move {
                if ok {
                    Ok(())
                } else {
                    Err("database unavailable".to_owned())
                }
            })
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            AdminState { metrics, readiness },
            async move {
                let _ = stop_rx.await;
            },
        ));

        let m = request(addr, "GET", "/metrics").await;
        assert_eq!(m.status, 200);
        assert_eq!(m.header("content-type"), Some(metrics::CONTENT_TYPE));
        assert!(m.body.contains("chatd_connections_open 1"), "{}", m.body);
        assert!(m.body.trim_end().ends_with("# EOF"));

        let h = request(addr, "GET", "/healthz").await;
        assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));

        let r = request(addr, "GET", "/readyz").await;
        assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));
        ready.store(false, Ordering::SeqCst);
        let r = request(addr, "GET", "/readyz").await;
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "not ready: database unavailable\n");

        let n = request(addr, "GET", "/nope").await;
        assert_eq!(n.status, 404);
        let p = request(addr, "POST", "/metrics").await;
        assert_eq!(p.status, 405);
        assert_eq!(p.header("allow"), Some("GET"));

        stop_tx.send(()).expect("stop");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns after shutdown")
            .expect("join");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn hanging_readiness_check_times_out_as_503() {
        let readiness: ReadinessCheck = Arc::new(|| Box::pin(std::future::pending()));
        let state = AdminState {
            metrics: Arc::new(Metrics::new()),
            readiness,
        };
        let resp = route(&state, &Method::GET, "/readyz", Duration::from_millis(20)).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], b"not ready: readiness check timed out\n");
    }
}
