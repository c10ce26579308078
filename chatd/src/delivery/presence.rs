//! Presence: who is online, and telling the people who may know.
//!
//! A user is online while they have at least one authenticated connection, on any node. What
//! others see is the status the user chose (online, away, busy; offline means invisible) while
//! online, and offline with a last-seen time otherwise. Presence goes to the user's watchers —
//! users who have them as a contact and users who share a chat with them — except those the user
//! blocked.
//!
//! In cluster mode a node announces a user online only when no other node had them already, and
//! offline only when no other node still has them (the relay keeps that across nodes; a crashed
//! node's users are announced offline by the node that cleans up after it). When the relay
//! cannot answer, each node decides from its own connections.

use std::collections::HashSet;

use chatproto::pb;

use super::Delivery;
use crate::clock::now_ms;
use crate::store::{StoreError, UserRecord};

/// The status others see for `user`, given whether they are online.
pub fn effective_status(user: &UserRecord, online: bool) -> pb::UserStatus {
    if !online {
        return pb::UserStatus::Offline;
    }
    match user.status {
        pb::UserStatus::Unspecified => pb::UserStatus::Online,
        other => other,
    }
}

impl Delivery {
    /// The user's first connection on this node came up.
    pub(super) async fn presence_connected(&self, user_id: u64) {
        if let Err(e) = self.store.touch_last_seen(user_id, now_ms()).await {
            tracing::warn!(error = %e, user_id, "cannot record last seen");
        }
        match self.relay.presence_up(user_id).await {
            // Already online elsewhere: watchers know.
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, user_id, "cluster presence not recorded"),
        }
        self.announce_presence(user_id).await;
    }

    /// The user's last connection on this node went away.
    pub(super) async fn presence_disconnected(&self, user_id: u64) {
        match self.relay.presence_down(user_id).await {
            // Still online elsewhere: nothing changes for watchers.
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, user_id, "cluster presence not recorded"),
        }
        if let Err(e) = self.store.touch_last_seen(user_id, now_ms()).await {
            tracing::warn!(error = %e, user_id, "cannot record last seen");
        }
        self.announce_presence(user_id).await;
    }

    /// The user's node died (`at_ms`) and no other node has them: record when they were last
    /// seen and announce them offline, unless they came back here meanwhile.
    pub async fn lost_with_node(&self, user_id: u64, at_ms: i64) {
        if self.registry.is_online(user_id) {
            return;
        }
        if let Err(e) = self.store.touch_last_seen(user_id, at_ms).await {
            tracing::debug!(user_id, error = %e, "cannot record last seen");
        }
        self.announce_presence(user_id).await;
    }

    /// Whether `user_id` is online on any node.
    pub async fn is_online_anywhere(&self, user_id: u64) -> bool {
        self.online_among(&[user_id]).await.contains(&user_id)
    }

    /// The users among `users` that are online on any node.
    pub async fn online_among(&self, users: &[u64]) -> HashSet<u64> {
        let mut online: HashSet<u64> = self.registry.local_among(users).into_iter().collect();
        let rest: Vec<u64> = users
            .iter()
            .copied()
            .filter(|u| !online.contains(u))
            .collect();
        if !rest.is_empty() {
            online.extend(self.relay.online_elsewhere(&rest).await);
        }
        online
    }

    /// Sends the user's current presence to their watchers.
    pub async fn announce_presence(&self, user_id: u64) {
        if let Err(e) = self.try_announce(user_id).await {
            tracing::warn!(error = %e, user_id, "cannot announce presence");
        }
    }

    async fn try_announce(&self, user_id: u64) -> Result<(), StoreError> {
        let Some(user) = self.store.user(user_id).await? else {
            return Ok(());
        };
        let online = self.is_online_anywhere(user_id).await;
        let update = pb::PresenceUpdate {
            user_id,
            status: effective_status(&user, online) as i32,
            last_seen_at_ms: user.last_seen_at_ms,
        };
        let watchers = self.watchers(user_id).await?;
        let event = pb::Event {
            kind: Some(pb::event::Kind::Presence(update)),
        };
        self.notify(&watchers, &event, None);
        Ok(())
    }

    /// Users allowed to see `user_id`'s presence.
    pub async fn watchers(&self, user_id: u64) -> Result<Vec<u64>, StoreError> {
        let mut watchers = self.store.contact_of(user_id).await?;
        watchers.extend(self.store.shared_chat_peers(user_id).await?);
        watchers.sort_unstable();
        watchers.dedup();
        let blocked = self.store.blocked(user_id).await?;
        watchers.retain(|w| *w != user_id && !blocked.contains(w));
        Ok(watchers)
    }
}
