//! A cache of chat membership, because every sent message needs its chat's member list for
//! fan-out and authorization. Entries are dropped whenever membership changes on this node (and,
//! in cluster mode, when a membership event arrives from another node, when this node stops
//! hearing about a chat, and entirely after the cluster link was down). In cluster mode entries
//! also expire after a short TTL, so a missed invalidation cannot keep a stale list for long.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatproto::pb;

use crate::store::{Store, StoreResult};

/// The members of one chat and their roles.
#[derive(Debug, Clone, Default)]
pub struct ChatMembers {
    /// The chat's kind.
    pub kind: pb::ChatKind,
    /// (user id, role) of every current member.
    pub members: Vec<(u64, pb::MemberRole)>,
}

impl ChatMembers {
    /// The member's role, if they are one.
    pub fn role_of(&self, user_id: u64) -> Option<pb::MemberRole> {
        self.members
            .iter()
            .find(|(u, _)| *u == user_id)
            .map(|(_, r)| *r)
    }

    /// Every member's id.
    pub fn ids(&self) -> Vec<u64> {
        self.members.iter().map(|(u, _)| *u).collect()
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
    /// A cache whose entries expire `ttl` after they were loaded.
    pub fn with_ttl(ttl: Duration) -> Self {
        MemberCache {
            ttl: Some(ttl),
            ..MemberCache::default()
        }
    }

    /// The members of a chat, from the cache or the store. `None` when the chat does not exist.
    pub async fn get(
        &self,
        store: &dyn Store,
        chat_id: u64,
    ) -> StoreResult<Option<Arc<ChatMembers>>> {
        if let Some((hit, loaded)) = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&chat_id)
            && self.ttl.is_none_or(|ttl| loaded.elapsed() < ttl)
        {
            return Ok(Some(hit.clone()));
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let Some(chat) = store.chat(chat_id).await? else {
            return Ok(None);
        };
        let members = store.members(chat_id).await?;
        let entry = Arc::new(ChatMembers {
            kind: chat.kind,
            members: members.into_iter().map(|m| (m.user_id, m.role)).collect(),
        });
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
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
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        entries.remove(&chat_id);
    }

    /// Forgets every chat (invalidations may have been missed).
    pub fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}
