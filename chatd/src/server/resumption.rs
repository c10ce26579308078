//! TLS session resumption: the tickets a returning client presents to skip the full handshake
//! and send its first requests in 0-RTT data (protocol.md 2.5).
//!
//! Why the tickets are remembered rather than sealed into the ticket under a key every node
//! shares: rustls accepts 0-RTT data only with stateful resumption (RFC 8446, 8.1: a server that
//! keeps its tickets can use each once, which is what stops a replayed first flight). So each
//! ticket is an opaque id into this store, taken on use. In a cluster the nodes share them: a
//! node tells the others through Redis of each ticket it issues, its session state sealed under
//! a key derived from the token key every node has, and of each it uses, so a returning client
//! resumes on any node, once. A ticket presented after a restart (the store is memory), after
//! [`TicketStore`]'s lifetime, or to a node that did not hear of it (Redis down, or the news
//! still on its way) finds nothing, and the client falls back to a full handshake, its 0-RTT
//! data discarded. Replays are refused twice over: a ticket works once (across nodes, once the
//! news arrived), and what may ride in 0-RTT data is harmless to repeat anyway (the request
//! table's early-safe kinds).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::auth::token::TokenKey;
use crate::cluster::broker::{Broker, SharedTickets};

/// The label the key sealing shared tickets is derived under from the token key.
///
/// Its version changes whenever the transport limits a client remembers with its ticket go down
/// (protocol.md 2.5): nodes of the two versions then ignore each other's tickets, so no client
/// resumes with 0-RTT under limits the node no longer grants. v2: 24 request streams, from 32.
const SHARE_KEY_LABEL: &str = "chatd session tickets v2";

/// The session tickets of one node: at most `capacity` (the oldest go first), each usable once
/// within `lifetime` of its issue.
#[derive(Debug)]
pub struct TicketStore {
    capacity: usize,
    lifetime: Duration,
    tickets: Mutex<Tickets>,
    /// The other nodes of a cluster, once [`share`](Self::share) was called.
    cluster: OnceLock<Cluster>,
}

/// How a node's tickets reach the other nodes.
struct Cluster {
    /// Weak: the broker holds this store (as its [`SharedTickets`]).
    broker: Weak<Broker>,
    seal: LessSafeKey,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cluster(..)")
    }
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
            cluster: OnceLock::new(),
        }
    }

    /// Shares this node's tickets with the other nodes of the cluster through `broker`, and
    /// takes theirs: every node seals and opens them with a key derived from `token_key`.
    ///
    /// # Errors
    /// When the cipher refuses the derived key (it takes any 32 bytes).
    pub fn share(
        self: &Arc<Self>,
        broker: &Arc<Broker>,
        token_key: &TokenKey,
    ) -> Result<(), ring::error::Unspecified> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, &token_key.derive(SHARE_KEY_LABEL))?;
        let cluster = Cluster {
            broker: Arc::downgrade(broker),
            seal: LessSafeKey::new(key),
        };
        if self.cluster.set(cluster).is_ok() {
            broker.receive_tickets(self.clone());
        }
        Ok(())
    }

    /// Keeps ticket `key` (issued now) for its lifetime.
    fn insert(&self, key: Vec<u8>, value: Vec<u8>) {
        let now = Instant::now();
        let mut tickets = self.tickets();
        tickets.evict(now, self.lifetime, self.capacity - 1);
        tickets.order.push_back((now, key.clone()));
        tickets.by_id.insert(key, (now, value));
    }

    /// Tells the other nodes, if any, about ticket `key`: issued with `value`, or used.
    fn tell(&self, key: &[u8], value: Option<&[u8]>) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let Some(broker) = cluster.broker.upgrade() else {
            return;
        };
        let sealed = match value {
            Some(value) => match seal(&cluster.seal, key, value) {
                Some(sealed) => sealed,
                None => return,
            },
            None => Vec::new(),
        };
        broker.share_ticket(key, sealed);
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
        self.tell(&key, Some(&value));
        self.insert(key, value);
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let tickets = self.tickets();
        let (issued, value) = tickets.by_id.get(key)?;
        (issued.elapsed() < self.lifetime).then(|| value.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let (issued, value) = self.tickets().by_id.remove(key)?;
        self.tell(key, None);
        (issued.elapsed() < self.lifetime).then_some(value)
    }

    fn can_cache(&self) -> bool {
        self.capacity > 0
    }
}

impl SharedTickets for TicketStore {
    fn learn(&self, id: &[u8], sealed: &[u8]) {
        if sealed.is_empty() {
            self.tickets().by_id.remove(id);
            return;
        }
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        if self.capacity == 0 {
            return;
        }
        match open(&cluster.seal, id, sealed) {
            Some(value) => self.insert(id.to_vec(), value),
            None => tracing::debug!("a shared session ticket did not open: dropped"),
        }
    }
}

/// `value`, the session state of ticket `id`, sealed for the other nodes: a random nonce, then
/// the ciphertext and tag. The id is the associated data, so a state cannot be moved to another
/// ticket.
fn seal(key: &LessSafeKey, id: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut sealed = value.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(id),
        &mut sealed,
    )
    .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Some(out)
}

/// The session state [`seal`] sealed for ticket `id`; `None` when it does not open.
fn open(key: &LessSafeKey, id: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut value = sealed.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(id), &mut value).ok()?;
    Some(plain.to_vec())
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

    fn share_key(token_key: &[u8]) -> LessSafeKey {
        let token_key = TokenKey::from_bytes(token_key.to_vec()).unwrap();
        LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &token_key.derive(SHARE_KEY_LABEL)).unwrap(),
        )
    }

    #[test]
    fn a_shared_ticket_opens_only_under_its_id_and_the_same_token_key() {
        let key = share_key(&[7; 32]);
        let sealed = seal(&key, &id(1), b"session state").unwrap();
        assert!(
            !sealed.windows(7).any(|w| w == b"session"),
            "sealed, not in clear"
        );
        assert_eq!(
            open(&share_key(&[7; 32]), &id(1), &sealed).as_deref(),
            Some(&b"session state"[..])
        );
        assert_eq!(open(&key, &id(2), &sealed), None, "moved to another ticket");
        assert_eq!(
            open(&share_key(&[8; 32]), &id(1), &sealed),
            None,
            "another cluster's key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(open(&key, &id(1), &tampered), None);
        assert_eq!(
            open(&key, &id(1), &sealed[..5]),
            None,
            "shorter than a nonce"
        );
    }

    #[test]
    fn no_capacity_stores_nothing() {
        let store = TicketStore::new(0, Duration::from_secs(60));
        assert!(!store.can_cache());
        assert!(!store.put(id(1), vec![1]));
        assert_eq!(store.take(&id(1)), None);
    }
}
