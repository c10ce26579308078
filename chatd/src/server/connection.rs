//! One client connection: the accept loop over its request streams and datagrams, and its part
//! in draining. What handlers see of it is [`ConnCtx`](crate::conn::ConnCtx).

use std::sync::Arc;
use std::time::Instant;

use chatproto::capability::Capability;
use chatproto::error::CloseCode;
use chatproto::pb;
use chatproto::server::RequestStream;
use tokio::sync::broadcast;
use tokio_util::task::TaskTracker;

use crate::conn::ConnCtx;
use crate::error::ApiError;
use crate::files;
use crate::handlers;
use crate::state::AppState;

/// Serves one connection until it closes, it is kicked, or the server drains.
pub async fn serve(
    state: Arc<AppState>,
    conn: quinn::Connection,
    mut shutdown: broadcast::Receiver<()>,
) {
    let ctx = Arc::new(ConnCtx::new(state, conn.clone()));
    let requests = TaskTracker::new();
    let reason = loop {
        tokio::select! {
            // In this order: an upload stream opened before a request stream is noted before
            // that request runs (see `Files::stream_accepted`).
            biased;
            _ = ctx.kick.cancelled() => break CloseReason::Kicked,
            _ = shutdown.recv() => break CloseReason::Drain,
            uni = conn.accept_uni() => match uni {
                // Upload streams, for authenticated connections that negotiated `files`.
                Ok(mut recv) => match ctx.principal_opt().filter(|_| ctx.has_capability(Capability::Files)) {
                    Some(me) => {
                        let unread = ctx.state.files.stream_accepted(me.user_id);
                        requests.spawn(files::upload::serve_stream(ctx.state.clone(), me.user_id, recv, unread));
                    }
                    None => { let _ = recv.stop(chatproto::server::STREAM_FRAME_ERROR.into()); }
                },
                Err(e) => break CloseReason::Lost(e),
            },
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => {
                    let ctx = ctx.clone();
                    requests.spawn(async move { handle_stream(ctx, RequestStream::with_default_limit(send, recv)).await });
                }
                Err(e) => break CloseReason::Lost(e),
            },
            datagram = conn.read_datagram() => match datagram {
                // Boxed: inline, the handler's state would sit in every idle connection's task.
                Ok(bytes) => Box::pin(handlers::typing::on_datagram(&ctx, &bytes)).await,
                Err(e) => break CloseReason::Lost(e),
            },
        }
    };
    // The close path (drain, presence announcement, store writes) is boxed and only allocated
    // when the connection ends: inline, its futures would make every idle connection's task
    // as large as the largest of them, for the connection's whole life.
    Box::pin(close_connection(ctx, conn, requests, reason)).await;
}

/// Ends a connection whose accept loop stopped for `reason`: drains on shutdown, closes with
/// the matching code, waits for in-flight requests and withdraws the principal.
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
            // Let the farewell event (session revoked, or nothing for slow consumers) leave first.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            conn.close(CloseCode::SessionRevoked.code().into(), b"closed by server");
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
            };
            let _ = tokio::time::timeout(state.settings.shutdown_grace.mul_f32(0.8), drain).await;
            ctx.deauthenticate().await;
            // Give the GoAway and last responses a moment to be acknowledged.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            conn.close(CloseCode::GoingAway.code().into(), b"server shutting down");
        }
    }
    requests.close();
    requests.wait().await;
    ctx.deauthenticate().await;
}

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
    if files::download::announced(&response).is_some() {
        files::download::respond(&ctx.state.files, stream, &response).await;
    } else if let Err(e) = stream.respond(&response).await {
        tracing::debug!(error = %e, kind, "could not deliver a response");
    }
    if let Some(close_code) = handlers::close_after(&response) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ctx.conn.close(close_code.code().into(), b"");
    }
}
