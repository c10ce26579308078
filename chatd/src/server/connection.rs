//! One client connection: the accept loop over its request streams and datagrams, the limits
//! on a connection that has not authenticated yet (a deadline, a budget of buffered request
//! bytes), and its part in draining. What handlers see of it is
//! [`ConnCtx`](crate::conn::ConnCtx).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatproto::capability::Capability;
use chatproto::error::{CloseCode, StreamCode};
use chatproto::pb;
use chatproto::server::RequestStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, oneshot, watch};
use tokio_util::task::TaskTracker;

use crate::conn::ConnCtx;
use crate::conn::admission::{Admission, AuthClock, PRE_AUTH_FRAME_BYTES, PRE_AUTH_STREAM_BYTES};
use crate::error::ApiError;
use crate::handlers;
use crate::handlers::files;
use crate::server::drain::DrainPlan;
use crate::state::AppState;

/// A connection on its way in, ready to be admitted (see [`open`]).
pub struct Opened {
    /// The connection.
    pub conn: quinn::Connection,
    /// Resolves when the handshake ends, true when it completed; `None` once it did.
    handshake: Option<Handshake>,
    /// The first request stream, when the client opened it in 0-RTT data.
    first: Option<(quinn::SendStream, quinn::RecvStream)>,
}

type Handshake = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// Accepts `incoming` and waits until it may take a place among the connections: once its
/// handshake completed, or sooner once a client that resumed sent its first request in 0-RTT
/// data (a ticket resumes once, protocol.md 2.5). A handshake that never completes (spoofed
/// or replayed first packets) takes no place. `None` when the handshake failed.
///
/// From there the connection is served before its handshake completes: requests that came in
/// 0-RTT data are answered in the server's first flight (0.5-RTT data), so a resuming client
/// has its first answers after one round trip. What is early is told per stream.
pub async fn open(incoming: quinn::Incoming) -> Option<Opened> {
    let connecting = incoming
        .accept()
        .inspect_err(|e| tracing::debug!(error = %e, "handshake failed"))
        .ok()?;
    // The server side of `into_0rtt` always succeeds.
    let (conn, accepted) = connecting.into_0rtt().ok()?;
    let mut handshake: Handshake = Box::pin({
        let conn = conn.clone();
        async move {
            // quinn's future says on a server whether 0-RTT data was accepted, and false as
            // well when the handshake failed: the connection's state tells the two apart.
            let _accepted_0rtt = accepted.await;
            conn.close_reason().is_none()
        }
    });
    tokio::select! {
        completed = &mut handshake => completed.then_some(Opened { conn, handshake: None, first: None }),
        stream = conn.accept_bi() => stream.ok().map(|first| Opened {
            conn,
            handshake: Some(handshake),
            first: Some(first),
        }),
    }
}

impl Opened {
    /// Waits for the handshake to end; true when it completed.
    pub async fn handshake_done(&mut self) -> bool {
        match self.handshake.take() {
            Some(handshake) => handshake.await,
            None => true,
        }
    }
}

/// Serves one connection until it closes, it is kicked, it stays unauthenticated too long, or
/// the server drains.
pub async fn serve(
    state: Arc<AppState>,
    opened: Opened,
    admission: Admission,
    mut shutdown: broadcast::Receiver<DrainPlan>,
) {
    let Opened {
        conn,
        handshake,
        first,
    } = opened;
    // Resolves when a handshake still under way ends (true: completed).
    let mut handshaking = handshake.is_some();
    let handshake = async move {
        match handshake {
            Some(handshake) => handshake.await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(handshake);
    let mut datagrams = handlers::typing::DatagramGate::new(state.limits.rates().request);
    let auth_deadline = unauthenticated_for(admission.auth_clock(), state.settings.auth_deadline);
    tokio::pin!(auth_deadline);
    // What the request streams of an unauthenticated connection may hold at once; QUIC flow
    // control bounds what waits unread the same way (the endpoint's initial window).
    let pre_auth = Arc::new(Semaphore::new(state.settings.max_unauthenticated_bytes));
    let ctx = Arc::new(ConnCtx::new(state, conn.clone(), admission));
    let requests = TaskTracker::new();
    let mut accepted = Accepted {
        requests: requests.clone(),
        pre_auth,
        pre_auth_order: InOrder::default(),
    };
    if let Some((send, recv)) = first {
        accepted.stream(&ctx, send, recv);
    }
    let reason = loop {
        tokio::select! {
            // In this order: an upload stream opened before a request stream is noted before
            // that request runs (see `Files::stream_accepted`).
            biased;
            _ = ctx.kick.kicked() => break CloseReason::Kicked,
            // A closed channel (the server is gone) drains too, with the shortest delay.
            plan = shutdown.recv() => break CloseReason::Drain(plan.unwrap_or(DrainPlan::new(0, 1))),
            uni = conn.accept_uni() => match uni {
                // Upload streams, for authenticated connections that negotiated `files`, and
                // never from 0-RTT data (uploads are not early-safe, protocol.md 2.5).
                Ok(mut recv) => match ctx.principal_opt().filter(|_| !recv.is_0rtt() && ctx.has_capability(Capability::Files)) {
                    Some(me) => {
                        let unread = ctx.state.files.stream_accepted(me.user_id);
                        requests.spawn(files::upload::serve_stream(ctx.state.clone(), me.user_id, recv, unread));
                    }
                    None => { let _ = recv.stop(chatproto::error::StreamCode::FrameError.into()); }
                },
                Err(e) => break CloseReason::Lost(e),
            },
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => accepted.stream(&ctx, send, recv),
                Err(e) => break CloseReason::Lost(e),
            },
            () = &mut auth_deadline => break CloseReason::NotAuthenticated,
            completed = &mut handshake, if handshaking => {
                handshaking = false;
                if !completed {
                    tracing::debug!(remote = %ctx.remote, "handshake failed");
                    ctx.state.metrics.connection_rejected("handshake");
                }
            }
            datagram = conn.read_datagram() => match datagram {
                Ok(bytes) => handlers::typing::on_datagram(&ctx, &mut datagrams, &bytes),
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
        CloseReason::NotAuthenticated => {
            tracing::debug!(conn = ctx.conn_id, remote = %ctx.remote, "not authenticated in time");
            state.metrics.connection_rejected("auth_deadline");
            conn.close(CloseCode::NoError.code().into(), AUTH_DEADLINE_REASON);
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
        CloseReason::Drain(plan) => {
            let go_away = pb::Event {
                kind: Some(pb::event::Kind::GoAway(pb::GoAway {
                    reason: "server shutting down".into(),
                    addresses: Vec::new(),
                    reconnect_after_ms: plan.draw_millis(),
                })),
            };
            let told = ctx.send_event(&go_away);
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
                // A request in flight at the drain (an `authenticate`) may have registered the
                // connection since: it gets its GoAway too, not a bare close.
                if !told {
                    ctx.send_event(&go_away);
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

/// The close reason of a connection that did not authenticate within the deadline.
const AUTH_DEADLINE_REASON: &[u8] = b"not authenticated in time";

enum CloseReason {
    Lost(quinn::ConnectionError),
    /// Unauthenticated for longer than `--auth-deadline`.
    NotAuthenticated,
    Kicked,
    /// The server drains; the plan gives this connection's reconnect delay.
    Drain(DrainPlan),
}

/// The wire form of an error answer.
pub fn error_response(request_id: u64, err: &ApiError) -> pb::Response {
    pb::Response {
        request_id,
        result: Some(pb::response::Result::Error(err.to_pb())),
    }
}

/// Completes once the connection has been unauthenticated for `limit` since its start or a
/// logout, not counting while an authentication request is answered (see [`AuthClock`]).
/// Never completes while it stays authenticated.
async fn unauthenticated_for(mut clock: watch::Receiver<AuthClock>, limit: Duration) {
    loop {
        let current = *clock.borrow_and_update();
        let changed = match current {
            AuthClock::Running(since) => tokio::select! {
                () = tokio::time::sleep_until((since + limit).into()) => return,
                changed = clock.changed() => changed,
            },
            AuthClock::Paused(_) | AuthClock::Stopped => clock.changed().await,
        };
        if changed.is_err() {
            // The admission is gone, so is the connection: nothing left to time.
            std::future::pending::<()>().await;
        }
    }
}

/// Answers a request stream of an unauthenticated connection whose pre-authentication budget
/// is taken by its other streams, without reading it: TOO_LARGE (protocol.md 3.1).
async fn refuse_over_budget(ctx: Arc<ConnCtx>, stream: RequestStream) {
    let limit = ctx.state.settings.max_unauthenticated_bytes;
    let error = ApiError::new(
        pb::ErrorCode::TooLarge,
        format!("an unauthenticated connection may have at most {limit} request bytes in flight"),
    );
    ctx.state
        .metrics
        .request_finished("malformed", Err(error.code), Duration::ZERO);
    let _ = stream
        .refuse(StreamCode::FrameTooLarge, &error_response(0, &error))
        .await;
}

/// What the accept loop keeps to start the tasks of request streams.
struct Accepted {
    requests: TaskTracker,
    /// What the request streams of an unauthenticated connection may hold at once.
    pre_auth: Arc<Semaphore>,
    pre_auth_order: InOrder,
}

impl Accepted {
    /// Starts serving the request stream `send`/`recv`.
    fn stream(&mut self, ctx: &Arc<ConnCtx>, send: quinn::SendStream, recv: quinn::RecvStream) {
        let ctx = ctx.clone();
        // A stream the client opened in 0-RTT data (accepted before the handshake completed):
        // possibly a replay, so only early-safe kinds are served.
        let early = recv.is_0rtt();
        if ctx.principal_opt().is_some() {
            let admitted = Admitted {
                early,
                pre_auth: None,
                turn: None,
            };
            self.requests
                .spawn(async move { handle_stream(ctx, send, recv, admitted).await });
            return;
        }
        // Taken here, in stream order, so which stream is refused does not depend on task
        // scheduling.
        match self
            .pre_auth
            .clone()
            .try_acquire_many_owned(PRE_AUTH_STREAM_BYTES as u32)
        {
            Ok(permit) => {
                // Every request of a connection that is not authenticated takes its turn, not
                // only those marked 0-RTT: `is_0rtt` tells when the stream was accepted, not
                // when its data came, so under load a whole first flight sent in 0-RTT data is
                // accepted after the handshake completed, and its `authenticate` and `sync`
                // must still wait for the `hello` before them.
                let admitted = Admitted {
                    early,
                    pre_auth: Some(permit),
                    turn: Some(self.pre_auth_order.next()),
                };
                self.requests
                    .spawn(async move { handle_stream(ctx, send, recv, admitted).await });
            }
            Err(_) => {
                let stream = RequestStream::new(send, recv, PRE_AUTH_FRAME_BYTES);
                self.requests.spawn(refuse_over_budget(ctx, stream));
            }
        }
    }
}

/// What the accept loop decided about a request stream before its request is read.
struct Admitted {
    /// The client opened it in 0-RTT data ([`handlers::dispatch`]).
    early: bool,
    /// The stream's share of the pre-authentication budget, given back once the request is read.
    pre_auth: Option<OwnedSemaphorePermit>,
    /// Its place among the requests of the connection while it is not authenticated.
    turn: Option<Turn>,
}

/// Serves the requests of a connection that is not authenticated in the order their streams
/// were opened (protocol.md 2.5): a client that sends `hello`, `authenticate` and `sync` at once
/// in its first flight (0-RTT data) gets them handled one after the other, as if it had waited
/// for each answer. Each request waits for the one before it to be dispatched (or to fail to be
/// read) before it is read, and keeps its share of the pre-authentication budget until then.
/// Every such request is ordered, not only those accepted during the handshake: a first flight
/// is often accepted after it (see `Accepted::stream`). A half-sent request holds up only its
/// own connection: until the request stream's idle timeout, or, when it keeps sending, the
/// authentication deadline.
#[derive(Default)]
struct InOrder {
    /// Completes when the latest request given a turn was dispatched.
    last: Option<oneshot::Receiver<()>>,
}

impl InOrder {
    /// The next request's turn.
    fn next(&mut self) -> Turn {
        let (done, next) = oneshot::channel();
        Turn {
            after: self.last.replace(next),
            done,
        }
    }
}

/// One request's place in an [`InOrder`]: it waits for `after`, and its successor waits for
/// `done` to be dropped.
struct Turn {
    after: Option<oneshot::Receiver<()>>,
    done: oneshot::Sender<()>,
}

/// Reads one request, dispatches it and answers it.
async fn handle_stream(
    ctx: Arc<ConnCtx>,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    admitted: Admitted,
) {
    let Admitted {
        early,
        pre_auth,
        turn,
    } = admitted;
    let done = match turn {
        Some(Turn { after, done }) => {
            if let Some(after) = after {
                // Sent or dropped, the request before this one is through.
                let _ = after.await;
            }
            Some(done)
        }
        None => None,
    };
    // Read once its turn came: a request that waited for the connection's authentication (a
    // first flight's `sync` or `send_message`, section 2.5) is read with the full frame limit.
    let limit = if ctx.principal_opt().is_some() {
        chatproto::frame::MAX_FRAME_BYTES
    } else {
        PRE_AUTH_FRAME_BYTES
    };
    let mut stream = RequestStream::new(send, recv, limit);
    let read = stream.read_request().await;
    drop(pre_auth);
    let request = match read {
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
    let result = handlers::dispatch(&ctx, request, early).await;
    // The next early request of an unauthenticated connection sees what this one did.
    drop(done);
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
    if handlers::admin_backup::announced(&response).is_some() {
        // The answer, then the copy's bytes; done once the client has them all.
        handlers::admin_backup::respond(&ctx.state.backups, stream, &response).await;
        return;
    }
    if files::download::announced(&response).is_some() {
        // The answer, then the bytes it announces; done once the client has them all.
        files::download::respond(&ctx.state.files, stream, &response).await;
        return;
    }
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
