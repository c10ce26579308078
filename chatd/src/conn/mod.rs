//! What a request handler knows about its connection: [`ConnCtx`], the authenticated
//! [`Principal`], and the connection's event stream writer.
//!
//! This sits below both the server (which creates a `ConnCtx` per connection) and the handlers
//! (which read and change it), so neither depends on the other through it. The connection's
//! protocol state has one owner, [`phase::PhaseCell`], which holds no lock and never calls out
//! (its module says why). Its place in the server's connection counts is its
//! [`admission::Admission`].

pub mod admission;
mod events;
pub mod phase;

use std::net::SocketAddr;
use std::sync::Arc;

use chatproto::capability::Capability;
use chatproto::error::CloseCode;
use chatproto::pb;
use tokio_util::task::TaskTracker;

use crate::delivery::hub::ConnHandle;
use crate::delivery::kick::Kick;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use admission::Admission;
pub use phase::Principal;
use phase::{AuthRefused, Authenticated, PhaseCell};

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
    /// Closes the connection, with the reason's close code.
    pub kick: Kick,
    phase: PhaseCell,
    /// The connection's place in the server's connection counts.
    admission: Admission,
    /// The event stream writer(s): one per authentication (a logout ends one).
    writers: TaskTracker,
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
    /// The context of a connection that was just accepted (and `admission` admitted): not
    /// greeted, not authenticated.
    pub fn new(state: Arc<AppState>, conn: quinn::Connection, admission: Admission) -> Self {
        ConnCtx {
            admission,
            conn_id: state.hub.next_conn_id(),
            remote: conn.remote_address(),
            state,
            conn,
            kick: Kick::new(),
            phase: PhaseCell::new(),
            writers: TaskTracker::new(),
        }
    }

    /// The negotiated capabilities, once Hello is done.
    pub fn capabilities(&self) -> Option<Arc<[String]>> {
        self.phase.capabilities()
    }

    /// True when the client negotiated `cap` in its Hello.
    pub fn has_capability(&self, cap: Capability) -> bool {
        self.phase
            .capabilities()
            .is_some_and(|caps| cap.is_in(&caps))
    }

    /// Records a successful Hello; FAILED_PRECONDITION when it is the second one.
    pub fn set_hello(&self, capabilities: Vec<String>) -> ApiResult<()> {
        if self.phase.set_hello(capabilities.into()) {
            Ok(())
        } else {
            Err(ApiError::precondition(
                "hello was already sent on this connection",
            ))
        }
    }

    /// The authenticated principal, or UNAUTHENTICATED.
    pub fn principal(&self) -> ApiResult<Principal> {
        self.phase
            .principal()
            .ok_or_else(|| ApiError::unauthenticated("authenticate first"))
    }

    /// The principal if authenticated.
    pub fn principal_opt(&self) -> Option<Principal> {
        self.phase.principal()
    }

    /// Counts the connection as authenticated while an authentication request runs (see
    /// [`Admission`]): refused with UNAVAILABLE, closing the connection with SERVER_BUSY, when
    /// the client's address already holds as many authenticated connections as allowed.
    pub fn reserve_authenticated(&self) -> ApiResult<()> {
        self.admission.reserve_authenticated().map_err(|refused| {
            self.state.metrics.connection_rejected(refused.label());
            ApiError::unavailable(refused.message()).closing(CloseCode::ServerBusy)
        })
    }

    /// Counts the connection as what its state is now, after an authentication request or a
    /// logout. An authenticated connection gets the full flow-control window, which an
    /// unauthenticated one does not (see [`admission::AUTHENTICATED_RECEIVE_WINDOW`]).
    pub fn settle_admission(&self) {
        let authenticated = self.phase.principal().is_some();
        self.admission.settle(authenticated);
        if authenticated {
            self.conn
                .set_receive_window(admission::AUTHENTICATED_RECEIVE_WINDOW.into());
        }
    }

    /// FAILED_PRECONDITION when the connection is authenticated as someone other than `user_id`.
    pub fn check_same_user(&self, user_id: u64) -> ApiResult<()> {
        match self.phase.principal() {
            Some(p) if p.user_id != user_id => Err(other_user()),
            _ => Ok(()),
        }
    }

    /// Marks the connection authenticated: registers it for fan-out *before* the answer goes out
    /// (so no event committed after the answer can be missed), starts the event stream writer on
    /// first authentication, and announces presence. The same user again (e.g. a refresh) only
    /// switches the connection's session.
    pub async fn authenticated(&self, principal: Principal) -> ApiResult<()> {
        let (sender, events, datagrams, epoch) = match self.phase.authenticate(principal) {
            Err(AuthRefused::OtherUser) => return Err(other_user()),
            Ok(Authenticated::Again) => return Ok(()),
            Ok(Authenticated::First {
                sender,
                events,
                datagrams,
                epoch,
            }) => (sender, events, datagrams, epoch),
        };
        // The writer opens the stream itself: events queued from the registration on are
        // written first, and nothing here waits for the client's stream credit.
        self.writers.spawn(events::write_events(
            self.conn.clone(),
            events,
            self.kick.clone(),
            Arc::clone(&self.state.metrics),
        ));
        let state = &self.state;
        let first_on_node = state.hub.register(ConnHandle {
            conn_id: self.conn_id,
            user_id: principal.user_id,
            session: self.phase.session_mirror(),
            tx: sender,
            kick: self.kick.clone(),
            datagrams: datagrams.then(|| self.conn.clone()),
        });
        self.settle_admission();
        if !self.phase.is_current(epoch) {
            // A logout on another stream overtook this authentication: take the registration
            // back (the logout may have looked before it existed).
            self.withdraw(principal.user_id).await;
            return Ok(());
        }
        if first_on_node {
            // Cluster mode: subscriptions are in place before the answer, like the registration.
            state.fanout.user_connected(state, principal.user_id).await;
            crate::delivery::presence::connected(state, principal.user_id).await;
        }
        Ok(())
    }

    /// Undoes authentication (logout): the event stream is finished, the connection stays open.
    pub async fn deauthenticate(&self) {
        if let Some(p) = self.phase.deauthenticate() {
            self.settle_admission();
            self.withdraw(p.user_id).await;
        }
    }

    /// Removes the connection from fan-out, announcing the user offline when it was their last
    /// connection on this node.
    async fn withdraw(&self, user_id: u64) {
        if self.state.hub.unregister(user_id, self.conn_id) {
            self.state.fanout.user_disconnected(user_id);
            crate::delivery::presence::disconnected(&self.state, user_id).await;
        }
    }

    /// Completes when every event stream writer finished: after
    /// [`deauthenticate`](Self::deauthenticate), once the client acknowledged the last event (or
    /// the stream or connection failed).
    pub async fn events_finished(&self) {
        self.writers.close();
        self.writers.wait().await;
    }

    /// Sends an event to this connection only.
    pub fn send_event(&self, event: &pb::Event) {
        if let Some(tx) = self.phase.events() {
            let _ = tx.try_send(crate::delivery::hub::encode_event(event));
        }
    }
}

fn other_user() -> ApiError {
    ApiError::precondition("this connection is authenticated as another user")
}
