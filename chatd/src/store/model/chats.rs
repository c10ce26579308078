//! Chats, their members, and each user's own state of a chat.

use chatproto::pb;

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

/// Input of [`ChatStore::create_group`](crate::store::ChatStore::create_group).
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

/// Paging of [`ChatStore::user_chats`](crate::store::ChatStore::user_chats).
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

/// Filters and paging of [`OverviewStore::all_chats`](crate::store::OverviewStore::all_chats).
/// Filters combine; an unset one matches every chat.
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

/// Which messages [`OverviewStore::sent_messages`](crate::store::OverviewStore::sent_messages)
/// finds: those `sender_id` sent, in `chat_id` when given, sent at or after `since_ms` when given,
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

/// What [`OverviewStore::counts`](crate::store::OverviewStore::counts) counts.
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
