//! Storage: one trait per entity behind the [`Store`] supertrait.
//!
//! Every backend (SQLite now, MongoDB in cluster mode) implements the same traits, in the same
//! method order, with the same errors, and passes the same conformance suite
//! (`store::conformance`). The server never sees backend types.
//!
//! Rules every backend keeps:
//! - A method either does all of its writes or none of them (no half-written state).
//! - Chat mutations append exactly one chat event each, taking the chat's next sequence number:
//!   strictly increasing from 1, no gaps, no reuse, also under concurrent writers.
//! - Messages and events use the wire types ([`pb::Message`], [`pb::ChatEvent`]): the chat log is
//!   stored as it is sent. A message deleted for everyone is purged in place (text, file, reactions,
//!   edit history); its events remain as tombstones.
//! - Usernames are stored lowercase; the server validates every input before it reaches a store.
//! - Authorization is the server's job; stores check only what they must for integrity
//!   (existence, uniqueness, membership where an operation would otherwise corrupt state).
//! - Errors name what is missing: `NotFound("user")`, `NotFound("session")`, `NotFound("chat")`
//!   (also for a deleted chat), `NotFound("member")` (not a current member), `NotFound("message")`.
//! - Lists of ids are ascending unless a method says otherwise.
//!
//! A new method goes into its trait, both backends, and one line of the store's surface in
//! [`delegate`], from which the wrappers (`GuardedStore`, `CachedStore`) forward it.

#[cfg(any(test, feature = "testing"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
pub mod conformance;
pub(crate) mod delegate;
mod error;
#[cfg(any(test, feature = "testing"))]
pub mod faults;
pub mod model;
pub mod mongo;
pub mod sqlite;

use async_trait::async_trait;
use chatproto::pb;

pub use error::*;
pub use model::*;

/// Accounts.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates an account. The username is folded to lowercase; `Conflict` ("username taken")
    /// when it is taken, also by a deleted user. The chosen status starts as `ONLINE`.
    async fn create_user(&self, new: NewUser) -> StoreResult<UserRecord>;
    /// A user by id, including disabled and deleted ones.
    async fn user(&self, id: u64) -> StoreResult<Option<UserRecord>>;
    /// A user by username (folded to lowercase before the lookup).
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// The users among `ids` that exist, each once, in no particular order.
    async fn users(&self, ids: &[u64]) -> StoreResult<Vec<UserRecord>>;
    /// Applies a profile patch; returns the updated record.
    ///
    /// This and the other changes below (`set_*`, `touch_last_seen`) fail with
    /// `NotFound("user")` for unknown and for deleted users: a deleted account cannot come back.
    async fn update_profile(&self, id: u64, patch: ProfilePatch) -> StoreResult<UserRecord>;
    /// Replaces the password hash; with `replacing`, only while the stored hash is that one, and
    /// `Conflict(PasswordChanged)` otherwise: a change judged on the password it replaces
    /// (two changes from the same old password at once cannot both pass).
    async fn set_password_hash(
        &self,
        id: u64,
        hash: &str,
        replacing: Option<&str>,
    ) -> StoreResult<()>;
    /// Sets the server-wide role.
    ///
    /// This, disabling and deleting fail with `Conflict(LastAdmin)` and change nothing when they
    /// would take away the rights of the last active (not disabled, not deleted) admin. With
    /// `by`, the admin making the change, they fail with `Conflict(NotAdmin)` and change nothing
    /// unless `by` is an active admin. The checks and the change are one atomic step: two
    /// concurrent changes that each leave one admin cannot both pass and leave none, and of two
    /// admins removing each other at once, one succeeds.
    async fn set_role(&self, id: u64, role: pb::Role, by: Option<u64>) -> StoreResult<()>;
    /// Disables or enables the account (`Conflict(LastAdmin)`, `Conflict(NotAdmin)`: see
    /// [`set_role`](Self::set_role)).
    async fn set_disabled(&self, id: u64, disabled: bool, by: Option<u64>) -> StoreResult<()>;
    /// Marks the account deleted: profile, email and password hash purged, status `OFFLINE`,
    /// disabled, username kept reserved. Deleting a deleted user again does nothing;
    /// `NotFound("user")` for an unknown id; `Conflict(LastAdmin)`, `Conflict(NotAdmin)`: see
    /// [`set_role`](Self::set_role).
    async fn delete_user(&self, id: u64, now_ms: i64, by: Option<u64>) -> StoreResult<()>;
    /// Records when the user was last seen.
    async fn touch_last_seen(&self, id: u64, now_ms: i64) -> StoreResult<()>;
    /// Active (not disabled, not deleted) users whose username or display name starts with
    /// `prefix`, ignoring case; ordered by username, strictly after `after_username` when given.
    async fn search_users(
        &self,
        prefix: &str,
        after_username: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>>;
    /// Every user (admin view, including disabled and deleted) whose username starts with
    /// `prefix`; ordered by username, strictly after `after_username` when given.
    async fn list_users(
        &self,
        prefix: &str,
        after_username: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<UserRecord>>;
    /// How many active (not disabled, not deleted) users have the admin role (to protect the
    /// last admin).
    async fn count_admins(&self) -> StoreResult<u64>;
}

/// Login sessions and their refresh tokens. A session is one refresh-token family.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Starts a session whose first refresh token hashes to `new.refresh_hash`.
    /// `NotFound("user")` for an unknown user; `Conflict` when the hash was ever issued before.
    async fn create_session(&self, new: NewSession) -> StoreResult<SessionRecord>;
    /// A session by id, revoked or not.
    async fn session(&self, id: u64) -> StoreResult<Option<SessionRecord>>;
    /// [`session`](Self::session) and [`UserStore::user`] in one call (one snapshot where the
    /// backend has them): what `authenticate` checks, so that a reconnect wave costs one store
    /// read per connection, not two.
    async fn session_and_user(
        &self,
        session_id: u64,
        user_id: u64,
    ) -> StoreResult<(Option<SessionRecord>, Option<UserRecord>)>;
    /// The owner of the session a refresh token of hash `presented_hash` belongs to, live or
    /// used (a revoked session's tokens included); `None` for a hash never issued or a deleted
    /// session's. Nothing changes: `refresh` asks it on a signed-in connection, so that a token
    /// of another user is refused without being spent.
    async fn refresh_owner(&self, presented_hash: &str) -> StoreResult<Option<u64>>;
    /// Rotates a refresh token: see [`RefreshOutcome`]. A reused token revokes its session, which
    /// invalidates every token of it, including the one issued last. `Conflict` (and no change)
    /// when `new_hash` was ever issued before.
    async fn rotate_refresh(
        &self,
        presented_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> StoreResult<RefreshOutcome>;
    /// Records activity on a session (last seen time and client address).
    /// `NotFound("session")` for an unknown id.
    async fn touch_session(&self, id: u64, address: &str, now_ms: i64) -> StoreResult<()>;
    /// The user's sessions that are not revoked, newest first.
    async fn list_sessions(&self, user_id: u64) -> StoreResult<Vec<SessionRecord>>;
    /// Revokes one session of `user_id`. `NotFound` when it is not theirs or already revoked.
    async fn revoke_session(&self, user_id: u64, session_id: u64, now_ms: i64) -> StoreResult<()>;
    /// Revokes every live session of the user except `keep`; returns the revoked ids.
    async fn revoke_user_sessions(
        &self,
        user_id: u64,
        keep: Option<u64>,
        now_ms: i64,
    ) -> StoreResult<Vec<u64>>;
    /// Deletes up to `limit` of the sessions `dead` names (any user's), each with every refresh
    /// token it was ever issued; answers which are gone (fewer than `limit`: none is left; a
    /// session two calls at once reached may be named by both) and how many this call deleted
    /// (counted by one of them). A deleted session is gone for every method: `session` finds
    /// nothing, `touch_session` answers `NotFound`, and its tokens are forgotten (presenting one
    /// is [`RefreshOutcome::Invalid`], and their hashes count as never issued). No token
    /// outlives its session, also when a call fails midway (what it leaves is sessions still to
    /// delete) or races a rotation.
    async fn delete_dead_sessions(
        &self,
        dead: DeadSessions,
        limit: u32,
    ) -> StoreResult<SweptSessions>;
}

/// Contacts and blocks (one-directional relations between users).
#[async_trait]
pub trait RelationStore: Send + Sync {
    /// Adds `target` to `owner`'s contacts (idempotent). `NotFound("user")` when either user does
    /// not exist; the same holds for [`block`](Self::block).
    async fn add_contact(&self, owner: u64, target: u64) -> StoreResult<()>;
    /// Removes a contact (idempotent).
    async fn remove_contact(&self, owner: u64, target: u64) -> StoreResult<()>;
    /// `owner`'s contacts.
    async fn contacts(&self, owner: u64) -> StoreResult<Vec<u64>>;
    /// Users who have `target` among their contacts (for presence fan-out).
    async fn contact_of(&self, target: u64) -> StoreResult<Vec<u64>>;
    /// `owner` blocks `target` (idempotent).
    async fn block(&self, owner: u64, target: u64) -> StoreResult<()>;
    /// Lifts a block (idempotent).
    async fn unblock(&self, owner: u64, target: u64) -> StoreResult<()>;
    /// The users `owner` blocked.
    async fn blocked(&self, owner: u64) -> StoreResult<Vec<u64>>;
    /// The users who blocked `target` (who get `target`'s messages as placeholders), ascending.
    async fn blocked_by(&self, target: u64) -> StoreResult<Vec<u64>>;
    /// True when `owner` blocked `target`.
    async fn is_blocked(&self, owner: u64, target: u64) -> StoreResult<bool>;
}

/// Chats, membership and per-user chat state. Every mutation here that changes what members see
/// appends one chat event and returns it.
#[async_trait]
pub trait ChatStore: Send + Sync {
    /// Returns the private chat of the pair, creating it (events: `chat_created` at seq 1 with both
    /// members) when there is none. The bool is true when it was created now. Concurrent opens of
    /// one pair create one chat. After the pair's chat is deleted, the next open creates a new one.
    /// `Conflict` when `a == b`; `NotFound("user")` for an unknown user.
    async fn open_private_chat(
        &self,
        a: u64,
        b: u64,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, bool)>;
    /// Creates a group or channel owned by `owner` with the given members (event: `chat_created`
    /// at seq 1 carrying every member). `Conflict` when `kind` is neither group nor channel;
    /// `NotFound("user")` for an unknown owner or member.
    async fn create_group(&self, new: NewGroup) -> StoreResult<(ChatRecord, pb::ChatEvent)>;
    /// A chat by id; deleted chats are `None`.
    async fn chat(&self, id: u64) -> StoreResult<Option<ChatRecord>>;
    /// [`chat`](Self::chat) as the store has it now, past any read cache in front of it (a
    /// wrapper that caches `chat` reads its store here): for a judgement made again because
    /// one made on a cached read was refused.
    async fn fresh_chat(&self, id: u64) -> StoreResult<Option<ChatRecord>> {
        self.chat(id).await
    }
    /// Updates title/description/avatar (event: `chat_updated`).
    async fn update_chat(
        &self,
        id: u64,
        actor: Actor,
        patch: ChatPatch,
        now_ms: i64,
    ) -> StoreResult<(ChatRecord, pb::ChatEvent)>;
    /// Deletes the chat (event: `chat_deleted`, the last one). Members become former members whose
    /// readable range ends at that event. `Conflict(MembersChanged)` for an [`Actor`] judged on
    /// a membership the chat has moved past (an ownership transfer came first).
    async fn delete_chat(&self, id: u64, actor: Actor, now_ms: i64) -> StoreResult<pb::ChatEvent>;
    /// Records an ended call in its chat's history (event: `call_ended`, by `actor`, the user
    /// who ended it). `NotFound("chat")` for a chat that does not exist or was deleted.
    async fn record_call(
        &self,
        chat_id: u64,
        actor: u64,
        call: pb::CallEnded,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent>;
    /// Current members with their roles.
    async fn members(&self, chat_id: u64) -> StoreResult<Vec<MemberRecord>>;
    /// One membership row, current or former (see [`MemberRecord::left_at_seq`]).
    async fn member(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<MemberRecord>>;
    /// The membership rows (current or former) and own states of those of `user_ids` who are
    /// or were members of the chat, by ascending user id: one read for many users.
    async fn member_states(
        &self,
        chat_id: u64,
        user_ids: &[u64],
    ) -> StoreResult<Vec<(MemberRecord, UserChatState)>>;
    /// Adds members (event: `members_added` listing those actually added). `Conflict` when every
    /// one of them is already a member (or the list is empty), and for private chats;
    /// `Conflict(ChatFull)` when the chat would have more than `max_members` current members,
    /// judged when the change is made (two additions at once cannot both pass a check made
    /// before either). A former member joins again with a fresh `joined_at_seq`.
    async fn add_members(
        &self,
        chat_id: u64,
        actor: Actor,
        user_ids: &[u64],
        max_members: u32,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent>;
    /// Removes a member, or records that they left (event: `member_removed`).
    /// `NotFound("member")` when not a current member; `Conflict` for the owner.
    async fn remove_member(
        &self,
        chat_id: u64,
        actor: Actor,
        user_id: u64,
        left: bool,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent>;
    /// Changes a member's role to admin or member (event: `member_role_changed`).
    /// `NotFound("member")` when not a current member; `Conflict` for the owner, for
    /// `MEMBER_ROLE_OWNER` (use [`transfer_ownership`](Self::transfer_ownership)), for a role
    /// the member already has, and in private chats.
    async fn set_member_role(
        &self,
        chat_id: u64,
        actor: Actor,
        user_id: u64,
        role: pb::MemberRole,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent>;
    /// Makes `new_owner` the owner and `from`, the owner, an admin (events: two
    /// `member_role_changed`, the new owner's first). Returns both events in order.
    /// `Conflict(NotOwner)` when `from` does not own the chat when the change is made: whoever
    /// decided on a transfer from `from` (the owner, or an admin removing them) decided on what
    /// may have changed since. `NotFound("member")` when `new_owner` is not a current member;
    /// `Conflict` when they already own it, and in private chats.
    async fn transfer_ownership(
        &self,
        chat_id: u64,
        actor: u64,
        from: u64,
        new_owner: u64,
        now_ms: i64,
    ) -> StoreResult<Vec<pb::ChatEvent>>;
    /// Updates the user's own state of a chat (no event); returns the new state.
    /// `NotFound("member")` when the user never was a member.
    async fn set_user_state(
        &self,
        chat_id: u64,
        user_id: u64,
        patch: UserChatPatch,
    ) -> StoreResult<UserChatState>;
    /// The user's current chats with their own state, pinned first, then by last activity (newest
    /// first), then by id (highest first); a page starts strictly after `after` (from the
    /// previous page's last entry). Archived chats only with `include_archived`.
    async fn user_chats(&self, user_id: u64, query: UserChatsQuery) -> StoreResult<Vec<UserChat>>;
    /// The user's own state of one chat (also for former members).
    async fn user_chat(&self, chat_id: u64, user_id: u64) -> StoreResult<Option<UserChat>>;
    /// Heads for sync: every current chat of the user, plus the chats among `known` the user has
    /// left or lost (with `member = false` and the seq at which they stopped being a member).
    /// Chats among `known` the user never belonged to are left out. Ordered by chat id.
    async fn heads(&self, user_id: u64, known: &[u64]) -> StoreResult<Vec<pb::ChatHead>>;
    /// [`heads`](Self::heads) and [`NotificationStore::unread_notifications`] in one call (one
    /// snapshot where the backend has them): what `sync` answers.
    async fn sync_state(
        &self,
        user_id: u64,
        known: &[u64],
    ) -> StoreResult<(Vec<pb::ChatHead>, u64)>;
    /// The users who share at least one current chat (of any kind) with `user_id`, each once,
    /// without `user_id` itself (for presence and block checks).
    async fn shared_chat_peers(&self, user_id: u64) -> StoreResult<Vec<u64>>;
}

/// Messages, the chat log, reactions, receipts and search.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Appends a message (event: `message_created`). When the sender already sent a message with
    /// the same `client_msg_id` (in any chat), returns that original and appends nothing, also
    /// when identical sends race. `NotFound("chat")` / `NotFound("user")` for an unknown or
    /// deleted chat or an unknown sender; `Conflict(MembersChanged)` when `members_seq` is given
    /// and the chat's membership changed after it (judged with the append, so a send checked
    /// before a removal cannot land after it). Returned messages carry `client_msg_id`; the
    /// server strips it for everyone but the sender.
    async fn append_message(&self, new: NewMessage) -> StoreResult<SendOutcome>;
    /// One message as it is now (tombstones included).
    async fn message(&self, chat_id: u64, seq: u64) -> StoreResult<Option<pb::Message>>;
    /// The message `sender_id` sent with `client_msg_id` (in any chat), as
    /// [`append_message`](Self::append_message) answers a retry of it; `None` when they sent
    /// none with it.
    async fn sent_message(
        &self,
        sender_id: u64,
        client_msg_id: &str,
    ) -> StoreResult<Option<pb::Message>>;
    /// Replaces the text of a message and keeps the old one in its edit history
    /// (event: `message_edited`). This, [`delete_message`](Self::delete_message) and
    /// [`set_reaction`](Self::set_reaction) fail with `NotFound("chat")` for a deleted chat,
    /// `NotFound("message")` for an unknown message and `Conflict` for a message deleted for
    /// everyone; for an [`Actor`] judged on a membership the chat has moved past, with
    /// `Conflict(MembersChanged)` as [`append_message`](Self::append_message) does.
    async fn edit_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: Actor,
        text: &str,
        now_ms: i64,
    ) -> StoreResult<(pb::Message, pb::ChatEvent)>;
    /// Purges a message for everyone, leaving a tombstone (event: `message_deleted`).
    async fn delete_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: Actor,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent>;
    /// Hides a message for one user only (no event; idempotent). `NotFound("message")` for an
    /// unknown message.
    async fn hide_message(&self, chat_id: u64, seq: u64, user_id: u64) -> StoreResult<()>;
    /// Adds or removes a reaction and answers the message as it is then, with the event
    /// (`reaction_changed`) when something changed. `Conflict(TooManyEmoji)` when the emoji is
    /// new to a message that has `max_emoji` different ones, judged when the change is made
    /// (two new emoji at once cannot both pass a check made before either).
    async fn set_reaction(
        &self,
        chat_id: u64,
        seq: u64,
        actor: Actor,
        emoji: &str,
        change: ReactionChange,
        now_ms: i64,
    ) -> StoreResult<(pb::Message, Option<pb::ChatEvent>)>;
    /// Messages in ascending seq order, see [`HistoryQuery`]; messages hidden for `viewer` are left
    /// out, tombstones are included. A `limit` of 0 returns nothing.
    async fn history(&self, query: HistoryQuery) -> StoreResult<Vec<pb::Message>>;
    /// Chat events with `after_seq < seq <= up_to_seq`, ascending, at most `limit`.
    async fn events(
        &self,
        chat_id: u64,
        after_seq: u64,
        up_to_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<pb::ChatEvent>>;
    /// The edit history: every replaced text with the time it was written, oldest (the original
    /// text, at `sent_at_ms`) first, the newest [`MAX_KEPT_EDITS`] only; the current text is not
    /// part of it. Empty once deleted for
    /// everyone. `NotFound("message")` for an unknown message.
    async fn edits(&self, chat_id: u64, seq: u64) -> StoreResult<Vec<pb::MessageEdit>>;
    /// Moves a member's receipt cursor forward (never back; read implies delivered; never past the
    /// chat's last seq). Returns the new (delivered, read) pair, or `None` when nothing moved.
    /// `NotFound("member")` unless a current member; `Conflict` for `RECEIPT_KIND_UNSPECIFIED`.
    async fn mark_receipt(
        &self,
        chat_id: u64,
        user_id: u64,
        kind: pb::ReceiptKind,
        up_to_seq: u64,
    ) -> StoreResult<Option<(u64, u64)>>;
    /// Every current member's cursors.
    async fn receipts(&self, chat_id: u64) -> StoreResult<Vec<pb::MemberReceipt>>;
    /// Full-text search over the given chats (the server passes only chats the user can read, each
    /// with the highest seq the user may see); never matches deleted content or messages hidden for
    /// `viewer`. Newest first, see [`SearchQuery::before`]. The text is plain words: query syntax
    /// of the backend's search engine in it has no effect and never causes an error; a text with
    /// no word (only punctuation) matches nothing.
    async fn search(&self, query: SearchQuery) -> StoreResult<Vec<pb::Message>>;
}

/// What the server knows about uploads and files (capability `files`). The bytes live in the
/// file blob store ([`crate::files::blob`]); these are the database rows, written after the bytes
/// are durable.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// The user's open upload of the same content (same size and SHA-256), with its name and kind
    /// replaced by those of `new`; or `new` inserted when there is none. The bool is true when it
    /// was inserted. Concurrent calls with the same content open one upload.
    async fn open_upload(&self, new: UploadRecord) -> StoreResult<(UploadRecord, bool)>;
    /// An upload by id, in any state.
    async fn upload(&self, id: &str) -> StoreResult<Option<UploadRecord>>;
    /// Marks an open upload failed. `NotFound("upload")` for an unknown id; `Conflict` when it is
    /// not open.
    async fn fail_upload(&self, id: &str, reason: &str) -> StoreResult<()>;
    /// Finishes an open upload: inserts `file` and its `thumbnails` (whose `parent_id` is the
    /// file) and marks the upload done, all or nothing. An upload already done returns the file
    /// it made and inserts nothing. `NotFound("upload")` for an unknown id; `Conflict` when it
    /// failed.
    async fn complete_upload(
        &self,
        id: &str,
        file: FileRecord,
        thumbnails: Vec<FileRecord>,
    ) -> StoreResult<FileRecord>;
    /// Deletes an upload row in any state (idempotent).
    async fn delete_upload(&self, id: &str) -> StoreResult<()>;
    /// Uploads created before `before_ms`, oldest first, at most `limit` (for the collector).
    async fn stale_uploads(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<UploadRecord>>;
    /// A file (or thumbnail) by id.
    async fn file(&self, id: &str) -> StoreResult<Option<FileRecord>>;
    /// Marks a file readable by every signed-in user (it became an avatar). `NotFound("file")`.
    async fn set_file_public(&self, id: &str) -> StoreResult<()>;
    /// The chats where a message carries `file_id` (messages deleted for everyone carry none)
    /// and `user_id` has a membership row, current or former: `(chat_id, lowest such seq)`,
    /// ordered by chat id. The server decides from the membership whether that seq is readable.
    async fn file_shares(&self, file_id: &str, user_id: u64) -> StoreResult<Vec<(u64, u64)>>;
    /// The bytes a user keeps: the sizes of their files (thumbnails not counted) plus the
    /// declared sizes of their open uploads.
    async fn user_file_bytes(&self, user_id: u64) -> StoreResult<u64>;
    /// Files (not thumbnails) created before `before_ms` that nothing references any more: no
    /// message carries them and no user or chat has them as avatar. Oldest first, at most `limit`.
    async fn unreferenced_files(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<FileRecord>>;
    /// Deletes a file and its thumbnails (idempotent). Returns the content keys
    /// ([`FileRecord::content_key`]) of the deleted rows that no remaining file shares: their
    /// bytes may go.
    async fn delete_file(&self, id: &str) -> StoreResult<Vec<String>>;
}

/// Reads across the whole server, for server admins: chats whoever is in them, a user's
/// messages in every chat, counts.
#[async_trait]
pub trait OverviewStore: Send + Sync {
    /// Chats that are not deleted and match `query`, by ascending id, at most `query.limit`.
    async fn all_chats(&self, query: AllChatsQuery) -> StoreResult<Vec<ChatRecord>>;
    /// `(chat_id, seq)` of the messages the query names (see [`SentQuery`]) that are not
    /// deleted for everyone, in chats that are not deleted, ascending.
    async fn sent_messages(&self, query: SentQuery) -> StoreResult<Vec<(u64, u64)>>;
    /// How many users, chats and messages there are (see [`StoreCounts`]).
    async fn counts(&self) -> StoreResult<StoreCounts>;
}

/// The admin audit log: every admin action, appended once and never changed.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one entry; its id is greater than every id handed out before.
    async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry>;
    /// The entries matching `query`, newest (greatest id) first, at most `query.limit`.
    async fn audit_entries(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>>;
}

/// The notification center (protocol.md section 15): each user's notifications, stored as the
/// wire's [`pb::Notification`], and their preferences, stored as [`pb::NotificationPrefs`].
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Records a notification for `user_id`, unread, with an id greater than every id handed out
    /// before (the `id` and `read` of `n` are ignored); then deletes the user's oldest ones
    /// beyond the newest `keep`. Returns it as stored.
    async fn append_notification(
        &self,
        user_id: u64,
        n: pb::Notification,
        keep: u32,
    ) -> StoreResult<pb::Notification>;
    /// [`append_notification`](Self::append_notification) for each `(user_id, n)` of `batch`,
    /// in order, in one batch rather than one round trip each (as
    /// [`broadcast_notification`](Self::broadcast_notification) batches). Returns them as
    /// stored, in `batch`'s order.
    async fn append_notifications(
        &self,
        batch: Vec<(u64, pb::Notification)>,
        keep: u32,
    ) -> StoreResult<Vec<pb::Notification>>;
    /// Records `n` for every user who is neither disabled nor deleted (an admin broadcast), each
    /// copy unread with an id of its own greater than every id handed out before (the `id` and
    /// `read` of `n` are ignored); then deletes each of those users' oldest notifications beyond
    /// the newest `keep`. Returns `(user_id, id)` of every copy, by ascending user id. The work
    /// is batched, not one round trip per user: SQLite does it in one transaction; MongoDB, which
    /// has no multi-document transactions here, in batches of users (a failure part way leaves
    /// the users of the batches before it with their copy, and is reported).
    async fn broadcast_notification(
        &self,
        n: pb::Notification,
        keep: u32,
    ) -> StoreResult<Vec<(u64, u64)>>;
    /// The user's notifications matching `query`, newest (greatest id) first, at most
    /// `query.limit`.
    async fn notifications(&self, query: NotificationQuery) -> StoreResult<Vec<pb::Notification>>;
    /// Marks the user's notifications in `which` read; returns how many were unread.
    async fn mark_notifications_read(
        &self,
        user_id: u64,
        which: NotificationSet,
    ) -> StoreResult<u64>;
    /// Deletes the user's notifications in `which`; returns how many there were.
    async fn delete_notifications(&self, user_id: u64, which: NotificationSet) -> StoreResult<u64>;
    /// How many of the user's notifications are unread.
    async fn unread_notifications(&self, user_id: u64) -> StoreResult<u64>;
    /// The user's preferences; `None` when they never set any.
    async fn notification_prefs(&self, user_id: u64) -> StoreResult<Option<pb::NotificationPrefs>>;
    /// The preferences of those of `user_ids` who set any, by ascending user id: one read for
    /// many users.
    async fn notification_prefs_of(
        &self,
        user_ids: &[u64],
    ) -> StoreResult<Vec<(u64, pb::NotificationPrefs)>>;
    /// Replaces the user's preferences.
    async fn set_notification_prefs(
        &self,
        user_id: u64,
        prefs: pb::NotificationPrefs,
    ) -> StoreResult<()>;
}

/// The outbox of deliveries that leave the server (emails, webhook calls) and the steps that
/// make them (digests): each entry is attempted by one holder at a time, under a lease, and
/// retried until it is delivered or dies (a dead letter, which admins retry or purge). It lives
/// in the store, so it survives a restart and is shared by every node of a cluster.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues an entry, due at `new.due_ms`, unless a live entry (waiting or in flight, not dead)
    /// has the same key: then that one is returned and nothing is queued. The bool is true when
    /// it was queued now. Concurrent calls with one key queue one entry.
    async fn enqueue_delivery(&self, new: NewDelivery) -> StoreResult<(DeliveryRecord, bool)>;
    /// Claims for `holder` (1..=`i64::MAX`, chosen at random by each worker) at most `limit`
    /// live entries due at `now_ms` that no unexpired lease holds, earliest due first, each
    /// leased until `now_ms + lease_ms`. An entry is held by one holder at a time, also when
    /// several nodes claim at once; a lease that expired (its holder died) may be taken over.
    async fn claim_deliveries(
        &self,
        holder: u64,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// The attempt of `holder` succeeded: the entry is deleted. `NotFound("delivery")` when
    /// `holder` does not hold it (its lease was taken over); nothing changes then.
    async fn finish_delivery(&self, id: u64, holder: u64) -> StoreResult<()>;
    /// The attempt of `holder` ended otherwise (see [`DeliveryOutcome`]); the lease is released.
    /// A dead entry's key becomes `dead:{id}`. `NotFound("delivery")` as for
    /// [`finish_delivery`](Self::finish_delivery).
    async fn release_delivery(
        &self,
        id: u64,
        holder: u64,
        outcome: DeliveryOutcome,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Dead letters by ascending id, strictly after `after_id` when given, at most `limit`.
    async fn dead_letters(
        &self,
        after_id: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>>;
    /// Brings the dead letters in `which` back: live, no attempts, due at `now_ms`, key
    /// `retry:{id}`. Returns how many.
    async fn retry_dead_letters(&self, which: DeliverySet, now_ms: i64) -> StoreResult<u64>;
    /// Deletes the dead letters in `which`. Returns how many.
    async fn purge_dead_letters(&self, which: DeliverySet) -> StoreResult<u64>;
    /// The id of the newest notification of the user a digest already told of (0: none).
    async fn digest_mark(&self, user_id: u64) -> StoreResult<u64>;
    /// Moves the user's digest mark up to `up_to` (never down).
    async fn set_digest_mark(&self, user_id: u64, up_to: u64) -> StoreResult<()>;
}

/// Two-factor login: a sealed TOTP secret per user, pending or enabled, the last step used,
/// and the hashes of the recovery codes. Every change is one atomic step, so that two requests
/// with the same code, on one node or two, cannot both spend it.
#[async_trait]
pub trait TwoFactorStore: Send + Sync {
    /// The user's two-factor state; `None` when they have neither a pending nor an enabled one.
    async fn two_factor(&self, user_id: u64) -> StoreResult<Option<TwoFactorRecord>>;
    /// Keeps `sealed_secret` as the user's pending secret, replacing a pending one; false (and
    /// nothing changed) when two-factor login is already enabled.
    async fn stage_two_factor(&self, user_id: u64, sealed_secret: Vec<u8>) -> StoreResult<bool>;
    /// Enables the pending secret, with `step` as the last step used and `recovery_hashes` as
    /// the recovery codes; false (nothing changed) when there is no pending secret or it was
    /// replaced (`sealed_secret` is the one the code was checked against) or it is enabled.
    async fn enable_two_factor(
        &self,
        user_id: u64,
        sealed_secret: Vec<u8>,
        step: u64,
        recovery_hashes: Vec<String>,
    ) -> StoreResult<bool>;
    /// Records `step` as used when it is later than the last one used and two-factor login is
    /// enabled; false (nothing changed) otherwise.
    async fn spend_two_factor_step(&self, user_id: u64, step: u64) -> StoreResult<bool>;
    /// Whether the recovery code of hash `hash` is one of the user's, unspent, with two-factor
    /// login enabled (what [`spend_recovery_code`](Self::spend_recovery_code) would spend).
    async fn has_recovery_code(&self, user_id: u64, hash: &str) -> StoreResult<bool>;
    /// Removes the recovery code of hash `hash`; false when it is not one of the user's
    /// (never issued, or spent) or two-factor login is not enabled.
    async fn spend_recovery_code(&self, user_id: u64, hash: &str) -> StoreResult<bool>;
    /// Replaces the recovery codes; false (nothing changed) when two-factor login is not
    /// enabled.
    async fn replace_recovery_codes(
        &self,
        user_id: u64,
        recovery_hashes: Vec<String>,
    ) -> StoreResult<bool>;
    /// Turns two-factor login off: forgets the user's enabled secret and recovery codes; false,
    /// and nothing changed (a pending secret stays), when it was not enabled.
    async fn disable_two_factor(&self, user_id: u64) -> StoreResult<bool>;
}

/// Email verification and password reset (protocol.md section 18): the account's address and
/// whether it is verified, and the emailed codes, kept as keyed hashes. A code is single use:
/// of two redemptions of one code at once, on any nodes, exactly one gets `Redeemed`.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// The active (not disabled, not deleted) users whose address is `email` exactly or
    /// `email` in lowercase, verified or not, ordered by id.
    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<UserRecord>>;
    /// Replaces the user's address; the new one is unverified. `NotFound("user")` for unknown
    /// and deleted users.
    async fn set_email(&self, user_id: u64, email: &str) -> StoreResult<()>;
    /// Marks the user's address verified when it still is `email`; false (nothing changed)
    /// when it changed meanwhile or the user is gone.
    async fn mark_email_verified(&self, user_id: u64, email: &str) -> StoreResult<bool>;
    /// Keeps `code` as the user's live code of its purpose, replacing an earlier one with its
    /// attempts; false (nothing changed) when the live one was made less than
    /// `code.resend_gap_ms` ago.
    async fn put_account_code(&self, code: NewAccountCode) -> StoreResult<bool>;
    /// Spends the user's live code of `purpose` when it hashes to `hash` and has not expired at
    /// `now_ms`; otherwise counts a wrong attempt, removing the code at the `max_attempts`th.
    async fn redeem_account_code(
        &self,
        user_id: u64,
        purpose: CodePurpose,
        hash: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> StoreResult<Redemption>;
}

/// Who may connect (protocol.md 9.6, "Access rules"): address and range rules, stored as the
/// wire's [`pb::AccessRule`] under its kind and canonical `cidr` (the server parses and
/// canonicalizes ranges; the store compares them as text), and whether allow-list mode is on.
/// Every node reads them into its own access list; the store is where they are shared.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Adds `rule`, or replaces the rule of the same kind and cidr.
    async fn put_access_rule(&self, rule: pb::AccessRule) -> StoreResult<()>;
    /// Removes the rule of `kind` for `cidr`; `NotFound("access rule")` when there is none.
    async fn delete_access_rule(&self, kind: pb::AccessRuleKind, cidr: &str) -> StoreResult<()>;
    /// Every rule, expired ones included until they are removed, by kind then cidr.
    async fn access_rules(&self) -> StoreResult<Vec<pb::AccessRule>>;
    /// Removes the rules that expired at or before `now_ms` (not those that never expire);
    /// returns how many.
    async fn delete_expired_access_rules(&self, now_ms: i64) -> StoreResult<u64>;
    /// Whether allow-list mode is on; off until set.
    async fn allow_list_mode(&self) -> StoreResult<bool>;
    /// Turns allow-list mode on or off.
    async fn set_allow_list_mode(&self, on: bool) -> StoreResult<()>;
}

/// The server's key rings (protocol.md 9.6, "Key rotation"): per kind, a versioned list of keys
/// whose secrets the server sealed. Every node reads them from here, so a rotation made through
/// one is seen by all; every write is a compare-and-set on the version, so of two nodes rotating
/// at once exactly one succeeds, and a scheduled rotation happens once per cluster.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The ring of `kind`; `None` before its first write.
    async fn key_ring(&self, kind: pb::KeyKind) -> StoreResult<Option<KeyRingRecord>>;
    /// Replaces the ring of `ring.kind` at version `ring.version - 1` by `ring` (version 1:
    /// writes the first ring of its kind); false, and nothing changed, when the stored version
    /// is another (someone else wrote first).
    async fn put_key_ring(&self, ring: KeyRingRecord) -> StoreResult<bool>;
}

/// Everything chatd needs from storage.
#[async_trait]
pub trait Store:
    UserStore
    + SessionStore
    + RelationStore
    + ChatStore
    + MessageStore
    + FileStore
    + OverviewStore
    + AuditStore
    + NotificationStore
    + OutboxStore
    + TwoFactorStore
    + RecoveryStore
    + AccessStore
    + KeyStore
{
    /// A short backend name for logs and metrics ("sqlite", "mongodb").
    fn backend(&self) -> &'static str;
    /// Cheap round trip to the backend, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
    /// Writes a consistent copy of the whole database, as of one moment after the call began
    /// (every write committed before it is in the copy), to a new file at `to`, which the caller
    /// removes. Writes go on meanwhile. `Unsupported` for a backend whose copies are made with
    /// its own tools; nothing is written then.
    ///
    /// Not one of the entity traits' methods on purpose: a copy takes as long as the database
    /// is large, so the wrappers forward it without the per-call deadline of other calls.
    async fn backup(&self, to: &std::path::Path) -> StoreResult<()>;
    /// The schema's version and indexes now; changes nothing.
    ///
    /// This and the two below are outside the entity traits for the reason `backup` is: they
    /// take as long as the schema work does, so the wrappers forward them without a deadline.
    async fn schema_status(&self) -> StoreResult<SchemaStatus>;
    /// Applies the migrations the database lacks, up to the latest version (what the store
    /// also does when it opens), each all or nothing; idempotent. `Internal` for a database
    /// whose version is newer than this code knows.
    async fn migrate(&self) -> StoreResult<SchemaStatus>;
    /// Creates the schema's indexes that are missing (what the store also does when it
    /// opens); idempotent.
    async fn ensure_indexes(&self) -> StoreResult<SchemaStatus>;
}
