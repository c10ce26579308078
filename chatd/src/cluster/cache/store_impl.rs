//! The `Store` traits for [`CachedStore`]: cached reads, invalidating writes, and plain
//! delegation for everything else. Each write invalidates only after the store committed, and
//! only when it succeeded (a failed write changed nothing).

use async_trait::async_trait;
use chatproto::pb;

use super::{CachedStore, Entry, codec};
use crate::store::*;

impl CachedStore {
    /// Runs a write and, when it succeeded, invalidates what `entries` names for its result.
    async fn write<T>(
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

#[async_trait]
impl UserStore for CachedStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<UserRecord> {
        let result = self.inner.create_user(new).await;
        self.write(result, |_| vec![Entry::Search]).await
    }
    async fn user(&self, id: u64) -> StoreResult<Option<UserRecord>> {
        self.cached(
            Entry::User(id),
            self.ttls.user,
            codec::decode_user,
            codec::encode_user,
            || self.inner.user(id),
        )
        .await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        // Not cached: login reads the password hash and flags, and must see them fresh.
        self.inner.user_by_username(username).await
    }
    async fn users(&self, ids: &[u64]) -> StoreResult<Vec<UserRecord>> {
        self.cached_users(ids).await
    }
    async fn update_profile(&self, id: u64, patch: ProfilePatch) -> StoreResult<UserRecord> {
        let result = self.inner.update_profile(id, patch).await;
        self.write(result, |_| vec![Entry::User(id), Entry::Search])
            .await
    }
    async fn set_password_hash(&self, id: u64, hash: &str) -> StoreResult<()> {
        let result = self.inner.set_password_hash(id, hash).await;
        self.write(result, |_| vec![Entry::User(id)]).await
    }
    async fn set_role(&self, id: u64, role: pb::Role) -> StoreResult<()> {
        let result = self.inner.set_role(id, role).await;
        self.write(result, |_| vec![Entry::User(id)]).await
    }
    async fn set_disabled(&self, id: u64, disabled: bool) -> StoreResult<()> {
        let result = self.inner.set_disabled(id, disabled).await;
        self.write(result, |_| vec![Entry::User(id), Entry::Search])
            .await
    }
    async fn delete_user(&self, id: u64, now_ms: i64) -> StoreResult<()> {
        let result = self.inner.delete_user(id, now_ms).await;
        self.write(result, |_| vec![Entry::User(id), Entry::Search])
            .await
    }
    async fn touch_last_seen(&self, id: u64, now_ms: i64) -> StoreResult<()> {
        let result = self.inner.touch_last_seen(id, now_ms).await;
        self.write(result, |_| vec![Entry::User(id)]).await
    }
    async fn search_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        self.cached_search(prefix, after, limit).await
    }
    async fn list_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        self.inner.list_users(prefix, after, limit).await
    }
    async fn count_admins(&self) -> StoreResult<u64> {
        self.inner.count_admins().await
    }
}

#[async_trait]
impl SessionStore for CachedStore {
    async fn create_session(&self, new: NewSession) -> StoreResult<SessionRecord> {
        self.inner.create_session(new).await
    }
    async fn session(&self, id: u64) -> StoreResult<Option<SessionRecord>> {
        self.cached(
            Entry::Session(id),
            self.ttls.session,
            codec::decode_session,
            codec::encode_session,
            || self.inner.session(id),
        )
        .await
    }
    async fn rotate_refresh(
        &self,
        presented: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> StoreResult<RefreshOutcome> {
        let result = self.inner.rotate_refresh(presented, new_hash, now_ms).await;
        self.write(result, |outcome| match outcome {
            RefreshOutcome::Rotated(session) => vec![Entry::Session(session.id)],
            RefreshOutcome::Reused { session_id, .. } => vec![Entry::Session(*session_id)],
            RefreshOutcome::Invalid => Vec::new(),
        })
        .await
    }
    async fn touch_session(&self, id: u64, address: &str, now_ms: i64) -> StoreResult<()> {
        let result = self.inner.touch_session(id, address, now_ms).await;
        self.write(result, |_| vec![Entry::Session(id)]).await
    }
    async fn list_sessions(&self, user_id: u64) -> StoreResult<Vec<SessionRecord>> {
        self.inner.list_sessions(user_id).await
    }
    async fn revoke_session(&self, user_id: u64, session_id: u64, now_ms: i64) -> StoreResult<()> {
        let result = self.inner.revoke_session(user_id, session_id, now_ms).await;
        self.write(result, |_| vec![Entry::Session(session_id)])
            .await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: u64,
        keep: Option<u64>,
        now_ms: i64,
    ) -> StoreResult<Vec<u64>> {
        let result = self.inner.revoke_user_sessions(user_id, keep, now_ms).await;
        self.write(result, |ids| {
            ids.iter().map(|id| Entry::Session(*id)).collect()
        })
        .await
    }
}

#[async_trait]
impl RelationStore for CachedStore {
    async fn add_contact(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.inner.add_contact(owner, target).await
    }
    async fn remove_contact(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.inner.remove_contact(owner, target).await
    }
    async fn contacts(&self, owner: u64) -> StoreResult<Vec<u64>> {
        self.inner.contacts(owner).await
    }
    async fn contact_of(&self, target: u64) -> StoreResult<Vec<u64>> {
        self.inner.contact_of(target).await
    }
    async fn block(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.inner.block(owner, target).await
    }
    async fn unblock(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.inner.unblock(owner, target).await
    }
    async fn blocked(&self, owner: u64) -> StoreResult<Vec<u64>> {
        self.inner.blocked(owner).await
    }
    async fn is_blocked(&self, owner: u64, target: u64) -> StoreResult<bool> {
        self.inner.is_blocked(owner, target).await
    }
}

#[async_trait]
impl ChatStore for CachedStore {
    async fn open_private_chat(
        &self,
        a: u64,
        b: u64,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, bool)> {
        let result = self.inner.open_private_chat(a, b, now_ms).await;
        self.write(result, |(chat, created)| {
            if *created {
                vec![Entry::Chat(chat.id)]
            } else {
                Vec::new()
            }
        })
        .await
    }
    async fn create_group(&self, new: NewGroup) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
        self.inner.create_group(new).await
    }
    async fn chat(&self, id: u64) -> StoreResult<Option<ChatRecord>> {
        self.cached(
            Entry::Chat(id),
            self.ttls.chat,
            codec::decode_chat,
            codec::encode_chat,
            || self.inner.chat(id),
        )
        .await
    }
    async fn update_chat(
        &self,
        id: u64,
        actor: u64,
        patch: ChatPatch,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
        let result = self.inner.update_chat(id, actor, patch, now_ms).await;
        self.write(result, |_| vec![Entry::Chat(id)]).await
    }
    async fn delete_chat(&self, id: u64, actor: u64, now_ms: i64) -> StoreResult<pb::ChatEvent> {
        let result = self.inner.delete_chat(id, actor, now_ms).await;
        self.write(result, |_| vec![Entry::Chat(id)]).await
    }
    async fn members(&self, chat_id: u64) -> StoreResult<Vec<MemberRecord>> {
        self.inner.members(chat_id).await
    }
    async fn member(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<MemberRecord>> {
        self.inner.member(chat_id, user_id).await
    }
    async fn add_members(
        &self,
        chat_id: u64,
        actor: u64,
        user_ids: &[u64],
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        let result = self
            .inner
            .add_members(chat_id, actor, user_ids, now_ms)
            .await;
        self.write(result, |_| vec![Entry::Chat(chat_id)]).await
    }
    async fn remove_member(
        &self,
        chat_id: u64,
        actor: u64,
        user_id: u64,
        left: bool,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        let result = self
            .inner
            .remove_member(chat_id, actor, user_id, left, now_ms)
            .await;
        self.write(result, |_| vec![Entry::Chat(chat_id)]).await
    }
    async fn set_member_role(
        &self,
        chat_id: u64,
        actor: u64,
        user_id: u64,
        role: pb::MemberRole,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        let result = self
            .inner
            .set_member_role(chat_id, actor, user_id, role, now_ms)
            .await;
        self.write(result, |_| vec![Entry::Chat(chat_id)]).await
    }
    async fn transfer_ownership(
        &self,
        chat_id: u64,
        actor: u64,
        new_owner: u64,
        now_ms: i64,
    ) -> StoreResult<Vec<pb::ChatEvent>> {
        let result = self
            .inner
            .transfer_ownership(chat_id, actor, new_owner, now_ms)
            .await;
        self.write(result, |_| vec![Entry::Chat(chat_id)]).await
    }
    async fn set_user_state(
        &self,
        chat_id: u64,
        user_id: u64,
        patch: UserChatPatch,
    ) -> StoreResult<UserChatState> {
        self.inner.set_user_state(chat_id, user_id, patch).await
    }
    async fn user_chats(&self, user_id: u64, query: UserChatsQuery) -> StoreResult<Vec<UserChat>> {
        self.inner.user_chats(user_id, query).await
    }
    async fn user_chat(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<UserChat>> {
        self.inner.user_chat(chat_id, user_id).await
    }
    async fn heads(&self, user_id: u64, known: &[u64]) -> StoreResult<Vec<pb::ChatHead>> {
        self.inner.heads(user_id, known).await
    }
    async fn shared_chat_peers(&self, user_id: u64) -> StoreResult<Vec<u64>> {
        self.inner.shared_chat_peers(user_id).await
    }
}

#[async_trait]
impl MessageStore for CachedStore {
    async fn append_message(&self, new: NewMessage) -> StoreResult<SendOutcome> {
        let chat_id = new.chat_id;
        let result = self.inner.append_message(new).await;
        // A duplicate appended nothing.
        self.write(result, |outcome| {
            if outcome.event.is_some() {
                vec![Entry::Chat(chat_id)]
            } else {
                Vec::new()
            }
        })
        .await
    }
    async fn message(&self, chat_id: u64, seq: u64) -> StoreResult<Option<pb::Message>> {
        self.inner.message(chat_id, seq).await
    }
    async fn edit_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: u64,
        text: &str,
        now_ms: i64,
    ) -> StoreResult<(pb::Message, pb::ChatEvent)> {
        let result = self
            .inner
            .edit_message(chat_id, seq, actor, text, now_ms)
            .await;
        self.write(result, |_| vec![Entry::Chat(chat_id)]).await
    }
    async fn delete_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: u64,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        let result = self.inner.delete_message(chat_id, seq, actor, now_ms).await;
        self.write(result, |_| vec![Entry::Chat(chat_id)]).await
    }
    async fn hide_message(&self, chat_id: u64, seq: u64, user_id: u64) -> StoreResult<()> {
        self.inner.hide_message(chat_id, seq, user_id).await
    }
    async fn set_reaction(
        &self,
        chat_id: u64,
        seq: u64,
        user_id: u64,
        emoji: &str,
        add: bool,
        now_ms: i64,
    ) -> StoreResult<Option<(pb::Message, pb::ChatEvent)>> {
        let result = self
            .inner
            .set_reaction(chat_id, seq, user_id, emoji, add, now_ms)
            .await;
        self.write(result, |changed| {
            if changed.is_some() {
                vec![Entry::Chat(chat_id)]
            } else {
                Vec::new()
            }
        })
        .await
    }
    async fn history(&self, query: HistoryQuery) -> StoreResult<Vec<pb::Message>> {
        self.inner.history(query).await
    }
    async fn events(
        &self,
        chat_id: u64,
        after_seq: u64,
        up_to_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<pb::ChatEvent>> {
        self.inner
            .events(chat_id, after_seq, up_to_seq, limit)
            .await
    }
    async fn edits(&self, chat_id: u64, seq: u64) -> StoreResult<Vec<pb::MessageEdit>> {
        self.inner.edits(chat_id, seq).await
    }
    async fn mark_receipt(
        &self,
        chat_id: u64,
        user_id: u64,
        kind: pb::ReceiptKind,
        up_to_seq: u64,
    ) -> StoreResult<Option<(u64, u64)>> {
        self.inner
            .mark_receipt(chat_id, user_id, kind, up_to_seq)
            .await
    }
    async fn receipts(&self, chat_id: u64) -> StoreResult<Vec<pb::MemberReceipt>> {
        self.inner.receipts(chat_id).await
    }
    async fn search(&self, query: SearchQuery) -> StoreResult<Vec<pb::Message>> {
        self.inner.search(query).await
    }
}

#[async_trait]
impl Store for CachedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
}
