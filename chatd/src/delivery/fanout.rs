//! [`Fanout`]: the one API handlers use to reach connections, on this node and (in cluster mode)
//! on every other node.
//!
//! Every call delivers locally through the [`Hub`] first, exactly as a single node does, with
//! the event encoded once. In cluster mode it then hands the same encoded frame to the
//! [`Broker`], which publishes it to the other nodes without waiting for Redis; without Redis
//! there is no extra work at all.

use std::sync::Arc;

use chatproto::pb;

use crate::cluster::broker::Broker;
use crate::cluster::wire::membership_change;
use crate::delivery::hub::{Copies, Hub, encode_chat_event, encode_event};
use crate::state::AppState;
use crate::store::StoreResult;

/// Local hub plus, in cluster mode, the broker.
#[derive(Debug, Clone)]
pub struct Fanout {
    hub: Arc<Hub>,
    broker: Option<Arc<Broker>>,
}

impl Fanout {
    /// Fan-out through `hub`, and through `broker` to other nodes when given.
    pub fn new(hub: Arc<Hub>, broker: Option<Arc<Broker>>) -> Self {
        Fanout { hub, broker }
    }

    /// Publishes a committed, sequenced chat event to `recipients` (in sequence order per chat on
    /// every node), and `placeholder`, the same event as members who blocked its author see it
    /// (spec 9.2), to the users given with it.
    pub fn publish_chat_event(
        &self,
        recipients: Vec<u64>,
        event: &pb::ChatEvent,
        placeholder: Option<(&[u64], &pb::ChatEvent)>,
    ) {
        let mut copies: Copies = vec![(recipients, encode_chat_event(event))];
        if let Some((users, masked)) = placeholder.filter(|(users, _)| !users.is_empty()) {
            copies.push((users.to_vec(), encode_chat_event(masked)));
        }
        let Some(broker) = &self.broker else {
            self.hub
                .publish_chat_frames(event.chat_id, event.seq, copies);
            return;
        };
        let change = membership_change(event);
        broker.chat_event(event.chat_id, event.seq, &copies, change.as_ref());
        self.hub
            .publish_chat_frames(event.chat_id, event.seq, copies);
        if let Some(change) = change {
            broker.apply_membership(
                event.chat_id,
                &change.added,
                &change.removed,
                change.deleted,
            );
        }
    }

    /// Delivers an unsequenced event to every connection of `users` except `skip_conn` (a
    /// connection of this node).
    pub fn deliver_event(&self, users: &[u64], event: &pb::Event, skip_conn: Option<u64>) {
        let frame = encode_event(event);
        self.hub.deliver(users, &frame, skip_conn);
        if let Some(broker) = &self.broker {
            broker.user_event(users, &frame, None);
        }
    }

    /// [`deliver_event`](Self::deliver_event) for users who are members of `chat_id` (receipts):
    /// other nodes get it on the chat's channel.
    pub fn deliver_chat_signal(
        &self,
        chat_id: u64,
        users: &[u64],
        event: &pb::Event,
        skip_conn: Option<u64>,
    ) {
        let frame = encode_event(event);
        self.hub.deliver(users, &frame, skip_conn);
        if let Some(broker) = &self.broker {
            broker.user_event(users, &frame, Some(chat_id));
        }
    }

    /// Sends `sender`'s typing signal in `chat_id` to the other `members`, except those the
    /// sender blocked and those who blocked the sender (checked where they are connected).
    pub async fn typing(
        &self,
        state: &AppState,
        chat_id: u64,
        sender: u64,
        members: &[u64],
        expires_in_ms: u32,
    ) -> StoreResult<()> {
        let others: Vec<u64> = members.iter().copied().filter(|u| *u != sender).collect();
        let local = self.hub.local_among(&others);
        if local.is_empty() && self.broker.is_none() {
            return Ok(());
        }
        let blocked_by_me = state.store.blocked(sender).await?;
        let mut recipients = Vec::with_capacity(local.len());
        for user in local {
            if !blocked_by_me.contains(&user) && !state.store.is_blocked(user, sender).await? {
                recipients.push(user);
            }
        }
        if !recipients.is_empty() {
            let typing = pb::Typing {
                chat_id,
                user_id: sender,
                expires_in_ms,
            };
            let datagrams = self.hub.deliver_typing(&recipients, typing, None);
            state.metrics.datagrams_sent(datagrams);
        }
        if let Some(broker) = &self.broker {
            let candidates = others
                .into_iter()
                .filter(|u| !blocked_by_me.contains(u))
                .collect();
            broker.typing(chat_id, sender, candidates, expires_in_ms);
        }
        Ok(())
    }

    /// Closes every connection of `user_id` (or of one session of theirs) on every node, after
    /// writing `farewell` on their event streams.
    pub fn kick_user(&self, user_id: u64, session_id: Option<u64>, farewell: &pb::Event) {
        let frame = encode_event(farewell);
        self.hub.kick_frame(user_id, session_id, &frame);
        if let Some(broker) = &self.broker {
            broker.kick(user_id, session_id, &frame);
        }
    }

    /// The user's first connection on this node authenticated (cluster mode: subscribe what
    /// they need; returns once subscribed or briefly waited).
    pub async fn user_connected(&self, state: &AppState, user_id: u64) {
        if let Some(broker) = &self.broker {
            broker.user_connected(state.store.as_ref(), user_id).await;
        }
    }

    /// The user's last connection on this node closed.
    pub fn user_disconnected(&self, user_id: u64) {
        if let Some(broker) = &self.broker {
            broker.user_disconnected(user_id);
        }
    }
}
