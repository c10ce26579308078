//! Records and inputs of the storage traits. Wire types are used where the store keeps exactly
//! what is sent (messages, chat events); the rest are storage records with fields clients never
//! see (password hashes, flags).

use chatproto::pb;

/// A user account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Server-assigned id, never reused.
    pub id: u64,
    /// Lowercase, unique.
    pub username: String,
    /// Empty when deleted.
    pub email: String,
    /// Whether `email` was verified with a code sent to it (protocol.md section 18); false
    /// again whenever the address changes.
    pub email_verified: bool,
    /// PHC string (argon2id); empty when deleted.
    pub password_hash: String,
    /// Display name; empty when unset.
    pub display_name: String,
    /// Free text.
    pub bio: String,
    /// Opaque file id; empty when unset.
    pub avatar_file_id: String,
    /// The status the user chose (what others see while they are connected).
    pub status: pb::UserStatus,
    /// Last activity; 0 when never seen.
    pub last_seen_at_ms: i64,
    /// Server-wide role.
    pub role: pb::Role,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Deleted accounts are also disabled; their username stays reserved.
    pub deleted: bool,
    /// Creation time.
    pub created_at_ms: i64,
}

/// Input of [`UserStore::create_user`](super::UserStore::create_user).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Lowercase username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// PHC string.
    pub password_hash: String,
    /// Initial role.
    pub role: pb::Role,
    /// Creation time.
    pub now_ms: i64,
}

/// A partial profile update; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    /// New display name.
    pub display_name: Option<String>,
    /// New bio.
    pub bio: Option<String>,
    /// New avatar file id.
    pub avatar_file_id: Option<String>,
    /// New chosen status.
    pub status: Option<pb::UserStatus>,
}

/// A login session (one refresh-token family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Server-assigned id.
    pub id: u64,
    /// Owner.
    pub user_id: u64,
    /// Client-chosen device name.
    pub device_name: String,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last refresh or authentication.
    pub last_seen_at_ms: i64,
    /// Last client address, "ip:port".
    pub address: String,
    /// Set when revoked.
    pub revoked_at_ms: Option<i64>,
}

#[cfg(test)]
impl NewUser {
    /// A user `username` created at 1 ms, with a password hash nothing verifies, for tests.
    pub fn sample(username: &str) -> Self {
        Self {
            username: username.into(),
            email: format!("{username}@example.test"),
            password_hash: "$argon2id$sample".into(),
            role: pb::Role::User,
            now_ms: 1,
        }
    }
}

#[cfg(test)]
impl NewSession {
    /// A session of `user_id` on a phone, created at `now_ms` with the refresh token hash
    /// `refresh_hash`, for tests.
    pub fn sample(user_id: u64, refresh_hash: &str, now_ms: i64) -> Self {
        Self {
            user_id,
            device_name: "phone".into(),
            address: "192.0.2.1:1".into(),
            refresh_hash: refresh_hash.into(),
            now_ms,
        }
    }
}

#[cfg(test)]
impl SessionRecord {
    /// A live session of user 1 on a phone, last seen at `last_seen_at_ms`, for tests.
    pub fn sample(id: u64, last_seen_at_ms: i64) -> Self {
        Self {
            id,
            user_id: 1,
            device_name: "phone".into(),
            created_at_ms: 1,
            last_seen_at_ms,
            address: "192.0.2.1:1".into(),
            revoked_at_ms: None,
        }
    }
}

/// Input of [`SessionStore::create_session`](super::SessionStore::create_session).
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Owner.
    pub user_id: u64,
    /// Client-chosen device name.
    pub device_name: String,
    /// Client address.
    pub address: String,
    /// Hash of the first refresh token.
    pub refresh_hash: String,
    /// Creation time.
    pub now_ms: i64,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was live: it is now used up and `new_hash` is the session's live token.
    Rotated(SessionRecord),
    /// The token had been used before: the whole session is now revoked.
    Reused {
        /// The revoked session.
        session_id: u64,
        /// Its owner.
        user_id: u64,
    },
    /// The token was live but its session had expired (idle or too old by
    /// [`DeadSessions::at`] the time of the call): the session is now revoked, and the token was
    /// not rotated.
    Expired {
        /// The revoked session.
        session_id: u64,
        /// Its owner.
        user_id: u64,
    },
    /// No such token (also one of a deleted session), or its session was already revoked.
    Invalid,
}

/// A session's refresh token expires after this long without use: 7 days.
pub const REFRESH_IDLE_TTL_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// A session's refresh token expires this long after the session was created: 30 days.
pub const REFRESH_ABSOLUTE_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Which sessions [`SessionStore::delete_dead_sessions`](super::SessionStore::delete_dead_sessions)
/// deletes: those revoked at or before [`revoked_by_ms`](Self::revoked_by_ms), and those whose
/// refresh token had [`expired`](Self::expired) by then. [`at`](Self::at) computes the bounds
/// from one time; the stores' rotation and sweep and the server's listing all judge expiry by
/// it, so they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadSessions {
    /// Revoked at or before this time.
    pub revoked_by_ms: i64,
    /// Last used (or created, when that is later) at or before this time: idle too long.
    pub last_used_by_ms: i64,
    /// Created at or before this time: too old, however recently used.
    pub created_by_ms: i64,
}

impl DeadSessions {
    /// The sessions that are dead at `at_ms`: revoked by then, or with their refresh token
    /// expired by then (last used [`REFRESH_IDLE_TTL_MS`] before, or created
    /// [`REFRESH_ABSOLUTE_TTL_MS`] before).
    pub fn at(at_ms: i64) -> Self {
        Self {
            revoked_by_ms: at_ms,
            last_used_by_ms: at_ms.saturating_sub(REFRESH_IDLE_TTL_MS),
            created_by_ms: at_ms.saturating_sub(REFRESH_ABSOLUTE_TTL_MS),
        }
    }

    /// Whether a session created at `created_at_ms` and last used at `last_seen_at_ms` had its
    /// refresh token expired by these bounds (revocation aside).
    pub fn expired(&self, created_at_ms: i64, last_seen_at_ms: i64) -> bool {
        last_seen_at_ms.max(created_at_ms) <= self.last_used_by_ms
            || created_at_ms <= self.created_by_ms
    }
}

/// What one [`SessionStore::delete_dead_sessions`](super::SessionStore::delete_dead_sessions)
/// call deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweptSessions {
    /// The sessions of its batch that are gone, ascending: every one it deleted, and those of
    /// the batch that another call deleted at the same time.
    pub gone: Vec<u64>,
    /// How many of them this call deleted: a session two calls at once reached counts in one.
    pub deleted: u64,
}

/// A chat as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRecord {
    /// Server-assigned id.
    pub id: u64,
    /// Private, group or channel.
    pub kind: pb::ChatKind,
    /// Empty for private chats.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Opaque file id.
    pub avatar_file_id: String,
    /// 0 for private chats.
    pub owner_id: u64,
    /// Creation time.
    pub created_at_ms: i64,
    /// The latest event's seq.
    pub last_seq: u64,
    /// The seq of the latest event that changed who is a member or a member's role (see
    /// [`changes_membership`]); 0 when none did since this was first kept.
    pub members_seq: u64,
    /// The latest event's time.
    pub last_activity_ms: i64,
    /// Current members.
    pub member_count: u32,
}

/// Whether an event changes who is a member of its chat or a member's role: what moves
/// [`ChatRecord::members_seq`], and what member caches are dropped for.
pub fn changes_membership(body: &pb::chat_event::Body) -> bool {
    use pb::chat_event::Body as B;
    matches!(
        body,
        B::ChatCreated(_)
            | B::MembersAdded(_)
            | B::MemberRemoved(_)
            | B::MemberRoleChanged(_)
            | B::ChatDeleted(_)
    )
}

/// Input of [`ChatStore::create_group`](super::ChatStore::create_group).
#[derive(Debug, Clone)]
pub struct NewGroup {
    /// Group or channel.
    pub kind: pb::ChatKind,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// The creator, who becomes owner.
    pub owner: u64,
    /// Other initial members (the owner is added anyway; duplicates ignored).
    pub member_ids: Vec<u64>,
    /// Creation time.
    pub now_ms: i64,
}

/// A partial chat update; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct ChatPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New avatar file id.
    pub avatar_file_id: Option<String>,
}

/// A membership row, current or former.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    /// Chat.
    pub chat_id: u64,
    /// Member.
    pub user_id: u64,
    /// Role (owner, admin, member).
    pub role: pb::MemberRole,
    /// When they joined (most recently).
    pub joined_at_ms: i64,
    /// The seq of the event that added them (most recently).
    pub joined_at_seq: u64,
    /// For former members: the seq of the event that removed them or deleted the chat; they may
    /// read events up to and including it. `None` while a member.
    pub left_at_seq: Option<u64>,
}

/// A user's own state of one chat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChatState {
    /// Pinned to the top of the list.
    pub pinned: bool,
    /// 0: not muted; i64::MAX: forever.
    pub muted_until_ms: i64,
    /// Archived (left out of the default list).
    pub archived: bool,
    /// Delivered cursor.
    pub delivered_seq: u64,
    /// Read cursor.
    pub read_seq: u64,
    /// Only mentions of the user in this chat make notifications.
    pub mentions_only: bool,
}

/// A partial per-user chat state update.
#[derive(Debug, Clone, Default)]
pub struct UserChatPatch {
    /// Pin or unpin.
    pub pinned: Option<bool>,
    /// Mute until (0 unmutes).
    pub muted_until_ms: Option<i64>,
    /// Archive or unarchive.
    pub archived: Option<bool>,
    /// Notify only of mentions, or of everything again.
    pub mentions_only: Option<bool>,
}

/// One entry of a user's chat list.
#[derive(Debug, Clone, PartialEq)]
pub struct UserChat {
    /// The chat.
    pub chat: ChatRecord,
    /// The user's membership.
    pub member: MemberRecord,
    /// The user's own state.
    pub state: UserChatState,
    /// Messages from others with seq > read_seq that the user can see (not hidden, not deleted;
    /// for a former member, up to `member.left_at_seq`).
    pub unread_count: u32,
    /// The newest message the user can see (not deleted, not hidden; for a former member, up to
    /// `member.left_at_seq`), if any.
    pub last_message: Option<pb::Message>,
}

/// Paging of [`ChatStore::user_chats`](super::ChatStore::user_chats).
#[derive(Debug, Clone, Default)]
pub struct UserChatsQuery {
    /// Include archived chats.
    pub include_archived: bool,
    /// Start strictly after this position (pinned, last_activity_ms, chat_id) of the previous
    /// page's last entry.
    pub after: Option<(bool, i64, u64)>,
    /// Page size.
    pub limit: u32,
}

/// Filters and paging of [`OverviewStore::all_chats`](super::OverviewStore::all_chats). Filters
/// combine; an unset one matches every chat.
#[derive(Debug, Clone, Default)]
pub struct AllChatsQuery {
    /// Only chats of this kind.
    pub kind: Option<pb::ChatKind>,
    /// Only chats whose title contains this, ignoring the case of ASCII letters (so an empty
    /// one matches every title, and a non-empty one no private chat).
    pub title: String,
    /// Only chats this user is a current member of.
    pub member_id: Option<u64>,
    /// Start strictly after this chat id.
    pub after_id: u64,
    /// Page size.
    pub limit: u32,
}

/// Which messages [`OverviewStore::sent_messages`](super::OverviewStore::sent_messages) finds:
/// those `sender_id` sent, in `chat_id` when given, sent at or after `since_ms` when given,
/// strictly after the position `after` (`(chat_id, seq)`), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct SentQuery {
    /// Whose messages.
    pub sender_id: u64,
    /// Only in this chat.
    pub chat_id: Option<u64>,
    /// Only those sent at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Start strictly after this `(chat_id, seq)`.
    pub after: (u64, u64),
    /// Page size.
    pub limit: u32,
}

/// What [`OverviewStore::counts`](super::OverviewStore::counts) counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Accounts that are not deleted (disabled ones included).
    pub users: u64,
    /// Chats that are not deleted.
    pub chats: u64,
    /// Messages not deleted for everyone (those of deleted chats included: the store keeps
    /// them).
    pub messages: u64,
}

/// What [`MessageStore::set_reaction`](super::MessageStore::set_reaction) does with the caller's
/// reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReactionChange {
    /// Adds it; an emoji the message does not have yet only while it has fewer than
    /// `max_emoji` different ones.
    Add {
        /// The most different emoji a message takes.
        max_emoji: usize,
    },
    /// Removes it.
    Remove,
}

/// Input of [`MessageStore::append_message`](super::MessageStore::append_message). The server
/// has validated it and resolved forwards and mentions.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Target chat.
    pub chat_id: u64,
    /// Sender.
    pub sender_id: u64,
    /// Idempotency key, unique per sender.
    pub client_msg_id: String,
    /// Kind.
    pub kind: pb::MessageKind,
    /// Text or caption.
    pub text: String,
    /// File reference for media kinds.
    pub file_id: String,
    /// What the server knows of `file_id` (media kinds), stored with the message and purged
    /// with it.
    pub attachment: Option<Box<pb::FileInfo>>,
    /// Reply target in the same chat, 0 for none.
    pub reply_to_seq: u64,
    /// Origin of a forwarded message.
    pub forwarded_from: Option<pb::ForwardedFrom>,
    /// Mentioned user ids.
    pub mention_ids: Vec<u64>,
    /// Send time.
    pub now_ms: i64,
    /// The chat's [`ChatRecord::members_seq`] when the sender's right to post was judged: the
    /// append is refused with `Conflict(MembersChanged)` if membership changed since. `None`
    /// appends whatever the membership (tools and tests that write a store directly).
    pub members_seq: Option<u64>,
}

/// Who writes to a chat's messages (edits, deletes, reacts), with the chat's
/// [`ChatRecord::members_seq`] their right to was judged on: the store refuses the write with
/// `Conflict(MembersChanged)` if membership changed since (as for
/// [`NewMessage::members_seq`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The user.
    pub user_id: u64,
    /// The `members_seq` judged on; `None` writes whatever the membership.
    pub members_seq: Option<u64>,
}

impl Actor {
    /// `user_id`, judged on the membership at `members_seq`.
    pub fn judged(user_id: u64, members_seq: u64) -> Self {
        Actor {
            user_id,
            members_seq: Some(members_seq),
        }
    }

    /// `user_id`, not judged on any membership (server admins, tools, tests).
    pub fn unjudged(user_id: u64) -> Self {
        Actor {
            user_id,
            members_seq: None,
        }
    }
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq)]
pub struct SendOutcome {
    /// The stored message (the original one for a duplicate).
    pub message: pb::Message,
    /// The appended event; `None` for a duplicate.
    pub event: Option<pb::ChatEvent>,
}

/// Input of [`MessageStore::history`](super::MessageStore::history).
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// Chat.
    pub chat_id: u64,
    /// Whose hidden messages to leave out.
    pub viewer: u64,
    /// Only messages with seq < before_seq (0: no bound).
    pub before_seq: u64,
    /// Only messages with seq > after_seq (0: no bound).
    pub after_seq: u64,
    /// Only messages with seq <= up_to_seq (a former member's limit; u64::MAX for members).
    pub up_to_seq: u64,
    /// Page size. With after_seq set: the lowest `limit` above it; otherwise the highest `limit`.
    pub limit: u32,
}

/// Input of [`MessageStore::search`](super::MessageStore::search).
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// Whose hidden messages to leave out.
    pub viewer: u64,
    /// Words; all must match, the last as a prefix.
    pub text: String,
    /// (chat_id, highest readable seq) pairs to search in.
    pub chats: Vec<(u64, u64)>,
    /// Start strictly after this position, (sent_at_ms, chat_id, seq) of the previous page's last
    /// hit, in the order newest first (sent_at_ms, then chat_id, then seq, all descending).
    pub before: Option<(i64, u64, u64)>,
    /// Page size.
    pub limit: u32,
    /// Leave out messages from these senders (the viewer blocked them).
    pub senders_blocked: Vec<u64>,
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadState {
    /// Receiving bytes.
    Open,
    /// Finished: it made this file.
    Done {
        /// The file the upload made.
        file_id: String,
    },
    /// Refused (hash mismatch, content of the wrong type, ...); its bytes are discarded.
    Failed {
        /// What was wrong, for the client.
        reason: String,
    },
}

/// An upload as stored: the declaration of [`pb::BeginUpload`] and its state. Its bytes are in
/// the file blob store, under the upload's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// Server-made id.
    pub id: String,
    /// Who uploads.
    pub user_id: u64,
    /// Declared size in bytes.
    pub size: u64,
    /// Declared SHA-256 (32 bytes).
    pub sha256: Vec<u8>,
    /// Sanitized name.
    pub name: String,
    /// Declared kind.
    pub kind: pb::MessageKind,
    /// When it was first declared.
    pub created_at_ms: i64,
    /// Where it stands.
    pub state: UploadState,
}

/// A stored file: what readers see ([`pb::FileInfo`]) and what the server keeps about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    /// What readers see; `info.id` is the file's id.
    pub info: pb::FileInfo,
    /// The uploader (for a thumbnail: the original's uploader).
    pub owner_id: u64,
    /// For a thumbnail: the file it shows. Readable by whoever may read that file.
    pub parent_id: Option<String>,
    /// Used as an avatar: readable by every signed-in user.
    pub public: bool,
}

impl FileRecord {
    /// The file's id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The content address of its bytes: the SHA-256 in lowercase hex.
    pub fn content_key(&self) -> String {
        hex::encode(&self.info.sha256)
    }
}

/// One admin action to record in the audit log ([`AuditStore`](super::AuditStore)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// When it was answered, in Unix milliseconds.
    pub at_ms: i64,
    /// Who asked: a user id, 0 when the connection was not authenticated.
    pub actor_id: u64,
    /// The address the request came from (`ip:port`).
    pub address: String,
    /// The request kind, e.g. `admin_delete_user`.
    pub action: String,
    /// What it acted on, e.g. `user:42`, `chat:7/seq:3`; empty when nothing in particular.
    pub subject: String,
    /// The parameters that say what it did beyond its kind, e.g. `disabled=true`; empty when
    /// the kind says it all. Never a secret (no password).
    pub detail: String,
    /// How it was answered: [`pb::ErrorCode::Unspecified`] for a success.
    pub outcome: pb::ErrorCode,
}

/// A recorded admin action: the entry with the id the store gave it, increasing in the order
/// the entries were appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The entry's id, from 1.
    pub id: u64,
    /// What was recorded.
    pub entry: NewAuditEntry,
}

/// Filters and paging of [`AuditStore::audit_entries`](super::AuditStore::audit_entries).
/// Filters combine; an unset one matches every entry.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only actions of this user.
    pub actor_id: Option<u64>,
    /// Only this request kind.
    pub action: Option<String>,
    /// Only actions on this subject (exact).
    pub subject: Option<String>,
    /// Only entries at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only entries with a smaller id (paging backwards from the newest); `None` from the newest.
    pub before_id: Option<u64>,
    /// Page size.
    pub limit: u32,
}

/// Which of a user's notifications a change applies to
/// ([`NotificationStore`](super::NotificationStore)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationSet {
    /// These ids (those that are not the user's are ignored).
    Ids(Vec<u64>),
    /// Every one with an id at or below this.
    UpTo(u64),
}

/// Paging of [`NotificationStore::notifications`](super::NotificationStore::notifications).
#[derive(Debug, Clone, Default)]
pub struct NotificationQuery {
    /// Whose.
    pub user_id: u64,
    /// Only the unread ones.
    pub unread_only: bool,
    /// Only ids below this (paging backwards from the newest); `None` from the newest.
    pub before_id: Option<u64>,
    /// Page size.
    pub limit: u32,
}

/// Input of [`OutboxStore::enqueue_delivery`](super::OutboxStore::enqueue_delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// What it delivers.
    pub kind: pb::DeliveryKind,
    /// Unique among the entries waiting or in flight: a second entry with the same key is not
    /// queued (so two nodes, or a retried step, queue one delivery).
    pub key: String,
    /// Whom it is for (0: nobody in particular).
    pub user_id: u64,
    /// What the sender needs, opaque to the store.
    pub payload: Vec<u8>,
    /// When it is first due.
    pub due_ms: i64,
    /// Now.
    pub now_ms: i64,
}

/// An outbox entry as stored: waiting, in flight, or dead (a dead letter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// Increasing in the order entries were queued.
    pub id: u64,
    /// What it delivers.
    pub kind: pb::DeliveryKind,
    /// The key it was queued under; `dead:{id}` once dead and `retry:{id}` once retried from
    /// the dead letters, so its first key is free for a new entry.
    pub key: String,
    /// Whom it is for.
    pub user_id: u64,
    /// What the sender needs.
    pub payload: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it is due next.
    pub due_ms: i64,
    /// When it was queued.
    pub created_at_ms: i64,
    /// Why the last attempt failed; empty before any failure.
    pub last_error: String,
    /// Dead after its last attempt: it waits for an admin.
    pub dead: bool,
    /// When it died; 0 while alive.
    pub dead_at_ms: i64,
}

/// How an attempt ended, for [`OutboxStore::release_delivery`](super::OutboxStore::release_delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// It failed and is tried again at `at_ms` (the attempt counts).
    Retry {
        /// When it is due again.
        at_ms: i64,
        /// Why it failed.
        error: String,
    },
    /// Not now, without failing (e.g. the user is online): due again at `at_ms`, the attempt
    /// does not count.
    Postpone {
        /// When it is due again.
        at_ms: i64,
    },
    /// It failed for the last time: it becomes a dead letter (the attempt counts).
    Dead {
        /// Why it failed.
        error: String,
    },
}

/// Which dead letters an admin change applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverySet {
    /// These ids (others, and ids of entries that are not dead, are ignored).
    Ids(Vec<u64>),
    /// Every dead letter.
    All,
}

/// One user's two-factor login (protocol.md section 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoFactorRecord {
    /// The TOTP secret, sealed (`auth::two_factor`); the store never sees it in the clear.
    pub sealed_secret: Vec<u8>,
    /// False while the secret is pending (begun, not confirmed): logins ignore it then.
    pub enabled: bool,
    /// The last TOTP step a code was used for (0 for none); only later ones are accepted.
    pub last_step: u64,
    /// How many unused recovery codes are left.
    pub recovery_codes_left: u32,
}

/// The storage schema as [`Store::schema_status`](super::Store::schema_status) and the calls
/// that change it report it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The schema version before the call.
    pub version_before: u32,
    /// The schema version after it.
    pub version: u32,
    /// The version this code writes and understands.
    pub latest_version: u32,
    /// The migrations the call applied, oldest first, as `"N: what"`.
    pub applied: Vec<String>,
    /// The indexes the call created because they were missing.
    pub indexes_created: Vec<String>,
    /// How many indexes the schema has.
    pub indexes: u32,
    /// The schema's indexes missing after the call.
    pub indexes_missing: Vec<String>,
}

/// What an emailed account code is for (protocol.md section 18). A user has at most one live
/// code per purpose: a new one replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePurpose {
    /// Verifying the address the code was sent to.
    VerifyEmail,
    /// Setting a new password without the old one.
    ResetPassword,
}

impl CodePurpose {
    /// The purpose's stable number in the stores.
    pub fn number(self) -> u8 {
        match self {
            CodePurpose::VerifyEmail => 1,
            CodePurpose::ResetPassword => 2,
        }
    }
}

/// Input of [`RecoveryStore::put_account_code`](super::RecoveryStore::put_account_code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccountCode {
    /// Whose code.
    pub user_id: u64,
    /// What for.
    pub purpose: CodePurpose,
    /// The keyed hash of the code (`auth::recovery`); the store never sees the code.
    pub hash: String,
    /// The address the code was sent to.
    pub email: String,
    /// When it stops working.
    pub expires_at_ms: i64,
    /// Now.
    pub now_ms: i64,
    /// When the user's live code of this purpose was made less than this long ago, nothing
    /// changes (0: always replace).
    pub resend_gap_ms: i64,
}

/// How [`RecoveryStore::redeem_account_code`](super::RecoveryStore::redeem_account_code) went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The code was right and is now spent; it was sent to `email`.
    Redeemed {
        /// The address the code was sent to.
        email: String,
    },
    /// A live code exists and this is not it; the attempt was counted (the last allowed
    /// attempt removes the code).
    Wrong,
    /// No live code: never sent, spent, expired or out of attempts.
    Missing,
}

/// One key of a ring as the store keeps it: its secret sealed by the server, so the store alone
/// opens none (see [`KeyStore`](super::KeyStore)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The key id, unique in its ring; 0 is the key from before rotation, kept without a secret.
    pub kid: u32,
    /// The sealed secret; empty for kid 0.
    pub sealed: Vec<u8>,
    /// When it was made.
    pub created_at_ms: i64,
    /// When it stops verifying; 0 for the key that signs.
    pub retire_at_ms: i64,
}

/// The keys of one kind and the version of the ring, which every write moves on by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRingRecord {
    /// What the keys are for.
    pub kind: pb::KeyKind,
    /// 1 for the first ring written, then one more per write.
    pub version: u64,
    /// The keys, in the order written.
    pub keys: Vec<StoredKey>,
}
