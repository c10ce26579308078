//! [`GuardedStore`]: every store call with a deadline, a circuit breaker and, for reads only,
//! retries with backoff.
//!
//! Why: a remote backend (MongoDB) that is down or partitioned makes calls hang until the
//! driver gives up. Requests must answer UNAVAILABLE quickly instead (the client retries with
//! backoff and keeps working from its cache), and a dead backend must not tie up every request
//! task for the full timeout. So:
//! - each call gets the store deadline (default 1.5 s); running out is `Unavailable`;
//! - `Unavailable` answers and deadlines count as failures of the store's circuit breaker;
//!   while it is open, calls fail at once with `Unavailable`; a half-open probe closes it again
//!   when the backend is back, so the node recovers by itself;
//! - reads are retried within the same deadline after a short backoff with jitter; writes never
//!   are (a write that timed out may have committed, and only the client knows whether repeating
//!   it is safe: SendMessage is idempotent by `client_msg_id`, CreateGroup is not).
//!
//! Other errors (not found, conflict, internal) mean the backend answered: they count as
//! successes for the breaker and pass through unchanged. Every call's duration is recorded in the
//! `store_operation_duration` metric.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chatproto::pb;

use crate::ops::metrics::Metrics;
use crate::resilience::backoff::Backoff;
use crate::resilience::breaker::{BreakerConfig, CircuitBreaker};
use crate::store::*;

/// The default deadline of one store call.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(1500);

/// A [`Store`] that guards another one; see the module documentation.
pub struct GuardedStore {
    inner: Arc<dyn Store>,
    breaker: CircuitBreaker,
    deadline: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for GuardedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStore")
            .field("backend", &self.inner.backend())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl GuardedStore {
    /// Guards `inner` with a per-call `deadline`.
    pub fn new(inner: Arc<dyn Store>, deadline: Duration, metrics: Arc<Metrics>) -> Self {
        GuardedStore {
            inner,
            breaker: CircuitBreaker::new("store", BreakerConfig::default()),
            deadline,
            metrics,
        }
    }

    /// True while the store's circuit is open (calls fail fast).
    pub fn circuit_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Runs one attempt: breaker admission, deadline, outcome recording. An open circuit and a
    /// missed deadline are both `Unavailable`.
    async fn attempt<T>(
        &self,
        op: &'static str,
        deadline: Instant,
        fut: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let permit = self.breaker.admit(Instant::now()).map_err(|open| {
            StoreError::Unavailable(format!(
                "{op}: storage circuit open (retry in {:?})",
                open.retry_after
            ))
        })?;
        let result =
            match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), fut).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Unavailable(format!(
                    "{op} took longer than {} ms",
                    self.deadline.as_millis()
                ))),
            };
        let healthy = !matches!(result, Err(StoreError::Unavailable(_)));
        self.breaker.record(permit, healthy, Instant::now());
        self.metrics.circuit("store", self.breaker.is_open());
        result
    }

    /// A read: retried after `Unavailable` while the deadline allows.
    async fn read<T, F, Fut>(&self, op: &'static str, call: F) -> StoreResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let mut backoff = Backoff::new(Duration::from_millis(25), Duration::from_millis(250));
        let result = loop {
            match self.attempt(op, deadline, call()).await {
                Err(StoreError::Unavailable(msg)) => {
                    let delay = backoff.next_delay();
                    // Only retry when the backend said so quickly enough to leave time for
                    // another try; an open circuit is not retried (it will not close that fast).
                    if self.breaker.is_open() || Instant::now() + delay * 2 >= deadline {
                        break Err(StoreError::Unavailable(msg));
                    }
                    tokio::time::sleep(delay).await;
                }
                other => break other,
            }
        };
        self.metrics.store_operation(op, started.elapsed());
        result
    }

    /// A write: one attempt.
    async fn write<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let result = self.attempt(op, started + self.deadline, fut).await;
        self.metrics.store_operation(op, started.elapsed());
        result
    }
}

#[async_trait]
impl UserStore for GuardedStore {
    async fn create_user(&self, new: NewUser) -> StoreResult<UserRecord> {
        self.write("create_user", self.inner.create_user(new)).await
    }
    async fn user(&self, id: u64) -> StoreResult<Option<UserRecord>> {
        self.read("user", || self.inner.user(id)).await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.read("user_by_username", || self.inner.user_by_username(username))
            .await
    }
    async fn users(&self, ids: &[u64]) -> StoreResult<Vec<UserRecord>> {
        self.read("users", || self.inner.users(ids)).await
    }
    async fn update_profile(&self, id: u64, patch: ProfilePatch) -> StoreResult<UserRecord> {
        self.write("update_profile", self.inner.update_profile(id, patch))
            .await
    }
    async fn set_password_hash(&self, id: u64, hash: &str) -> StoreResult<()> {
        self.write("set_password_hash", self.inner.set_password_hash(id, hash))
            .await
    }
    async fn set_role(&self, id: u64, role: pb::Role) -> StoreResult<()> {
        self.write("set_role", self.inner.set_role(id, role)).await
    }
    async fn set_disabled(&self, id: u64, disabled: bool) -> StoreResult<()> {
        self.write("set_disabled", self.inner.set_disabled(id, disabled))
            .await
    }
    async fn delete_user(&self, id: u64, now_ms: i64) -> StoreResult<()> {
        self.write("delete_user", self.inner.delete_user(id, now_ms))
            .await
    }
    async fn touch_last_seen(&self, id: u64, now_ms: i64) -> StoreResult<()> {
        self.write("touch_last_seen", self.inner.touch_last_seen(id, now_ms))
            .await
    }
    async fn search_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        self.read("search_users", || {
            self.inner.search_users(prefix, after, limit)
        })
        .await
    }
    async fn list_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>> {
        self.read("list_users", || self.inner.list_users(prefix, after, limit))
            .await
    }
    async fn count_admins(&self) -> StoreResult<u64> {
        self.read("count_admins", || self.inner.count_admins())
            .await
    }
}

#[async_trait]
impl SessionStore for GuardedStore {
    async fn create_session(&self, new: NewSession) -> StoreResult<SessionRecord> {
        self.write("create_session", self.inner.create_session(new))
            .await
    }
    async fn session(&self, id: u64) -> StoreResult<Option<SessionRecord>> {
        self.read("session", || self.inner.session(id)).await
    }
    async fn rotate_refresh(
        &self,
        presented: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> StoreResult<RefreshOutcome> {
        self.write(
            "rotate_refresh",
            self.inner.rotate_refresh(presented, new_hash, now_ms),
        )
        .await
    }
    async fn touch_session(&self, id: u64, address: &str, now_ms: i64) -> StoreResult<()> {
        self.write(
            "touch_session",
            self.inner.touch_session(id, address, now_ms),
        )
        .await
    }
    async fn list_sessions(&self, user_id: u64) -> StoreResult<Vec<SessionRecord>> {
        self.read("list_sessions", || self.inner.list_sessions(user_id))
            .await
    }
    async fn revoke_session(&self, user_id: u64, session_id: u64, now_ms: i64) -> StoreResult<()> {
        self.write(
            "revoke_session",
            self.inner.revoke_session(user_id, session_id, now_ms),
        )
        .await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: u64,
        keep: Option<u64>,
        now_ms: i64,
    ) -> StoreResult<Vec<u64>> {
        self.write(
            "revoke_user_sessions",
            self.inner.revoke_user_sessions(user_id, keep, now_ms),
        )
        .await
    }
}

#[async_trait]
impl RelationStore for GuardedStore {
    async fn add_contact(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.write("add_contact", self.inner.add_contact(owner, target))
            .await
    }
    async fn remove_contact(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.write("remove_contact", self.inner.remove_contact(owner, target))
            .await
    }
    async fn contacts(&self, owner: u64) -> StoreResult<Vec<u64>> {
        self.read("contacts", || self.inner.contacts(owner)).await
    }
    async fn contact_of(&self, target: u64) -> StoreResult<Vec<u64>> {
        self.read("contact_of", || self.inner.contact_of(target))
            .await
    }
    async fn block(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.write("block", self.inner.block(owner, target)).await
    }
    async fn unblock(&self, owner: u64, target: u64) -> StoreResult<()> {
        self.write("unblock", self.inner.unblock(owner, target))
            .await
    }
    async fn blocked(&self, owner: u64) -> StoreResult<Vec<u64>> {
        self.read("blocked", || self.inner.blocked(owner)).await
    }
    async fn is_blocked(&self, owner: u64, target: u64) -> StoreResult<bool> {
        self.read("is_blocked", || self.inner.is_blocked(owner, target))
            .await
    }
}

#[async_trait]
impl ChatStore for GuardedStore {
    async fn open_private_chat(
        &self,
        a: u64,
        b: u64,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, bool)> {
        self.write(
            "open_private_chat",
            self.inner.open_private_chat(a, b, now_ms),
        )
        .await
    }
    async fn create_group(&self, new: NewGroup) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
        self.write("create_group", self.inner.create_group(new))
            .await
    }
    async fn chat(&self, id: u64) -> StoreResult<Option<ChatRecord>> {
        self.read("chat", || self.inner.chat(id)).await
    }
    async fn update_chat(
        &self,
        id: u64,
        actor: u64,
        patch: ChatPatch,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, pb::ChatEvent)> {
        self.write(
            "update_chat",
            self.inner.update_chat(id, actor, patch, now_ms),
        )
        .await
    }
    async fn delete_chat(&self, id: u64, actor: u64, now_ms: i64) -> StoreResult<pb::ChatEvent> {
        self.write("delete_chat", self.inner.delete_chat(id, actor, now_ms))
            .await
    }
    async fn members(&self, chat_id: u64) -> StoreResult<Vec<MemberRecord>> {
        self.read("members", || self.inner.members(chat_id)).await
    }
    async fn member(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<MemberRecord>> {
        self.read("member", || self.inner.member(chat_id, user_id))
            .await
    }
    async fn add_members(
        &self,
        chat_id: u64,
        actor: u64,
        user_ids: &[u64],
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.write(
            "add_members",
            self.inner.add_members(chat_id, actor, user_ids, now_ms),
        )
        .await
    }
    async fn remove_member(
        &self,
        chat_id: u64,
        actor: u64,
        user_id: u64,
        left: bool,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.write(
            "remove_member",
            self.inner
                .remove_member(chat_id, actor, user_id, left, now_ms),
        )
        .await
    }
    async fn set_member_role(
        &self,
        chat_id: u64,
        actor: u64,
        user_id: u64,
        role: pb::MemberRole,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.write(
            "set_member_role",
            self.inner
                .set_member_role(chat_id, actor, user_id, role, now_ms),
        )
        .await
    }
    async fn transfer_ownership(
        &self,
        chat_id: u64,
        actor: u64,
        new_owner: u64,
        now_ms: i64,
    ) -> StoreResult<Vec<pb::ChatEvent>> {
        self.write(
            "transfer_ownership",
            self.inner
                .transfer_ownership(chat_id, actor, new_owner, now_ms),
        )
        .await
    }
    async fn set_user_state(
        &self,
        chat_id: u64,
        user_id: u64,
        patch: UserChatPatch,
    ) -> StoreResult<UserChatState> {
        self.write(
            "set_user_state",
            self.inner.set_user_state(chat_id, user_id, patch),
        )
        .await
    }
    async fn user_chats(&self, user_id: u64, query: UserChatsQuery) -> StoreResult<Vec<UserChat>> {
        self.read("user_chats", || {
            self.inner.user_chats(user_id, query.clone())
        })
        .await
    }
    async fn user_chat(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<UserChat>> {
        self.read("user_chat", || self.inner.user_chat(chat_id, user_id))
            .await
    }
    async fn heads(&self, user_id: u64, known: &[u64]) -> StoreResult<Vec<pb::ChatHead>> {
        self.read("heads", || self.inner.heads(user_id, known))
            .await
    }
    async fn shared_chat_peers(&self, user_id: u64) -> StoreResult<Vec<u64>> {
        self.read("shared_chat_peers", || {
            self.inner.shared_chat_peers(user_id)
        })
        .await
    }
}

#[async_trait]
impl MessageStore for GuardedStore {
    async fn append_message(&self, new: NewMessage) -> StoreResult<SendOutcome> {
        self.write("append_message", self.inner.append_message(new))
            .await
    }
    async fn message(&self, chat_id: u64, seq: u64) -> StoreResult<Option<pb::Message>> {
        self.read("message", || self.inner.message(chat_id, seq))
            .await
    }
    async fn edit_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: u64,
        text: &str,
        now_ms: i64,
    ) -> StoreResult<(pb::Message, pb::ChatEvent)> {
        self.write(
            "edit_message",
            self.inner.edit_message(chat_id, seq, actor, text, now_ms),
        )
        .await
    }
    async fn delete_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: u64,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.write(
            "delete_message",
            self.inner.delete_message(chat_id, seq, actor, now_ms),
        )
        .await
    }
    async fn hide_message(&self, chat_id: u64, seq: u64, user_id: u64) -> StoreResult<()> {
        self.write(
            "hide_message",
            self.inner.hide_message(chat_id, seq, user_id),
        )
        .await
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
        self.write(
            "set_reaction",
            self.inner
                .set_reaction(chat_id, seq, user_id, emoji, add, now_ms),
        )
        .await
    }
    async fn history(&self, query: HistoryQuery) -> StoreResult<Vec<pb::Message>> {
        self.read("history", || self.inner.history(query.clone()))
            .await
    }
    async fn events(
        &self,
        chat_id: u64,
        after_seq: u64,
        up_to_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<pb::ChatEvent>> {
        self.read("events", || {
            self.inner.events(chat_id, after_seq, up_to_seq, limit)
        })
        .await
    }
    async fn edits(&self, chat_id: u64, seq: u64) -> StoreResult<Vec<pb::MessageEdit>> {
        self.read("edits", || self.inner.edits(chat_id, seq)).await
    }
    async fn mark_receipt(
        &self,
        chat_id: u64,
        user_id: u64,
        kind: pb::ReceiptKind,
        up_to_seq: u64,
    ) -> StoreResult<Option<(u64, u64)>> {
        self.write(
            "mark_receipt",
            self.inner.mark_receipt(chat_id, user_id, kind, up_to_seq),
        )
        .await
    }
    async fn receipts(&self, chat_id: u64) -> StoreResult<Vec<pb::MemberReceipt>> {
        self.read("receipts", || self.inner.receipts(chat_id)).await
    }
    async fn search(&self, query: SearchQuery) -> StoreResult<Vec<pb::Message>> {
        self.read("search", || self.inner.search(query.clone()))
            .await
    }
}

#[async_trait]
impl Store for GuardedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> StoreResult<()> {
        // Readiness probes go through the breaker too: while it is open the node is not ready.
        self.read("ping", || self.inner.ping()).await
    }
}
