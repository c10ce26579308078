//! The broker: the Redis relay. What this node publishes to the others, what it subscribes to,
//! and handing what they publish to this node's [`Delivery`].
//!
//! # Channel design
//! - `chat:<id>` carries every sequenced event of a chat, published **once**, as its member
//!   frame and what it changes about membership (no recipient list). A node subscribes it while
//!   at least one member of the chat is connected to it (one subscription per node and chat,
//!   however many local members): delivery's sequencer keeps that interest and asks the relay to
//!   hold or release the channel. Receivers resolve the recipients among their own connections
//!   and deliver through their own sequencer, so order is restored even when nodes publish in
//!   another order.
//! - `user:<id>` carries what is addressed to one user: kicks, events for a few users, block
//!   changes, and a copy of each membership event for every member it adds (their nodes are not
//!   subscribed to the chat yet; on that copy they subscribe). A node subscribes it while the
//!   user has a connection there.
//! - `global` (every node) carries events for many users that belong to no chat (presence to a
//!   popular user's watchers), to save one publish per watcher.
//!
//! Why per-chat channels rather than only per-user ones: a message in a room of 100 members
//! spread over N nodes is one PUBLISH and at most N deliveries per chat channel, against 100
//! PUBLISHes (and 100 deliveries) with per-user channels; with rooms of 100 and 1000 users on 3
//! nodes that is ~4 Redis operations per message instead of ~200. Subscriptions change only when
//! users connect, disconnect or join, which is rare next to messages.
//!
//! # Never blocking, never relied upon
//! Delivery hands events over and returns; a single publisher task drains the queue in batches
//! (pipelined on a standalone Redis, concurrent per shard on a cluster). When Redis is down,
//! events older than [`EVENT_MAX_AGE`] are dropped (clients fill gaps from the store with
//! GetChatEvents), kicks are retried for up to [`KICK_MAX_AGE`], and a full queue drops new
//! events. Local delivery never waits for Redis in any mode.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::presence::ClusterPresence;
use crate::cluster::pubsub::{self, Subscriber};
use crate::cluster::redis::{Redis, RedisFailure};
use crate::cluster::wire::{
    self, AppendReply, AppendRequest, BlocksChanged, Body, ChatFrame, Envelope, Kick, Ticket,
    TypingSignal, UserFrame,
};
use crate::delivery::members::MembershipChange;
use crate::delivery::redact::{ChatEventFrames, NoticeFrames};
use crate::delivery::relay::{Confirmation, Inbound, Only, Relay, RelayUnavailable};
use crate::ops::metrics::Metrics;
use crate::resilience::backoff::Backoff;

/// Publications queued at most; beyond that new ones are dropped.
pub const PUBLISH_QUEUE: usize = 100_000;

/// Events older than this are not published any more (clients have caught up from the store by
/// then, or will).
pub const EVENT_MAX_AGE: Duration = Duration::from_secs(5);

/// Kicks are retried this long while Redis is unreachable.
pub const KICK_MAX_AGE: Duration = Duration::from_secs(60);

/// Events for more users than this (outside a chat, or the copies for the members a chat
/// event adds) go once on `global` instead of once per user.
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
    redis: Redis,
    subscriber: Subscriber,
    presence: Arc<ClusterPresence>,
    outgoing: mpsc::Sender<Outgoing>,
    stats: Arc<BrokerStats>,
    /// Where the session tickets other nodes issue and use go.
    tickets: std::sync::OnceLock<Arc<dyn SharedTickets>>,
    /// Where sends forwarded between nodes go.
    appends: std::sync::OnceLock<Arc<dyn ForwardedAppends>>,
}

/// Sends forwarded between nodes, as the cluster carries them: requests other nodes forward to
/// this one, and the answers to this node's own. The node's [`Router`](super::routing::Router)
/// implements it.
pub trait ForwardedAppends: Send + Sync {
    /// Node `origin` forwarded a send for this node to append.
    fn request(&self, origin: String, request: AppendRequest);
    /// The answer to one of this node's forwarded sends.
    fn reply(&self, reply: AppendReply);
}

/// The session tickets of a node as the cluster shares them (protocol.md 2.5): what other nodes
/// issue and use reaches this node's store through it, so that a returning client resumes on
/// any node. The server's ticket store implements it; the cluster layer knows nothing more.
pub trait SharedTickets: Send + Sync {
    /// Another node issued ticket `id` (`sealed` holds its session state) or, with `sealed`
    /// empty, used it.
    fn learn(&self, id: &[u8], sealed: &[u8]);
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// Starts the subscriber (holding `global`) and the publisher. What other nodes publish
    /// arrives on the returned receiver: pass it to [`run_dispatch`](Self::run_dispatch) once
    /// this node's delivery exists.
    pub async fn start(
        node_id: String,
        redis: Redis,
        presence: Arc<ClusterPresence>,
        metrics: Arc<Metrics>,
        cancel: CancellationToken,
    ) -> (Arc<Broker>, mpsc::Receiver<pubsub::Delivery>) {
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
        tokio::spawn(publisher(redis.clone(), rx, stats.clone(), cancel));
        subscriber.subscribe(wire::GLOBAL_CHANNEL).await;
        let broker = Arc::new(Broker {
            node_id,
            redis,
            subscriber,
            presence,
            outgoing: tx,
            stats,
            tickets: std::sync::OnceLock::new(),
            appends: std::sync::OnceLock::new(),
        });
        (broker, deliveries)
    }

    /// The subscriber (for inspection).
    #[cfg(any(test, feature = "testing"))]
    pub fn subscriber(&self) -> &Subscriber {
        &self.subscriber
    }

    /// Makes `tickets` the receiver of the session tickets other nodes share (once).
    pub fn receive_tickets(&self, tickets: Arc<dyn SharedTickets>) {
        let _ = self.tickets.set(tickets);
    }

    /// Makes `appends` the receiver of forwarded sends and their answers (once), and listens on
    /// this node's channel.
    pub async fn receive_appends(&self, appends: Arc<dyn ForwardedAppends>) {
        if self.appends.set(appends).is_ok() {
            self.subscriber
                .subscribe(&wire::node_channel(&self.node_id))
                .await;
        }
    }

    /// Publishes `body` on node `node_id`'s channel (queued, like every other publication).
    pub fn to_node(&self, node_id: &str, body: Body) {
        self.enqueue(wire::node_channel(node_id), body, false);
    }

    /// Publishes `body` on node `node_id`'s channel at once, outside the queue, for a caller
    /// that waits for the answer: returns how many subscribers got it (0: the node does not
    /// listen), or why Redis did not take it.
    pub async fn to_node_now(&self, node_id: &str, body: Body) -> Result<i64, RedisFailure> {
        let payload = Envelope {
            origin: self.node_id.clone(),
            body: Some(body),
        }
        .to_bytes();
        let mut cmd = redis::cmd(publish_verb(&self.redis));
        cmd.arg(wire::node_channel(node_id)).arg(payload.as_ref());
        let receivers = self.redis.query::<i64>(&cmd).await?;
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        self.stats.metrics.cluster_published(1);
        Ok(receivers)
    }

    /// Tells every node that this one issued session ticket `id` (`sealed`: its session state),
    /// or, with `sealed` empty, used it.
    pub fn share_ticket(&self, id: &[u8], sealed: Vec<u8>) {
        let ticket = Ticket {
            id: id.to_vec(),
            sealed,
        };
        self.enqueue(
            wire::GLOBAL_CHANNEL.to_string(),
            Body::Ticket(ticket),
            false,
        );
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

    /// Hands what other nodes publish to this node's `delivery`, until the subscriber stops.
    pub async fn run_dispatch(
        self: Arc<Self>,
        delivery: Arc<dyn Inbound>,
        mut deliveries: mpsc::Receiver<pubsub::Delivery>,
    ) {
        while let Some(message) = deliveries.recv().await {
            match message {
                pubsub::Delivery::Message { channel, payload } => {
                    self.dispatch(&delivery, &channel, &payload)
                }
                // Messages were missed.
                pubsub::Delivery::Resubscribed => delivery.relay_resubscribed(),
            }
        }
    }

    fn dispatch(&self, delivery: &Arc<dyn Inbound>, channel: &str, payload: &[u8]) {
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
            Some(Body::Chat(chat)) => {
                let change = chat.change();
                let frames =
                    ChatEventFrames::relayed(chat.chat_id, chat.seq, chat.actor, chat.frame);
                delivery.relayed_chat_event(frames, change, chat.joiners);
            }
            Some(Body::Users(users)) => {
                if let Some(only) = users.only() {
                    delivery.relayed_notice(
                        &users.users,
                        only,
                        NoticeFrames::relayed(
                            users.frame,
                            users.subject,
                            users.hidden_from_blockers,
                        ),
                    );
                }
            }
            Some(Body::Typing(signal)) => {
                let datagrams = delivery.relayed_typing(
                    signal.chat_id,
                    signal.sender,
                    &signal.candidates,
                    signal.expires_in_ms,
                );
                self.stats.metrics.datagrams_sent(datagrams);
            }
            Some(Body::Kick(kick)) => {
                let session = (kick.session_id != 0).then_some(kick.session_id);
                let farewell = NoticeFrames::relayed(kick.farewell, kick.user_id, false);
                delivery.relayed_kick(kick.user_id, session, farewell);
            }
            Some(Body::Blocks(blocks)) => {
                let delivery = delivery.clone();
                tokio::spawn(async move { delivery.relayed_blocks_changed(blocks.user_id).await });
            }
            Some(Body::Ticket(ticket)) => {
                if let Some(tickets) = self.tickets.get() {
                    tickets.learn(&ticket.id, &ticket.sealed);
                }
            }
            Some(Body::Append(request)) => match self.appends.get() {
                Some(appends) => appends.request(envelope.origin, *request),
                None => tracing::debug!(channel, "forwarded send before routing started: dropped"),
            },
            Some(Body::Appended(reply)) => {
                if let Some(appends) = self.appends.get() {
                    appends.reply(*reply);
                }
            }
            None => tracing::debug!(channel, "empty cluster message: dropped"),
        }
    }
}

#[async_trait]
impl Relay for Broker {
    fn networked(&self) -> bool {
        true
    }

    fn chat_event(&self, frames: &Arc<ChatEventFrames>, change: Option<&MembershipChange>) {
        let base = ChatFrame {
            chat_id: frames.chat_id(),
            seq: frames.seq(),
            frame: frames.member_frame().bytes().clone(),
            actor: frames.actor(),
            added: change.map(|c| c.added.clone()).unwrap_or_default(),
            removed: change.map(|c| c.removed.clone()).unwrap_or_default(),
            deleted: change.is_some_and(|c| c.deleted),
            membership_changed: change.is_some(),
            joiners: Vec::new(),
        };
        // The added members' copies: each carries the whole frame (a new group's lists every
        // member), so many of them go once on `global`, not once per member: a group created
        // with 10,000 members would otherwise publish 10,000 copies of its member list.
        if base.added.len() <= USER_CHANNEL_MAX {
            for &user in &base.added {
                let copy = ChatFrame {
                    joiners: vec![user],
                    ..base.clone()
                };
                self.enqueue(wire::user_channel(user), Body::Chat(copy), false);
            }
        } else {
            let copy = ChatFrame {
                joiners: base.added.clone(),
                ..base.clone()
            };
            self.enqueue(wire::GLOBAL_CHANNEL.to_owned(), Body::Chat(copy), false);
        }
        self.enqueue(
            wire::chat_channel(frames.chat_id()),
            Body::Chat(base),
            false,
        );
    }

    fn notice(&self, users: &[u64], chat_id: Option<u64>, only: Only, notice: &Arc<NoticeFrames>) {
        if users.is_empty() {
            return;
        }
        let (only, conn_id) = UserFrame::encode_only(only);
        let body = |users: Vec<u64>| {
            Body::Users(UserFrame {
                users,
                frame: notice.frame().bytes().clone(),
                subject: notice.subject(),
                hidden_from_blockers: notice.hidden_from_blockers(),
                only,
                conn_id,
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

    fn typing(&self, chat_id: u64, sender: u64, candidates: &[u64], expires_in_ms: u32) {
        if candidates.is_empty() {
            return;
        }
        let signal = TypingSignal {
            chat_id,
            sender,
            candidates: candidates.to_vec(),
            expires_in_ms,
        };
        self.enqueue(wire::chat_channel(chat_id), Body::Typing(signal), false);
    }

    fn kick(&self, user_id: u64, session_id: Option<u64>, farewell: &Arc<NoticeFrames>) {
        let kick = Kick {
            user_id,
            session_id: session_id.unwrap_or(0),
            farewell: farewell.frame().bytes().clone(),
        };
        self.enqueue(wire::user_channel(user_id), Body::Kick(kick), true);
    }

    fn blocks_changed(&self, user_id: u64) {
        self.enqueue(
            wire::user_channel(user_id),
            Body::Blocks(BlocksChanged { user_id }),
            false,
        );
    }

    async fn user_connected(&self, user_id: u64) {
        self.subscriber
            .subscribe(&wire::user_channel(user_id))
            .await;
    }

    fn user_disconnected(&self, user_id: u64) {
        self.subscriber.unsubscribe(&wire::user_channel(user_id));
    }

    fn hold_chat(&self, chat_id: u64) -> Option<Confirmation> {
        let confirmation = self.subscriber.hold(&wire::chat_channel(chat_id));
        Some(Box::pin(confirmation.wait()))
    }

    fn release_chat(&self, chat_id: u64) {
        self.subscriber.unsubscribe(&wire::chat_channel(chat_id));
    }

    async fn presence_up(&self, user_id: u64) -> Result<bool, RelayUnavailable> {
        self.presence.node_up(user_id).await.map_err(|e| {
            self.presence.mark_dirty();
            RelayUnavailable(e.to_string())
        })
    }

    async fn presence_down(&self, user_id: u64) -> Result<bool, RelayUnavailable> {
        self.presence.node_down(user_id).await.map_err(|e| {
            self.presence.mark_dirty();
            RelayUnavailable(e.to_string())
        })
    }

    async fn online_elsewhere(&self, users: &[u64]) -> HashSet<u64> {
        self.presence.online_elsewhere(users).await
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
    let verb = publish_verb(&redis);
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

/// The publish command: sharded in a Redis Cluster (a channel lives on its slot's shard instead
/// of being broadcast to every shard).
fn publish_verb(redis: &Redis) -> &'static str {
    if redis.is_cluster() {
        "SPUBLISH"
    } else {
        "PUBLISH"
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
