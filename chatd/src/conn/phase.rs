//! The one owner of a connection's protocol state: Hello done or not, who is authenticated, and
//! its event queue.
//!
//! Why it is shaped like this: a connection's state is read by every request of the connection
//! at once and changed by a few (hello, the four authentication requests, logout). An earlier
//! version kept it in a `std::sync::Mutex` that callers locked through a helper; a re-entrant
//! call while a guard was alive (re-registering the connection looked up a capability) locked it
//! twice on one thread and blocked a runtime worker for good. Here that class of bug cannot
//! happen:
//!
//! - there is no lock: the state is an immutable snapshot behind an [`ArcSwap`]. Readers take a
//!   snapshot and never wait; writers build the next snapshot from the current one and publish
//!   it with a compare-and-swap, retrying if another writer came first;
//! - nothing outside this module sees the cell, a guard or a transition closure: every method
//!   returns owned values, and transitions are pure functions of the previous snapshot (they call
//!   nothing, so they can be retried), so no caller can hold the state while calling out.
//!
//! The session a connection is authenticated with is also mirrored into an atomic that the
//! delivery registry reads when it revokes sessions ([`PhaseCell::session_mirror`]), so a
//! same-user re-authentication changes it without touching delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use chatproto::capability::Capability;

use crate::delivery::outbox::Outbox;

/// Who is on the other end, once authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: u64,
    /// The session (refresh-token family) the connection authenticated with.
    pub session_id: u64,
    // No server role here on purpose: a role read at authentication time would outlive a
    // demotion on every connection open before it, so handlers read it from the store when they
    // need it (`handlers::admin::is_server_admin`).
}

/// One snapshot of the state. Never changed in place: a transition publishes a new one.
#[derive(Debug, Clone, Default)]
struct Phase {
    /// The negotiated capabilities, once Hello is done.
    capabilities: Option<Arc<[String]>>,
    principal: Option<Principal>,
    /// The event queue while authenticated.
    events: Option<Arc<Outbox>>,
    /// Counts authentications and de-authentications, so that a transition can tell whether a
    /// later one overtook it.
    epoch: u64,
}

/// What [`PhaseCell::authenticate`] did.
#[derive(Debug)]
pub enum Authenticated {
    /// The connection was not authenticated: it now is, with a new event queue. The caller opens
    /// the event stream, drains `outbox` into it and registers it for delivery.
    First {
        /// The event queue.
        outbox: Arc<Outbox>,
        /// Whether the client negotiated datagrams.
        datagrams: bool,
        /// The epoch of this authentication, for [`PhaseCell::is_current`].
        epoch: u64,
    },
    /// The same user authenticated again: the connection now belongs to the new session and
    /// keeps its event stream and registration.
    Again,
}

/// Why [`PhaseCell::authenticate`] refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthRefused {
    /// The connection is authenticated as another user.
    OtherUser,
}

/// The owner of a connection's state (see the module documentation).
#[derive(Debug, Default)]
pub struct PhaseCell {
    cell: ArcSwap<Phase>,
    session: Arc<AtomicU64>,
}

impl PhaseCell {
    /// The state of a connection that was just accepted: not greeted, not authenticated.
    pub fn new() -> Self {
        Self::default()
    }

    /// Publishes the snapshot `next` computes from the current one, retrying when another
    /// transition came first. `next` returns `None` to leave the state as it is, and must be a
    /// pure function of the snapshot: it may run more than once.
    fn transition<R>(&self, next: impl Fn(&Phase) -> (Option<Phase>, R)) -> R {
        loop {
            let current = self.cell.load_full();
            let (new, result) = next(&current);
            let Some(new) = new else {
                return result;
            };
            let previous = self.cell.compare_and_swap(&current, Arc::new(new));
            if Arc::ptr_eq(&previous, &current) {
                self.mirror_session();
                return result;
            }
        }
    }

    /// Copies the session of the latest snapshot into the mirror. Every writer does this after
    /// publishing; whichever finishes last stores the latest session, because each one re-reads
    /// the snapshot until it did not change while storing.
    fn mirror_session(&self) {
        loop {
            let snapshot = self.cell.load_full();
            let session = snapshot.principal.map_or(0, |p| p.session_id);
            self.session.store(session, Ordering::Release);
            if Arc::ptr_eq(&snapshot, &self.cell.load_full()) {
                return;
            }
        }
    }

    /// The session id the connection is authenticated with now (0 when it is not), shared with
    /// the delivery registry.
    pub fn session_mirror(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.session)
    }

    /// The negotiated capabilities, once Hello is done.
    pub fn capabilities(&self) -> Option<Arc<[String]>> {
        self.cell.load().capabilities.clone()
    }

    /// Records a successful Hello; false when Hello was already done.
    pub fn set_hello(&self, capabilities: Arc<[String]>) -> bool {
        self.transition(|phase| {
            if phase.capabilities.is_some() {
                return (None, false);
            }
            let next = Phase {
                capabilities: Some(Arc::clone(&capabilities)),
                ..phase.clone()
            };
            (Some(next), true)
        })
    }

    /// The authenticated principal, if any.
    pub fn principal(&self) -> Option<Principal> {
        self.cell.load().principal
    }

    /// Authenticates the connection as `principal`: the first time (or after a logout) with a
    /// new event queue, again for the same user by switching the session. Refused when the
    /// connection is authenticated as another user.
    pub fn authenticate(&self, principal: Principal) -> Result<Authenticated, AuthRefused> {
        self.transition(|phase| match (phase.principal, &phase.events) {
            (Some(current), _) if current.user_id != principal.user_id => {
                (None, Err(AuthRefused::OtherUser))
            }
            (Some(_), Some(_)) => {
                let next = Phase {
                    principal: Some(principal),
                    ..phase.clone()
                };
                (Some(next), Ok(Authenticated::Again))
            }
            _ => {
                let outbox = Arc::new(Outbox::new());
                let epoch = phase.epoch + 1;
                let datagrams = phase
                    .capabilities
                    .as_ref()
                    .is_some_and(|caps| Capability::Datagrams.is_in(caps));
                let next = Phase {
                    principal: Some(principal),
                    events: Some(Arc::clone(&outbox)),
                    epoch,
                    ..phase.clone()
                };
                let first = Authenticated::First {
                    outbox,
                    datagrams,
                    epoch,
                };
                (Some(next), Ok(first))
            }
        })
    }

    /// Undoes authentication: returns the principal it had and the event queue, which the caller
    /// closes (the writer then finishes the event stream).
    pub fn deauthenticate(&self) -> (Option<Principal>, Option<Arc<Outbox>>) {
        self.transition(|phase| {
            if phase.principal.is_none() && phase.events.is_none() {
                return (None, (None, None));
            }
            let next = Phase {
                principal: None,
                events: None,
                epoch: phase.epoch + 1,
                ..phase.clone()
            };
            (Some(next), (phase.principal, phase.events.clone()))
        })
    }

    /// True while no later authentication or de-authentication overtook the one of `epoch`.
    pub fn is_current(&self, epoch: u64) -> bool {
        self.cell.load().epoch == epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(user_id: u64, session_id: u64) -> Principal {
        Principal {
            user_id,
            session_id,
        }
    }

    #[test]
    fn same_user_switches_session_and_keeps_the_queue() {
        let cell = PhaseCell::new();
        assert!(cell.set_hello(Arc::from(vec!["datagrams".to_string()])));
        assert!(!cell.set_hello(Arc::from(Vec::new())), "second hello");
        let Ok(Authenticated::First { datagrams, .. }) = cell.authenticate(principal(7, 1)) else {
            panic!("first authentication");
        };
        assert!(datagrams);
        assert_eq!(cell.session_mirror().load(Ordering::Acquire), 1);
        assert!(matches!(
            cell.authenticate(principal(7, 2)),
            Ok(Authenticated::Again)
        ));
        assert_eq!(cell.principal(), Some(principal(7, 2)));
        assert_eq!(cell.session_mirror().load(Ordering::Acquire), 2);
        assert_eq!(
            cell.authenticate(principal(8, 3)).unwrap_err(),
            AuthRefused::OtherUser
        );
        assert_eq!(cell.principal(), Some(principal(7, 2)));
    }

    #[test]
    fn logout_overtaking_an_authentication_is_detected() {
        let cell = PhaseCell::new();
        let Ok(Authenticated::First { epoch, .. }) = cell.authenticate(principal(7, 1)) else {
            panic!("first authentication");
        };
        assert!(cell.is_current(epoch));
        let (was, outbox) = cell.deauthenticate();
        assert_eq!(was, Some(principal(7, 1)));
        assert!(outbox.is_some(), "the queue goes to the caller, to close");
        assert!(!cell.is_current(epoch));
        assert_eq!(cell.session_mirror().load(Ordering::Acquire), 0);
        assert!(
            matches!(cell.deauthenticate(), (None, None)),
            "nothing left to undo"
        );
        assert!(matches!(
            cell.authenticate(principal(9, 4)),
            Ok(Authenticated::First { .. })
        ));
    }
}
