//! The per-chat sequencer: chat events leave this node in sequence order, even when the handlers
//! that committed them finish in another order or other nodes' events arrive in another order.
//! It also knows, for each chat, which users connected here are its members (the chat's
//! *interest*), for events relayed from other nodes, whose recipients are resolved here.
//!
//! State is sharded by chat id: sends to different chats take different locks and never wait on
//! each other; sends to one chat are ordered by that chat's shard lock. An event is handed to the
//! connection queues while the lock is held: released after deciding the order, a concurrent
//! publisher of the next seq could reach some connections first, and every member would see a
//! gap and fetch it. Handing a frame to a queue is a non-blocking push, so the lock is held for
//! microseconds. Lock order: a sequencer shard, then a registry shard, then a connection queue.
//!
//! An event that arrives before its predecessor is held back for at most [`REORDER_WAIT`] (its
//! predecessor's handler may have failed after the commit, or another node is slow to relay
//! it). Then the node reads what is missing from the store, once for all its members here, and
//! releases it in order with what was held ([`Sequencer::take_gaps`], [`Sequencer::filled`]):
//! left to the clients, every member would fetch the same gap, which on a loaded store turns
//! one late event into a storm of reads. What the store cannot give is left for clients to
//! fetch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::members::{Audience, MemberCache, MembershipChange, sort_for_delivery};
use super::recent_members::RecentMembers;
use super::redact::ChatEventFrames;
use super::registry::Registry;
use super::relay::{Confirmation, Relay};
use super::sharded::Sharded;

/// How long an event is held back while an earlier one is still on its way.
pub const REORDER_WAIT: Duration = Duration::from_millis(250);

/// Ordered chats kept per shard; beyond that, chats with nothing held are forgotten (their next
/// event is then taken as the first one seen, which is harmless).
const MAX_ORDERED_PER_SHARD: usize = 8_192;

/// Who gets a chat event on this node.
#[derive(Debug)]
pub(super) enum Route {
    /// Committed here: the handler's audience.
    Audience(Audience),
    /// From another node: this node's members of the chat, except the users who get their own
    /// copy (members the event adds, see [`Route::Joiners`]).
    LocalMembers {
        /// Users left out.
        except: Vec<u64>,
    },
    /// From another node, the copy for members the event adds, connected here (this node may
    /// not hear the chat yet).
    Joiners(Vec<u64>),
}

/// One chat event on its way to this node's connections.
#[derive(Debug)]
pub(super) struct Sequenced {
    /// The event, encoded per class of viewer.
    pub frames: Arc<ChatEventFrames>,
    /// Who gets it.
    pub route: Route,
    /// What it changes about membership (applied to the chat's interest once delivered).
    pub change: Option<MembershipChange>,
}

#[derive(Debug, Default)]
struct ChatOrder {
    last: u64,
    /// By seq; several of one seq when copies for different routes arrived (the chat's and
    /// that of the members it adds, from another node).
    held: BTreeMap<u64, Vec<Sequenced>>,
    oldest_held: Option<Instant>,
    /// A read of what is missing is under way (see [`Sequencer::take_gaps`]).
    filling: bool,
}

/// Events a chat's held events wait for: those with `after < seq <= up_to` that are not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gap {
    /// The chat.
    pub chat_id: u64,
    /// The last seq released.
    pub after: u64,
    /// The seq before the last one held.
    pub up_to: u64,
}

#[derive(Debug, Default)]
pub(super) struct Shard {
    order: HashMap<u64, ChatOrder>,
    /// The chats of this shard with members connected here, and those members (in delivery
    /// order). Only kept when the node is networked.
    interest: HashMap<u64, Vec<u64>>,
    /// The reverse of `interest`, for this shard's chats.
    user_chats: HashMap<u64, HashSet<u64>>,
    /// Who recently joined or left this shard's chats, to correct audiences read before.
    recent: RecentMembers,
}

/// What the sequencer works with besides its own state.
pub(super) struct Context<'a> {
    /// This node's connections.
    pub registry: &'a Registry,
    /// The member cache (dropped for chats this node stops hearing about).
    pub members: &'a MemberCache,
    /// The relay, when the node is networked (interest is kept only then).
    pub relay: Option<&'a dyn Relay>,
}

/// The sequencer of this node.
#[derive(Debug, Default)]
pub(super) struct Sequencer {
    shards: Sharded<Shard>,
}

impl Shard {
    /// Hands one event to its recipients and applies its membership change.
    fn release(&mut self, ctx: &Context<'_>, item: Sequenced) {
        let chat = item.frames.chat_id();
        let seq = item.frames.seq();
        match &item.route {
            // Read by the handler before its commit: off by a change committed in between.
            Route::Audience(audience) => match self.recent.correct(chat, seq, audience) {
                None => {
                    for users in audience.parts() {
                        ctx.registry.deliver_chat(users, &item.frames);
                    }
                }
                Some(members) => ctx.registry.deliver_chat(&members, &item.frames),
            },
            Route::LocalMembers { except } => {
                if let Some(local) = self.interest.get(&chat) {
                    if except.is_empty() {
                        ctx.registry.deliver_chat(local, &item.frames);
                    } else {
                        let users: Vec<u64> = local
                            .iter()
                            .copied()
                            .filter(|u| !except.contains(u))
                            .collect();
                        ctx.registry.deliver_chat(&users, &item.frames);
                    }
                }
            }
            Route::Joiners(users) => ctx.registry.deliver_chat(users, &item.frames),
        }
        if let Some(change) = &item.change {
            self.recent.changed(chat, seq, change, Instant::now());
        }
        if let (Some(change), Some(relay)) = (&item.change, ctx.relay) {
            self.apply(ctx, relay, chat, change);
        }
    }

    /// Local members an event adds start hearing the chat, those it removes stop (after it was
    /// delivered to them); a deleted chat is forgotten.
    fn apply(
        &mut self,
        ctx: &Context<'_>,
        relay: &dyn Relay,
        chat: u64,
        change: &MembershipChange,
    ) {
        for user in ctx.registry.local_among(&change.added) {
            if let Some(confirmation) = self.add(relay, chat, user) {
                // Not awaited: this runs on the delivery path; the joiner's own copy covers the
                // events until the subscription is live.
                drop(confirmation);
            }
        }
        for &user in &change.removed {
            self.remove(ctx, relay, chat, user);
        }
        if change.deleted {
            let members = self.interest.remove(&chat).unwrap_or_default();
            for user in members {
                self.forget_user_chat(user, chat);
            }
            self.release_chat(ctx, relay, chat);
        }
    }

    /// Records that `user` (connected here) is a member of `chat`; subscribes the chat when it is
    /// the first. Returns the subscription's confirmation.
    fn add(&mut self, relay: &dyn Relay, chat: u64, user: u64) -> Option<Confirmation> {
        self.user_chats.entry(user).or_default().insert(chat);
        let local = self.interest.entry(chat).or_default();
        if local.contains(&user) {
            return None;
        }
        let first = local.is_empty();
        local.push(user);
        sort_for_delivery(local);
        if first { relay.hold_chat(chat) } else { None }
    }

    /// Forgets that `user` is a member of `chat`; releases the chat when nobody here is.
    fn remove(&mut self, ctx: &Context<'_>, relay: &dyn Relay, chat: u64, user: u64) {
        self.forget_user_chat(user, chat);
        let Some(local) = self.interest.get_mut(&chat) else {
            return;
        };
        let before = local.len();
        local.retain(|u| *u != user);
        if local.len() != before && local.is_empty() {
            self.interest.remove(&chat);
            self.release_chat(ctx, relay, chat);
        }
    }

    fn forget_user_chat(&mut self, user: u64, chat: u64) {
        if let Some(chats) = self.user_chats.get_mut(&user) {
            chats.remove(&chat);
            if chats.is_empty() {
                self.user_chats.remove(&user);
            }
        }
    }

    /// Nobody here hears about `chat` any more: unsubscribe, deliver what is held, and forget
    /// its order (the next event is not held back for ones never seen) and its cached members
    /// (a cached list would go stale).
    fn release_chat(&mut self, ctx: &Context<'_>, relay: &dyn Relay, chat: u64) {
        relay.release_chat(chat);
        if let Some(order) = self.order.remove(&chat) {
            for item in order.held.into_values().flatten() {
                self.release(ctx, item);
            }
        }
        ctx.members.invalidate(chat);
    }
}

impl Sequencer {
    /// Takes one event: delivers it now, with any held successors, when it is next in its
    /// chat's order (or the first seen, or late: clients deduplicate), else holds it back.
    pub fn publish(&self, ctx: &Context<'_>, item: Sequenced) {
        let chat = item.frames.chat_id();
        let seq = item.frames.seq();
        let mut shard = self.shards.lock(chat);
        let order = shard.order.entry(chat).or_default();
        if order.last != 0 && seq > order.last + 1 {
            order.held.entry(seq).or_default().push(item);
            order.oldest_held.get_or_insert_with(Instant::now);
            return;
        }
        order.last = order.last.max(seq);
        let mut ready = vec![item];
        while let Some(next) = order.held.remove(&(order.last + 1)) {
            order.last += 1;
            ready.extend(next);
        }
        if order.held.is_empty() {
            order.oldest_held = None;
        }
        for item in ready {
            shard.release(ctx, item);
        }
    }

    /// The gaps of chats whose events have been held back for longer than [`REORDER_WAIT`];
    /// each is marked as being filled until [`filled`](Self::filled) is called for it. Called
    /// periodically.
    pub fn take_gaps(&self, now: Instant) -> Vec<Gap> {
        let mut gaps = Vec::new();
        self.shards.for_each(|shard| {
            for (&chat_id, order) in &mut shard.order {
                let stale = order
                    .oldest_held
                    .is_some_and(|t| now.duration_since(t) >= REORDER_WAIT);
                if let (true, false, Some(&last_held)) =
                    (stale, order.filling, order.held.keys().next_back())
                {
                    order.filling = true;
                    gaps.push(Gap {
                        chat_id,
                        after: order.last,
                        up_to: last_held - 1,
                    });
                }
            }
            shard.recent.prune(now);
            if shard.order.len() > MAX_ORDERED_PER_SHARD {
                shard.order.retain(|_, o| !o.held.is_empty() || o.filling);
            }
        });
        gaps
    }

    /// Ends the filling of `gap` with the events `found` for it (those that arrived meanwhile
    /// are not delivered twice): releases, in order, everything held up to the end of the gap,
    /// and what follows it without a gap. Seqs still missing are skipped (clients fetch them).
    pub fn filled(&self, ctx: &Context<'_>, gap: Gap, found: Vec<Sequenced>) {
        let mut shard = self.shards.lock(gap.chat_id);
        let Some(order) = shard.order.get_mut(&gap.chat_id).filter(|o| o.filling) else {
            // The chat's order was forgotten meanwhile, and what it held released.
            return;
        };
        order.filling = false;
        for item in found {
            let seq = item.frames.seq();
            if seq > order.last {
                order.held.entry(seq).or_insert_with(|| vec![item]);
            }
        }
        let mut ready = Vec::new();
        while let Some(next) = order.held.first_entry() {
            let seq = *next.key();
            if seq > gap.up_to + 1 && seq != order.last + 1 {
                break;
            }
            order.last = order.last.max(seq);
            ready.extend(next.remove());
        }
        // What is still held waits for a gap that opened after this one.
        order.oldest_held = (!order.held.is_empty()).then_some(Instant::now());
        for item in ready {
            shard.release(ctx, item);
        }
    }

    /// Forgets the order of every chat (events may have been missed, e.g. while the cluster's
    /// pub/sub was down), delivering what is held first.
    pub fn forget_all(&self, ctx: &Context<'_>) {
        self.shards.for_each(|shard| {
            let orders = std::mem::take(&mut shard.order);
            for (_, order) in orders {
                for item in order.held.into_values().flatten() {
                    shard.release(ctx, item);
                }
            }
        });
    }

    /// The user (connected here) is a member of `chats`: each chat is heard from now on. Stops
    /// early when the user disconnected meanwhile. Returns the confirmations of new
    /// subscriptions, to await outside any lock.
    pub fn user_joined_chats(
        &self,
        ctx: &Context<'_>,
        relay: &dyn Relay,
        user: u64,
        chats: &[u64],
    ) -> Vec<Confirmation> {
        let mut confirmations = Vec::new();
        for &chat in chats {
            let mut shard = self.shards.lock(chat);
            // Checked under the chat's lock: a disconnect unregisters first and then clears every
            // shard, so either it sees this entry or this sees the user gone.
            if !ctx.registry.is_online(user) {
                break;
            }
            confirmations.extend(shard.add(relay, chat, user));
        }
        confirmations
    }

    /// The user's last connection here closed: release what only they held.
    pub fn user_left(&self, ctx: &Context<'_>, relay: &dyn Relay, user: u64) {
        self.shards.for_each(|shard| {
            let chats = shard.user_chats.remove(&user).unwrap_or_default();
            for chat in chats {
                if let Some(local) = shard.interest.get_mut(&chat) {
                    local.retain(|u| *u != user);
                    if local.is_empty() {
                        shard.interest.remove(&chat);
                        shard.release_chat(ctx, relay, chat);
                    }
                }
            }
        });
    }

    /// Holds the lock of `chat`'s shard (tests: a delivery that takes long).
    #[cfg(test)]
    pub fn hold_shard_of(&self, chat: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards.lock(chat)
    }

    /// Chats with members connected here.
    #[cfg(any(test, feature = "testing"))]
    pub fn chats_heard(&self) -> usize {
        let mut n = 0;
        self.shards.for_each(|shard| n += shard.interest.len());
        n
    }
}
