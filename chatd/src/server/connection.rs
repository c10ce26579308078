//! One client connection: the accept loop over its request streams and datagrams, and its part
//! in draining. What handlers see of it is [`ConnCtx`](crate::conn::ConnCtx).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatproto::error::CloseCode;
use chatproto::pb;
use chatproto::server::RequestStream;
use tokio::sync::broadcast;
use tokio_util::task::TaskTracker;

use crate::conn::ConnCtx;
use crate::error::ApiError;
use crate::handlers;
use crate::state::AppState;

/// Serves one connection until it closes, it is kicked, or the server drains.
pub async fn serve(
    state: Arc<AppState>,
    conn: quinn::Connection,
    mut shutdown: broadcast::Receiver<()>,
) {
    let mut datagrams = handlers::typing::DatagramGate::new(state.limits.rates().request);
    let ctx = Arc::new(ConnCtx::new(state, conn.clone()));
    let requests = TaskTracker::new();
    let reason = loop {
        tokio::select! {
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => {
                    let ctx = ctx.clone();
                    requests.spawn(async move { handle_stream(ctx, RequestStream::with_default_limit(send, recv)).await });
                }
                Err(e) => break CloseReason::Lost(e),
            },
            datagram = conn.read_datagram() => match datagram {
                Ok(bytes) => handlers::typing::on_datagram(&ctx, &mut datagrams, &bytes),
                Err(e) => break CloseReason::Lost(e),
            },
            uni = conn.accept_uni() => match uni {
                // Reserved for file transfer; refused until that capability exists.
                Ok(mut recv) => { let _ = recv.stop(chatproto::error::StreamCode::FrameError.into()); }
                Err(e) => break CloseReason::Lost(e),
            },
            _ = ctx.kick.kicked() => break CloseReason::Kicked,
            _ = shutdown.recv() => break CloseReason::Drain,
        }
    };
    // The close path (drain, presence announcement, store writes) is boxed and only allocated
    // when the connection ends: inline, its futures would make every idle connection's task
    // as large as the largest of them, for the connection's whole life.
    Box::pin(close_connection(ctx, conn, requests, reason)).await;
}

/// Ends a connection whose accept loop stopped for `reason`: drains on shutdown, closes with
/// the matching code, waits for in-flight requests and withdraws the principal.
///
/// Closing a QUIC connection discards whatever the client has not acknowledged yet, so every
/// close that has something to deliver first waits for the fact that it was delivered: the
/// event stream writer finishes only once the client acknowledged the last event (a revoked
/// session's farewell, a GoAway), and a request task only once its answer was acknowledged.
/// Each wait is bounded, so a client that stops acknowledging cannot hold the connection.
async fn close_connection(
    ctx: Arc<ConnCtx>,
    conn: quinn::Connection,
    requests: TaskTracker,
    reason: CloseReason,
) {
    let state = &ctx.state;
    match reason {
        CloseReason::Lost(e) => {
            tracing::debug!(conn = ctx.conn_id, reason = %e, "connection closed")
        }
        CloseReason::Kicked => {
            let code = ctx.kick.reason().unwrap_or(CloseCode::ProtocolViolation);
            if code == CloseCode::SessionRevoked {
                // The farewell event is queued: let it reach the client before closing.
                ctx.deauthenticate().await;
                let _ = tokio::time::timeout(FAREWELL_WAIT, ctx.events_finished()).await;
            }
            // A slow consumer's queue is full and a broken event stream delivers nothing:
            // there is nothing to wait for.
            conn.close(code.code().into(), code.name().as_bytes());
        }
        CloseReason::Drain => {
            ctx.send_event(&pb::Event {
                kind: Some(pb::event::Kind::GoAway(pb::GoAway {
                    reason: "server shutting down".into(),
                    addresses: Vec::new(),
                    reconnect_after_ms: 500,
                })),
            });
            // New streams get UNAVAILABLE while in-flight requests finish.
            requests.close();
            let drain = async {
                loop {
                    tokio::select! {
                        stream = conn.accept_bi() => match stream {
                            Ok((send, recv)) => {
                                let _ = RequestStream::with_default_limit(send, recv)
                                    .respond(&error_response(0, &ApiError::unavailable("server shutting down")))
                                    .await;
                            }
                            Err(_) => break,
                        },
                        _ = requests.wait() => break,
                    }
                }
                // The GoAway and everything before it reach the client before the close.
                ctx.deauthenticate().await;
                ctx.events_finished().await;
            };
            let _ = tokio::time::timeout(state.settings.shutdown_grace.mul_f32(0.8), drain).await;
            conn.close(CloseCode::GoingAway.code().into(), b"server shutting down");
        }
    }
    requests.close();
    requests.wait().await;
    ctx.deauthenticate().await;
}

/// How long a revoked connection's farewell event may take to be acknowledged before the
/// connection closes anyway.
const FAREWELL_WAIT: Duration = Duration::from_secs(2);

/// How long an answer that precedes a close (a redirect, a version mismatch) may take to be
/// acknowledged before the connection closes anyway.
const LAST_ANSWER_WAIT: Duration = Duration::from_secs(2);

enum CloseReason {
    Lost(quinn::ConnectionError),
    Kicked,
    Drain,
}

/// The wire form of an error answer.
pub fn error_response(request_id: u64, err: &ApiError) -> pb::Response {
    pb::Response {
        request_id,
        result: Some(pb::response::Result::Error(err.to_pb())),
    }
}

async fn handle_stream(ctx: Arc<ConnCtx>, mut stream: RequestStream) {
    let request = match stream.read_request().await {
        Ok(request) => request,
        Err(err) => {
            if let Some(error) = err.to_error() {
                ctx.state.metrics.request_finished(
                    "malformed",
                    Err(error.code()),
                    std::time::Duration::ZERO,
                );
                let response = pb::Response {
                    request_id: 0,
                    result: Some(pb::response::Result::Error(error)),
                };
                let _ = stream.respond(&response).await;
            }
            return;
        }
    };
    let started = Instant::now();
    let request_id = request.request_id;
    let kind = handlers::kind_name(&request);
    let result = handlers::dispatch(&ctx, request).await;
    let close_after = handlers::close_after(&result);
    ctx.state.metrics.request_finished(
        kind,
        result.as_ref().map(|_| ()).map_err(|e| e.code),
        started.elapsed(),
    );
    let response = match result {
        Ok(result) => pb::Response {
            request_id,
            result: Some(result),
        },
        Err(err) => error_response(request_id, &err),
    };
    let answered = match stream.respond(&response).await {
        Ok(answered) => answered,
        Err(e) => {
            tracing::debug!(error = %e, kind, "could not deliver a response");
            return;
        }
    };
    if let Some(close_code) = close_after {
        let _ = tokio::time::timeout(LAST_ANSWER_WAIT, answered.acknowledged()).await;
        ctx.conn
            .close(close_code.code().into(), close_code.name().as_bytes());
    } else {
        // The request is done once the client has its answer: a drain waits for exactly that.
        answered.acknowledged().await;
    }
}
