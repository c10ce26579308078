//! One client connection: the Hello/auth state machine, request streams, datagrams, the event
//! stream writer, and the connection's part in draining.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use chatproto::pb;
use chatproto::server::RequestStream;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{ApiError, ApiResult};
use crate::handlers;
use crate::hub::{CONNECTION_QUEUE, ConnHandle};
use crate::state::AppState;

/// QUIC application close codes (protocol.md, "Errors").
pub mod close {
    /// Normal close.
    pub const NO_ERROR: u32 = 0x0;
    /// The peer broke the protocol.
    pub const PROTOCOL_VIOLATION: u32 = 0x1;
    /// The server is draining.
    pub const GOING_AWAY: u32 = 0x2;
    /// The session was revoked or the account disabled.
    pub const SESSION_REVOKED: u32 = 0x3;
    /// Unsupported protocol major version.
    pub const VERSION_MISMATCH: u32 = 0x4;
    /// Steered to another node.
    pub const REDIRECTED: u32 = 0x5;
    /// Connection cap reached.
    pub const SERVER_BUSY: u32 = 0x6;
}

/// Who is on the other end, once authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: u64,
    /// The session (refresh-token family) the connection authenticated with.
    pub session_id: u64,
    /// Server admin.
    pub admin: bool,
}

#[derive(Debug, Default)]
struct Phase {
    hello: Option<Vec<String>>,
    principal: Option<Principal>,
    events: Option<mpsc::Sender<Bytes>>,
}

/// What a request handler knows about its connection.
pub struct ConnCtx {
    /// Shared server state.
    pub state: Arc<AppState>,
    /// The QUIC connection.
    pub conn: quinn::Connection,
    /// Unique per node.
    pub conn_id: u64,
    /// The client's address.
    pub remote: SocketAddr,
    /// Cancelled to close the connection.
    pub kick: CancellationToken,
    phase: Mutex<Phase>,
}

impl std::fmt::Debug for ConnCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnCtx")
            .field("conn_id", &self.conn_id)
            .field("remote", &self.remote)
            .finish()
    }
}

impl ConnCtx {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The negotiated capabilities, once Hello is done.
    pub fn capabilities(&self) -> Option<Vec<String>> {
        self.phase().hello.clone()
    }

    /// Records a successful Hello; FAILED_PRECONDITION when it is the second one.
    pub fn set_hello(&self, capabilities: Vec<String>) -> ApiResult<()> {
        let mut phase = self.phase();
        if phase.hello.is_some() {
            return Err(ApiError::precondition(
                "hello was already sent on this connection",
            ));
        }
        phase.hello = Some(capabilities);
        Ok(())
    }

    /// True when the client negotiated `cap`.
    pub fn has_capability(&self, cap: &str) -> bool {
        self.phase()
            .hello
            .as_ref()
            .is_some_and(|caps| caps.iter().any(|c| c == cap))
    }

    /// The authenticated principal, or UNAUTHENTICATED.
    pub fn principal(&self) -> ApiResult<Principal> {
        self.phase()
            .principal
            .ok_or_else(|| ApiError::unauthenticated("authenticate first"))
    }

    /// The principal if authenticated.
    pub fn principal_opt(&self) -> Option<Principal> {
        self.phase().principal
    }

    /// FAILED_PRECONDITION when the connection is authenticated as someone other than `user_id`.
    pub fn check_same_user(&self, user_id: u64) -> ApiResult<()> {
        match self.phase().principal {
            Some(p) if p.user_id != user_id => Err(ApiError::precondition(
                "this connection is authenticated as another user",
            )),
            _ => Ok(()),
        }
    }

    /// Marks the connection authenticated: registers it for fan-out *before* the answer goes out
    /// (so no event committed after the answer can be missed), opens the event stream on first
    /// authentication, and announces presence.
    pub async fn authenticated(&self, principal: Principal) -> ApiResult<()> {
        self.check_same_user(principal.user_id)?;
        let first = {
            let mut phase = self.phase();
            let first = phase.principal.is_none();
            phase.principal = Some(principal);
            first && phase.events.is_none()
        };
        if !first {
            // Same user again (e.g. a refresh): re-register under the new session id.
            let state = &self.state;
            state.hub.unregister(principal.user_id, self.conn_id);
            if let Some(tx) = self.phase().events.clone() {
                self.register(principal, tx);
            }
            return Ok(());
        }
        let send = self.conn.open_uni().await.map_err(|e| {
            tracing::debug!(error = %e, "cannot open the event stream");
            ApiError::unavailable("connection closing")
        })?;
        let (tx, rx) = mpsc::channel(CONNECTION_QUEUE);
        tokio::spawn(write_events(
            chatproto::server::EventStream::new(send),
            rx,
            self.kick.clone(),
            Arc::clone(&self.state.metrics),
        ));
        self.phase().events = Some(tx.clone());
        let first_on_node = self.register(principal, tx);
        if first_on_node {
            // Cluster mode: subscriptions are in place before the answer, like the registration.
            self.state
                .fanout
                .user_connected(&self.state, principal.user_id)
                .await;
            crate::presence::connected(&self.state, principal.user_id).await;
        }
        Ok(())
    }

    fn register(&self, principal: Principal, tx: mpsc::Sender<Bytes>) -> bool {
        let datagrams = self.has_capability("datagrams").then(|| self.conn.clone());
        self.state.hub.register(ConnHandle {
            conn_id: self.conn_id,
            user_id: principal.user_id,
            session_id: principal.session_id,
            tx,
            kick: self.kick.clone(),
            datagrams,
        })
    }

    /// Undoes authentication (logout): the event stream is finished, the connection stays open.
    pub async fn deauthenticate(&self) {
        let (principal, events) = {
            let mut phase = self.phase();
            (phase.principal.take(), phase.events.take())
        };
        drop(events);
        if let Some(p) = principal
            && self.state.hub.unregister(p.user_id, self.conn_id)
        {
            self.state.fanout.user_disconnected(p.user_id);
            crate::presence::disconnected(&self.state, p.user_id).await;
        }
    }

    /// Sends an event to this connection only.
    pub fn send_event(&self, event: &pb::Event) {
        if let Some(tx) = self.phase().events.clone() {
            let _ = tx.try_send(crate::hub::encode_event(event));
        }
    }
}

/// Drains the connection's queue into the event stream, coalescing whatever is queued into one
/// write.
async fn write_events(
    mut stream: chatproto::server::EventStream,
    mut rx: mpsc::Receiver<Bytes>,
    kick: CancellationToken,
    metrics: Arc<crate::metrics::Metrics>,
) {
    // Grows with the first burst and keeps that capacity; an idle connection holds none.
    let mut batch: Vec<Bytes> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(frame) => batch.push(frame),
                Err(_) => break,
            }
        }
        if let Err(e) = stream.write_frames(&mut batch).await {
            tracing::debug!(error = %e, "event stream closed");
            kick.cancel();
            return;
        }
        metrics.events_sent(batch.len() as u64);
        batch.clear();
    }
    // All senders are gone: logout or connection end.
    stream.finish();
}

/// Serves one connection until it closes, it is kicked, or the server drains.
pub async fn serve(
    state: Arc<AppState>,
    conn: quinn::Connection,
    mut shutdown: broadcast::Receiver<()>,
) {
    let ctx = Arc::new(ConnCtx {
        conn_id: state.hub.next_conn_id(),
        remote: conn.remote_address(),
        state,
        conn: conn.clone(),
        kick: CancellationToken::new(),
        phase: Mutex::new(Phase::default()),
    });
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
                // Boxed: inline, the handler's state would sit in every idle connection's task.
                Ok(bytes) => Box::pin(handlers::typing::on_datagram(&ctx, &bytes)).await,
                Err(e) => break CloseReason::Lost(e),
            },
            uni = conn.accept_uni() => match uni {
                // Reserved for file transfer; refused until that capability exists.
                Ok(mut recv) => { let _ = recv.stop(chatproto::server::STREAM_FRAME_ERROR.into()); }
                Err(e) => break CloseReason::Lost(e),
            },
            _ = ctx.kick.cancelled() => break CloseReason::Kicked,
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
            conn.close(close::SESSION_REVOKED.into(), b"closed by server");
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
            conn.close(close::GOING_AWAY.into(), b"server shutting down");
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
    if let Err(e) = stream.respond(&response).await {
        tracing::debug!(error = %e, kind, "could not deliver a response");
    }
    if let Some(close_code) = handlers::close_after(&response) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        ctx.conn.close(close_code.into(), b"");
    }
}
