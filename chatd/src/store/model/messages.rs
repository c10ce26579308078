//! Messages: appends, the actor of a write, history and search.

use chatproto::pb;

/// What [`MessageStore::set_reaction`](crate::store::MessageStore::set_reaction) does with the
/// caller's reaction.
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

/// Input of [`MessageStore::append_message`](crate::store::MessageStore::append_message). The
/// server has validated it and resolved forwards and mentions.
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

/// Earlier texts a message's edit history keeps: the newest ones. An edit past it forgets the
/// oldest, so that a message edited without end (a bot's progress line) keeps a bounded record.
pub const MAX_KEPT_EDITS: usize = 100;

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

/// Input of [`MessageStore::history`](crate::store::MessageStore::history).
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

/// Input of [`MessageStore::search`](crate::store::MessageStore::search).
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
