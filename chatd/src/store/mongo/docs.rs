//! The stored documents and their conversion to store records and wire types.
//!
//! Identifiers and sequence numbers are `u64` in the traits but BSON has only signed integers: they
//! are stored as `i64` (server-assigned values never come near `i64::MAX`); query bounds such as
//! `u64::MAX` ("no limit") saturate to `i64::MAX`.

use chatproto::pb;
use mongodb::bson::Binary;
use mongodb::bson::spec::BinarySubtype;
use prost::Message as _;
use serde::{Deserialize, Serialize};

use super::error::corrupt;
use super::pending::PendingOp;
use super::sealing::{Fields, Purpose};
use crate::store::{
    ChatRecord, MemberRecord, SessionRecord, StoreResult, UserChatState, UserRecord,
};

/// A trait-side `u64` as stored; saturates (no stored id or seq is that large).
pub(super) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored `i64` as the trait's `u64`; this backend never stores negative ids or seqs.
pub(super) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// `counters`: one document per id sequence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CounterDoc {
    #[serde(rename = "_id")]
    pub name: String,
    pub value: i64,
}

/// `users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct UserDoc {
    #[serde(rename = "_id")]
    pub id: i64,
    pub username: String,
    pub email: String,
    /// Absent in documents written before verification existed: unverified.
    #[serde(default)]
    pub email_verified: bool,
    pub password_hash: String,
    pub display_name: String,
    /// `display_name` lowercased, for case-insensitive prefix search.
    pub display_lower: String,
    pub bio: String,
    pub avatar_file_id: String,
    pub status: i32,
    pub last_seen_at_ms: i64,
    pub role: i32,
    pub disabled: bool,
    pub deleted: bool,
    pub created_at_ms: i64,
}

impl From<UserDoc> for UserRecord {
    fn from(d: UserDoc) -> Self {
        UserRecord {
            id: u(d.id),
            username: d.username,
            email: d.email,
            email_verified: d.email_verified,
            password_hash: d.password_hash,
            display_name: d.display_name,
            bio: d.bio,
            avatar_file_id: d.avatar_file_id,
            status: pb::UserStatus::try_from(d.status).unwrap_or_default(),
            last_seen_at_ms: d.last_seen_at_ms,
            role: pb::Role::try_from(d.role).unwrap_or_default(),
            disabled: d.disabled,
            deleted: d.deleted,
            created_at_ms: d.created_at_ms,
        }
    }
}

/// `sessions`: one refresh-token family; `refresh_hash` is its live token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SessionDoc {
    #[serde(rename = "_id")]
    pub id: i64,
    pub user_id: i64,
    pub device_name: String,
    pub created_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub address: String,
    pub revoked_at_ms: Option<i64>,
    pub refresh_hash: String,
}

impl From<SessionDoc> for SessionRecord {
    fn from(d: SessionDoc) -> Self {
        SessionRecord {
            id: u(d.id),
            user_id: u(d.user_id),
            device_name: d.device_name,
            created_at_ms: d.created_at_ms,
            last_seen_at_ms: d.last_seen_at_ms,
            address: d.address,
            revoked_at_ms: d.revoked_at_ms,
        }
    }
}

/// `chats`. `last_seq` is the committed head: an op in flight has claimed the seq after it (see
/// the module docs) and moves it when it commits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ChatDoc {
    #[serde(rename = "_id")]
    pub id: i64,
    pub kind: i32,
    pub title: String,
    pub description: String,
    pub avatar_file_id: String,
    pub owner_id: i64,
    pub created_at_ms: i64,
    pub last_seq: i64,
    /// The seq of the latest event that changed members or roles (absent in chats written
    /// before it was kept: 0).
    #[serde(default)]
    pub members_seq: i64,
    pub last_activity_ms: i64,
    pub member_count: i64,
    pub deleted: bool,
    /// For a private chat: its `private_pairs` key, released when the chat is deleted.
    pub private_pair: Option<String>,
}

impl ChatDoc {
    /// The record as of the committed head.
    pub fn record(&self) -> ChatRecord {
        ChatRecord {
            id: u(self.id),
            kind: pb::ChatKind::try_from(self.kind).unwrap_or_default(),
            title: self.title.clone(),
            description: self.description.clone(),
            avatar_file_id: self.avatar_file_id.clone(),
            owner_id: u(self.owner_id),
            created_at_ms: self.created_at_ms,
            last_seq: u(self.last_seq),
            members_seq: u(self.members_seq),
            last_activity_ms: self.last_activity_ms,
            member_count: u32::try_from(self.member_count).unwrap_or(0),
        }
    }

    /// The wire `Chat` carried by `chat_created` and similar (no per-user fields).
    pub fn wire(&self, members: Vec<pb::Member>) -> pb::Chat {
        let r = self.record();
        pb::Chat {
            id: r.id,
            kind: r.kind as i32,
            title: r.title,
            description: r.description,
            avatar_file_id: r.avatar_file_id,
            owner_id: r.owner_id,
            created_at_ms: r.created_at_ms,
            last_seq: r.last_seq,
            last_activity_ms: r.last_activity_ms,
            last_message: None,
            member_count: r.member_count,
            members,
            state: None,
        }
    }
}

/// `members`: a membership, current (`left_at_seq` null) or former, with the user's own state of
/// the chat. `rev` is the seq of the last chat operation that changed the membership part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct MemberDoc {
    pub chat_id: i64,
    pub user_id: i64,
    pub role: i32,
    pub joined_at_ms: i64,
    pub joined_at_seq: i64,
    pub left_at_seq: Option<i64>,
    pub pinned: bool,
    pub muted_until_ms: i64,
    pub archived: bool,
    pub delivered_seq: i64,
    pub read_seq: i64,
    pub rev: i64,
    #[serde(default)]
    pub mentions_only: bool,
}

impl MemberDoc {
    pub fn record(&self) -> MemberRecord {
        MemberRecord {
            chat_id: u(self.chat_id),
            user_id: u(self.user_id),
            role: pb::MemberRole::try_from(self.role).unwrap_or_default(),
            joined_at_ms: self.joined_at_ms,
            joined_at_seq: u(self.joined_at_seq),
            left_at_seq: self.left_at_seq.map(u),
        }
    }

    pub fn state(&self) -> UserChatState {
        UserChatState {
            pinned: self.pinned,
            muted_until_ms: self.muted_until_ms,
            archived: self.archived,
            delivered_seq: u(self.delivered_seq),
            read_seq: u(self.read_seq),
            mentions_only: self.mentions_only,
        }
    }
}

/// `forwarded_from` of a message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ForwardDoc {
    pub chat_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub sent_at_ms: i64,
}

/// One user's reaction with one emoji. A message keeps them in the order they were made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct ReactionDoc {
    pub emoji: String,
    pub user_id: i64,
}

/// Groups reactions by emoji, in the order each emoji first appears, users in reaction order.
fn group_reactions(reactions: &[ReactionDoc]) -> Vec<pb::Reaction> {
    let mut grouped: Vec<pb::Reaction> = Vec::new();
    for r in reactions {
        match grouped.iter_mut().find(|g| g.emoji == r.emoji) {
            Some(g) => {
                g.user_ids.push(u(r.user_id));
                g.count += 1;
            }
            None => grouped.push(pb::Reaction {
                emoji: r.emoji.clone(),
                user_ids: vec![u(r.user_id)],
                count: 1,
            }),
        }
    }
    grouped
}

/// One entry of a message's edit history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct EditDoc {
    pub text: String,
    pub at_ms: i64,
}

/// `messages`: the message as it is now, plus who hid it and its search tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct MessageDoc {
    pub chat_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub client_msg_id: String,
    pub kind: i32,
    pub text: String,
    pub file_id: String,
    pub reply_to_seq: i64,
    pub forwarded_from: Option<ForwardDoc>,
    pub sent_at_ms: i64,
    pub edited: bool,
    pub edited_at_ms: i64,
    pub deleted: bool,
    pub deleted_at_ms: i64,
    /// In the order they were made.
    pub reactions: Vec<ReactionDoc>,
    pub mention_ids: Vec<i64>,
    /// Earlier texts, oldest first (see `MessageStore::edits`).
    pub edits: Vec<EditDoc>,
    /// Users who hid the message for themselves.
    pub hidden_for: Vec<i64>,
    /// Lowercase words of `text`, deduplicated; empty once deleted, and always when texts are
    /// sealed (no search then).
    pub tokens: Vec<String>,
    /// The seq of the last chat operation that changed the message.
    pub rev: i64,
    /// The encoded `FileInfo` of a media message; purged with the message.
    #[serde(default)]
    pub attachment: Option<Binary>,
}

impl MessageDoc {
    /// The message as clients see it, its sealed fields opened (see `sealing`).
    pub fn wire(&self, fields: &Fields) -> StoreResult<pb::Message> {
        let attachment = match &self.attachment {
            Some(stored) => {
                let bytes = fields.open_bytes(Purpose::Attachment, self.chat_id, stored)?;
                pb::FileInfo::decode(bytes.as_slice()).ok().map(Box::new)
            }
            None => None,
        };
        Ok(pb::Message {
            chat_id: u(self.chat_id),
            seq: u(self.seq),
            sender_id: u(self.sender_id),
            kind: self.kind,
            text: fields.open_text(Purpose::Text, self.chat_id, &self.text)?,
            file_id: self.file_id.clone(),
            reply_to_seq: u(self.reply_to_seq),
            forwarded_from: self.forwarded_from.as_ref().map(|f| pb::ForwardedFrom {
                chat_id: u(f.chat_id),
                seq: u(f.seq),
                sender_id: u(f.sender_id),
                sent_at_ms: f.sent_at_ms,
            }),
            sent_at_ms: self.sent_at_ms,
            edited: self.edited,
            edited_at_ms: self.edited_at_ms,
            deleted: self.deleted,
            deleted_at_ms: self.deleted_at_ms,
            reactions: group_reactions(&self.reactions),
            mention_ids: self.mention_ids.iter().map(|&id| u(id)).collect(),
            client_msg_id: self.client_msg_id.clone(),
            // A per-viewer mark, set by the handlers' views.
            from_blocked_user: false,
            attachment,
        })
    }
}

/// `events`: one chat event. `body` is the encoded wire event, except that a `message_created`
/// body holds only the message's `(chat_id, seq)`: the message is filled in from `messages` when
/// read, so the event always shows the message as it is now and deleted content lives nowhere else.
/// The event that claimed an op's first seq holds the op (`op`) until the op is done.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct EventDoc {
    /// The claim of an op is stored under the op's id; other events get one from the driver.
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<mongodb::bson::oid::ObjectId>,
    pub chat_id: i64,
    pub seq: i64,
    /// The message a message event is about (`message_edited` bodies are purged on delete).
    pub message_seq: Option<i64>,
    pub body: Binary,
    pub op: Option<PendingOp>,
    /// True while `op` holds an op (set with it, unset when it is cleared). Cleaning filters on
    /// it rather than on `op`: FerretDB's PostgreSQL handler filters a boolean equality inside
    /// PostgreSQL, but not `op`'s being null or not, so a filter on `op` had it decode every
    /// event of the chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds_op: Option<bool>,
    /// The op that wrote the event, for events after an op's first (so a cancelled op's events
    /// are told apart from those of the op that claims the same seqs next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<mongodb::bson::oid::ObjectId>,
}

/// Bytes as BSON binary.
pub(super) fn binary(bytes: Vec<u8>) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    }
}

/// Encodes a wire value as BSON binary.
pub(super) fn encode(msg: &impl prost::Message) -> Binary {
    binary(msg.encode_to_vec())
}

/// Decodes a chat event stored with [`encode`].
pub(super) fn decode_event(bin: &Binary) -> StoreResult<pb::ChatEvent> {
    pb::ChatEvent::decode(bin.bytes.as_slice()).map_err(|e| corrupt("event", e))
}
