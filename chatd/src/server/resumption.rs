//! TLS session resumption: the tickets a returning client presents to skip the full handshake
//! and send its first requests in 0-RTT data (protocol.md 2.5).
//!
//! Why the tickets are remembered by the node rather than sealed under a key every node shares:
//! rustls accepts 0-RTT data only with stateful resumption (RFC 8446, 8.1: a server that keeps
//! its tickets can use each once, which is what stops a replayed first flight). So each ticket
//! is an opaque id into this store, taken on use; a ticket presented to another node, or after
//! a restart, or after [`TicketStore`]'s lifetime, finds nothing and the client falls back to a
//! full handshake, its 0-RTT data discarded. Replays are refused twice over: the ticket works
//! once, and what may ride in 0-RTT data is harmless to repeat anyway (the request table's
//! early-safe kinds).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session tickets of one node: at most `capacity` (the oldest go first), each usable once
/// within `lifetime` of its issue.
#[derive(Debug)]
pub struct TicketStore {
    capacity: usize,
    lifetime: Duration,
    tickets: Mutex<Tickets>,
}

#[derive(Debug, Default)]
struct Tickets {
    /// Ticket id to when it was issued and the session state rustls stored under it.
    by_id: HashMap<Vec<u8>, (Instant, Vec<u8>)>,
    /// Ids in the order they were issued; ids already taken stay until they reach the front
    /// or the queue is compacted.
    order: VecDeque<(Instant, Vec<u8>)>,
}

impl TicketStore {
    /// A store for `capacity` tickets that each resume within `lifetime`.
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        Self {
            capacity,
            lifetime,
            tickets: Mutex::new(Tickets::default()),
        }
    }

    fn tickets(&self) -> std::sync::MutexGuard<'_, Tickets> {
        // The map is consistent after every statement, so a poisoned lock is still usable.
        self.tickets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many tickets can resume now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.tickets().by_id.len()
    }
}

impl Tickets {
    /// Forgets expired tickets, and the oldest while there are more than `keep`.
    fn evict(&mut self, now: Instant, lifetime: Duration, keep: usize) {
        while let Some((issued, id)) = self.order.front() {
            let expired = now.saturating_duration_since(*issued) >= lifetime;
            if !expired && self.by_id.len() <= keep {
                break;
            }
            if self.by_id.get(id).is_some_and(|(at, _)| at == issued) {
                self.by_id.remove(id);
            }
            self.order.pop_front();
        }
        // Taken tickets leave their ids behind: compact before they outnumber the live ones.
        if self.order.len() > 2 * self.by_id.len().max(64) {
            let by_id = &self.by_id;
            self.order
                .retain(|(issued, id)| by_id.get(id).is_some_and(|(at, _)| at == issued));
        }
    }
}

impl rustls::server::StoresServerSessions for TicketStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let now = Instant::now();
        let mut tickets = self.tickets();
        tickets.evict(now, self.lifetime, self.capacity - 1);
        tickets.order.push_back((now, key.clone()));
        tickets.by_id.insert(key, (now, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let tickets = self.tickets();
        let (issued, value) = tickets.by_id.get(key)?;
        (issued.elapsed() < self.lifetime).then(|| value.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let (issued, value) = self.tickets().by_id.remove(key)?;
        (issued.elapsed() < self.lifetime).then_some(value)
    }

    fn can_cache(&self) -> bool {
        self.capacity > 0
    }
}

#[cfg(test)]
mod tests {
    use rustls::server::StoresServerSessions as _;

    use super::*;

    fn id(n: u8) -> Vec<u8> {
        vec![n; 32]
    }

    #[test]
    fn a_ticket_resumes_once() {
        let store = TicketStore::new(8, Duration::from_secs(60));
        assert!(store.put(id(1), b"state".to_vec()));
        assert_eq!(store.get(&id(1)).as_deref(), Some(&b"state"[..]));
        assert_eq!(store.take(&id(1)).as_deref(), Some(&b"state"[..]));
        assert_eq!(store.take(&id(1)), None, "a replayed ticket finds nothing");
        assert_eq!(store.take(&id(2)), None);
    }

    #[test]
    fn the_oldest_go_first_and_taken_ids_do_not_pile_up() {
        let store = TicketStore::new(3, Duration::from_secs(60));
        for n in 0..5 {
            store.put(id(n), vec![n]);
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.take(&id(0)), None);
        assert_eq!(store.take(&id(1)), None);
        assert_eq!(store.take(&id(4)), Some(vec![4]));
        // Issue and use many: the queue of ids stays bounded.
        for n in 0..1000u32 {
            let key = n.to_le_bytes().to_vec();
            store.put(key.clone(), vec![]);
            store.take(&key);
        }
        assert!(store.tickets().order.len() <= 2 * 64 + 1);
    }

    #[test]
    fn expired_tickets_do_not_resume() {
        let store = TicketStore::new(8, Duration::from_millis(20));
        store.put(id(1), vec![1]);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(store.get(&id(1)), None);
        assert_eq!(store.take(&id(1)), None);
        store.put(id(2), vec![2]);
        assert_eq!(store.len(), 1, "the expired one was evicted");
    }

    #[test]
    fn no_capacity_stores_nothing() {
        let store = TicketStore::new(0, Duration::from_secs(60));
        assert!(!store.can_cache());
        assert!(!store.put(id(1), vec![1]));
        assert_eq!(store.take(&id(1)), None);
    }
}
