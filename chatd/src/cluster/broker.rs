//! The broker: what this node publishes to the others, what it subscribes to, and how it
//! delivers what they publish.
//!
//! # Channel design
//! - `chat:<id>` carries every sequenced event of a chat, published **once**, with the recipient
//!   list. A node subscribes it while at least one member of the chat is connected to it (one
//!   subscription per node and chat, however many local members; see
//!   [`Interest`]). Receivers deliver to their local recipients through the hub's per-chat
//!   sequencer, so order is restored even when nodes publish in another order.
//! - `user:<id>` carries what is addressed to one user: kicks, events for a few users, and a copy
//!   of each membership event for every member it adds (their nodes are not subscribed to the
//!   chat yet; on that copy they subscribe). A node subscribes it while the user has a connection
//!   there.
//! - `global` (every node) carries events for many users that belong to no chat (presence to a
//!   popular user's watchers), to save one publish per watcher.
//!
//! Why per-chat channels rather than only per-user ones: a message in a room of 100 members
//! spread over N nodes is one PUBLISH and at most N deliveries per chat channel, against 100
//! PUBLISHes (and 100 deliveries) with per-user channels; with rooms of 100 and 1000 users on 3
//! nodes that is ~4 Redis operations per message instead of ~200. Subscriptions change only when
//! users connect, disconnect or join, which is rare next to messages. The cost is keeping the
//! interest map right, which membership events do (they carry what they change).
//!
//! # Never blocking, never relied upon
//! Handlers enqueue publications and return; a single publisher task drains the queue in batches
//! (pipelined on a standalone Redis, concurrent per shard on a cluster). When Redis is down,
//! events older than [`EVENT_MAX_AGE`] are dropped (clients fill gaps from the store with
//! GetChatEvents), kicks are retried for up to [`KICK_MAX_AGE`], and a full queue drops new
//! events. The hub delivers locally without any Redis hop in every mode.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::interest::Interest;
use crate::cluster::pubsub::{Delivery, Subscriber};
use crate::cluster::redis::Redis;
use crate::cluster::wire::{
    self, Body, ChatFrame, Envelope, Kick, MembershipChange, TypingSignal, UserFrame,
};
use crate::delivery::hub::{Copies, Hub};
use crate::delivery::members::MemberCache;
use crate::ops::metrics::Metrics;
use crate::resilience::backoff::Backoff;
use crate::state::AppState;
use crate::store::Store;

/// Publications queued at most; beyond that new ones are dropped.
pub const PUBLISH_QUEUE: usize = 100_000;

/// Events older than this are not published any more (clients have caught up from the store by
/// then, or will).
pub const EVENT_MAX_AGE: Duration = Duration::from_secs(5);

/// Kicks are retried this long while Redis is unreachable.
pub const KICK_MAX_AGE: Duration = Duration::from_secs(60);

/// Events for more users than this (outside a chat) go once on `global` instead of once per user.
pub const USER_CHANNEL_MAX: usize = 8;

/// Publications sent per round trip.
const BATCH: usize = 512;

struct Outgoing {
    channel: String,
    payload: Bytes,
    kick: bool,
    at: Instant,
}

/// Counters (the same numbers go to the Prometheus metrics).
#[derive(Debug)]
pub struct BrokerStats {
    metrics: Arc<Metrics>,
    /// Messages published.
    pub published: AtomicU64,
    /// Publications dropped (queue full or too old).
    pub dropped: AtomicU64,
    /// Messages received from other nodes.
    pub received: AtomicU64,
    /// Publications queued and not yet published or dropped.
    pub queued: AtomicUsize,
}

/// The node's link to the other nodes. Share it behind an `Arc`.
pub struct Broker {
    node_id: String,
    hub: Arc<Hub>,
    members: Arc<MemberCache>,
    subscriber: Subscriber,
    outgoing: mpsc::Sender<Outgoing>,
    interest: Mutex<Interest>,
    stats: Arc<BrokerStats>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Broker {
    /// Starts the subscriber (holding `global`) and the publisher. Deliveries arrive on the
    /// returned receiver: pass it to [`run_dispatch`](Self::run_dispatch) once the state exists.
    pub async fn start(
        node_id: String,
        redis: Redis,
        hub: Arc<Hub>,
        members: Arc<MemberCache>,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> (Arc<Broker>, mpsc::Receiver<Delivery>) {
        let (subscriber, deliveries) =
            Subscriber::start(redis.clone(), metrics.clone(), cancel.clone());
        let (tx, rx) = mpsc::channel(PUBLISH_QUEUE);
        let stats = Arc::new(BrokerStats {
            metrics,
            published: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            received: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
        });
        tokio::spawn(publisher(redis, rx, stats.clone(), cancel));
        subscriber.subscribe(wire::GLOBAL_CHANNEL).await;
        let broker = Arc::new(Broker {
            node_id,
            hub,
            members,
            subscriber,
            outgoing: tx,
            interest: Mutex::new(Interest::default()),
            stats,
        });
        (broker, deliveries)
    }

    /// The subscriber (for inspection).
    #[cfg(any(test, feature = "testing"))]
    pub fn subscriber(&self) -> &Subscriber {
        &self.subscriber
    }

    fn enqueue(&self, channel: String, body: Body, kick: bool) {
        let payload = Envelope {
            origin: self.node_id.clone(),
            body: Some(body),
        }
        .to_bytes();
        let out = Outgoing {
            channel,
            payload,
            kick,
            at: Instant::now(),
        };
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
        if self.outgoing.try_send(out).is_err() {
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            self.stats.metrics.cluster_dropped("queue_full", 1);
            let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "cluster publish queue full: events dropped");
            }
        }
    }

    /// Waits (at most `wait`) until everything queued so far was published or given up on: an
    /// orderly shutdown lets its last announcements (users going offline) reach the other nodes.
    pub async fn flush(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while self.stats.queued.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Publishes a sequenced chat event (already delivered locally by the caller): `copies` is
    /// the event as most recipients see it, then optionally the placeholder copy.
    pub fn chat_event(
        &self,
        chat_id: u64,
        seq: u64,
        copies: &Copies,
        change: Option<&MembershipChange>,
    ) {
        let change = change.cloned();
        let (recipients, frame) = copies.first().cloned().unwrap_or_default();
        let (placeholder_recipients, placeholder_frame) =
            copies.get(1).cloned().unwrap_or_default();
        let base = ChatFrame {
            chat_id,
            seq,
            recipients,
            frame,
            placeholder_recipients,
            placeholder_frame,
            added: change.as_ref().map(|c| c.added.clone()).unwrap_or_default(),
            removed: change
                .as_ref()
                .map(|c| c.removed.clone())
                .unwrap_or_default(),
            deleted: change.as_ref().is_some_and(|c| c.deleted),
            membership_changed: change.is_some(),
            joiner: false,
        };
        for &user in &base.added {
            let copy = ChatFrame {
                recipients: vec![user],
                joiner: true,
                placeholder_recipients: Vec::new(),
                placeholder_frame: Bytes::new(),
                ..base.clone()
            };
            self.enqueue(wire::user_channel(user), Body::Chat(copy), false);
        }
        self.enqueue(wire::chat_channel(chat_id), Body::Chat(base), false);
    }

    /// Publishes an unsequenced event for `users` (already delivered locally by the caller).
    /// `chat_id` routes it on the chat's channel when the users are its members.
    pub fn user_event(&self, users: &[u64], frame: &Bytes, chat_id: Option<u64>) {
        if users.is_empty() {
            return;
        }
        let body = |users: Vec<u64>| {
            Body::Users(UserFrame {
                users,
                frame: frame.clone(),
            })
        };
        match chat_id {
            Some(chat) if users.len() > 1 => {
                self.enqueue(wire::chat_channel(chat), body(users.to_vec()), false)
            }
            _ if users.len() <= USER_CHANNEL_MAX => {
                for &user in users {
                    self.enqueue(wire::user_channel(user), body(vec![user]), false);
                }
            }
            _ => self.enqueue(wire::GLOBAL_CHANNEL.to_owned(), body(users.to_vec()), false),
        }
    }

    /// Publishes a typing signal to the chat's other nodes.
    pub fn typing(&self, chat_id: u64, sender: u64, candidates: Vec<u64>, expires_in_ms: u32) {
        if candidates.is_empty() {
            return;
        }
        let signal = TypingSignal {
            chat_id,
            sender,
            candidates,
            expires_in_ms,
        };
        self.enqueue(wire::chat_channel(chat_id), Body::Typing(signal), false);
    }

    /// Publishes a kick of `user_id`'s connections (of one session, or all) on other nodes.
    pub fn kick(&self, user_id: u64, session_id: Option<u64>, farewell: &Bytes) {
        let kick = Kick {
            user_id,
            session_id: session_id.unwrap_or(0),
            farewell: farewell.clone(),
        };
        self.enqueue(wire::user_channel(user_id), Body::Kick(kick), true);
    }

    /// The user's first connection on this node authenticated: subscribe their channel and their
    /// chats' channels. Returns once Redis confirmed (or could not, briefly), so live delivery is
    /// in place before the client hears it is authenticated.
    pub async fn user_connected(&self, store: &dyn Store, user_id: u64) {
        self.subscriber
            .subscribe(&wire::user_channel(user_id))
            .await;
        let chats: Vec<u64> = match store.heads(user_id, &[]).await {
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
        let confirmations: Vec<_> = {
            let mut interest = lock(&self.interest);
            // Disconnected meanwhile: nothing to hold (the disconnect already released).
            if !self.hub.is_online(user_id) {
                return;
            }
            chats
                .into_iter()
                .filter(|chat| interest.add(*chat, user_id))
                .map(|chat| self.subscriber.hold(&wire::chat_channel(chat)))
                .collect()
        };
        futures_util::future::join_all(confirmations.into_iter().map(|c| c.wait())).await;
    }

    /// The user's last connection on this node closed: release what they held.
    pub fn user_disconnected(&self, user_id: u64) {
        let mut interest = lock(&self.interest);
        for chat in interest.remove_user(user_id) {
            self.release_chat(chat);
        }
        drop(interest);
        self.subscriber.unsubscribe(&wire::user_channel(user_id));
    }

    /// Called with the interest lock held, so (un)subscriptions follow the interest map in order.
    fn release_chat(&self, chat: u64) {
        self.subscriber.unsubscribe(&wire::chat_channel(chat));
        self.hub.forget_chat(chat);
        // Nobody here hears about this chat any more: a cached member list would go stale.
        self.members.invalidate(chat);
    }

    /// Applies what a chat event changes to this node's subscriptions: local members it adds
    /// start hearing the chat, those it removes stop (after delivery), a deleted chat is released.
    pub fn apply_membership(&self, chat_id: u64, added: &[u64], removed: &[u64], deleted: bool) {
        let local_added = self.hub.local_among(added);
        let mut interest = lock(&self.interest);
        let subscribe = local_added.iter().any(|u| interest.add(chat_id, *u));
        let mut release = removed.iter().any(|u| interest.remove(chat_id, *u));
        if deleted {
            release |= interest.remove_chat(chat_id);
        }
        if release {
            self.release_chat(chat_id);
        } else if subscribe {
            // Confirmation not awaited: this runs on the publishing or dispatching path.
            drop(self.subscriber.hold(&wire::chat_channel(chat_id)));
        }
    }

    /// Delivers what other nodes publish, until the subscriber stops.
    pub async fn run_dispatch(
        self: Arc<Self>,
        state: Arc<AppState>,
        mut deliveries: mpsc::Receiver<Delivery>,
    ) {
        while let Some(delivery) = deliveries.recv().await {
            match delivery {
                Delivery::Message { channel, payload } => self.dispatch(&state, &channel, &payload),
                Delivery::Resubscribed => {
                    // Messages were missed: sequencers must not wait for them, and member caches
                    // may have missed invalidations.
                    self.hub.forget_all_chats();
                    self.members.clear();
                }
            }
        }
    }

    fn dispatch(&self, state: &Arc<AppState>, channel: &str, payload: &[u8]) {
        let envelope = match Envelope::from_bytes(payload) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::debug!(channel, error = %e, "undecodable cluster message: dropped");
                return;
            }
        };
        if envelope.origin == self.node_id {
            return;
        }
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        self.stats.metrics.cluster_received();
        match envelope.body {
            Some(Body::Chat(chat)) => self.on_chat_frame(chat),
            Some(Body::Users(users)) => self.hub.deliver(&users.users, &users.frame, None),
            Some(Body::Typing(signal)) => {
                let state = state.clone();
                tokio::spawn(async move { deliver_remote_typing(&state, signal).await });
            }
            Some(Body::Kick(kick)) => {
                let session = (kick.session_id != 0).then_some(kick.session_id);
                self.hub.kick_frame(kick.user_id, session, &kick.farewell);
            }
            None => tracing::debug!(channel, "empty cluster message: dropped"),
        }
    }

    fn on_chat_frame(&self, chat: ChatFrame) {
        if chat.membership_changed {
            self.members.invalidate(chat.chat_id);
        }
        let mut recipients = chat.recipients;
        if !chat.joiner {
            // Added members get their own copy on their user channel.
            recipients.retain(|r| !chat.added.contains(r));
        }
        let mut copies = vec![(recipients, chat.frame)];
        if !chat.placeholder_recipients.is_empty() {
            copies.push((chat.placeholder_recipients, chat.placeholder_frame));
        }
        self.hub.publish_chat_frames(chat.chat_id, chat.seq, copies);
        if chat.membership_changed {
            self.apply_membership(chat.chat_id, &chat.added, &chat.removed, chat.deleted);
        }
    }
}

/// Typing from another node: to the candidates connected here who did not block the sender.
async fn deliver_remote_typing(state: &AppState, signal: TypingSignal) {
    let mut recipients = Vec::new();
    for user in state.hub.local_among(&signal.candidates) {
        match state.store.is_blocked(user, signal.sender).await {
            Ok(false) => recipients.push(user),
            Ok(true) => {}
            Err(e) => {
                tracing::debug!(error = %e, "typing block check failed: signal dropped");
                return;
            }
        }
    }
    if !recipients.is_empty() {
        let typing = chatproto::pb::Typing {
            chat_id: signal.chat_id,
            user_id: signal.sender,
            expires_in_ms: signal.expires_in_ms,
        };
        let datagrams = state.hub.deliver_typing(&recipients, typing, None);
        state.metrics.datagrams_sent(datagrams);
    }
}

/// Drains the publish queue into Redis in batches, retrying kicks while Redis is down.
async fn publisher(
    redis: Redis,
    mut rx: mpsc::Receiver<Outgoing>,
    stats: Arc<BrokerStats>,
    cancel: CancellationToken,
) {
    let mut pending: VecDeque<Outgoing> = VecDeque::new();
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
    let verb = if redis.is_cluster() {
        "SPUBLISH"
    } else {
        "PUBLISH"
    };
    loop {
        if pending.is_empty() {
            tokio::select! {
                () = cancel.cancelled() => return,
                next = rx.recv() => match next {
                    Some(out) => pending.push_back(out),
                    None => return,
                },
            }
        }
        while pending.len() < BATCH * 4 {
            match rx.try_recv() {
                Ok(out) => pending.push_back(out),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        let before = pending.len();
        pending.retain(|o| {
            now.duration_since(o.at) < if o.kick { KICK_MAX_AGE } else { EVENT_MAX_AGE }
        });
        stats
            .dropped
            .fetch_add((before - pending.len()) as u64, Ordering::Relaxed);
        if before > pending.len() {
            stats
                .metrics
                .cluster_dropped("too_old", (before - pending.len()) as u64);
        }
        stats
            .queued
            .fetch_sub(before - pending.len(), Ordering::SeqCst);
        let batch: Vec<Outgoing> = pending.drain(..pending.len().min(BATCH)).collect();
        if batch.is_empty() {
            continue;
        }
        let attempted = batch.len();
        let failed = send_batch(&redis, verb, batch).await;
        stats
            .published
            .fetch_add((attempted - failed.len()) as u64, Ordering::Relaxed);
        stats
            .metrics
            .cluster_published((attempted - failed.len()) as u64);
        stats
            .queued
            .fetch_sub(attempted - failed.len(), Ordering::SeqCst);
        if failed.is_empty() {
            backoff.reset();
            continue;
        }
        // Put the failures back in front, in order, and wait before retrying.
        for out in failed.into_iter().rev() {
            pending.push_front(out);
        }
        if redis.is_halted() {
            return;
        }
        let delay = backoff.next_delay();
        tracing::debug!(
            queued = pending.len(),
            ?delay,
            "cluster publish failed: retrying"
        );
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Publishes a batch; returns what could not be published.
async fn send_batch(redis: &Redis, verb: &str, batch: Vec<Outgoing>) -> Vec<Outgoing> {
    if redis.is_cluster() {
        // Different channels live on different shards: one command each, all in flight at once
        // (the cluster connection pipelines them per node, in order).
        let results = futures_util::future::join_all(batch.iter().map(|o| {
            let mut cmd = redis::cmd(verb);
            cmd.arg(&o.channel).arg(o.payload.as_ref());
            async move { redis.query::<i64>(&cmd).await }
        }))
        .await;
        batch
            .into_iter()
            .zip(results)
            .filter_map(|(o, r)| r.is_err().then_some(o))
            .collect()
    } else {
        let mut pipe = redis::pipe();
        for o in &batch {
            pipe.cmd(verb)
                .arg(&o.channel)
                .arg(o.payload.as_ref())
                .ignore();
        }
        match redis.pipeline(&pipe).await {
            Ok(()) => Vec::new(),
            Err(_) => batch,
        }
    }
}
