//! The relay: how delivery reaches the other nodes of a cluster. Delivery hands it what it has
//! already delivered locally, and the relay brings other nodes' events back to this node's
//! [`Inbound`] side (delivery), where they go through the sequencer and redaction like local
//! ones.
//!
//! Two implementations: [`InProcessRelay`] connects nodes that live in one process (a single
//! node is one with no peers; tests run several), and the Redis relay (`cluster::broker`)
//! connects processes.
//!
//! What crosses between nodes is one message per chat event, not per recipient: the event's
//! member frame and what it changes about membership. Each node resolves the recipients among
//! its own connections from the chat's interest, which membership events keep current, and
//! redacts per viewer itself.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use futures_util::future::BoxFuture;

use super::members::MembershipChange;
use super::redact::{ChatEventFrames, NoticeFrames};
use super::registry::ConnHandle;

/// Which connections of its users a notice is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// Every connection that may see it.
    All,
    /// Those that negotiated `calls` (call events).
    Calls,
    /// Those that negotiated `group_calls` (group call events).
    GroupCalls,
    /// One connection, by its id (unique in the cluster): a call signal for one device.
    Connection(u64),
}

impl Only {
    /// True when `conn` is one the notice is for.
    pub fn admits(self, conn: &ConnHandle) -> bool {
        match self {
            Only::All => true,
            Only::Calls => conn.calls,
            Only::GroupCalls => conn.group_calls,
            Only::Connection(id) => conn.conn_id == id,
        }
    }
}

/// The pending confirmation of a new subscription: await it (outside any lock) to know the
/// subscription is live.
pub type Confirmation = BoxFuture<'static, ()>;

/// The relay could not answer (its backend is down); callers fall back to what this node knows.
#[derive(Debug, thiserror::Error)]
#[error("relay unavailable: {0}")]
pub struct RelayUnavailable(pub String);

/// The cross-node transport below delivery.
#[async_trait]
pub trait Relay: Send + Sync + fmt::Debug {
    /// True when other nodes may exist: this node then keeps each chat's interest (its members
    /// connected here) and subscribes to what it needs.
    fn networked(&self) -> bool;

    /// Publishes a committed chat event (already delivered on this node).
    fn chat_event(&self, frames: &Arc<ChatEventFrames>, change: Option<&MembershipChange>);

    /// Publishes a notice for the connections of `users` that `only` names (already delivered
    /// on this node). `chat_id` routes it with the chat's events when the users are its members.
    fn notice(&self, users: &[u64], chat_id: Option<u64>, only: Only, notice: &Arc<NoticeFrames>);

    /// Publishes a typing signal of `sender` for the `candidates` connected elsewhere (the
    /// sender's blocks already applied).
    fn typing(&self, chat_id: u64, sender: u64, candidates: &[u64], expires_in_ms: u32);

    /// Closes the user's connections (of one session, or all) on the other nodes.
    fn kick(&self, user_id: u64, session_id: Option<u64>, farewell: &Arc<NoticeFrames>);

    /// Tells the other nodes that the user's blocks changed.
    fn blocks_changed(&self, user_id: u64);

    /// The user's first connection on this node authenticated: start hearing what is addressed
    /// to them. Returns once that is live (or could not be made so, briefly).
    async fn user_connected(&self, user_id: u64);

    /// The user's last connection on this node closed.
    fn user_disconnected(&self, user_id: u64);

    /// A chat got its first member connected here: start hearing its events.
    fn hold_chat(&self, chat_id: u64) -> Option<Confirmation>;

    /// A chat lost its last member connected here.
    fn release_chat(&self, chat_id: u64);

    /// Records that the user is online on this node. True when they already were on another.
    async fn presence_up(&self, user_id: u64) -> Result<bool, RelayUnavailable>;

    /// Records that the user left this node. True when they are still online on another.
    async fn presence_down(&self, user_id: u64) -> Result<bool, RelayUnavailable>;

    /// The users among `users` online on another node (empty when unknown).
    async fn online_elsewhere(&self, users: &[u64]) -> HashSet<u64>;
}

/// What a relay hands the node it serves: other nodes' events, to deliver here.
#[async_trait]
pub trait Inbound: Send + Sync {
    /// A chat event another node committed: to this node's members of the chat (or, with
    /// `joiners`, to those of the members it adds connected here), in seq order, redacted per
    /// viewer.
    fn relayed_chat_event(
        &self,
        frames: Arc<ChatEventFrames>,
        change: Option<MembershipChange>,
        joiners: Vec<u64>,
    );

    /// A notice for `users`, to the connections here of those who may see it that `only` names.
    fn relayed_notice(&self, users: &[u64], only: Only, notice: Arc<NoticeFrames>);

    /// A typing signal for the `candidates` connected here who did not block the sender.
    /// Returns how many went as datagrams.
    fn relayed_typing(
        &self,
        chat_id: u64,
        sender: u64,
        candidates: &[u64],
        expires_in_ms: u32,
    ) -> u64;

    /// Closes the user's connections here (of one session, or all) after writing `farewell`.
    fn relayed_kick(&self, user_id: u64, session_id: Option<u64>, farewell: Arc<NoticeFrames>);

    /// The user's blocks changed on another node.
    async fn relayed_blocks_changed(&self, user_id: u64);

    /// The relay missed messages (its link was down).
    fn relay_resubscribed(&self);
}

/// Nodes in one process, joined by an [`InProcessBus`].
#[derive(Debug)]
pub struct InProcessRelay {
    bus: Arc<InProcessBus>,
    node: usize,
}

/// The bus several in-process nodes share. Every node gets every event and keeps those its
/// interest names, like a node subscribed to every channel.
#[derive(Debug, Default)]
pub struct InProcessBus {
    nodes: Mutex<Vec<Option<Weak<dyn Inbound>>>>,
    /// Which nodes each user is online on.
    presence: Mutex<HashMap<u64, HashSet<usize>>>,
}

impl InProcessBus {
    /// A bus without nodes.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A relay for one more node on this bus; [`join`](Self::join) the node (by the relay's
    /// [`index`](InProcessRelay::index)) once its delivery exists.
    pub fn relay(self: &Arc<Self>) -> InProcessRelay {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.push(None);
        InProcessRelay {
            bus: self.clone(),
            node: nodes.len() - 1,
        }
    }

    /// Connects `node` (the inbound side of the node built with the relay of index `index`) to
    /// the bus.
    #[cfg(test)]
    pub fn join<N: Inbound + 'static>(&self, index: usize, node: &Arc<N>) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = nodes.get_mut(index) {
            let node: Arc<dyn Inbound> = node.clone();
            *slot = Some(Arc::downgrade(&node));
        }
    }

    /// The other live nodes.
    fn others(&self, me: usize) -> Vec<Arc<dyn Inbound>> {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != me)
            .filter_map(|(_, n)| n.as_ref()?.upgrade())
            .collect()
    }
}

impl InProcessRelay {
    /// A node alone: nothing to relay.
    pub fn solo() -> Self {
        InProcessBus::new().relay()
    }

    /// This node's place on its bus.
    #[cfg(any(test, feature = "testing"))]
    pub fn index(&self) -> usize {
        self.node
    }
}

#[async_trait]
impl Relay for InProcessRelay {
    fn networked(&self) -> bool {
        self.bus
            .nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
            > 1
    }

    fn chat_event(&self, frames: &Arc<ChatEventFrames>, change: Option<&MembershipChange>) {
        for node in self.bus.others(self.node) {
            node.relayed_chat_event(frames.clone(), change.cloned(), Vec::new());
            if let Some(change) = change.filter(|c| !c.added.is_empty()) {
                node.relayed_chat_event(frames.clone(), Some(change.clone()), change.added.clone());
            }
        }
    }

    fn notice(&self, users: &[u64], _chat_id: Option<u64>, only: Only, notice: &Arc<NoticeFrames>) {
        for node in self.bus.others(self.node) {
            node.relayed_notice(users, only, notice.clone());
        }
    }

    fn typing(&self, chat_id: u64, sender: u64, candidates: &[u64], expires_in_ms: u32) {
        for node in self.bus.others(self.node) {
            // In-process nodes share nothing to count datagrams in.
            node.relayed_typing(chat_id, sender, candidates, expires_in_ms);
        }
    }

    fn kick(&self, user_id: u64, session_id: Option<u64>, farewell: &Arc<NoticeFrames>) {
        for node in self.bus.others(self.node) {
            node.relayed_kick(user_id, session_id, farewell.clone());
        }
    }

    fn blocks_changed(&self, user_id: u64) {
        for node in self.bus.others(self.node) {
            tokio::spawn(async move { node.relayed_blocks_changed(user_id).await });
        }
    }

    async fn user_connected(&self, _user_id: u64) {}

    fn user_disconnected(&self, _user_id: u64) {}

    fn hold_chat(&self, _chat_id: u64) -> Option<Confirmation> {
        None
    }

    fn release_chat(&self, _chat_id: u64) {}

    async fn presence_up(&self, user_id: u64) -> Result<bool, RelayUnavailable> {
        let mut presence = self.bus.presence.lock().unwrap_or_else(|e| e.into_inner());
        let nodes = presence.entry(user_id).or_default();
        let elsewhere = nodes.iter().any(|n| *n != self.node);
        nodes.insert(self.node);
        Ok(elsewhere)
    }

    async fn presence_down(&self, user_id: u64) -> Result<bool, RelayUnavailable> {
        let mut presence = self.bus.presence.lock().unwrap_or_else(|e| e.into_inner());
        let Some(nodes) = presence.get_mut(&user_id) else {
            return Ok(false);
        };
        nodes.remove(&self.node);
        let elsewhere = !nodes.is_empty();
        if !elsewhere {
            presence.remove(&user_id);
        }
        Ok(elsewhere)
    }

    async fn online_elsewhere(&self, users: &[u64]) -> HashSet<u64> {
        let presence = self.bus.presence.lock().unwrap_or_else(|e| e.into_inner());
        users
            .iter()
            .copied()
            .filter(|u| {
                presence
                    .get(u)
                    .is_some_and(|nodes| nodes.iter().any(|n| *n != self.node))
            })
            .collect()
    }
}
