//! Send routing: the messages of one chat are appended by one node, the chat's owner.
//!
//! Why: appends to one chat from two nodes race for the same seq in a shared store (each
//! claims the head it knows plus one; see `store::mongo`), and the node that just committed
//! always knows the new head first, so the other node's sends to a busy chat keep losing, wait,
//! read the chat again and lose again, until they are refused `Busy`. With every chat's appends
//! on one node, that node's group commit takes them together and no claim is lost.
//!
//! The owner of a chat is the live node (registry) with the highest rendezvous score of
//! (chat, node): every node computes the same owner from the same list, and a node joining or
//! leaving moves only the chats it gains or owned. [`RoutedStore`] forwards a send whose chat
//! another node owns on that node's channel ([`wire::AppendRequest`]) and waits for the answer
//! on its own channel; everything else goes to the store unchanged. The owner appends with its
//! store below the routing (so a send is forwarded at most once, even while two nodes' views
//! of the live nodes differ).
//!
//! Routing is a preference, never a rule: correctness stays with the store's claims and send
//! keys. A send is appended here instead when Redis does not take the forward (at once: the
//! forward is published directly, not queued), when the owner does not listen on its channel
//! (the publish reaches nobody), or when it does not answer within the store's deadline and
//! [`FORWARD_MARGIN`]; an owner
//! that did not listen or answer gets no sends for [`SHUN`]. A send the owner did append but
//! whose answer was lost is then answered as a duplicate (the store's idempotency), and its
//! event reaches clients by gap repair instead of live.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chatproto::pb;
use tokio::sync::oneshot;

use super::broker::{Broker, ForwardedAppends};
use super::registry::Registry;
use super::wire::{AppendFailure, AppendReply, AppendRequest, Body};
use crate::ops::metrics::Metrics;
use crate::store::delegate::{delegate_store, forward_store};
use crate::store::*;

/// How long a node waits for the owner's answer beyond the owner's store deadline (the same
/// `--store-timeout` on every node) before it appends itself: an owner whose store is slow
/// answers, at the latest with `UNAVAILABLE`, before it is given up on.
pub const FORWARD_MARGIN: Duration = Duration::from_millis(1_500);

/// How long an owner that did not answer gets no sends.
pub const SHUN: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The owner of `chat_id` among `nodes`: the highest rendezvous score, ties (which a 64-bit
/// score makes all but impossible) broken by id.
pub fn owner<'a>(chat_id: u64, nodes: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    nodes
        .into_iter()
        .max_by_key(|node| (score(chat_id, node), *node))
}

/// A stable 64-bit score of (chat, node): FNV-1a of the node id, mixed with the chat id by
/// SplitMix64's finalizer. Stable across builds and versions (unlike `std`'s hasher), so nodes
/// of different versions agree during a rolling upgrade.
fn score(chat_id: u64, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h ^ chat_id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The request that forwards `new`.
fn request(id: u64, new: NewMessage) -> AppendRequest {
    AppendRequest {
        id,
        chat_id: new.chat_id,
        sender_id: new.sender_id,
        client_msg_id: new.client_msg_id,
        kind: new.kind as i32,
        text: new.text,
        file_id: new.file_id,
        attachment: new.attachment.map(|a| *a),
        reply_to_seq: new.reply_to_seq,
        forwarded_from: new.forwarded_from,
        mention_ids: new.mention_ids,
        now_ms: new.now_ms,
        members_seq: new.members_seq,
    }
}

/// The send a request forwards; `None` for a kind this node does not know (a newer node's).
fn new_message(request: AppendRequest) -> Option<NewMessage> {
    Some(NewMessage {
        kind: pb::MessageKind::try_from(request.kind).ok()?,
        chat_id: request.chat_id,
        sender_id: request.sender_id,
        client_msg_id: request.client_msg_id,
        text: request.text,
        file_id: request.file_id,
        attachment: request.attachment.map(Box::new),
        reply_to_seq: request.reply_to_seq,
        forwarded_from: request.forwarded_from,
        mention_ids: request.mention_ids,
        now_ms: request.now_ms,
        members_seq: request.members_seq,
    })
}

/// The answer to request `id` that carries `outcome`.
fn reply(id: u64, outcome: StoreResult<SendOutcome>) -> AppendReply {
    let (failure, detail) = match outcome {
        Ok(SendOutcome { message, event }) => {
            return AppendReply {
                id,
                message: Some(message),
                event,
                failure: AppendFailure::None as i32,
                detail: String::new(),
            };
        }
        Err(StoreError::NotFound("chat")) => (AppendFailure::NoChat, String::new()),
        Err(StoreError::NotFound("user")) => (AppendFailure::NoUser, String::new()),
        Err(StoreError::Unavailable(e)) => (AppendFailure::Unavailable, e),
        Err(StoreError::Busy(e)) => (AppendFailure::Busy, e),
        Err(StoreError::Conflict(ConflictKind::MembersChanged)) => {
            (AppendFailure::MembersChanged, String::new())
        }
        Err(e) => (AppendFailure::Other, e.to_string()),
    };
    AppendReply {
        id,
        message: None,
        event: None,
        failure: failure as i32,
        detail,
    }
}

/// What an answer says: the outcome, or `None` when this node should append itself (a failure
/// the wire does not carry exactly, or an answer it cannot read).
fn outcome(reply: AppendReply) -> Option<StoreResult<SendOutcome>> {
    let failure = AppendFailure::try_from(reply.failure).ok()?;
    let seqs = reply.message.iter().map(|m| m.seq);
    if !seqs
        .chain(reply.event.iter().map(|e| e.seq))
        .all(crate::delivery::is_chat_seq)
    {
        return None;
    }
    Some(match failure {
        AppendFailure::None => Ok(SendOutcome {
            message: reply.message?,
            event: reply.event,
        }),
        AppendFailure::NoChat => Err(StoreError::NotFound("chat")),
        AppendFailure::NoUser => Err(StoreError::NotFound("user")),
        AppendFailure::Unavailable => Err(StoreError::Unavailable(reply.detail)),
        AppendFailure::Busy => Err(StoreError::Busy(reply.detail)),
        AppendFailure::MembersChanged => Err(StoreError::Conflict(ConflictKind::MembersChanged)),
        AppendFailure::Other => return None,
    })
}

/// A node's send routing: forwards sends to their chats' owners, appends what other nodes
/// forward to it, and matches the answers to the sends waiting for them.
pub struct Router {
    node_id: String,
    broker: Arc<Broker>,
    registry: Arc<Registry>,
    /// The store below the routing: what this node appends with, for itself and for others.
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    /// How long an answer is waited for.
    forward_wait: Duration,
    next_id: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<AppendReply>>>,
    /// Owners that did not answer, and until when they get no sends.
    shunned: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Routing for this node (the broker's and registry's), appending with `store`, whose calls
    /// take at most `store_timeout`.
    pub fn new(
        broker: Arc<Broker>,
        registry: Arc<Registry>,
        store: Arc<dyn Store>,
        store_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Router {
        Router {
            node_id: registry.node_id().to_owned(),
            broker,
            registry,
            store,
            metrics,
            forward_wait: store_timeout + FORWARD_MARGIN,
            // A random start: a late answer meant for an earlier process under this node id (one
            // that restarted while its forward was in flight) names no send of this one.
            next_id: AtomicU64::new(rand::random()),
            waiting: Mutex::new(HashMap::new()),
            shunned: Mutex::new(HashMap::new()),
        }
    }

    /// The node that appends to `chat_id` now, if not this one: the owner among the live nodes
    /// that are not shunned.
    fn remote_owner(&self, chat_id: u64) -> Option<String> {
        let live = self.registry.live_ids();
        if live.len() < 2 {
            return None;
        }
        let now = Instant::now();
        let owner = {
            let mut shunned = lock(&self.shunned);
            shunned.retain(|_, until| *until > now);
            owner(
                chat_id,
                live.iter()
                    .map(String::as_str)
                    .filter(|n| !shunned.contains_key(*n)),
            )?
            .to_owned()
        };
        (owner != self.node_id).then_some(owner)
    }

    /// Appends `new`: through its chat's owner when that is another node, else here.
    pub async fn append(&self, new: NewMessage) -> StoreResult<SendOutcome> {
        let Some(owner) = self.remote_owner(new.chat_id) else {
            return self.store.append_message(new).await;
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id, tx);
        // Whichever way this call ends (answered, given up on, or dropped while it waits: the
        // request's connection closed), the entry goes.
        let waiting = Waiting { router: self, id };
        let forward = Body::Append(Box::new(request(id, new.clone())));
        let route = match self.broker.to_node_now(&owner, forward).await {
            Ok(0) => {
                // Not listening (stopped, or cut off from Redis): the registry lags.
                self.shun(owner);
                "owner_gone"
            }
            Ok(_) => match tokio::time::timeout(self.forward_wait, rx).await {
                Ok(Ok(reply)) => match outcome(reply) {
                    Some(outcome) => {
                        self.metrics.cluster_append("forwarded");
                        return outcome;
                    }
                    None => "retried_here",
                },
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(
                        owner,
                        chat = new.chat_id,
                        "the chat's owner did not answer a forwarded send: appending here"
                    );
                    self.shun(owner);
                    "owner_silent"
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "cannot forward a send: appending here");
                "redis_failed"
            }
        };
        drop(waiting);
        self.metrics.cluster_append(route);
        self.store.append_message(new).await
    }

    /// Routes nothing to `node` for [`SHUN`].
    fn shun(&self, node: String) {
        lock(&self.shunned).insert(node, Instant::now() + SHUN);
    }
}

/// A forwarded send's place among those waiting for an answer, given up when dropped.
struct Waiting<'a> {
    router: &'a Router,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.router.waiting).remove(&self.id);
    }
}

impl ForwardedAppends for Router {
    fn request(&self, origin: String, request: AppendRequest) {
        let id = request.id;
        let store = self.store.clone();
        let broker = self.broker.clone();
        self.metrics.cluster_append("served");
        tokio::spawn(async move {
            let outcome = match new_message(request) {
                Some(new) => store.append_message(new).await,
                None => Err(StoreError::Internal("unknown message kind".into())),
            };
            broker.to_node(&origin, Body::Appended(Box::new(reply(id, outcome))));
        });
    }

    fn reply(&self, reply: AppendReply) {
        if let Some(waiting) = lock(&self.waiting).remove(&reply.id) {
            let _ = waiting.send(reply);
        }
    }
}

/// The store of a cluster node: message appends go through the [`Router`], every other call
/// to the store below unchanged.
pub struct RoutedStore {
    router: Arc<Router>,
}

impl std::fmt::Debug for RoutedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedStore").finish_non_exhaustive()
    }
}

impl RoutedStore {
    /// `router`'s store, routing its appends.
    pub fn new(router: Arc<Router>) -> RoutedStore {
        RoutedStore { router }
    }
}

macro_rules! routed {
    (write append_message $s:ident ($new:ident)) => {
        $s.router.append($new).await
    };
    ($class:ident $method:ident $s:ident ($($arg:ident),*)) => {
        $s.router.store.$method($($arg),*).await
    };
}

delegate_store!(RoutedStore, routed);

forward_store!(RoutedStore, router.store);

#[cfg(test)]
mod tests;
