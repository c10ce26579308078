//! Which connections the server admits, counted by state and client address: the one owner of
//! the connection counts ([`ConnectionLimits`]) and each connection's share of them
//! ([`Admission`], which gives its counts back when dropped, on every exit path).
//!
//! Why these limits: connections that have not authenticated cost memory and handshakes but
//! prove nothing, so one address could otherwise open connections up to the global cap and
//! lock everyone else out with `SERVER_BUSY`. Unauthenticated connections are therefore capped
//! per address and in total (the total below the global cap, so they can never fill it), and
//! must authenticate within a deadline ([`Admission::auth_clock`]). Authenticated
//! connections are capped per address too, generously: a whole office may share one address.
//!
//! The counts sit behind one `std::sync::Mutex` that is held only to compare and change numbers
//! (no await, no call out), so it can neither deadlock nor stall a runtime worker.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::watch;

use crate::access::cidr::client_key;

/// The connection-level flow-control window of an authenticated connection, in bytes. A new
/// connection starts with the (smaller) pre-authentication budget as its window, so an
/// unauthenticated client cannot make the server buffer more than that in QUIC; the window
/// grows to this once the connection authenticates.
pub const AUTHENTICATED_RECEIVE_WINDOW: u32 = 1024 * 1024;

/// The largest request frame payload a connection may send before it is authenticated, in
/// bytes: every request allowed then (hello and the four that authenticate) fits with room
/// to spare.
pub const PRE_AUTH_FRAME_BYTES: usize = 8 * 1024;

/// What one request stream of an unauthenticated connection takes from its
/// pre-authentication budget while it is read: a whole frame and its longest length prefix.
pub const PRE_AUTH_STREAM_BYTES: usize = PRE_AUTH_FRAME_BYTES + 10;

/// The configured caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// All connections.
    pub total: usize,
    /// Unauthenticated connections, all addresses together (below `total`).
    pub unauthenticated: usize,
    /// Unauthenticated connections from one address.
    pub unauthenticated_per_address: usize,
    /// Authenticated connections from one address.
    pub authenticated_per_address: usize,
}

/// Which cap refused a connection (or its authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server holds `total` connections.
    Full,
    /// The server holds `unauthenticated` unauthenticated connections.
    Unauthenticated,
    /// The address holds `unauthenticated_per_address` unauthenticated connections.
    UnauthenticatedFromAddress,
    /// The address holds `authenticated_per_address` authenticated connections.
    AuthenticatedFromAddress,
}

impl Refused {
    /// The metric label (`chatd_connections_rejected_total{reason}`), also the setting's name.
    pub fn label(self) -> &'static str {
        match self {
            Refused::Full => "max_connections",
            Refused::Unauthenticated => "max_unauthenticated",
            Refused::UnauthenticatedFromAddress => "max_unauthenticated_per_address",
            Refused::AuthenticatedFromAddress => "max_authenticated_per_address",
        }
    }

    /// What the client is told (the close reason or error message).
    pub fn message(self) -> &'static str {
        match self {
            Refused::Full => "server busy",
            Refused::Unauthenticated => "server busy: too many unauthenticated connections",
            Refused::UnauthenticatedFromAddress => {
                "too many unauthenticated connections from this address"
            }
            Refused::AuthenticatedFromAddress => "too many connections from this address",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct AddressCounts {
    unauthenticated: usize,
    authenticated: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    unauthenticated: usize,
    /// Only addresses with at least one connection: an entry is removed when it drops to zero.
    by_address: HashMap<IpAddr, AddressCounts>,
}

impl Counts {
    fn address(&mut self, addr: IpAddr) -> &mut AddressCounts {
        self.by_address.entry(addr).or_default()
    }

    fn forget_if_empty(&mut self, addr: IpAddr) {
        if let Some(c) = self.by_address.get(&addr)
            && c.unauthenticated == 0
            && c.authenticated == 0
        {
            self.by_address.remove(&addr);
        }
    }
}

/// The connection counts of one server, and its caps.
#[derive(Debug)]
pub struct ConnectionLimits {
    caps: ConnectionCaps,
    counts: Mutex<Counts>,
}

impl ConnectionLimits {
    /// No connections yet.
    pub fn new(caps: ConnectionCaps) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            caps,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // Every critical section only adds and subtracts: a panic cannot leave a half change
        // that matters, so a poisoned lock is still used.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// All connections open now.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    /// Admits a new, unauthenticated connection from `addr`, or says which cap refuses it. The
    /// per-address caps count IPv6 addresses by their /64 ([`client_key`]).
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Admission, Refused> {
        let addr = client_key(addr);
        let mut counts = self.counts();
        if counts.total >= self.caps.total {
            return Err(Refused::Full);
        }
        if counts.unauthenticated >= self.caps.unauthenticated {
            return Err(Refused::Unauthenticated);
        }
        if counts
            .by_address
            .get(&addr)
            .map_or(0, |c| c.unauthenticated)
            >= self.caps.unauthenticated_per_address
        {
            return Err(Refused::UnauthenticatedFromAddress);
        }
        counts.total += 1;
        counts.unauthenticated += 1;
        counts.address(addr).unauthenticated += 1;
        drop(counts);
        let (auth_clock, _) = watch::channel(AuthClock::Running(Instant::now()));
        Ok(Admission {
            limits: Arc::clone(self),
            addr,
            state: Mutex::new(false),
            auth_clock,
        })
    }
}

/// One admitted connection's place in the counts; dropping it gives the place back.
///
/// A connection is counted as authenticated from the moment an authentication request starts
/// ([`reserve_authenticated`](Self::reserve_authenticated), which applies the per-address cap
/// before any work is done) and as whatever its protocol state says once the request is over
/// ([`settle`](Self::settle)).
#[derive(Debug)]
pub struct Admission {
    limits: Arc<ConnectionLimits>,
    addr: IpAddr,
    /// Whether the connection is counted as authenticated. Changed only while the counts are
    /// locked (the counts lock is always taken first), so the two always agree.
    state: Mutex<bool>,
    /// The authentication deadline's clock. Changed with the counts.
    auth_clock: watch::Sender<AuthClock>,
}

/// Where a connection's authentication deadline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthClock {
    /// Unauthenticated since this instant: the deadline runs.
    Running(Instant),
    /// An authentication request is being answered, by a connection unauthenticated since this
    /// instant: the deadline waits, so a slow answer (password hashing under load) does not
    /// close a client that asked in time. Should the request fail, the clock runs on from the
    /// same instant: failed attempts never buy time.
    Paused(Instant),
    /// Authenticated.
    Stopped,
}

impl Admission {
    fn counted_authenticated(&self) -> MutexGuard<'_, bool> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves this connection between the unauthenticated and authenticated counts; `cap` is
    /// checked when given. Called with the counts locked.
    fn move_to(
        &self,
        counts: &mut Counts,
        authenticated: bool,
        cap: Option<usize>,
    ) -> Result<(), Refused> {
        let mut state = self.counted_authenticated();
        if *state == authenticated {
            return Ok(());
        }
        let by_address = counts.address(self.addr);
        if authenticated {
            if cap.is_some_and(|cap| by_address.authenticated >= cap) {
                return Err(Refused::AuthenticatedFromAddress);
            }
            by_address.unauthenticated -= 1;
            by_address.authenticated += 1;
            counts.unauthenticated -= 1;
        } else {
            by_address.authenticated -= 1;
            by_address.unauthenticated += 1;
            counts.unauthenticated += 1;
        }
        *state = authenticated;
        Ok(())
    }

    /// Counts the connection as authenticated for an authentication request about to run,
    /// unless its address already holds as many authenticated connections as allowed, and
    /// pauses the authentication deadline while it runs.
    pub fn reserve_authenticated(&self) -> Result<(), Refused> {
        let mut counts = self.limits.counts();
        let cap = self.limits.caps.authenticated_per_address;
        self.move_to(&mut counts, true, Some(cap))?;
        self.auth_clock.send_if_modified(|clock| match *clock {
            AuthClock::Running(since) => {
                *clock = AuthClock::Paused(since);
                true
            }
            AuthClock::Paused(_) | AuthClock::Stopped => false,
        });
        Ok(())
    }

    /// Counts the connection as what its protocol state is now (`authenticated`), past any cap:
    /// it is authenticated already, or going back to unauthenticated. The authentication
    /// deadline stops, runs on after a failed attempt, or starts again after a logout.
    pub fn settle(&self, authenticated: bool) {
        let mut counts = self.limits.counts();
        let _ = self.move_to(&mut counts, authenticated, None);
        self.auth_clock.send_if_modified(|clock| {
            let next = match (authenticated, *clock) {
                (true, _) => AuthClock::Stopped,
                (false, AuthClock::Paused(since)) => AuthClock::Running(since),
                (false, AuthClock::Stopped) => AuthClock::Running(Instant::now()),
                (false, running @ AuthClock::Running(_)) => running,
            };
            let changed = next != *clock;
            *clock = next;
            changed
        });
    }

    /// The authentication deadline's clock, as it changes.
    pub fn auth_clock(&self) -> watch::Receiver<AuthClock> {
        self.auth_clock.subscribe()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut counts = self.limits.counts();
        let authenticated = *self.counted_authenticated();
        counts.total -= 1;
        let by_address = counts.address(self.addr);
        if authenticated {
            by_address.authenticated -= 1;
        } else {
            by_address.unauthenticated -= 1;
            counts.unauthenticated -= 1;
        }
        counts.forget_if_empty(self.addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> ConnectionCaps {
        ConnectionCaps {
            total: 4,
            unauthenticated: 3,
            unauthenticated_per_address: 2,
            authenticated_per_address: 1,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    /// IPv6 addresses of one /64 share its per-address caps; another /64 has its own.
    #[test]
    fn an_ipv6_slash_64_is_one_address() {
        let limits = ConnectionLimits::new(caps());
        let v6 = |s: &str| s.parse::<IpAddr>().expect("ip");
        let _a = limits.admit(v6("2001:db8:0:1::1")).expect("first");
        let _b = limits.admit(v6("2001:db8:0:1::2")).expect("second");
        assert_eq!(
            limits.admit(v6("2001:db8:0:1:ffff::3")).unwrap_err(),
            Refused::UnauthenticatedFromAddress
        );
        let _c = limits.admit(v6("2001:db8:0:2::1")).expect("another /64");
    }

    #[test]
    fn each_cap_refuses_and_dropping_gives_the_place_back() {
        let limits = ConnectionLimits::new(caps());
        let a1 = limits.admit(ip(1)).expect("first");
        let a2 = limits.admit(ip(1)).expect("second");
        assert_eq!(
            limits.admit(ip(1)).unwrap_err(),
            Refused::UnauthenticatedFromAddress
        );
        let b1 = limits.admit(ip(2)).expect("another address");
        assert_eq!(limits.admit(ip(3)).unwrap_err(), Refused::Unauthenticated);
        // Authenticated connections leave the unauthenticated counts.
        a1.reserve_authenticated()
            .expect("first authenticated from 1");
        assert_eq!(
            a2.reserve_authenticated().unwrap_err(),
            Refused::AuthenticatedFromAddress
        );
        let c1 = limits.admit(ip(3)).expect("a place freed");
        assert_eq!(limits.admit(ip(4)).unwrap_err(), Refused::Full);
        assert_eq!(limits.open(), 4);
        // A failed authentication goes back, past the unauthenticated caps.
        a1.settle(false);
        a2.reserve_authenticated().expect("address has room again");
        drop((a1, a2, b1, c1));
        assert_eq!(limits.open(), 0);
        assert!(limits.counts().by_address.is_empty());
        assert_eq!(limits.counts().unauthenticated, 0);
    }

    #[test]
    fn the_deadline_clock_follows_the_settled_state() {
        let limits = ConnectionLimits::new(caps());
        let a = limits.admit(ip(1)).expect("admit");
        let clock = a.auth_clock();
        let AuthClock::Running(first) = *clock.borrow() else {
            panic!("unauthenticated from the start: {:?}", *clock.borrow());
        };
        // An authentication request pauses the clock; failing, it runs on from the same start.
        a.reserve_authenticated().expect("reserve");
        assert_eq!(*clock.borrow(), AuthClock::Paused(first));
        a.settle(false);
        assert_eq!(*clock.borrow(), AuthClock::Running(first));
        // Succeeding, it stops; a logout starts it again.
        a.reserve_authenticated().expect("reserve");
        a.settle(true);
        assert_eq!(*clock.borrow(), AuthClock::Stopped);
        a.settle(false);
        assert!(matches!(*clock.borrow(), AuthClock::Running(t) if t >= first));
    }
}
