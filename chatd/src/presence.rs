//! Presence: who is online, and telling the people who may know.
//!
//! A user is online while they have at least one authenticated connection. What others see is
//! the status the user chose (online, away, busy; offline means invisible) while online, and
//! offline with a last-seen time otherwise. Presence goes to the user's watchers — users who have
//! them as a contact and users who share a chat with them — except those the user blocked.

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
    announce(state, user_id).await;
}

/// The user's last connection on this node went away.
pub async fn disconnected(state: &AppState, user_id: u64) {
    if let Err(e) = state.store.touch_last_seen(user_id, now_ms()).await {
        tracing::warn!(error = %e, user_id, "cannot record last seen");
    }
    announce(state, user_id).await;
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
    let online = state.hub.is_online(user_id);
    let update = pb::PresenceUpdate {
        user_id,
        status: effective_status(&user, online) as i32,
        last_seen_at_ms: user.last_seen_at_ms,
    };
    let watchers = watchers(state, user_id).await?;
    let event = pb::Event {
        kind: Some(pb::event::Kind::Presence(update)),
    };
    state.hub.deliver_event(&watchers, &event, None);
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
