//! What the application receives from [`Client::next_event`](super::Client::next_event).

use super::config::Tokens;
use crate::pb;

/// One thing that happened, in the order it happened.
///
/// [`ClientEvent::Chat`] events arrive exactly once and in `seq` order per chat, across
/// reconnects. The others are signals: latest state, safe to miss.
#[derive(Debug, Clone, PartialEq)]
// Chat is by far the most frequent variant; boxing it would allocate per event for nothing.
#[allow(clippy::large_enum_variant)]
pub enum ClientEvent {
    /// An entry of a chat's history.
    Chat(pb::ChatEvent),
    /// A member's receipt cursors moved.
    Receipt(pb::ReceiptUpdate),
    /// A user's presence changed.
    Presence(pb::PresenceUpdate),
    /// Someone is typing (from the event stream or a datagram).
    Typing(pb::Typing),
    /// The caller's own chat state changed on another device.
    ChatState(pb::ChatStateChanged),
    /// The caller hid a message on another device.
    MessageHidden(pb::MessageHidden),
    /// A call of this user changed state: it rings, was answered, or ended (capability `calls`).
    Call(pb::Call),
    /// Signaling of an active call from the other device taking part (capability `calls`).
    CallSignal(pb::CallSignal),
    /// A group call in one of the user's groups changed: someone joined or left, or it ended
    /// (capability `group_calls`).
    GroupCall(pb::GroupCall),
    /// Signaling from another participant device of a group call, for this device
    /// (capability `group_calls`).
    GroupCallSignal(pb::GroupCallSignal),
    /// A new entry of the user's notification center (protocol.md section 15).
    Notification(pb::Notification),
    /// Notifications were marked read or cleared, on any device of the user.
    NotificationsUpdated(pb::NotificationsUpdated),
    /// The server is draining this connection; the client reconnects by itself.
    GoAway(pb::GoAway),
    /// The session was revoked: the client stopped and will not reconnect.
    SessionRevoked(pb::SessionRevoked),
    /// Events `from_seq..=to_seq` of a chat will never be delivered (the server refused them).
    Skipped {
        /// The chat.
        chat_id: u64,
        /// First missing seq.
        from_seq: u64,
        /// Last missing seq.
        to_seq: u64,
    },
    /// After a (re)connect, every chat has been delivered up to its head.
    CaughtUp,
    /// A connection is up (initially, or after a reconnect).
    Connected {
        /// The `host:port` it went to.
        address: String,
        /// `Welcome.node_id`.
        node_id: String,
    },
    /// The connection was lost; the client reconnects unless it is stopped. Every event the
    /// server sent on the connection before closing it (a GoAway, a revocation) comes first.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// The client will dial again after this long (after a lost connection or a failed
    /// attempt): for a countdown in the user interface.
    Reconnecting {
        /// The backoff delay before the next attempt.
        after: std::time::Duration,
    },
    /// New tokens were issued (a refresh on reconnect): persist them, the old refresh token is
    /// spent.
    TokensRefreshed(Tokens),
    /// Re-authentication after a reconnect was refused: the client stopped. Log in again with a
    /// new client.
    AuthFailed {
        /// The server's reason.
        reason: String,
    },
}

impl ClientEvent {
    /// Converts an event-stream frame; `None` for an unset kind (a newer server's event).
    pub fn from_pb(event: pb::Event) -> Option<Self> {
        use pb::event::Kind;
        Some(match event.kind? {
            Kind::Chat(e) => Self::Chat(e),
            Kind::Receipt(e) => Self::Receipt(e),
            Kind::Presence(e) => Self::Presence(e),
            Kind::Typing(e) => Self::Typing(e),
            Kind::ChatState(e) => Self::ChatState(e),
            Kind::MessageHidden(e) => Self::MessageHidden(e),
            Kind::Call(e) => Self::Call(e),
            Kind::CallSignal(e) => Self::CallSignal(e),
            Kind::GroupCall(e) => Self::GroupCall(e),
            Kind::GroupCallSignal(e) => Self::GroupCallSignal(e),
            Kind::Notification(e) => Self::Notification(e),
            Kind::NotificationsUpdated(e) => Self::NotificationsUpdated(e),
            Kind::GoAway(e) => Self::GoAway(e),
            Kind::SessionRevoked(e) => Self::SessionRevoked(e),
        })
    }
}
