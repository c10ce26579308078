//! Presence: who is online, and telling the people who may know.
//!
//! A user is online while they have at least one authenticated connection, on any node. What
//! others see is the status the user chose (online, away, busy; offline means invisible) while
//! online, and offline with a last-seen time otherwise. Presence goes to the user's watchers —
//! users who have them as a contact and users who share a chat with them — except those the user
//! blocked.
//!
//! In cluster mode a node announces a user online only when no other node had them already, and
//! offline only when no other node still has them ([`crate::cluster::presence`] keeps that in
//! Redis; a crashed node's users are announced offline by the node that cleans up after it).
//! When Redis cannot answer, each node decides from its own connections.

use std::collections::HashSet;

use chatproto::pb;

use crate::state::{AppState, now_ms};
use crate::store::UserRecord;

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

/// The user's first connection on this node came up.
pub async fn connected(state: &AppState, user_id: u64) {
    let now = now_ms();
    if let Err(e) = state.store.touch_last_seen(user_id, now).await {
        tracing::warn!(error = %e, user_id, "cannot record last seen");
    }
    if let Some(cluster) = &state.cluster {
        match cluster.presence.node_up(user_id).await {
            // Already online elsewhere: watchers know.
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(error = %e, user_id, "cluster presence not recorded");
                cluster.mark_presence_dirty();
            }
        }
    }
    announce(state, user_id).await;
}

/// The user's last connection on this node went away.
pub async fn disconnected(state: &AppState, user_id: u64) {
    if let Some(cluster) = &state.cluster {
        match cluster.presence.node_down(user_id).await {
            // Still online elsewhere: nothing changes for watchers.
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(error = %e, user_id, "cluster presence not recorded");
                cluster.mark_presence_dirty();
            }
        }
    }
    if let Err(e) = state.store.touch_last_seen(user_id, now_ms()).await {
        tracing::warn!(error = %e, user_id, "cannot record last seen");
    }
    announce(state, user_id).await;
}

/// Whether `user_id` is online on any node.
pub async fn is_online(state: &AppState, user_id: u64) -> bool {
    online_among(state, &[user_id]).await.contains(&user_id)
}

/// The users among `users` that are online on any node.
pub async fn online_among(state: &AppState, users: &[u64]) -> HashSet<u64> {
    let mut online: HashSet<u64> = state.hub.local_among(users).into_iter().collect();
    if let Some(cluster) = &state.cluster {
        let rest: Vec<u64> = users
            .iter()
            .copied()
            .filter(|u| !online.contains(u))
            .collect();
        if !rest.is_empty() {
            online.extend(cluster.presence.online_elsewhere(&rest).await);
        }
    }
    online
}

/// Sends the user's current presence to their watchers.
pub async fn announce(state: &AppState, user_id: u64) {
    if let Err(e) = try_announce(state, user_id).await {
        tracing::warn!(error = %e, user_id, "cannot announce presence");
    }
}

async fn try_announce(state: &AppState, user_id: u64) -> Result<(), crate::store::StoreError> {
    let Some(user) = state.store.user(user_id).await? else {
        return Ok(());
    };
    let online = is_online(state, user_id).await;
    let update = pb::PresenceUpdate {
        user_id,
        status: effective_status(&user, online) as i32,
        last_seen_at_ms: user.last_seen_at_ms,
    };
    let watchers = watchers(state, user_id).await?;
    let event = pb::Event {
        kind: Some(pb::event::Kind::Presence(update)),
    };
    state.fanout.deliver_event(&watchers, &event, None);
    Ok(())
}

/// Users allowed to see `user_id`'s presence.
pub async fn watchers(
    state: &AppState,
    user_id: u64,
) -> Result<Vec<u64>, crate::store::StoreError> {
    let mut watchers = state.store.contact_of(user_id).await?;
    watchers.extend(state.store.shared_chat_peers(user_id).await?);
    watchers.sort_unstable();
    watchers.dedup();
    let blocked = state.store.blocked(user_id).await?;
    watchers.retain(|w| *w != user_id && !blocked.contains(w));
    Ok(watchers)
}
