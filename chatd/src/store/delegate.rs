//! The store's surface as data, and [`delegate_store!`], which writes a wrapper's impls of the
//! entity traits from it.
//!
//! A wrapper around a [`Store`](super::Store) (the [`GuardedStore`] of every node, the
//! [`CachedStore`] of cluster mode) adds behaviour to some calls and forwards the rest. Instead
//! of writing each of the ~56 methods in each wrapper, a wrapper names a body macro, called once
//! per method as `body!(read|write METHOD self (ARGS))`, and gets its impls of the entity traits
//! generated. So a new store method is: the trait, both backends, and one line below; a wrapper
//! that treats the new method specially adds an arm to its body macro.
//!
//! `read` marks methods that change nothing (safe to retry after a timeout), `write` the others.
//!
//! [`GuardedStore`]: crate::resilience::guarded_store::GuardedStore
//! [`CachedStore`]: crate::cluster::cache::CachedStore

/// Implements every entity trait (`UserStore` ... `KeyStore`) for `$wrapper`, each method's
/// body being `$body!(read|write METHOD self (ARG, ...))`. The types named here resolve where it
/// is invoked, which must `use crate::store::*` and `chatproto::pb`.
macro_rules! delegate_store {
    ($wrapper:ty, $body:ident) => {
        $crate::store::delegate::delegate_store!(@traits $wrapper, $body;
            UserStore {
                write create_user(new: NewUser) -> UserRecord;
                read  user(id: u64) -> Option<UserRecord>;
                read  user_by_username(username: &str) -> Option<UserRecord>;
                read  users(ids: &[u64]) -> Vec<UserRecord>;
                write update_profile(id: u64, patch: ProfilePatch) -> UserRecord;
                write set_password_hash(id: u64, hash: &str, replacing: Option<&str>) -> ();
                write set_role(id: u64, role: pb::Role, by: Option<u64>) -> ();
                write set_disabled(id: u64, disabled: bool, by: Option<u64>) -> ();
                write delete_user(id: u64, now_ms: i64, by: Option<u64>) -> ();
                write touch_last_seen(id: u64, now_ms: i64) -> ();
                read  search_users(prefix: &str, after_username: Option<&str>, limit: u32) -> Vec<UserRecord>;
                read  list_users(prefix: &str, after_username: Option<&str>, limit: u32) -> Vec<UserRecord>;
                read  count_admins() -> u64;
            }
            SessionStore {
                write create_session(new: NewSession) -> SessionRecord;
                read  session(id: u64) -> Option<SessionRecord>;
                read  session_and_user(session_id: u64, user_id: u64) -> (Option<SessionRecord>, Option<UserRecord>);
                read  refresh_owner(presented_hash: &str) -> Option<u64>;
                write rotate_refresh(presented_hash: &str, new_hash: &str, now_ms: i64) -> RefreshOutcome;
                write touch_session(id: u64, address: &str, now_ms: i64) -> ();
                read  list_sessions(user_id: u64) -> Vec<SessionRecord>;
                write revoke_session(user_id: u64, session_id: u64, now_ms: i64) -> ();
                write revoke_user_sessions(user_id: u64, keep: Option<u64>, now_ms: i64) -> Vec<u64>;
                write delete_dead_sessions(dead: DeadSessions, limit: u32) -> SweptSessions;
            }
            RelationStore {
                write add_contact(owner: u64, target: u64) -> ();
                write remove_contact(owner: u64, target: u64) -> ();
                read  contacts(owner: u64) -> Vec<u64>;
                read  contact_of(target: u64) -> Vec<u64>;
                write block(owner: u64, target: u64) -> ();
                write unblock(owner: u64, target: u64) -> ();
                read  blocked(owner: u64) -> Vec<u64>;
                read  blocked_by(target: u64) -> Vec<u64>;
                read  is_blocked(owner: u64, target: u64) -> bool;
            }
            ChatStore {
                write open_private_chat(a: u64, b: u64, now_ms: i64) -> (ChatRecord, bool);
                write create_group(new: NewGroup) -> (ChatRecord, pb::ChatEvent);
                read  chat(id: u64) -> Option<ChatRecord>;
                read  fresh_chat(id: u64) -> Option<ChatRecord>;
                write update_chat(id: u64, actor: Actor, patch: ChatPatch, now_ms: i64) -> (ChatRecord, pb::ChatEvent);
                write delete_chat(id: u64, actor: Actor, now_ms: i64) -> pb::ChatEvent;
                write record_call(chat_id: u64, actor: u64, call: pb::CallEnded, now_ms: i64) -> pb::ChatEvent;
                read  members(chat_id: u64) -> Vec<MemberRecord>;
                read  member(chat_id: u64, user_id: u64) -> Option<MemberRecord>;
                read  member_states(chat_id: u64, user_ids: &[u64]) -> Vec<(MemberRecord, UserChatState)>;
                write add_members(chat_id: u64, actor: Actor, user_ids: &[u64], max_members: u32, now_ms: i64) -> pb::ChatEvent;
                write remove_member(chat_id: u64, actor: Actor, user_id: u64, left: bool, now_ms: i64) -> pb::ChatEvent;
                write set_member_role(chat_id: u64, actor: Actor, user_id: u64, role: pb::MemberRole, now_ms: i64) -> pb::ChatEvent;
                write transfer_ownership(chat_id: u64, actor: u64, from: u64, new_owner: u64, now_ms: i64) -> Vec<pb::ChatEvent>;
                write set_user_state(chat_id: u64, user_id: u64, patch: UserChatPatch) -> UserChatState;
                read  user_chats(user_id: u64, query: UserChatsQuery) -> Vec<UserChat>;
                read  user_chat(chat_id: u64, user_id: u64) -> Option<UserChat>;
                read  heads(user_id: u64, known: &[u64]) -> Vec<pb::ChatHead>;
                read  sync_state(user_id: u64, known: &[u64]) -> (Vec<pb::ChatHead>, u64);
                read  shared_chat_peers(user_id: u64) -> Vec<u64>;
            }
            MessageStore {
                write append_message(new: NewMessage) -> SendOutcome;
                read  message(chat_id: u64, seq: u64) -> Option<pb::Message>;
                read  sent_message(sender_id: u64, client_msg_id: &str) -> Option<pb::Message>;
                write edit_message(chat_id: u64, seq: u64, actor: Actor, text: &str, now_ms: i64) -> (pb::Message, pb::ChatEvent);
                write delete_message(chat_id: u64, seq: u64, actor: Actor, now_ms: i64) -> pb::ChatEvent;
                write hide_message(chat_id: u64, seq: u64, user_id: u64) -> ();
                write set_reaction(chat_id: u64, seq: u64, actor: Actor, emoji: &str, change: ReactionChange, now_ms: i64) -> (pb::Message, Option<pb::ChatEvent>);
                read  history(query: HistoryQuery) -> Vec<pb::Message>;
                read  events(chat_id: u64, after_seq: u64, up_to_seq: u64, limit: u32) -> Vec<pb::ChatEvent>;
                read  edits(chat_id: u64, seq: u64) -> Vec<pb::MessageEdit>;
                write mark_receipt(chat_id: u64, user_id: u64, kind: pb::ReceiptKind, up_to_seq: u64) -> Option<(u64, u64)>;
                read  receipts(chat_id: u64) -> Vec<pb::MemberReceipt>;
                read  search(query: SearchQuery) -> Vec<pb::Message>;
            }
            FileStore {
                write open_upload(new: UploadRecord) -> (UploadRecord, bool);
                read  upload(id: &str) -> Option<UploadRecord>;
                write fail_upload(id: &str, reason: &str) -> ();
                write complete_upload(id: &str, file: FileRecord, thumbnails: Vec<FileRecord>) -> FileRecord;
                write delete_upload(id: &str) -> ();
                read  stale_uploads(before_ms: i64, limit: u32) -> Vec<UploadRecord>;
                read  file(id: &str) -> Option<FileRecord>;
                write set_file_public(id: &str) -> ();
                read  file_shares(file_id: &str, user_id: u64) -> Vec<(u64, u64)>;
                read  user_file_bytes(user_id: u64) -> u64;
                read  unreferenced_files(before_ms: i64, limit: u32) -> Vec<FileRecord>;
                write delete_file(id: &str) -> Vec<String>;
            }
            OverviewStore {
                read  all_chats(query: AllChatsQuery) -> Vec<ChatRecord>;
                read  sent_messages(query: SentQuery) -> Vec<(u64, u64)>;
                read  counts() -> StoreCounts;
            }
            AuditStore {
                write append_audit(entry: NewAuditEntry) -> AuditEntry;
                read  audit_entries(query: AuditQuery) -> Vec<AuditEntry>;
            }
            NotificationStore {
                write append_notification(user_id: u64, n: pb::Notification, keep: u32) -> pb::Notification;
                write append_notifications(batch: Vec<(u64, pb::Notification)>, keep: u32) -> Vec<pb::Notification>;
                write broadcast_notification(n: pb::Notification, keep: u32) -> Vec<(u64, u64)>;
                read  notifications(query: NotificationQuery) -> Vec<pb::Notification>;
                write mark_notifications_read(user_id: u64, which: NotificationSet) -> u64;
                write delete_notifications(user_id: u64, which: NotificationSet) -> u64;
                read  unread_notifications(user_id: u64) -> u64;
                read  notification_prefs(user_id: u64) -> Option<pb::NotificationPrefs>;
                read  notification_prefs_of(user_ids: &[u64]) -> Vec<(u64, pb::NotificationPrefs)>;
                write set_notification_prefs(user_id: u64, prefs: pb::NotificationPrefs) -> ();
            }
            OutboxStore {
                write enqueue_delivery(new: NewDelivery) -> (DeliveryRecord, bool);
                write claim_deliveries(holder: u64, now_ms: i64, lease_ms: i64, limit: u32) -> Vec<DeliveryRecord>;
                write finish_delivery(id: u64, holder: u64) -> ();
                write release_delivery(id: u64, holder: u64, outcome: DeliveryOutcome, now_ms: i64) -> ();
                read  dead_letters(after_id: Option<u64>, limit: u32) -> Vec<DeliveryRecord>;
                write retry_dead_letters(which: DeliverySet, now_ms: i64) -> u64;
                write purge_dead_letters(which: DeliverySet) -> u64;
                read  digest_mark(user_id: u64) -> u64;
                write set_digest_mark(user_id: u64, up_to: u64) -> ();
            }
            TwoFactorStore {
                read  two_factor(user_id: u64) -> Option<TwoFactorRecord>;
                write stage_two_factor(user_id: u64, sealed_secret: Vec<u8>) -> bool;
                write enable_two_factor(user_id: u64, sealed_secret: Vec<u8>, step: u64, recovery_hashes: Vec<String>) -> bool;
                write spend_two_factor_step(user_id: u64, step: u64) -> bool;
                read  has_recovery_code(user_id: u64, hash: &str) -> bool;
                write spend_recovery_code(user_id: u64, hash: &str) -> bool;
                write replace_recovery_codes(user_id: u64, recovery_hashes: Vec<String>) -> bool;
                write disable_two_factor(user_id: u64) -> bool;
            }
            RecoveryStore {
                read  users_by_email(email: &str) -> Vec<UserRecord>;
                write set_email(user_id: u64, email: &str) -> ();
                write mark_email_verified(user_id: u64, email: &str) -> bool;
                write put_account_code(code: NewAccountCode) -> bool;
                write redeem_account_code(user_id: u64, purpose: CodePurpose, hash: &str, now_ms: i64, max_attempts: u32) -> Redemption;
            }
            AccessStore {
                write put_access_rule(rule: pb::AccessRule) -> ();
                write delete_access_rule(kind: pb::AccessRuleKind, cidr: &str) -> ();
                read  access_rules() -> Vec<pb::AccessRule>;
                write delete_expired_access_rules(now_ms: i64) -> u64;
                read  allow_list_mode() -> bool;
                write set_allow_list_mode(on: bool) -> ();
            }
            KeyStore {
                read  key_ring(kind: pb::KeyKind) -> Option<KeyRingRecord>;
                write put_key_ring(ring: KeyRingRecord) -> bool;
            }
        );
    };
    (@traits $wrapper:ty, $body:ident;
        $( $trait:ident { $( $class:ident $method:ident ( $($arg:ident : $argty:ty),* ) -> $out:ty; )* } )*
    ) => {
        $(
            #[async_trait::async_trait]
            impl $trait for $wrapper {
                $(
                    async fn $method(&self, $($arg: $argty),*) -> StoreResult<$out> {
                        $body!($class $method self ($($arg),*))
                    }
                )*
            }
        )*
    };
}
pub(crate) use delegate_store;

/// Implements [`Store`](super::Store) itself (the calls outside the entity traits) for
/// `$wrapper` by forwarding each to `self.inner` (or the field path given) unchanged, for a
/// wrapper that adds nothing to them. Types resolve as for [`delegate_store!`].
macro_rules! forward_store {
    ($wrapper:ty) => {
        forward_store!($wrapper, inner);
    };
    ($wrapper:ty, $($inner:ident).+) => {
        #[async_trait::async_trait]
        impl Store for $wrapper {
            fn backend(&self) -> &'static str {
                self.$($inner).+.backend()
            }
            async fn ping(&self) -> StoreResult<()> {
                self.$($inner).+.ping().await
            }
            async fn backup(&self, to: &std::path::Path) -> StoreResult<()> {
                self.$($inner).+.backup(to).await
            }
            async fn schema_status(&self) -> StoreResult<SchemaStatus> {
                self.$($inner).+.schema_status().await
            }
            async fn migrate(&self) -> StoreResult<SchemaStatus> {
                self.$($inner).+.migrate().await
            }
            async fn ensure_indexes(&self) -> StoreResult<SchemaStatus> {
                self.$($inner).+.ensure_indexes().await
            }
        }
    };
}
pub(crate) use forward_store;
