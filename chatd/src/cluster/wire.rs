//! What nodes publish to each other: a protobuf [`Envelope`] carrying the sending node's id and
//! one of a chat event, an event for users, a typing signal, a kick or a block change.
//!
//! A chat event travels once per chat, as its member frame (the bytes members' connections get,
//! encoded once by the publishing node) plus what it changes about membership. It carries no
//! recipient list: each receiving node resolves the recipients among its own connections from
//! the chat's interest, which those membership changes keep current, and redacts per viewer
//! (see [`crate::delivery::redact`]).
//!
//! These messages never leave the cluster's Redis; they are versioned only by being additive
//! (new fields get new tags, unknown fields are ignored).

use bytes::Bytes;
use prost::Message as _;

use crate::delivery::members::MembershipChange;
use crate::delivery::relay::Only;

/// The pub/sub channel of one chat.
pub fn chat_channel(chat_id: u64) -> String {
    format!("chat:{chat_id}")
}

/// The pub/sub channel of one user.
pub fn user_channel(user_id: u64) -> String {
    format!("user:{user_id}")
}

/// The channel every node listens to.
pub const GLOBAL_CHANNEL: &str = "global";

/// The pub/sub channel of one node: sends forwarded to it, and the answers to its own.
pub fn node_channel(node_id: &str) -> String {
    format!("node:{node_id}")
}

/// One published message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// The publishing node (receivers ignore their own messages).
    #[prost(string, tag = "1")]
    pub origin: String,
    /// What it carries.
    #[prost(oneof = "Body", tags = "2, 3, 4, 5, 6, 7, 8, 9")]
    pub body: Option<Body>,
}

/// The payload kinds.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Body {
    /// A sequenced chat event.
    #[prost(message, tag = "2")]
    Chat(ChatFrame),
    /// An unsequenced event for some users.
    #[prost(message, tag = "3")]
    Users(UserFrame),
    /// A typing signal.
    #[prost(message, tag = "4")]
    Typing(TypingSignal),
    /// Close a user's connections.
    #[prost(message, tag = "5")]
    Kick(Kick),
    /// A user's blocks changed.
    #[prost(message, tag = "6")]
    Blocks(BlocksChanged),
    /// A TLS session ticket was issued or used.
    #[prost(message, tag = "7")]
    Ticket(Ticket),
    /// A send forwarded to the node that appends its chat's messages.
    #[prost(message, tag = "8", boxed)]
    Append(Box<AppendRequest>),
    /// The answer to a forwarded send.
    #[prost(message, tag = "9", boxed)]
    Appended(Box<AppendReply>),
}

/// A sequenced chat event: on `chat:<id>` for the chat's subscribers, and for the members it
/// adds (whose nodes are not subscribed to the chat yet) with `joiners` set: on `user:<id>` for
/// each when they are few, else once on `global` for all.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChatFrame {
    /// The chat.
    #[prost(uint64, tag = "1")]
    pub chat_id: u64,
    /// The event's sequence number (for the receivers' sequencers).
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    /// The member frame of the event.
    #[prost(bytes = "bytes", tag = "4")]
    pub frame: Bytes,
    /// The author of its content, whose blockers see a placeholder (0: none).
    #[prost(uint64, tag = "10")]
    pub actor: u64,
    /// Users the event makes members.
    #[prost(uint64, repeated, tag = "5")]
    pub added: Vec<u64>,
    /// Users the event removes.
    #[prost(uint64, repeated, tag = "6")]
    pub removed: Vec<u64>,
    /// The event deletes the chat.
    #[prost(bool, tag = "7")]
    pub deleted: bool,
    /// The event changes membership or roles (member caches must drop the chat).
    #[prost(bool, tag = "8")]
    pub membership_changed: bool,
    /// This copy is for these added members only (empty: the chat's copy). Unpacked, so that a
    /// node of the release before, which read one `joiner` here, still reads a copy for one
    /// (for many, it reads the last: see deploy/README.md on upgrades).
    #[prost(uint64, repeated, packed = "false", tag = "11")]
    pub joiners: Vec<u64>,
}

impl ChatFrame {
    /// What the event changes about membership, if anything.
    pub fn change(&self) -> Option<MembershipChange> {
        self.membership_changed.then(|| MembershipChange {
            added: self.added.clone(),
            removed: self.removed.clone(),
            deleted: self.deleted,
        })
    }
}

/// An unsequenced event (presence, receipts, chat state, hidden message, calls) for some users.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserFrame {
    /// Who gets it.
    #[prost(uint64, repeated, tag = "1")]
    pub users: Vec<u64>,
    /// The encoded event frame.
    #[prost(bytes = "bytes", tag = "2")]
    pub frame: Bytes,
    /// The user it is about or from (0: none).
    #[prost(uint64, tag = "3")]
    pub subject: u64,
    /// Viewers who blocked the subject do not get it (receipts, typing).
    #[prost(bool, tag = "4")]
    pub hidden_from_blockers: bool,
    /// Which of their connections get it: 0 all, 1 those with `calls`, 2 those with
    /// `group_calls`, 3 the one connection `conn_id` (see [`Only`]).
    #[prost(uint32, tag = "5")]
    pub only: u32,
    /// With `only` 3: the connection.
    #[prost(uint64, tag = "6")]
    pub conn_id: u64,
}

impl UserFrame {
    /// Which connections it is for; `None` for a kind of `only` this node does not know (a
    /// newer node's), which it then delivers to nobody.
    pub fn only(&self) -> Option<Only> {
        Some(match self.only {
            0 => Only::All,
            1 => Only::Calls,
            2 => Only::GroupCalls,
            3 => Only::Connection(self.conn_id),
            _ => return None,
        })
    }

    /// `only` and `conn_id` for `only`.
    pub fn encode_only(only: Only) -> (u32, u64) {
        match only {
            Only::All => (0, 0),
            Only::Calls => (1, 0),
            Only::GroupCalls => (2, 0),
            Only::Connection(id) => (3, id),
        }
    }
}

/// A typing signal, for the members connected to the receiving node. The receiver checks that
/// the recipient did not block the sender; the sender's own blocks are already applied.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypingSignal {
    /// The chat.
    #[prost(uint64, tag = "1")]
    pub chat_id: u64,
    /// Who types.
    #[prost(uint64, tag = "2")]
    pub sender: u64,
    /// The members who may see it.
    #[prost(uint64, repeated, tag = "3")]
    pub candidates: Vec<u64>,
    /// How long the indicator shows.
    #[prost(uint32, tag = "4")]
    pub expires_in_ms: u32,
}

/// Close a user's connections (session revoked, account disabled or deleted).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Kick {
    /// The user.
    #[prost(uint64, tag = "1")]
    pub user_id: u64,
    /// Only connections of this session; 0 for all.
    #[prost(uint64, tag = "2")]
    pub session_id: u64,
    /// The encoded farewell event, written before closing.
    #[prost(bytes = "bytes", tag = "3")]
    pub farewell: Bytes,
}

/// A user's blocks changed: nodes where they are connected reload them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BlocksChanged {
    /// The user.
    #[prost(uint64, tag = "1")]
    pub user_id: u64,
}

/// A TLS session ticket a node issued, so that every node resumes it (protocol.md 2.5); or,
/// with `sealed` empty, one it used, so that every node forgets it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ticket {
    /// The ticket the client holds.
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    /// The session state it resumes, sealed under a key every node derives from the token key
    /// (Redis never sees it in the clear).
    #[prost(bytes = "vec", tag = "2")]
    pub sealed: Vec<u8>,
}

/// A send forwarded to the chat's owner (on its node channel; see
/// [`routing`](super::routing)): the fields of the store's `NewMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendRequest {
    /// Names the answer, among the forwarding node's sends.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Target chat.
    #[prost(uint64, tag = "2")]
    pub chat_id: u64,
    /// Sender.
    #[prost(uint64, tag = "3")]
    pub sender_id: u64,
    /// Idempotency key.
    #[prost(string, tag = "4")]
    pub client_msg_id: String,
    /// `MessageKind`.
    #[prost(int32, tag = "5")]
    pub kind: i32,
    /// Text or caption.
    #[prost(string, tag = "6")]
    pub text: String,
    /// File reference for media kinds.
    #[prost(string, tag = "7")]
    pub file_id: String,
    /// What the server knows of `file_id`.
    #[prost(message, optional, tag = "8")]
    pub attachment: Option<chatproto::pb::FileInfo>,
    /// Reply target, 0 for none.
    #[prost(uint64, tag = "9")]
    pub reply_to_seq: u64,
    /// Origin of a forwarded message.
    #[prost(message, optional, tag = "10")]
    pub forwarded_from: Option<chatproto::pb::ForwardedFrom>,
    /// Mentioned users.
    #[prost(uint64, repeated, tag = "11")]
    pub mention_ids: Vec<u64>,
    /// Send time.
    #[prost(int64, tag = "12")]
    pub now_ms: i64,
    /// The chat's `members_seq` the send was judged on, if it was.
    #[prost(uint64, optional, tag = "13")]
    pub members_seq: Option<u64>,
}

/// How a forwarded send failed (`AppendReply::failure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum AppendFailure {
    /// It did not: the reply holds the message.
    None = 0,
    /// The chat does not exist.
    NoChat = 1,
    /// The sender does not exist.
    NoUser = 2,
    /// The owner's store did not answer.
    Unavailable = 3,
    /// The append kept losing its seq to other writers.
    Busy = 4,
    /// Anything else: the forwarding node appends itself, which gives the exact error.
    Other = 5,
    /// The chat's membership changed after the send was judged.
    MembersChanged = 6,
}

/// The answer to an [`AppendRequest`], on the forwarding node's channel.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AppendReply {
    /// The request's id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The stored message (the original one for a duplicate send).
    #[prost(message, optional, tag = "2")]
    pub message: Option<chatproto::pb::Message>,
    /// The appended event; absent for a duplicate.
    #[prost(message, optional, tag = "3")]
    pub event: Option<chatproto::pb::ChatEvent>,
    /// How it failed, if it did.
    #[prost(enumeration = "AppendFailure", tag = "4")]
    pub failure: i32,
    /// The error's text, for logs.
    #[prost(string, tag = "5")]
    pub detail: String,
}

impl Envelope {
    /// Encodes for publishing.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    /// Decodes a published payload.
    pub fn from_bytes(bytes: &[u8]) -> Result<Envelope, prost::DecodeError> {
        Envelope::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let envelope = Envelope {
            origin: "node-a".into(),
            body: Some(Body::Chat(ChatFrame {
                chat_id: 7,
                seq: 42,
                frame: Bytes::from_static(b"\x03abc"),
                actor: 5,
                added: vec![3],
                membership_changed: true,
                ..Default::default()
            })),
        };
        assert_eq!(
            Envelope::from_bytes(&envelope.to_bytes()).expect("decode"),
            envelope
        );
        assert!(Envelope::from_bytes(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn only_round_trips_and_an_unknown_kind_reaches_nobody() {
        for only in [
            Only::All,
            Only::Calls,
            Only::GroupCalls,
            Only::Connection(7 << 32 | 3),
        ] {
            let (kind, conn_id) = UserFrame::encode_only(only);
            let frame = UserFrame {
                only: kind,
                conn_id,
                ..Default::default()
            };
            assert_eq!(frame.only(), Some(only));
        }
        let newer = UserFrame {
            only: 9,
            ..Default::default()
        };
        assert_eq!(newer.only(), None);
    }
}
