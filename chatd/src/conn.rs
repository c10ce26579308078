//! What a request handler knows about its connection: [`ConnCtx`], the authenticated
//! [`Principal`], and the connection's event stream writer.
//!
//! This sits below both the server (which creates a `ConnCtx` per connection) and the handlers
//! (which read and change it), so neither depends on the other through it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chatproto::capability::Capability;
use chatproto::pb;
use tokio_util::sync::CancellationToken;

use crate::delivery::outbox::{Outbox, WRITE_BATCH};
use crate::delivery::registry::ConnHandle;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

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
    events: Option<Arc<Outbox>>,
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
    /// The context of a connection that was just accepted: not greeted, not authenticated.
    pub fn new(state: Arc<AppState>, conn: quinn::Connection) -> Self {
        ConnCtx {
            conn_id: state.delivery.next_conn_id(),
            remote: conn.remote_address(),
            state,
            conn,
            kick: CancellationToken::new(),
            phase: Mutex::new(Phase::default()),
        }
    }

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
    pub fn has_capability(&self, cap: Capability) -> bool {
        self.phase()
            .hello
            .as_ref()
            .is_some_and(|caps| cap.is_in(caps))
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
            // Same user again (e.g. a refresh): the connection now belongs to the new session.
            self.state
                .delivery
                .set_session(principal.user_id, self.conn_id, principal.session_id);
            return Ok(());
        }
        let send = self.conn.open_uni().await.map_err(|e| {
            tracing::debug!(error = %e, "cannot open the event stream");
            ApiError::unavailable("connection closing")
        })?;
        let outbox = Arc::new(Outbox::new());
        tokio::spawn(write_events(
            chatproto::server::EventStream::new(send),
            outbox.clone(),
            self.kick.clone(),
            Arc::clone(&self.state.metrics),
        ));
        self.phase().events = Some(outbox.clone());
        let datagrams = self
            .has_capability(Capability::Datagrams)
            .then(|| self.conn.clone());
        // Registered (and, on the user's first connection here, subscribed across the cluster)
        // before the answer goes out.
        self.state
            .delivery
            .attach(ConnHandle {
                conn_id: self.conn_id,
                user_id: principal.user_id,
                session_id: principal.session_id,
                outbox,
                kick: self.kick.clone(),
                datagrams,
            })
            .await?;
        Ok(())
    }

    /// Undoes authentication (logout): the event stream is finished, the connection stays open.
    pub async fn deauthenticate(&self) {
        let (principal, events) = {
            let mut phase = self.phase();
            (phase.principal.take(), phase.events.take())
        };
        if let Some(outbox) = events {
            outbox.close();
        }
        if let Some(p) = principal {
            self.state.delivery.detach(p.user_id, self.conn_id).await;
        }
    }

    /// Sends an event to this connection only (when it is authenticated).
    pub fn send_event(&self, event: &pb::Event) {
        if let Some(p) = self.principal_opt() {
            self.state
                .delivery
                .notify_connection(p.user_id, self.conn_id, event);
        }
    }
}

/// Drains the connection's queue into the event stream, coalescing whatever is queued into one
/// write.
async fn write_events(
    mut stream: chatproto::server::EventStream,
    outbox: Arc<Outbox>,
    kick: CancellationToken,
    metrics: Arc<crate::ops::metrics::Metrics>,
) {
    // Grows with the first burst and keeps that capacity; an idle connection holds none.
    let mut batch: Vec<Bytes> = Vec::new();
    while outbox.next_batch(&mut batch, WRITE_BATCH).await {
        if let Err(e) = stream.write_frames(&mut batch).await {
            tracing::debug!(error = %e, "event stream closed");
            outbox.close();
            kick.cancel();
            return;
        }
        metrics.events_sent(batch.len() as u64);
        batch.clear();
    }
    // Closed: logout or connection end.
    stream.finish();
}
