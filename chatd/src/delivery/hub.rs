//! The in-process fan-out hub: which connections each user has on this node, and delivery of
//! pre-encoded event frames to them.
//!
//! Events are encoded once per event, not once per recipient: the hub hands every connection the
//! same [`Bytes`]. Each connection drains its queue into one coalesced stream write.
//!
//! A connection whose queue is full is too slow to keep up; it is closed with `RESYNC` rather
//! than allowed to make the server buffer without bound. Nothing is lost by that: the client
//! reconnects and catches up from its cursors (protocol.md, "Ordering and delivery").
//!
//! Chat events go through a small per-chat sequencer so that they leave in sequence order even when
//! the handlers that committed them finish in another order (or, in cluster mode, arrive from
//! other nodes in another order).
//!
//! The hub only knows this node. What reaches other nodes goes through
//! [`Fanout`](crate::delivery::fanout::Fanout), which calls the hub for local delivery.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chatproto::error::CloseCode;
use chatproto::pb;
use tokio::sync::mpsc;

use crate::delivery::kick::Kick;

/// How many frames a connection may have queued before it counts as too slow.
pub const CONNECTION_QUEUE: usize = 4096;

/// How long the sequencer holds a chat event back while an earlier one is still on its way.
const REORDER_WAIT: Duration = Duration::from_millis(250);

/// One live, authenticated connection as the hub sees it.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    /// Unique per node.
    pub conn_id: u64,
    /// The authenticated user.
    pub user_id: u64,
    /// The session it is authenticated with now (it changes when the same user authenticates
    /// again on the connection); 0 once it is not authenticated.
    pub session: Arc<AtomicU64>,
    /// Encoded event frames to write on the event stream.
    pub tx: mpsc::Sender<Bytes>,
    /// Closes the connection (slow consumer, session revoked, account disabled).
    pub kick: Kick,
    /// Set when the client negotiated datagrams: typing goes there instead of the event stream.
    pub datagrams: Option<quinn::Connection>,
}

/// Every copy of one sequenced chat event: each encoded frame with the users it goes to. Most
/// events have one; a message from a user some members blocked has a second, the placeholder
/// those members get (spec 9.2).
pub type Copies = Vec<(Vec<u64>, Bytes)>;

#[derive(Default)]
struct ChatOrder {
    last: u64,
    pending: BTreeMap<u64, Copies>,
    oldest_pending: Option<Instant>,
}

/// The hub. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Hub {
    conns: Mutex<HashMap<u64, Vec<ConnHandle>>>,
    order: Mutex<HashMap<u64, ChatOrder>>,
    next_conn_id: AtomicU64,
    frames_sent: AtomicU64,
    conn_count: AtomicUsize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// Encodes one event as a frame.
pub fn encode_event(event: &pb::Event) -> Bytes {
    // Events are built by the server from validated, bounded data; an oversize one is a bug.
    chatproto::io::encode_frames([event], chatproto::frame::MAX_FRAME_BYTES).unwrap_or_else(|e| {
        tracing::error!(error = %e, "event too large to send");
        Bytes::new()
    })
}

/// Encodes one chat event as an event frame.
pub fn encode_chat_event(event: &pb::ChatEvent) -> Bytes {
    encode_event(&pb::Event {
        kind: Some(pb::event::Kind::Chat(event.clone())),
    })
}

impl Hub {
    /// A new, empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a connection; returns true when it is the user's first on this node.
    pub fn register(&self, handle: ConnHandle) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let list = conns.entry(handle.user_id).or_default();
        list.push(handle);
        self.conn_count.fetch_add(1, Ordering::Relaxed);
        list.len() == 1
    }

    /// Removes a connection; returns true when the user has no connection left on this node.
    pub fn unregister(&self, user_id: u64, conn_id: u64) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = conns.get_mut(&user_id) else {
            return false;
        };
        let before = list.len();
        list.retain(|c| c.conn_id != conn_id);
        let removed = list.len() != before;
        if removed {
            self.conn_count.fetch_sub(1, Ordering::Relaxed);
        }
        if list.is_empty() {
            conns.remove(&user_id);
            return removed;
        }
        false
    }

    /// True when the user has at least one connection on this node.
    pub fn is_online(&self, user_id: u64) -> bool {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&user_id)
    }

    /// Number of authenticated connections on this node.
    pub fn connection_count(&self) -> usize {
        self.conn_count.load(Ordering::Relaxed)
    }

    /// The users among `users` with a connection on this node.
    pub fn local_among(&self, users: &[u64]) -> Vec<u64> {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        users
            .iter()
            .copied()
            .filter(|u| conns.contains_key(u))
            .collect()
    }

    /// Every user with a connection on this node.
    pub fn local_users(&self) -> Vec<u64> {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// The user's connections (a snapshot).
    pub fn connections_of(&self, user_id: u64) -> Vec<ConnHandle> {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user_id)
            .cloned()
            .unwrap_or_default()
    }

    /// [`kick_user`](Self::kick_user) with the farewell already encoded.
    pub fn kick_frame(&self, user_id: u64, session_id: Option<u64>, frame: &Bytes) {
        for conn in self.connections_of(user_id) {
            if session_id.is_none_or(|s| s == conn.session.load(Ordering::Acquire)) {
                let _ = conn.tx.try_send(frame.clone());
                conn.kick.close(CloseCode::SessionRevoked);
            }
        }
    }

    /// Delivers one encoded frame to every connection of every user in `users`, except
    /// `skip_conn`.
    pub fn deliver(&self, users: &[u64], frame: &Bytes, skip_conn: Option<u64>) {
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let mut sent = 0;
        for user in users {
            for conn in conns.get(user).into_iter().flatten() {
                if Some(conn.conn_id) == skip_conn {
                    continue;
                }
                match conn.tx.try_send(frame.clone()) {
                    Ok(()) => sent += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(
                            conn = conn.conn_id,
                            user = conn.user_id,
                            "slow consumer: closing, the client resynchronises"
                        );
                        conn.kick.close(CloseCode::Resync);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        self.frames_sent.fetch_add(sent, Ordering::Relaxed);
    }

    /// Delivers a typing signal: as a datagram where negotiated, else on the event stream.
    /// Returns how many went as datagrams.
    pub fn deliver_typing(&self, users: &[u64], typing: pb::Typing, skip_conn: Option<u64>) -> u64 {
        let datagram = chatproto::io::encode_datagram(&pb::Datagram {
            kind: Some(pb::datagram::Kind::Typing(typing)),
        });
        let frame = encode_event(&pb::Event {
            kind: Some(pb::event::Kind::Typing(typing)),
        });
        let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let mut datagrams = 0;
        for user in users {
            for conn in conns.get(user).into_iter().flatten() {
                if Some(conn.conn_id) == skip_conn {
                    continue;
                }
                let via_datagram = conn.datagrams.as_ref().is_some_and(|c| {
                    c.max_datagram_size()
                        .is_some_and(|max| datagram.len() <= max)
                        && c.send_datagram(datagram.clone()).is_ok()
                });
                if via_datagram {
                    datagrams += 1;
                } else {
                    let _ = conn.tx.try_send(frame.clone());
                }
            }
        }
        datagrams
    }

    /// Publishes a sequenced chat event to `recipients`, in sequence order per chat.
    #[cfg(test)]
    pub fn publish_chat_event(&self, recipients: Vec<u64>, event: &pb::ChatEvent) {
        let frame = encode_chat_event(event);
        self.publish_chat_frames(event.chat_id, event.seq, vec![(recipients, frame)]);
    }

    /// [`publish_chat_event`](Self::publish_chat_event) with the event already encoded, in one
    /// or more copies.
    pub fn publish_chat_frames(&self, chat_id: u64, seq: u64, copies: Copies) {
        let mut ready = Vec::new();
        // Delivery happens while the sequencer lock is held: released after deciding the order,
        // a concurrent publisher of the next seq could reach some connections first, and every
        // member would see a gap and fetch it (measured: ~one GetChatEvents per member per gap).
        // Handing frames to connection queues is a non-blocking `try_send` each, so the lock is
        // held for microseconds. Lock order: `order`, then `conns`.
        let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
        let state = order.entry(chat_id).or_default();
        if state.last == 0 || seq <= state.last + 1 {
            // In order (or the first we see, or late: the client deduplicates).
            state.last = state.last.max(seq);
            ready.push(copies);
            while let Some(entry) = state.pending.remove(&(state.last + 1)) {
                state.last += 1;
                ready.push(entry);
            }
            if state.pending.is_empty() {
                state.oldest_pending = None;
            }
        } else {
            state.pending.insert(seq, copies);
            state.oldest_pending.get_or_insert_with(Instant::now);
        }
        for (users, frame) in ready.into_iter().flatten() {
            self.deliver(&users, &frame, None);
        }
        drop(order);
    }

    /// Forgets the sequencer state of a chat: this node stops (or starts again) hearing about it,
    /// so the next event must not be held back waiting for ones it never saw. Held events are
    /// released first.
    pub fn forget_chat(&self, chat_id: u64) {
        let held = self
            .order
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&chat_id);
        for (users, frame) in held
            .into_iter()
            .flat_map(|s| s.pending.into_values())
            .flatten()
        {
            self.deliver(&users, &frame, None);
        }
    }

    /// Forgets the sequencer state of every chat (events may have been missed, e.g. while the
    /// cluster's pub/sub was down). Held events are released first.
    pub fn forget_all_chats(&self) {
        let all = std::mem::take(&mut *self.order.lock().unwrap_or_else(|e| e.into_inner()));
        for (users, frame) in all
            .into_values()
            .flat_map(|s| s.pending.into_values())
            .flatten()
        {
            self.deliver(&users, &frame, None);
        }
    }

    /// Releases chat events held back for longer than the reorder wait (their predecessor's
    /// handler failed after commit). Called periodically; clients fill any gap from the store.
    pub fn flush_stale(&self, now: Instant) {
        let mut ready = Vec::new();
        {
            let mut order = self.order.lock().unwrap_or_else(|e| e.into_inner());
            for state in order.values_mut() {
                if state
                    .oldest_pending
                    .is_some_and(|t| now.duration_since(t) >= REORDER_WAIT)
                {
                    for (seq, entry) in std::mem::take(&mut state.pending) {
                        state.last = state.last.max(seq);
                        ready.push(entry);
                    }
                    state.oldest_pending = None;
                }
            }
            // Forget idle chats so the map does not grow with every chat ever active.
            if order.len() > 100_000 {
                order.retain(|_, s| !s.pending.is_empty());
            }
        }
        for (users, frame) in ready.into_iter().flatten() {
            self.deliver(&users, &frame, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(hub: &Hub, user: u64) -> (ConnHandle, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(4);
        let handle = ConnHandle {
            conn_id: hub.next_conn_id(),
            user_id: user,
            session: Arc::new(AtomicU64::new(1)),
            tx,
            kick: Kick::new(),
            datagrams: None,
        };
        (handle, rx)
    }

    fn chat_event(chat_id: u64, seq: u64) -> pb::ChatEvent {
        pb::ChatEvent {
            chat_id,
            seq,
            ..Default::default()
        }
    }

    fn seq_of(frame: &Bytes) -> u64 {
        let ev: pb::Event = chatproto::frame::FrameDecoder::default()
            .decode_exact(frame)
            .unwrap();
        match ev.kind {
            Some(pb::event::Kind::Chat(c)) => c.seq,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn sequencer_releases_in_order() {
        let hub = Hub::new();
        let (h, mut rx) = conn(&hub, 7);
        hub.register(h);
        hub.publish_chat_event(vec![7], &chat_event(1, 1));
        hub.publish_chat_event(vec![7], &chat_event(1, 3));
        hub.publish_chat_event(vec![7], &chat_event(1, 2));
        let got: Vec<u64> = (0..3).map(|_| seq_of(&rx.try_recv().unwrap())).collect();
        assert_eq!(got, vec![1, 2, 3]);
    }

    #[test]
    fn every_copy_of_a_held_event_is_released_in_order() {
        let hub = Hub::new();
        let (h7, mut rx7) = conn(&hub, 7);
        let (h8, mut rx8) = conn(&hub, 8);
        hub.register(h7);
        hub.register(h8);
        hub.publish_chat_event(vec![7, 8], &chat_event(1, 1));
        // Seq 3 arrives before 2, in two copies: held, neither lost.
        let placeholder = pb::ChatEvent {
            actor_id: 99,
            ..chat_event(1, 3)
        };
        hub.publish_chat_frames(
            1,
            3,
            vec![
                (vec![7], encode_chat_event(&chat_event(1, 3))),
                (vec![8], encode_chat_event(&placeholder)),
            ],
        );
        hub.publish_chat_event(vec![7, 8], &chat_event(1, 2));
        let got7: Vec<u64> = (0..3).map(|_| seq_of(&rx7.try_recv().unwrap())).collect();
        let got8: Vec<u64> = (0..2).map(|_| seq_of(&rx8.try_recv().unwrap())).collect();
        assert_eq!(got7, vec![1, 2, 3]);
        assert_eq!(got8, vec![1, 2]);
        let last8: pb::Event = chatproto::frame::FrameDecoder::default()
            .decode_exact(&rx8.try_recv().unwrap())
            .unwrap();
        assert!(
            matches!(last8.kind, Some(pb::event::Kind::Chat(c)) if c.seq == 3 && c.actor_id == 99)
        );
        assert!(rx7.try_recv().is_err() && rx8.try_recv().is_err());
    }

    #[test]
    fn stale_events_are_released_after_the_wait() {
        let hub = Hub::new();
        let (h, mut rx) = conn(&hub, 7);
        hub.register(h);
        hub.publish_chat_event(vec![7], &chat_event(1, 1));
        hub.publish_chat_event(vec![7], &chat_event(1, 3));
        assert_eq!(seq_of(&rx.try_recv().unwrap()), 1);
        assert!(rx.try_recv().is_err());
        hub.flush_stale(Instant::now() + REORDER_WAIT);
        assert_eq!(seq_of(&rx.try_recv().unwrap()), 3);
    }

    #[test]
    fn slow_consumer_is_kicked() {
        let hub = Hub::new();
        let (h, _rx) = conn(&hub, 7);
        let kick = h.kick.clone();
        hub.register(h);
        for _ in 0..5 {
            hub.deliver(&[7], &Bytes::from_static(b"x"), None);
        }
        assert_eq!(kick.reason(), Some(CloseCode::Resync));
    }

    #[test]
    fn register_and_unregister_track_presence() {
        let hub = Hub::new();
        let (a, _ra) = conn(&hub, 7);
        let (b, _rb) = conn(&hub, 7);
        let (a_id, b_id) = (a.conn_id, b.conn_id);
        assert!(hub.register(a));
        assert!(!hub.register(b));
        assert!(!hub.unregister(7, a_id));
        assert!(hub.is_online(7));
        assert!(hub.unregister(7, b_id));
        assert!(!hub.is_online(7));
    }
}
