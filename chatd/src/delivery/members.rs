//! Chat membership as delivery sees it: the member cache that every send reads (for fan-out and
//! authorization), the audience of one event, and what an event changes about membership.
//!
//! Cache entries are shared, immutable snapshots ([`Arc<ChatMembers>`]): a send hands its
//! snapshot to delivery without copying the list. An entry is dropped when delivery sees an event
//! that changes the chat's membership (committed here or relayed from another node, see
//! [`MembershipChange`]), when this node stops hearing about the chat, and entirely after the
//! cluster link was down. In cluster mode entries also expire after a short TTL, so a missed
//! invalidation cannot keep a stale list for long.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatproto::pb;

use super::sharded::shard_of;
use crate::store::{Store, StoreResult, changes_membership};

/// The members of one chat and their roles; immutable once built.
#[derive(Debug, Clone, Default)]
pub struct ChatMembers {
    kind: pb::ChatKind,
    /// The chat's `members_seq` when read: a send judged on these members is appended only if
    /// membership has not changed since (see [`crate::store::NewMessage::members_seq`]).
    members_seq: u64,
    roles: HashMap<u64, pb::MemberRole>,
    /// Every member's id, in the order delivery visits them (grouped by registry shard).
    ids: Vec<u64>,
}

/// Orders user ids the way delivery visits them: grouped by registry shard, so a delivery takes
/// each shard's lock once.
pub(super) fn sort_for_delivery(ids: &mut [u64]) {
    ids.sort_unstable_by_key(|&u| (shard_of(u), u));
}

impl ChatMembers {
    /// A chat of `kind` with `members` (user id, role).
    pub fn new(
        kind: pb::ChatKind,
        members: impl IntoIterator<Item = (u64, pb::MemberRole)>,
    ) -> Self {
        let roles: HashMap<u64, pb::MemberRole> = members.into_iter().collect();
        let mut ids: Vec<u64> = roles.keys().copied().collect();
        sort_for_delivery(&mut ids);
        ChatMembers {
            kind,
            members_seq: 0,
            roles,
            ids,
        }
    }

    /// The same members, read when the chat's `members_seq` was `members_seq`.
    pub fn read_at(self, members_seq: u64) -> Self {
        ChatMembers {
            members_seq,
            ..self
        }
    }

    /// The chat's `members_seq` when these members were read.
    pub fn members_seq(&self) -> u64 {
        self.members_seq
    }

    /// The chat's kind.
    pub fn kind(&self) -> pb::ChatKind {
        self.kind
    }

    /// The member's role, if they are one.
    pub fn role_of(&self, user_id: u64) -> Option<pb::MemberRole> {
        self.roles.get(&user_id).copied()
    }

    /// Every member's id (in no meaningful order).
    pub fn ids(&self) -> &[u64] {
        &self.ids
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when nobody is a member.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Who gets a chat event on the node that committed it: the chat's members as the handler saw
/// them (shared, not copied), plus users the event concerns who are not among them (members it
/// adds).
#[derive(Debug, Clone, Default)]
pub struct Audience {
    members: Option<Arc<ChatMembers>>,
    extra: Vec<u64>,
}

impl Audience {
    /// The members of a chat.
    pub fn members(members: Arc<ChatMembers>) -> Self {
        Audience {
            members: Some(members),
            extra: Vec::new(),
        }
    }

    /// Exactly these users.
    pub fn users(mut users: Vec<u64>) -> Self {
        sort_for_delivery(&mut users);
        users.dedup();
        Audience {
            members: None,
            extra: users,
        }
    }

    /// Whether `user` is in it.
    pub(super) fn contains(&self, user: u64) -> bool {
        self.members
            .as_ref()
            .is_some_and(|m| m.role_of(user).is_some())
            || self.extra.contains(&user)
    }

    /// Also `users` (those already in it are not repeated).
    pub fn and(mut self, users: &[u64]) -> Self {
        let new: Vec<u64> = users
            .iter()
            .copied()
            .filter(|&u| !self.contains(u))
            .collect();
        self.extra.extend(new);
        sort_for_delivery(&mut self.extra);
        self.extra.dedup();
        self
    }

    /// The users, as slices in delivery order (the members, then the others).
    pub(super) fn parts(&self) -> [&[u64]; 2] {
        [
            self.members.as_deref().map_or(&[][..], ChatMembers::ids),
            &self.extra,
        ]
    }
}

/// What a chat event changes about membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// New members.
    pub added: Vec<u64>,
    /// Members removed (or who left).
    pub removed: Vec<u64>,
    /// The chat is deleted.
    pub deleted: bool,
}

impl MembershipChange {
    /// The membership change `event` makes, `None` for events that change neither members nor
    /// roles ([`changes_membership`]). Role changes give an empty change (member caches must
    /// still drop the chat).
    pub fn of(event: &pb::ChatEvent) -> Option<MembershipChange> {
        use pb::chat_event::Body as B;
        let body = event.body.as_ref().filter(|b| changes_membership(b))?;
        Some(match body {
            B::ChatCreated(chat) => MembershipChange {
                added: chat.members.iter().map(|m| m.user_id).collect(),
                ..Default::default()
            },
            B::MembersAdded(added) => MembershipChange {
                added: added.members.iter().map(|m| m.user_id).collect(),
                ..Default::default()
            },
            B::MemberRemoved(removed) => MembershipChange {
                removed: vec![removed.user_id],
                ..Default::default()
            },
            B::ChatDeleted(_) => MembershipChange {
                deleted: true,
                ..Default::default()
            },
            _ => MembershipChange::default(),
        })
    }
}

/// Bounded cache of [`ChatMembers`] by chat id.
#[derive(Debug, Default)]
pub struct MemberCache {
    entries: Mutex<HashMap<u64, (Arc<ChatMembers>, Instant)>>,
    ttl: Option<Duration>,
    // Bumped by every invalidation: a read that started before one must not insert what it read,
    // or a membership change racing with it would be cached stale.
    epoch: AtomicU64,
}

/// Chats cached at most; beyond that the cache starts over (cheap and good enough: hot chats
/// come back at once).
const MAX_ENTRIES: usize = 50_000;

impl MemberCache {
    /// A cache whose entries never expire (one node: every change is seen here).
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache whose entries expire `ttl` after they were loaded.
    pub fn with_ttl(ttl: Duration) -> Self {
        MemberCache {
            ttl: Some(ttl),
            ..MemberCache::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Arc<ChatMembers>, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The members of a chat, from the cache or the store. `None` when the chat does not exist.
    pub async fn get(
        &self,
        store: &dyn Store,
        chat_id: u64,
    ) -> StoreResult<Option<Arc<ChatMembers>>> {
        if let Some((hit, loaded)) = self.lock().get(&chat_id)
            && self.ttl.is_none_or(|ttl| loaded.elapsed() < ttl)
        {
            return Ok(Some(hit.clone()));
        }
        self.load(store, chat_id, false).await
    }

    /// The members of a chat read again from the store, past every cache (this one, and a read
    /// cache in front of the store: [`fresh_chat`](crate::store::ChatStore::fresh_chat)), for
    /// a write the store refused because the membership it was judged on had changed. `None`
    /// when the chat does not exist.
    pub async fn reload(
        &self,
        store: &dyn Store,
        chat_id: u64,
    ) -> StoreResult<Option<Arc<ChatMembers>>> {
        self.invalidate(chat_id);
        self.load(store, chat_id, true).await
    }

    async fn load(
        &self,
        store: &dyn Store,
        chat_id: u64,
        fresh: bool,
    ) -> StoreResult<Option<Arc<ChatMembers>>> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let chat = if fresh {
            store.fresh_chat(chat_id).await?
        } else {
            store.chat(chat_id).await?
        };
        let Some(chat) = chat else {
            return Ok(None);
        };
        let members = store.members(chat_id).await?;
        // The chat first: members read after it are at least as new as its `members_seq`, so a
        // send judged on them is refused rather than let through when the two differ.
        let entry = Arc::new(
            ChatMembers::new(chat.kind, members.into_iter().map(|m| (m.user_id, m.role)))
                .read_at(chat.members_seq),
        );
        let mut entries = self.lock();
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return Ok(Some(entry));
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(chat_id, (entry.clone(), Instant::now()));
        Ok(Some(entry))
    }

    /// Forgets a chat (its membership or kind changed).
    pub fn invalidate(&self, chat_id: u64) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        entries.remove(&chat_id);
    }

    /// Forgets every chat (invalidations may have been missed).
    pub fn clear(&self) {
        let mut entries = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_changes_from_events() {
        let event = |body| pb::ChatEvent {
            chat_id: 1,
            seq: 2,
            body: Some(body),
            ..Default::default()
        };
        use pb::chat_event::Body as B;
        let member = |user_id| pb::Member {
            user_id,
            ..Default::default()
        };
        let created = event(B::ChatCreated(pb::Chat {
            members: vec![member(4), member(5)],
            ..Default::default()
        }));
        assert_eq!(
            MembershipChange::of(&created).expect("change").added,
            [4, 5]
        );
        let added = event(B::MembersAdded(pb::MembersAdded {
            members: vec![member(9)],
        }));
        assert_eq!(MembershipChange::of(&added).expect("change").added, [9]);
        let removed = event(B::MemberRemoved(pb::MemberRemoved {
            user_id: 4,
            left: true,
        }));
        assert_eq!(MembershipChange::of(&removed).expect("change").removed, [4]);
        let role = event(B::MemberRoleChanged(pb::MemberRoleChanged {
            user_id: 4,
            role: 2,
        }));
        assert_eq!(
            MembershipChange::of(&role),
            Some(MembershipChange::default())
        );
        assert!(
            MembershipChange::of(&event(B::ChatDeleted(pb::ChatDeleted {})))
                .expect("change")
                .deleted
        );
        assert_eq!(
            MembershipChange::of(&event(B::MessageDeleted(pb::MessageDeleted {
                message_seq: 1
            }))),
            None
        );
    }

    #[test]
    fn audiences_name_each_user_once() {
        let members = Arc::new(ChatMembers::new(
            pb::ChatKind::Group,
            [(1, pb::MemberRole::Owner), (2, pb::MemberRole::Member)],
        ));
        let audience = Audience::members(members).and(&[2, 3, 3]);
        let mut all: Vec<u64> = audience.parts().concat();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3]);
        let mut users = Audience::users(vec![5, 4, 5]).parts().concat();
        users.sort_unstable();
        assert_eq!(users, vec![4, 5]);
    }
}
