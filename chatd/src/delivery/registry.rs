//! This node's authenticated connections, by user, with what redaction needs to know about each
//! user (their [`Viewer`]), and handing frames to them.
//!
//! The map is sharded by user id, each shard behind its own mutex, so deliveries to different
//! users do not queue on one lock; a delivery to many users takes each shard's lock once. Locks
//! are held only for non-blocking pushes into connection queues.
//!
//! A connection whose queue is full is too slow to keep up: it is closed rather than allowed to
//! make the server buffer without bound. Nothing is lost by that: the client reconnects and
//! catches up from its cursors (protocol.md, "Ordering and delivery").

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use chatproto::error::CloseCode;
use chatproto::pb;

use super::kick::Kick;
use super::outbox::{Outbox, PushError};
use super::redact::{ChatEventFrames, Frame, NoticeFrames, Viewer};
use super::sharded::Sharded;

/// One live, authenticated connection as delivery sees it.
#[derive(Debug, Clone)]
pub struct ConnHandle {
    /// Unique per node.
    pub conn_id: u64,
    /// The authenticated user.
    pub user_id: u64,
    /// The session it is authenticated with now (the connection's own mirror of it: it changes
    /// when the same user authenticates again on the connection); 0 once it is not
    /// authenticated.
    pub session: Arc<AtomicU64>,
    /// The queue of its event stream.
    pub outbox: Arc<Outbox>,
    /// Closes the connection (slow consumer, session revoked, account disabled).
    pub kick: Kick,
    /// Set when the client negotiated datagrams: typing goes there instead of the event stream.
    pub datagrams: Option<quinn::Connection>,
    /// True when the client negotiated `calls`: only such connections get call events.
    pub calls: bool,
    /// True when the client negotiated `group_calls`: only such connections get group call
    /// events.
    pub group_calls: bool,
}

#[cfg(any(test, feature = "testing"))]
impl ConnHandle {
    /// A connection of `user_id` with no QUIC connection behind it (for tests and benches):
    /// signed in on session 1, without datagrams or calls, and its queue.
    pub fn detached(conn_id: u64, user_id: u64) -> (Self, Arc<Outbox>) {
        let outbox = Arc::new(Outbox::new());
        let handle = Self {
            conn_id,
            user_id,
            session: Arc::new(AtomicU64::new(1)),
            outbox: outbox.clone(),
            kick: Kick::new(),
            datagrams: None,
            calls: false,
            group_calls: false,
        };
        (handle, outbox)
    }
}

#[derive(Debug)]
struct UserConns {
    viewer: Arc<Viewer>,
    /// The number of the read `viewer` came from (`Delivery::load_viewer`).
    viewer_read: u64,
    conns: Vec<ConnHandle>,
    /// True once the user's connections here hear what other nodes send them (their kicks):
    /// set by the first connection's attach when its subscription is confirmed.
    heard: tokio::sync::watch::Sender<bool>,
}

/// The node of a connection: the high 32 bits of its id (see [`Registry::next_conn_id`]).
pub fn node_of(conn_id: u64) -> u32 {
    u32::try_from(conn_id >> 32).unwrap_or(u32::MAX)
}

/// The connections of this node.
#[derive(Debug, Default)]
pub struct Registry {
    users: Sharded<HashMap<u64, UserConns>>,
    next_conn_id: AtomicU64,
    conn_count: AtomicUsize,
    frames_sent: AtomicU64,
    /// Kicks begun on this node (its own and relayed ones): see [`Registry::kicks`].
    kicks: AtomicU64,
}

/// Hands `frame` to `conn`, closing the connection when it is too slow (its client then
/// resynchronises from the store). True when queued.
fn push(conn: &ConnHandle, frame: &Frame) -> bool {
    if frame.is_empty() {
        // An event that could not be encoded (a bug, logged there): sent as nothing, it would
        // be missed without a sign. Closed with RESYNC, the client catches up from the store.
        conn.kick.close(CloseCode::Resync);
        return false;
    }
    match conn.outbox.push(frame) {
        Ok(()) => true,
        Err(PushError::Full) => {
            // Said once: until the connection is gone, every event to it comes here again,
            // under the locks of its chat and of the registry.
            if conn.kick.close(CloseCode::Resync) {
                tracing::info!(
                    conn = conn.conn_id,
                    user = conn.user_id,
                    "slow consumer: closing, the client resynchronises"
                );
            }
            false
        }
        Err(PushError::Closed) => false,
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            next_conn_id: AtomicU64::new(u64::from(rand::random::<u32>()) << 32),
            ..Self::default()
        }
    }

    /// A fresh connection id: unique in the cluster, as its high 32 bits are this node's tag,
    /// drawn at random when the node starts, and its low ones a counter.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// This node's tag: the high 32 bits of its connection ids.
    pub fn node_tag(&self) -> u32 {
        node_of(self.next_conn_id.load(Ordering::Relaxed))
    }

    /// True when connection `conn_id` of `user_id` is on this node.
    pub(super) fn has_conn(&self, user_id: u64, conn_id: u64) -> bool {
        self.users
            .lock(user_id)
            .get(&user_id)
            .is_some_and(|e| e.conns.iter().any(|c| c.conn_id == conn_id))
    }

    /// Registers a connection of a user seen as `viewer`, from read number `read` (used when
    /// the user has no connection here yet). True when it is the user's first on this node.
    pub fn register(&self, handle: ConnHandle, viewer: Arc<Viewer>, read: u64) -> bool {
        let mut shard = self.users.lock(handle.user_id);
        let entry = shard.entry(handle.user_id).or_insert_with(|| UserConns {
            viewer,
            viewer_read: read,
            conns: Vec::new(),
            heard: tokio::sync::watch::Sender::new(false),
        });
        entry.conns.push(handle);
        self.conn_count.fetch_add(1, Ordering::Relaxed);
        entry.conns.len() == 1
    }

    /// Removes a connection. True when the user has no connection left on this node.
    pub fn unregister(&self, user_id: u64, conn_id: u64) -> bool {
        let mut shard = self.users.lock(user_id);
        let Some(entry) = shard.get_mut(&user_id) else {
            return false;
        };
        let before = entry.conns.len();
        entry.conns.retain(|c| c.conn_id != conn_id);
        let removed = entry.conns.len() != before;
        if removed {
            self.conn_count.fetch_sub(1, Ordering::Relaxed);
        }
        if entry.conns.is_empty() {
            shard.remove(&user_id);
            return removed;
        }
        false
    }

    /// Whether the user's connections here hear what other nodes send them, and when they will;
    /// `None` when the user has no connection here.
    pub fn heard(&self, user_id: u64) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.users
            .lock(user_id)
            .get(&user_id)
            .map(|e| e.heard.subscribe())
    }

    /// The user's connections here now hear what other nodes send them.
    pub fn mark_heard(&self, user_id: u64) {
        if let Some(entry) = self.users.lock(user_id).get(&user_id) {
            entry.heard.send_replace(true);
        }
    }

    /// True when the user has a connection on this node.
    pub fn is_online(&self, user_id: u64) -> bool {
        self.users.lock(user_id).contains_key(&user_id)
    }

    /// The users among `users` with a connection on this node, in the order given.
    pub fn local_among(&self, users: &[u64]) -> Vec<u64> {
        let mut local = std::collections::HashSet::new();
        self.users.for_keys(users, |shard, user| {
            if shard.contains_key(&user) {
                local.insert(user);
            }
        });
        users
            .iter()
            .copied()
            .filter(|u| local.contains(u))
            .collect()
    }

    /// Every user with a connection on this node.
    pub fn local_users(&self) -> Vec<u64> {
        let mut users = Vec::new();
        self.users.for_each(|shard| users.extend(shard.keys()));
        users
    }

    /// Authenticated connections on this node.
    pub fn connection_count(&self) -> usize {
        self.conn_count.load(Ordering::Relaxed)
    }

    /// Frames handed to connections so far.
    #[cfg(any(test, feature = "testing"))]
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent.load(Ordering::Relaxed)
    }

    /// How redaction sees a user connected here.
    pub fn viewer(&self, user_id: u64) -> Option<Arc<Viewer>> {
        self.users
            .lock(user_id)
            .get(&user_id)
            .map(|e| e.viewer.clone())
    }

    /// Replaces how redaction sees a user connected here (their blocks changed) with `viewer`,
    /// from read number `read`, unless what it has came from a later read: two block changes
    /// at once read the store in any order, and the later read saw both.
    pub fn set_viewer(&self, viewer: Arc<Viewer>, read: u64) {
        if let Some(entry) = self.users.lock(viewer.user_id()).get_mut(&viewer.user_id())
            && read > entry.viewer_read
        {
            entry.viewer = viewer;
            entry.viewer_read = read;
        }
    }

    /// Hands a chat event to every connection of `users`, each in its viewer's form.
    pub(super) fn deliver_chat(&self, users: &[u64], frames: &ChatEventFrames) {
        let mut sent = 0;
        self.users.for_keys(users, |shard, user| {
            if let Some(entry) = shard.get(&user) {
                let frame = frames.frame_for(&entry.viewer);
                for conn in &entry.conns {
                    sent += u64::from(push(conn, frame));
                }
            }
        });
        self.frames_sent.fetch_add(sent, Ordering::Relaxed);
    }

    /// Hands a notice to every connection of `users` that may see it, except `skip_conn`.
    pub(super) fn deliver_notice(
        &self,
        users: &[u64],
        notice: &NoticeFrames,
        skip_conn: Option<u64>,
    ) {
        self.deliver_notice_where(users, notice, |c| Some(c.conn_id) != skip_conn);
    }

    /// Hands a notice to the connections of `users` that `keep` accepts.
    pub(super) fn deliver_notice_where(
        &self,
        users: &[u64],
        notice: &NoticeFrames,
        keep: impl Fn(&ConnHandle) -> bool,
    ) {
        let mut sent = 0;
        self.users.for_keys(users, |shard, user| {
            if let Some(entry) = shard.get(&user)
                && let Some(frame) = notice.frame_for(&entry.viewer)
            {
                for conn in entry.conns.iter().filter(|c| keep(c)) {
                    sent += u64::from(push(conn, frame));
                }
            }
        });
        self.frames_sent.fetch_add(sent, Ordering::Relaxed);
    }

    /// Hands a notice to one connection (of `user_id`).
    pub(super) fn deliver_to_conn(
        &self,
        user_id: u64,
        conn_id: u64,
        notice: &NoticeFrames,
    ) -> bool {
        if let Some(entry) = self.users.lock(user_id).get(&user_id)
            && let Some(frame) = notice.frame_for(&entry.viewer)
            && let Some(conn) = entry.conns.iter().find(|c| c.conn_id == conn_id)
        {
            return push(conn, frame);
        }
        false
    }

    /// Hands a typing signal to the connections of `users` who did not block the typist: as a
    /// datagram where negotiated and it fits, else on the event stream. Returns how many went
    /// as datagrams.
    pub(super) fn deliver_typing(&self, users: &[u64], typing: pb::Typing) -> u64 {
        let datagram = chatproto::io::encode_datagram(&pb::Datagram {
            kind: Some(pb::datagram::Kind::Typing(typing)),
        });
        let notice = NoticeFrames::new(&pb::Event {
            kind: Some(pb::event::Kind::Typing(typing)),
        });
        let mut datagrams = 0;
        self.users.for_keys(users, |shard, user| {
            let Some(entry) = shard.get(&user) else {
                return;
            };
            let Some(frame) = notice.frame_for(&entry.viewer) else {
                return;
            };
            for conn in &entry.conns {
                let via_datagram = conn.datagrams.as_ref().is_some_and(|c| {
                    c.max_datagram_size()
                        .is_some_and(|max| datagram.len() <= max)
                        && c.send_datagram(datagram.clone()).is_ok()
                });
                if via_datagram {
                    datagrams += 1;
                } else {
                    push(conn, frame);
                }
            }
        });
        datagrams
    }

    /// Closes every connection of the user on this node without a farewell, as for a slow
    /// consumer (`RESYNC`): their clients reconnect and catch up. Returns how many there were.
    #[cfg(any(test, feature = "testing"))]
    pub(super) fn drop_connections(&self, user_id: u64) -> usize {
        let shard = self.users.lock(user_id);
        let Some(entry) = shard.get(&user_id) else {
            return 0;
        };
        for conn in &entry.conns {
            conn.kick.close(CloseCode::Resync);
        }
        entry.conns.len()
    }

    /// How many kicks began here so far. A connection registered after a kick began that
    /// missed it reads a higher count after registering (the kick counts before it takes the
    /// shard lock that registration takes), so it knows to check its session again.
    pub fn kicks(&self) -> u64 {
        self.kicks.load(Ordering::SeqCst)
    }

    /// Closes every connection of the user (or those of one session) after queueing
    /// `farewell` on their event streams.
    pub(super) fn kick(&self, user_id: u64, session_id: Option<u64>, farewell: &NoticeFrames) {
        self.kicks.fetch_add(1, Ordering::SeqCst);
        let shard = self.users.lock(user_id);
        let Some(entry) = shard.get(&user_id) else {
            return;
        };
        let frame = farewell.frame_for(&entry.viewer);
        for conn in &entry.conns {
            if session_id.is_none_or(|s| s == conn.session.load(Ordering::Acquire)) {
                if let Some(frame) = frame {
                    push(conn, frame);
                }
                conn.kick.close(CloseCode::SessionRevoked);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A registered-looking connection of `user` and its queue.
    pub fn conn(registry: &Registry, user: u64) -> (ConnHandle, Arc<Outbox>) {
        ConnHandle::detached(registry.next_conn_id(), user)
    }

    #[test]
    fn register_and_unregister_track_presence() {
        let registry = Registry::new();
        let (a, _) = conn(&registry, 7);
        let (b, _) = conn(&registry, 7);
        let (a_id, b_id) = (a.conn_id, b.conn_id);
        assert!(registry.register(a, Arc::new(Viewer::new(7, [])), 0));
        assert!(!registry.register(b, Arc::new(Viewer::new(7, [])), 0));
        assert_eq!(registry.connection_count(), 2);
        assert!(!registry.unregister(7, a_id));
        assert!(registry.is_online(7));
        assert!(registry.unregister(7, b_id));
        assert!(!registry.is_online(7));
        assert_eq!(registry.connection_count(), 0);
    }

    #[test]
    fn a_viewer_from_an_earlier_read_does_not_replace_a_later_one() {
        let registry = Registry::new();
        let (h, _) = conn(&registry, 7);
        registry.register(h, Arc::new(Viewer::new(7, [])), 1);
        registry.set_viewer(Arc::new(Viewer::new(7, [8, 9])), 3);
        registry.set_viewer(Arc::new(Viewer::new(7, [8])), 2);
        assert_eq!(
            registry.viewer(7).as_deref(),
            Some(&Viewer::new(7, [8, 9])),
            "read 3 saw both blocks"
        );
        registry.set_viewer(Arc::new(Viewer::new(7, [])), 4);
        assert_eq!(registry.viewer(7).as_deref(), Some(&Viewer::new(7, [])));
    }

    #[test]
    fn local_among_keeps_the_order_given() {
        let registry = Registry::new();
        for user in [3, 1, 40, 17] {
            let (h, _) = conn(&registry, user);
            registry.register(h, Arc::new(Viewer::new(user, [])), 0);
        }
        assert_eq!(registry.local_among(&[40, 2, 3, 17, 99]), vec![40, 3, 17]);
    }

    #[test]
    fn a_slow_consumer_is_kicked() {
        let registry = Registry::new();
        let (h, outbox) = conn(&registry, 7);
        let kick = h.kick.clone();
        registry.register(h, Arc::new(Viewer::new(7, [])), 0);
        let notice = NoticeFrames::new(&pb::Event {
            kind: Some(pb::event::Kind::GoAway(pb::GoAway::default())),
        });
        for _ in 0..=super::super::outbox::CONNECTION_QUEUE {
            registry.deliver_notice(&[7], &notice, None);
        }
        assert_eq!(kick.reason(), Some(CloseCode::Resync));
        assert_eq!(outbox.len(), super::super::outbox::CONNECTION_QUEUE);
    }

    #[test]
    fn an_event_too_large_to_encode_closes_the_connection_for_a_resync() {
        let registry = Registry::new();
        let (h, outbox) = conn(&registry, 7);
        let kick = h.kick.clone();
        registry.register(h, Arc::new(Viewer::new(7, [])), 0);
        let notice = NoticeFrames::new(&pb::Event {
            kind: Some(pb::event::Kind::Notification(pb::Notification {
                preview: "x".repeat(chatproto::frame::MAX_FRAME_BYTES),
                ..Default::default()
            })),
        });
        registry.deliver_notice(&[7], &notice, None);
        assert_eq!(kick.reason(), Some(CloseCode::Resync));
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn kicks_write_the_farewell_and_spare_other_sessions() {
        let registry = Registry::new();
        let (a, a_out) = conn(&registry, 7);
        let (b, b_out) = conn(&registry, 7);
        b.session.store(2, Ordering::Release);
        let (a_kick, b_kick) = (a.kick.clone(), b.kick.clone());
        registry.register(a, Arc::new(Viewer::new(7, [])), 0);
        registry.register(b, Arc::new(Viewer::new(7, [])), 0);
        let farewell = NoticeFrames::new(&pb::Event {
            kind: Some(pb::event::Kind::SessionRevoked(
                pb::SessionRevoked::default(),
            )),
        });
        registry.kick(7, Some(1), &farewell);
        assert_eq!(a_kick.reason(), Some(CloseCode::SessionRevoked));
        assert_eq!(b_kick.reason(), None);
        assert_eq!((a_out.len(), b_out.len()), (1, 0));
    }
}
