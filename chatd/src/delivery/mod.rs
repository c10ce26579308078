//! Delivery: getting events from the handlers that create them to every connection that should
//! see them, on this node and on the others.
//!
//! [`Delivery`] is the one face handlers call: [`append`](Delivery::append) a committed chat
//! event, [`notify`](Delivery::notify) users of an unsequenced event, send
//! [`typing`](Delivery::typing), [`kick`](Delivery::kick) connections, announce presence. The
//! connection layer [`attach`](Delivery::attach)es and [`detach`](Delivery::detach)es
//! connections. Nothing else reaches a connection's queue.
//!
//! # The send path
//! A handler commits a message, then calls `append` with the event and its audience (the member
//! list it already holds, shared, not copied). The event is encoded once per class of viewer
//! ([`redact`]); the relay gets it first (one message per chat, queued without waiting for
//! Redis); then the chat's sequencer shard ([`sequencer`]) releases it in seq order: under that
//! shard's lock, each recipient's connections ([`registry`], sharded by user) get the frame of
//! their viewer class pushed onto their queue ([`outbox`]), which the connection's writer
//! drains in coalesced stream writes. Other nodes receive the relayed event, resolve its
//! recipients among their own connections from the chat's interest, and release it through
//! their own sequencer and redaction.
//!
//! # Layout
//! - [`redact`]: frames per viewer class; the only place frames are made.
//! - [`outbox`]: one connection's queue; [`registry`]: this node's connections and viewers.
//! - [`sequencer`]: per-chat order and interest, sharded by chat; [`recent_members`]: who
//!   joined or left a chat lately, to correct audiences read before.
//! - [`relay`]: the cross-node transport (trait, and the in-process implementation).
//! - [`members`]: the membership cache, audiences, membership changes.
//! - [`presence`]: who is online, told to those who may know.
//! - [`kick`]: the decision to close one connection, with its close code.
//! - `turns`: one at a time per user, a first connection's sign-in work and a last one's end.

pub mod kick;
pub mod members;
pub mod outbox;
pub mod presence;
mod recent_members;
pub mod redact;
pub mod registry;
pub mod relay;
mod sequencer;
mod sharded;
#[cfg(test)]
mod tests;
mod turns;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chatproto::pb;

use self::members::{Audience, ChatMembers, MemberCache, MembershipChange};
use self::redact::{ChatEventFrames, NoticeFrames, Viewer};
use self::registry::{ConnHandle, Registry};
use self::relay::{Inbound, Only, Relay};
use self::sequencer::{Context, Gap, Route, Sequenced, Sequencer};
use crate::store::{Store, StoreResult};

/// How often events held back for ordering are checked.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// How long reading a gap from the store may take before what is held is released without it.
const FILL_WAIT: Duration = Duration::from_secs(1);

/// How long a user's later connection waits for the first one's subscription to their kicks.
const HEAR_WAIT: Duration = Duration::from_secs(10);

/// Most events read for one gap (beyond, clients fetch the rest).
const MAX_FILL: u64 = 256;

/// Where a node's kicks stood when a sign-in began: see [`Delivery::kick_mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KickMark(u64);

/// What [`Delivery::attach`] knows of revocations since the caller's [`KickMark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Attached {
    /// Any revocation of the session since the mark will close the connection.
    Sure,
    /// One may have missed it: the session must be read again.
    Recheck,
}

/// Delivery on this node and, through its relay, on the others. Shared behind an `Arc`.
pub struct Delivery {
    store: Arc<dyn Store>,
    relay: Arc<dyn Relay>,
    registry: Registry,
    sequencer: Sequencer,
    members: MemberCache,
    /// Bumped by every block change, so an attach that read blocks before one reads them again.
    blocks_epoch: AtomicU64,
    /// One at a time per user: a first connection's subscriptions and presence, and a last
    /// one's release of them.
    turns: turns::Turns,
    /// Numbers every read of a user's blocks, taken before the read: of two at once, the one
    /// numbered later read the store after both changes committed, and only it is kept
    /// ([`Registry::set_viewer`]).
    viewer_loads: AtomicU64,
    /// Holds attaches before they register, for tests of what comes between.
    #[cfg(any(test, feature = "testing"))]
    attach_gate: AttachGate,
}

/// Where attaches wait while a test holds them (see [`Delivery::hold_attaches`]).
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Default)]
struct AttachGate {
    gate: Arc<tokio::sync::Mutex<()>>,
    waiting: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("relay", &self.relay)
            .field("connections", &self.registry.connection_count())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Delivery reading `store` (blocks, presence, membership) and reaching other nodes through
    /// `relay`, with `members` as its membership cache. Call [`start`](Self::start) inside a
    /// runtime.
    pub fn new(store: Arc<dyn Store>, relay: Arc<dyn Relay>, members: MemberCache) -> Arc<Self> {
        Arc::new(Delivery {
            store,
            relay,
            registry: Registry::new(),
            sequencer: Sequencer::default(),
            members,
            blocks_epoch: AtomicU64::new(0),
            viewer_loads: AtomicU64::new(0),
            turns: turns::Turns::default(),
            #[cfg(any(test, feature = "testing"))]
            attach_gate: AttachGate::default(),
        })
    }

    /// Holds every attach after it loaded what it needs and before it registers, until the
    /// guard drops: a test can then act between a sign-in's session read and its registration.
    #[cfg(any(test, feature = "testing"))]
    pub async fn hold_attaches(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.attach_gate.gate).lock_owned().await
    }

    /// How many attaches wait behind [`hold_attaches`](Self::hold_attaches).
    #[cfg(any(test, feature = "testing"))]
    pub fn attaches_held(&self) -> usize {
        self.attach_gate.waiting.load(Ordering::SeqCst)
    }

    /// Starts the background work: filling the gaps of events held back for longer than the
    /// reorder wait. It ends when the last handle to this delivery is dropped.
    pub fn start(self: &Arc<Self>) {
        let weak: Weak<Delivery> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(delivery) = weak.upgrade() else {
                    return;
                };
                let gaps = delivery.sequencer.take_gaps(Instant::now());
                if !gaps.is_empty() {
                    // Off the tick: a slow store must not hold up the gaps of other chats.
                    tokio::spawn(async move { delivery.fill_gaps(gaps).await });
                }
            }
        });
    }

    fn context(&self) -> Context<'_> {
        Context {
            registry: &self.registry,
            members: &self.members,
            relay: self.relay.networked().then_some(&*self.relay),
        }
    }

    /// Releases events held back for longer than the reorder wait at `now` (their
    /// predecessor's handler failed after its commit, or another node is slow to relay it),
    /// with the events they wait for, read from the store. (What the background work started
    /// by [`start`](Self::start) does every [`FLUSH_EVERY`].)
    #[cfg(test)]
    pub async fn flush_stale(&self, now: Instant) {
        self.fill_gaps(self.sequencer.take_gaps(now)).await;
    }

    async fn fill_gaps(&self, gaps: Vec<Gap>) {
        futures_util::future::join_all(gaps.into_iter().map(|gap| self.fill_gap(gap))).await;
    }

    /// Reads the events `gap` misses and releases them with what waits for them; without them
    /// when the store fails or is slow (clients then fetch the gap themselves).
    async fn fill_gap(&self, gap: Gap) {
        let found = match tokio::time::timeout(FILL_WAIT, self.read_gap(gap)).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::debug!(chat_id = gap.chat_id, error = %e, "cannot read a gap: clients fetch it");
                Vec::new()
            }
            Err(_) => {
                tracing::debug!(
                    chat_id = gap.chat_id,
                    "reading a gap took too long: clients fetch it"
                );
                Vec::new()
            }
        };
        self.sequencer.filled(&self.context(), gap, found);
    }

    /// The committed events of `gap`, addressed to the chat's members (as a handler would).
    async fn read_gap(&self, gap: Gap) -> StoreResult<Vec<Sequenced>> {
        let limit = (gap.up_to - gap.after).min(MAX_FILL) as u32;
        let events = self
            .store
            .events(gap.chat_id, gap.after, gap.up_to, limit)
            .await?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let Some(members) = self.members.get(&*self.store, gap.chat_id).await? else {
            return Ok(Vec::new());
        };
        Ok(events
            .into_iter()
            .map(|event| {
                let change = MembershipChange::of(&event);
                if change.is_some() {
                    self.members.invalidate(event.chat_id);
                }
                Sequenced {
                    frames: ChatEventFrames::committed(event),
                    route: Route::Audience(Audience::members(members.clone())),
                    change,
                }
            })
            .collect())
    }

    /// The membership cache.
    pub fn members(&self) -> &MemberCache {
        &self.members
    }

    /// The relay.
    #[cfg(any(test, feature = "testing"))]
    pub fn relay(&self) -> &Arc<dyn Relay> {
        &self.relay
    }

    // ---- what handlers send ----------------------------------------------------------------

    /// Delivers a committed chat event to `audience` on this node and to the chat's members on
    /// every other node, in seq order per chat, each viewer getting their redacted form. An
    /// event that changes membership drops the chat from the member cache first.
    pub fn append(&self, event: pb::ChatEvent, audience: Audience) {
        let change = MembershipChange::of(&event);
        if change.is_some() {
            self.members.invalidate(event.chat_id);
        }
        let frames = ChatEventFrames::committed(event);
        self.relay.chat_event(&frames, change.as_ref());
        self.sequencer.publish(
            &self.context(),
            Sequenced {
                frames,
                route: Route::Audience(audience),
                change,
            },
        );
    }

    /// Delivers an unsequenced event to every connection of `users` (on every node) that may see
    /// it, except `skip_conn` (a connection of this node).
    pub fn notify(&self, users: &[u64], event: &pb::Event, skip_conn: Option<u64>) {
        self.notify_routed(users, None, event, skip_conn);
    }

    /// [`notify`](Self::notify) for members of `chat_id` (receipts): other nodes get it with the
    /// chat's events.
    pub fn notify_chat(
        &self,
        chat_id: u64,
        users: &[u64],
        event: &pb::Event,
        skip_conn: Option<u64>,
    ) {
        self.notify_routed(users, Some(chat_id), event, skip_conn);
    }

    fn notify_routed(
        &self,
        users: &[u64],
        chat_id: Option<u64>,
        event: &pb::Event,
        skip_conn: Option<u64>,
    ) {
        if users.is_empty() {
            return;
        }
        let notice = NoticeFrames::new(event);
        self.registry.deliver_notice(users, &notice, skip_conn);
        self.relay.notice(users, chat_id, Only::All, &notice);
    }

    /// Delivers a call event to the connections of `users` (on every node) that negotiated
    /// `calls`.
    pub fn notify_calls(&self, users: &[u64], event: &pb::Event) {
        let notice = NoticeFrames::new(event);
        self.registry
            .deliver_notice_where(users, &notice, |c| Only::Calls.admits(c));
        self.relay.notice(users, None, Only::Calls, &notice);
    }

    /// Delivers a group call event to the connections of `users`, members of `chat_id` (on
    /// every node), that negotiated `group_calls`.
    pub fn notify_group_calls(&self, users: &[u64], chat_id: u64, event: &pb::Event) {
        let notice = NoticeFrames::new(event);
        self.registry
            .deliver_notice_where(users, &notice, |c| Only::GroupCalls.admits(c));
        self.relay
            .notice(users, Some(chat_id), Only::GroupCalls, &notice);
    }

    /// Delivers a call signal to one connection of `user_id`, on whichever node it is.
    pub fn signal_connection(&self, user_id: u64, conn_id: u64, event: &pb::Event) {
        let notice = NoticeFrames::new(event);
        if self.registry.has_conn(user_id, conn_id) {
            self.registry.deliver_to_conn(user_id, conn_id, &notice);
        } else {
            self.relay
                .notice(&[user_id], None, Only::Connection(conn_id), &notice);
        }
    }

    /// True when connection `conn_id` of `user_id` is registered on this node.
    pub fn is_connected(&self, user_id: u64, conn_id: u64) -> bool {
        self.registry.has_conn(user_id, conn_id)
    }

    /// This node's tag: the high 32 bits of its connection ids (`registry::node_of`).
    pub fn node_tag(&self) -> u32 {
        self.registry.node_tag()
    }

    /// Delivers an event to one connection of this node (a goodbye before a drain). False when
    /// it did not reach the connection's queue (not registered, or its queue is closed or full).
    pub fn notify_connection(&self, user_id: u64, conn_id: u64, event: &pb::Event) -> bool {
        self.registry
            .deliver_to_conn(user_id, conn_id, &NoticeFrames::new(event))
    }

    /// Sends `sender`'s typing signal in a chat to its other members, except those the sender
    /// blocked and those who blocked the sender. Returns how many went as datagrams here.
    pub fn typing(
        &self,
        chat_id: u64,
        sender: u64,
        members: &ChatMembers,
        expires_in_ms: u32,
    ) -> u64 {
        let Some(viewer) = self.registry.viewer(sender) else {
            // The typist's connection is gone.
            return 0;
        };
        let candidates: Vec<u64> = members
            .ids()
            .iter()
            .copied()
            .filter(|u| *u != sender && !viewer.blocks(*u))
            .collect();
        let datagrams = self.registry.deliver_typing(
            &candidates,
            pb::Typing {
                chat_id,
                user_id: sender,
                expires_in_ms,
            },
        );
        self.relay
            .typing(chat_id, sender, &candidates, expires_in_ms);
        datagrams
    }

    /// Closes every connection of `user_id` (or of one session of theirs) on every node, after
    /// writing `farewell` on their event streams.
    pub fn kick(&self, user_id: u64, session_id: Option<u64>, farewell: &pb::Event) {
        let farewell = NoticeFrames::new(farewell);
        self.registry.kick(user_id, session_id, &farewell);
        self.relay.kick(user_id, session_id, &farewell);
    }

    /// Closes the user's connections on this node without a farewell (`RESYNC`): their clients
    /// reconnect (to this node or another) and catch up from the store. Returns how many there
    /// were.
    #[cfg(any(test, feature = "testing"))]
    pub fn drop_connections(&self, user_id: u64) -> usize {
        self.registry.drop_connections(user_id)
    }

    /// The user's blocks changed (they blocked or unblocked someone): what their connections
    /// get changes at once here, and on the other nodes as soon as they hear of it.
    pub async fn blocks_changed(&self, user_id: u64) -> StoreResult<()> {
        self.blocks_epoch.fetch_add(1, Ordering::SeqCst);
        self.reload_viewer(user_id).await?;
        self.relay.blocks_changed(user_id);
        Ok(())
    }

    /// The user's viewer as the store has it now, and the number of this read.
    async fn load_viewer(&self, user_id: u64) -> StoreResult<(Arc<Viewer>, u64)> {
        let number = self.viewer_loads.fetch_add(1, Ordering::SeqCst) + 1;
        Ok((Arc::new(Viewer::load(&*self.store, user_id).await?), number))
    }

    async fn reload_viewer(&self, user_id: u64) -> StoreResult<()> {
        if self.registry.is_online(user_id) {
            let (viewer, number) = self.load_viewer(user_id).await?;
            self.registry.set_viewer(viewer, number);
        }
        Ok(())
    }

    // ---- connections -------------------------------------------------------------------------

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.registry.next_conn_id()
    }

    /// Where kicks stand now: taken by a sign-in before it reads the session it signs in with,
    /// and given to [`attach`](Self::attach).
    pub fn kick_mark(&self) -> KickMark {
        KickMark(self.registry.kicks())
    }

    /// Registers an authenticated connection for delivery. On the user's first connection here
    /// this also subscribes what they need on the other nodes and announces their presence;
    /// it returns once that is in place, so anything committed after the caller answers reaches
    /// the connection live or by catch-up.
    ///
    /// Returns [`Attached::Recheck`] when a revocation committed after the caller's `mark` may
    /// have missed the connection: a kick began here after it, or the user's connections here
    /// only now hear the kicks of other nodes (this is their first, or the first's subscription
    /// was still being made when this one registered: it is waited for). The caller then reads
    /// the session again.
    pub async fn attach(&self, handle: ConnHandle, mark: KickMark) -> StoreResult<Attached> {
        let user_id = handle.user_id;
        let epoch = self.blocks_epoch.load(Ordering::SeqCst);
        let (viewer, number) = match self.registry.viewer(user_id) {
            // Registering keeps the viewer there.
            Some(viewer) => (viewer, 0),
            None => self.load_viewer(user_id).await?,
        };
        #[cfg(any(test, feature = "testing"))]
        {
            self.attach_gate.waiting.fetch_add(1, Ordering::SeqCst);
            drop(self.attach_gate.gate.lock().await);
            self.attach_gate.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        let first = self.registry.register(handle, viewer, number);
        // Read again when blocks changed meanwhile, or when the viewer came from an entry of
        // the user's that went before this one registered (and may have missed a change).
        // A failure is returned after the turn below: returned before it, it would leave the
        // user's other connections here without what they hold together, while the caller's
        // sign-out of this one gives back what the turn takes.
        let reread = if self.blocks_epoch.load(Ordering::SeqCst) != epoch || (first && number == 0)
        {
            self.reload_viewer(user_id).await
        } else {
            Ok(())
        };
        let networked = self.relay.networked();
        if first {
            let mut turn = self.turns.take(user_id).await;
            // Not when the connection already ended (a kick: its detach, done or waiting for
            // this turn, must find nothing to bring back), nor when an earlier sign-in's
            // holdings were never given back (its end saw this connection registered).
            if self.registry.is_online(user_id) {
                if turn.taken() {
                    self.registry.mark_heard(user_id);
                } else {
                    self.relay.user_connected(user_id).await;
                    self.registry.mark_heard(user_id);
                    if networked {
                        self.hear_chats_of(user_id).await;
                    }
                    self.presence_connected(user_id).await;
                    turn.set_taken(true);
                }
            }
        }
        reread?;
        let unheard = networked && (first || self.await_heard(user_id).await);
        Ok(if unheard || self.registry.kicks() != mark.0 {
            Attached::Recheck
        } else {
            Attached::Sure
        })
    }

    /// Waits (at most [`HEAR_WAIT`]) until the user's connections here hear other nodes' kicks:
    /// a connection that registered while the first one's subscription was being made. True
    /// when they did not yet when called (the caller then reads its session again).
    async fn await_heard(&self, user_id: u64) -> bool {
        let Some(mut heard) = self.registry.heard(user_id) else {
            return true;
        };
        if *heard.borrow_and_update() {
            return false;
        }
        let _ = tokio::time::timeout(HEAR_WAIT, heard.wait_for(|h| *h)).await;
        true
    }

    /// Subscribes the chats of a user who just came online here.
    async fn hear_chats_of(&self, user_id: u64) {
        let chats: Vec<u64> = match self.store.heads(user_id, &[]).await {
            Ok(heads) => heads
                .into_iter()
                .filter(|h| h.member)
                .map(|h| h.chat_id)
                .collect(),
            Err(e) => {
                tracing::warn!(user_id, error = %e, "cannot list the user's chats: no live chat events from other nodes");
                return;
            }
        };
        let confirmations =
            self.sequencer
                .user_joined_chats(&self.context(), &*self.relay, user_id, &chats);
        futures_util::future::join_all(confirmations).await;
    }

    /// Unregisters a connection; on the user's last connection here, releases what they held
    /// and announces them offline (unless they are online elsewhere).
    pub async fn detach(&self, user_id: u64, conn_id: u64) {
        if !self.registry.unregister(user_id, conn_id) {
            return;
        }
        // After a sign-in's work for the user's first connection, if one is under way.
        let mut turn = self.turns.take(user_id).await;
        if self.registry.is_online(user_id) || !turn.taken() {
            // A connection that registered meanwhile keeps what the user holds here; or
            // nothing was taken (the sign-in came after this end).
            return;
        }
        turn.set_taken(false);
        if self.relay.networked() {
            self.sequencer
                .user_left(&self.context(), &*self.relay, user_id);
        }
        self.relay.user_disconnected(user_id);
        self.presence_disconnected(user_id).await;
    }

    /// Authenticated connections on this node.
    pub fn connection_count(&self) -> usize {
        self.registry.connection_count()
    }

    /// True when the user has a connection on this node.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_local(&self, user_id: u64) -> bool {
        self.registry.is_online(user_id)
    }

    /// Every user with a connection on this node.
    pub fn local_users(&self) -> Vec<u64> {
        self.registry.local_users()
    }

    /// Frames handed to connections on this node so far.
    #[cfg(any(test, feature = "testing"))]
    pub fn frames_sent(&self) -> u64 {
        self.registry.frames_sent()
    }

    /// Chats this node hears about from others (those with members connected here).
    #[cfg(any(test, feature = "testing"))]
    pub fn chats_heard(&self) -> usize {
        self.sequencer.chats_heard()
    }
}

/// Whether `seq` can be a chat event's: from 1, and below `u64::MAX` so that a successor
/// exists.
pub fn is_chat_seq(seq: u64) -> bool {
    (1..u64::MAX).contains(&seq)
}

#[async_trait::async_trait]
impl Inbound for Delivery {
    fn relayed_chat_event(
        &self,
        frames: Arc<ChatEventFrames>,
        change: Option<MembershipChange>,
        joiners: Vec<u64>,
    ) {
        if !is_chat_seq(frames.seq()) {
            // Only a faulty node or a corrupt message says so; the order of the chat's real
            // events must not be thrown by it.
            tracing::warn!(
                chat_id = frames.chat_id(),
                seq = frames.seq(),
                "a relayed event with a seq no chat has: dropped"
            );
            return;
        }
        if change.is_some() {
            self.members.invalidate(frames.chat_id());
        }
        let route = if joiners.is_empty() {
            // Added members get their own copy.
            Route::LocalMembers {
                except: change.as_ref().map(|c| c.added.clone()).unwrap_or_default(),
            }
        } else {
            let here = self.registry.local_among(&joiners);
            if here.is_empty() {
                return;
            }
            Route::Joiners(here)
        };
        self.sequencer.publish(
            &self.context(),
            Sequenced {
                frames,
                route,
                change,
            },
        );
    }

    fn relayed_notice(&self, users: &[u64], only: Only, notice: Arc<NoticeFrames>) {
        self.registry
            .deliver_notice_where(users, &notice, |c| only.admits(c));
    }

    fn relayed_typing(
        &self,
        chat_id: u64,
        sender: u64,
        candidates: &[u64],
        expires_in_ms: u32,
    ) -> u64 {
        self.registry.deliver_typing(
            candidates,
            pb::Typing {
                chat_id,
                user_id: sender,
                expires_in_ms,
            },
        )
    }

    fn relayed_kick(&self, user_id: u64, session_id: Option<u64>, farewell: Arc<NoticeFrames>) {
        self.registry.kick(user_id, session_id, &farewell);
    }

    async fn relayed_blocks_changed(&self, user_id: u64) {
        self.blocks_epoch.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.reload_viewer(user_id).await {
            tracing::warn!(user_id, error = %e, "cannot reload the user's blocks");
        }
    }

    fn relay_resubscribed(&self) {
        self.sequencer.forget_all(&self.context());
        self.members.clear();
    }
}
