//! What nodes publish to each other: a protobuf [`Envelope`] carrying the sending node's id and
//! one of a chat event (pre-encoded frame plus routing), an event for users, a typing signal or
//! a kick.
//!
//! Event frames travel exactly as they go to clients: the publishing node encodes each event
//! once, and every receiving node hands the same bytes to its connections. Only routing is added:
//! the recipients, and for chat events what the event changes about membership, so receivers
//! keep their subscriptions and caches right without decoding the frame.
//!
//! These messages never leave the cluster's Redis; they are versioned only by being additive
//! (new fields get new tags, unknown fields are ignored).

use bytes::Bytes;
use chatproto::pb;
use prost::Message as _;

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

/// One published message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// The publishing node (receivers ignore their own messages).
    #[prost(string, tag = "1")]
    pub origin: String,
    /// What it carries.
    #[prost(oneof = "Body", tags = "2, 3, 4, 5")]
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
}

/// A sequenced chat event: on `chat:<id>` for the chat's subscribers, and on `user:<id>` for each
/// member it adds (whose nodes are not subscribed to the chat yet), then with `joiner` set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChatFrame {
    /// The chat.
    #[prost(uint64, tag = "1")]
    pub chat_id: u64,
    /// The event's sequence number (for the receivers' sequencers).
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    /// Who gets it.
    #[prost(uint64, repeated, tag = "3")]
    pub recipients: Vec<u64>,
    /// The encoded event frame.
    #[prost(bytes = "bytes", tag = "4")]
    pub frame: Bytes,
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
    /// This copy went to one added member's user channel; `recipients` is that member.
    #[prost(bool, tag = "9")]
    pub joiner: bool,
    /// Members who blocked the event's author: they get `placeholder_frame` instead.
    #[prost(uint64, repeated, tag = "10")]
    pub placeholder_recipients: Vec<u64>,
    /// The event as those members see it (spec 9.2).
    #[prost(bytes = "bytes", tag = "11")]
    pub placeholder_frame: Bytes,
}

/// An unsequenced event (presence, receipts, chat state, hidden message) for some users.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UserFrame {
    /// Who gets it.
    #[prost(uint64, repeated, tag = "1")]
    pub users: Vec<u64>,
    /// The encoded event frame.
    #[prost(bytes = "bytes", tag = "2")]
    pub frame: Bytes,
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

/// What a chat event changes about membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// New members.
    pub added: Vec<u64>,
    /// Members removed (or who left).
    pub removed: Vec<u64>,
    /// The chat is deleted.
    pub deleted: bool,
}

/// The membership change an event makes, `None` for events that change neither members nor
/// roles. Role changes give an empty change (member caches must still drop the chat).
pub fn membership_change(event: &pb::ChatEvent) -> Option<MembershipChange> {
    use pb::chat_event::Body as B;
    match event.body.as_ref()? {
        B::ChatCreated(chat) => Some(MembershipChange {
            added: chat.members.iter().map(|m| m.user_id).collect(),
            ..Default::default()
        }),
        B::MembersAdded(added) => Some(MembershipChange {
            added: added.members.iter().map(|m| m.user_id).collect(),
            ..Default::default()
        }),
        B::MemberRemoved(removed) => Some(MembershipChange {
            removed: vec![removed.user_id],
            ..Default::default()
        }),
        B::MemberRoleChanged(_) => Some(MembershipChange::default()),
        B::ChatDeleted(_) => Some(MembershipChange {
            deleted: true,
            ..Default::default()
        }),
        _ => None,
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
                recipients: vec![1, 2, 3],
                frame: Bytes::from_static(b"\x03abc"),
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
    fn membership_changes_from_events() {
        let event = |body| pb::ChatEvent {
            chat_id: 1,
            seq: 2,
            body: Some(body),
            ..Default::default()
        };
        use pb::chat_event::Body as B;
        let member = |user_id| pb::Member {
            user_id,
            ..Default::default()
        };
        let created = event(B::ChatCreated(pb::Chat {
            members: vec![member(4), member(5)],
            ..Default::default()
        }));
        assert_eq!(membership_change(&created).expect("change").added, [4, 5]);
        let added = event(B::MembersAdded(pb::MembersAdded {
            members: vec![member(9)],
        }));
        assert_eq!(membership_change(&added).expect("change").added, [9]);
        let removed = event(B::MemberRemoved(pb::MemberRemoved {
            user_id: 4,
            left: true,
        }));
        assert_eq!(membership_change(&removed).expect("change").removed, [4]);
        let role = event(B::MemberRoleChanged(pb::MemberRoleChanged {
            user_id: 4,
            role: 2,
        }));
        assert_eq!(membership_change(&role), Some(MembershipChange::default()));
        assert!(
            membership_change(&event(B::ChatDeleted(pb::ChatDeleted {})))
                .expect("change")
                .deleted
        );
        assert_eq!(
            membership_change(&event(B::MessageDeleted(pb::MessageDeleted {
                message_seq: 1
            }))),
            None
        );
    }
}
