//! The `Store` traits for [`CachedStore`]: the cached reads and the invalidating writes are the
//! arms of [`cached`]; every other method forwards to the store unchanged
//! ([`delegate_store!`]). Each write invalidates only after the store committed, and only when
//! it succeeded (a failed write changed nothing).

use chatproto::pb;

use super::{CachedStore, Entry, codec};
use crate::store::delegate::{delegate_store, forward_store};
use crate::store::*;

impl CachedStore {
    /// Passes a write's result through and, when it succeeded, invalidates what `entries` names
    /// for it.
    async fn invalidating<T>(
        &self,
        result: StoreResult<T>,
        entries: impl FnOnce(&T) -> Vec<Entry>,
    ) -> StoreResult<T> {
        if let Ok(value) = &result {
            self.invalidate(entries(value)).await;
        }
        result
    }
}

/// One call through the cache. Not cached on purpose: `user_by_username` (login reads the
/// password hash and flags, and must see them fresh), admin lists, and everything read per chat
/// or per message (members have their own cache, the log is read by seq range).
macro_rules! cached {
    // Cached reads.
    (read user $s:ident ($id:ident)) => {
        $s.cached(Entry::User($id), $s.ttls.user, codec::decode_user, codec::encode_user, || {
            $s.inner.user($id)
        })
        .await
    };
    (read users $s:ident ($ids:ident)) => {
        $s.cached_users($ids).await
    };
    (read search_users $s:ident ($prefix:ident, $after:ident, $limit:ident)) => {
        $s.cached_search($prefix, $after, $limit).await
    };
    (read session $s:ident ($id:ident)) => {
        $s.cached(
            Entry::Session($id),
            $s.ttls.session,
            codec::decode_session,
            codec::encode_session,
            || $s.inner.session($id),
        )
        .await
    };
    // Both halves from the cache, each filled from the store when missing.
    (read session_and_user $s:ident ($session:ident, $user:ident)) => {
        tokio::try_join!(
            SessionStore::session($s, $session),
            UserStore::user($s, $user)
        )
    };
    (read chat $s:ident ($id:ident)) => {
        $s.cached(Entry::Chat($id), $s.ttls.chat, codec::decode_chat, codec::encode_chat, || {
            $s.inner.chat($id)
        })
        .await
    };
    // Users: the record, and search pages where what they show changes.
    (write create_user $s:ident ($new:ident)) => {
        $s.invalidating($s.inner.create_user($new).await, |_| vec![Entry::Search])
            .await
    };
    (write update_profile $s:ident ($id:ident, $patch:ident)) => {
        $s.invalidating($s.inner.update_profile($id, $patch).await, |_| {
            vec![Entry::User($id), Entry::Search]
        })
        .await
    };
    (write set_disabled $s:ident ($id:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.set_disabled($id, $($arg),*).await, |_| {
            vec![Entry::User($id), Entry::Search]
        })
        .await
    };
    (write delete_user $s:ident ($id:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.delete_user($id, $($arg),*).await, |_| {
            vec![Entry::User($id), Entry::Search]
        })
        .await
    };
    (write set_password_hash $s:ident ($id:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.set_password_hash($id, $($arg),*).await, |_| vec![Entry::User($id)])
            .await
    };
    (write set_email $s:ident ($id:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.set_email($id, $($arg),*).await, |_| vec![Entry::User($id)])
            .await
    };
    (write mark_email_verified $s:ident ($id:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.mark_email_verified($id, $($arg),*).await, |_| vec![Entry::User($id)])
            .await
    };
    (write set_role $s:ident ($id:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.set_role($id, $($arg),*).await, |_| vec![Entry::User($id)])
            .await
    };
    (write touch_last_seen $s:ident ($id:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.touch_last_seen($id, $($arg),*).await, |_| vec![Entry::User($id)])
            .await
    };
    // Sessions.
    (write rotate_refresh $s:ident ($($arg:ident),*)) => {
        $s.invalidating($s.inner.rotate_refresh($($arg),*).await, |outcome| match outcome {
            RefreshOutcome::Rotated(session) => vec![Entry::Session(session.id)],
            RefreshOutcome::Reused { session_id, .. }
            | RefreshOutcome::Expired { session_id, .. } => vec![Entry::Session(*session_id)],
            RefreshOutcome::Invalid => Vec::new(),
        })
        .await
    };
    (write touch_session $s:ident ($id:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.touch_session($id, $($arg),*).await, |_| {
            vec![Entry::Session($id)]
        })
        .await
    };
    (write revoke_session $s:ident ($user:ident, $session:ident, $now:ident)) => {
        $s.invalidating($s.inner.revoke_session($user, $session, $now).await, |_| {
            vec![Entry::Session($session)]
        })
        .await
    };
    (write revoke_user_sessions $s:ident ($($arg:ident),*)) => {
        $s.invalidating($s.inner.revoke_user_sessions($($arg),*).await, |ids| {
            ids.iter().map(|id| Entry::Session(*id)).collect()
        })
        .await
    };
    (write delete_dead_sessions $s:ident ($($arg:ident),*)) => {
        $s.invalidating($s.inner.delete_dead_sessions($($arg),*).await, |swept| {
            swept.gone.iter().map(|id| Entry::Session(*id)).collect()
        })
        .await
    };
    // Chats: every mutation that appends an event moves the record's `last_seq`.
    (write open_private_chat $s:ident ($($arg:ident),*)) => {
        $s.invalidating($s.inner.open_private_chat($($arg),*).await, |(chat, created)| {
            if *created { vec![Entry::Chat(chat.id)] } else { Vec::new() }
        })
        .await
    };
    (write append_message $s:ident ($new:ident)) => {{
        let chat_id = $new.chat_id;
        // A duplicate appended nothing.
        $s.invalidating($s.inner.append_message($new).await, |outcome| {
            if outcome.event.is_some() { vec![Entry::Chat(chat_id)] } else { Vec::new() }
        })
        .await
    }};
    (write set_reaction $s:ident ($chat:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.set_reaction($chat, $($arg),*).await, |(_, changed)| {
            if changed.is_some() { vec![Entry::Chat($chat)] } else { Vec::new() }
        })
        .await
    };
    (write update_chat $($call:tt)*) => { chat_write!(update_chat $($call)*) };
    (write delete_chat $($call:tt)*) => { chat_write!(delete_chat $($call)*) };
    (write add_members $($call:tt)*) => { chat_write!(add_members $($call)*) };
    (write remove_member $($call:tt)*) => { chat_write!(remove_member $($call)*) };
    (write set_member_role $($call:tt)*) => { chat_write!(set_member_role $($call)*) };
    (write transfer_ownership $($call:tt)*) => { chat_write!(transfer_ownership $($call)*) };
    (write edit_message $($call:tt)*) => { chat_write!(edit_message $($call)*) };
    (write delete_message $($call:tt)*) => { chat_write!(delete_message $($call)*) };
    // Everything else goes to the store unchanged.
    ($class:ident $method:ident $s:ident ($($arg:ident),*)) => {
        $s.inner.$method($($arg),*).await
    };
}

/// A chat mutation whose first argument is the chat: it appends an event, which moves the
/// chat record's `last_seq`.
macro_rules! chat_write {
    ($method:ident $s:ident ($chat:ident, $($arg:ident),*)) => {
        $s.invalidating($s.inner.$method($chat, $($arg),*).await, |_| vec![Entry::Chat($chat)])
            .await
    };
}

delegate_store!(CachedStore, cached);

forward_store!(CachedStore);
