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

use crate::delivery::kick::Kick;
use crate::delivery::registry::ConnHandle;
use crate::delivery::{Attached, KickMark};
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

/// The answer to a second Hello.
fn hello_again() -> ApiError {
    ApiError::precondition("hello was already sent on this connection")
}

impl ConnCtx {
    /// The context of a connection that was just accepted (and `admission` admitted): not
    /// greeted, not authenticated.
    pub fn new(state: Arc<AppState>, conn: quinn::Connection, admission: Admission) -> Self {
        ConnCtx {
            admission,
            conn_id: state.delivery.next_conn_id(),
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

    /// FAILED_PRECONDITION when Hello is done: a second one is refused as such, before
    /// anything in it is judged.
    pub fn require_no_hello(&self) -> ApiResult<()> {
        match self.phase.capabilities() {
            Some(_) => Err(hello_again()),
            None => Ok(()),
        }
    }

    /// Records a successful Hello; FAILED_PRECONDITION when it is the second one (of two sent
    /// at once, the one that came second here).
    pub fn set_hello(&self, capabilities: Vec<String>) -> ApiResult<()> {
        if self.phase.set_hello(capabilities.into()) {
            Ok(())
        } else {
            Err(hello_again())
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

    /// Marks the connection authenticated: attaches it to delivery *before* the answer goes out
    /// (so no event committed after the answer can be missed; on the user's first connection
    /// here that includes their cluster subscriptions and presence), starting the event stream
    /// writer on first authentication. The same user again (e.g. a refresh) only switches the
    /// connection's session.
    ///
    /// `mark` is where kicks stood before the caller read the session it signs in with. A
    /// revocation committed after that read kicks connections that are registered by then;
    /// when one may have come before this connection was, the session is read again, and a
    /// revoked one (or an account disabled or deleted) is refused here with UNAUTHENTICATED,
    /// leaving the connection not authenticated.
    pub async fn authenticated(&self, principal: Principal, mark: KickMark) -> ApiResult<()> {
        let (outbox, datagrams, epoch) = match self.phase.authenticate(principal) {
            Err(AuthRefused::OtherUser) => return Err(other_user()),
            Ok(Authenticated::Again) => {
                if self.state.delivery.kick_mark() == mark {
                    return Ok(());
                }
                // The connection is on the new session already: one revoked meanwhile may have
                // been kicked before the switch, so unless it is known live the connection
                // signs out (also when the store cannot say).
                let checked = self.still_signed_in(principal).await;
                if checked.is_err() {
                    self.deauthenticate().await;
                }
                return checked;
            }
            Ok(Authenticated::First {
                outbox,
                datagrams,
                epoch,
            }) => (outbox, datagrams, epoch),
        };
        // The writer opens the stream itself: events queued from the registration on are
        // written first, and nothing here waits for the client's stream credit.
        self.writers.spawn(events::write_events(
            self.conn.clone(),
            Arc::clone(&outbox),
            self.kick.clone(),
            Arc::clone(&self.state.metrics),
        ));
        let queue = Arc::clone(&outbox);
        let handle = ConnHandle {
            conn_id: self.conn_id,
            user_id: principal.user_id,
            session: self.phase.session_mirror(),
            outbox,
            kick: self.kick.clone(),
            datagrams: datagrams.then(|| self.conn.clone()),
            calls: self.has_capability(chatproto::capability::Capability::Calls),
            group_calls: self.has_capability(chatproto::capability::Capability::GroupCalls),
        };
        let attached = match self.state.delivery.attach(handle, mark).await {
            Ok(Attached::Sure) => Ok(()),
            Ok(Attached::Recheck) => match self.still_signed_in(principal).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Registered, but refused: nothing queued meanwhile reaches the client.
                    queue.discard();
                    self.detach_if_overtaken(principal.user_id, epoch).await;
                    Err(e)
                }
            },
            Err(e) => Err(e.into()),
        };
        if let Err(e) = attached {
            // Not (or no longer) authenticated: the connection goes back to before.
            if self.phase.is_current(epoch) {
                self.deauthenticate().await;
            }
            return Err(e);
        }
        self.settle_admission();
        self.detach_if_overtaken(principal.user_id, epoch).await;
        Ok(())
    }

    /// Takes this connection's registration back when a logout on another stream overtook the
    /// authentication of `epoch`: the logout may have looked before the registration existed.
    async fn detach_if_overtaken(&self, user_id: u64, epoch: u64) {
        if !self.phase.is_current(epoch) {
            self.state.delivery.detach(user_id, self.conn_id).await;
        }
    }

    /// UNAUTHENTICATED unless `principal`'s session is live and its account active, read from
    /// the store now.
    async fn still_signed_in(&self, principal: Principal) -> ApiResult<()> {
        let (session, user) = self
            .state
            .store
            .session_and_user(principal.session_id, principal.user_id)
            .await?;
        let live = session.is_some_and(|s| s.is_live_for(principal.user_id));
        let active = user.is_some_and(|u| u.is_active());
        if live && active {
            Ok(())
        } else {
            Err(ApiError::unauthenticated("session revoked"))
        }
    }

    /// Undoes authentication (logout): the event stream is finished, the connection stays open.
    pub async fn deauthenticate(&self) {
        let (principal, outbox) = self.phase.deauthenticate();
        if let Some(outbox) = outbox {
            outbox.close();
        }
        if let Some(p) = principal {
            self.settle_admission();
            // A call this connection took part in ends DISCONNECTED.
            self.state
                .calls
                .disconnected(crate::calls::machine::Device {
                    user_id: p.user_id,
                    conn_id: self.conn_id,
                })
                .await;
            // On the user's last connection here this announces them offline.
            self.state.delivery.detach(p.user_id, self.conn_id).await;
        }
    }

    /// Completes when every event stream writer finished: after
    /// [`deauthenticate`](Self::deauthenticate), once the client acknowledged the last event (or
    /// the stream or connection failed).
    pub async fn events_finished(&self) {
        self.writers.close();
        self.writers.wait().await;
    }

    /// Sends an event to this connection only (when it is authenticated), redacted for its
    /// user like any other. False when it was not queued (not authenticated, or not
    /// registered yet).
    pub fn send_event(&self, event: &pb::Event) -> bool {
        self.phase.principal().is_some_and(|p| {
            self.state
                .delivery
                .notify_connection(p.user_id, self.conn_id, event)
        })
    }
}

fn other_user() -> ApiError {
    ApiError::precondition("this connection is authenticated as another user")
}
