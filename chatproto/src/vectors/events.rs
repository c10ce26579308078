//! The canonical Event vectors (every event kind and every chat event body), the upload
//! stream header and the typing datagram in both directions.

use super::build::{event, ok};
use super::samples::*;
use super::{Vector, VectorError};
use crate::pb;
use crate::pb::chat_event::Body;
use crate::pb::event::Kind as Ev;

/// Every Event kind, and every chat event body.
pub(super) fn events() -> Result<Vec<Vector>, VectorError> {
    let cases: Vec<(&str, Option<&str>, pb::Event)> = vec![
        (
            "event.chat.chat_created",
            Some("seq 1 of every chat"),
            event(Ev::Chat(pb::ChatEvent {
                chat_id: CHANNEL,
                seq: 1,
                at_ms: T0 - 86_000_000,
                actor_id: ALICE,
                body: Some(Body::ChatCreated(channel_created())),
            })),
        ),
        (
            "event.chat.message_created",
            Some(
                "the message as it is now, edits and reactions included; live events carry nobody's client_msg_id",
            ),
            event(Ev::Chat(chat_event(
                7,
                BOB,
                Body::MessageCreated(group_message()),
            ))),
        ),
        (
            "event.chat.message_created.placeholder",
            Some(
                "message 7 as a member who blocked Bob gets it: from_blocked_user, no content (spec 9.2)",
            ),
            event(Ev::Chat(chat_event(
                7,
                BOB,
                Body::MessageCreated(pb::Message {
                    chat_id: GROUP_CHAT,
                    seq: 7,
                    sender_id: BOB,
                    kind: pb::MessageKind::Text as i32,
                    sent_at_ms: chat_event_at(7),
                    from_blocked_user: true,
                    ..Default::default()
                }),
            ))),
        ),
        (
            "event.chat.message_edited",
            None,
            event(Ev::Chat(chat_event(
                10,
                BOB,
                Body::MessageEdited(pb::MessageEdited {
                    message_seq: 7,
                    text: "Hi @alice \u{1f44b} see you at 18:30?".into(),
                    edited_at_ms: chat_event_at(10),
                }),
            ))),
        ),
        (
            "event.chat.message_deleted",
            None,
            event(Ev::Chat(chat_event(
                11,
                CAROL,
                Body::MessageDeleted(pb::MessageDeleted { message_seq: 9 }),
            ))),
        ),
        (
            "event.chat.reaction_changed",
            None,
            event(Ev::Chat(chat_event(
                12,
                CAROL,
                Body::ReactionChanged(pb::ReactionChanged {
                    message_seq: 7,
                    emoji: "\u{1f389}".into(),
                    user_id: CAROL,
                    added: true,
                }),
            ))),
        ),
        (
            "event.chat.members_added",
            None,
            event(Ev::Chat(chat_event(
                13,
                ALICE,
                Body::MembersAdded(pb::MembersAdded {
                    members: vec![member(CAROL, pb::MemberRole::Member, T0 + 780_000)],
                }),
            ))),
        ),
        (
            "event.chat.member_removed",
            Some("carol left by herself"),
            event(Ev::Chat(chat_event(
                14,
                CAROL,
                Body::MemberRemoved(pb::MemberRemoved {
                    user_id: CAROL,
                    left: true,
                }),
            ))),
        ),
        (
            "event.chat.member_role_changed",
            None,
            event(Ev::Chat(chat_event(
                15,
                ALICE,
                Body::MemberRoleChanged(pb::MemberRoleChanged {
                    user_id: BOB,
                    role: pb::MemberRole::Admin as i32,
                }),
            ))),
        ),
        (
            "event.chat.chat_updated",
            None,
            event(Ev::Chat(chat_event(
                16,
                ALICE,
                Body::ChatUpdated(pb::ChatUpdated {
                    title: "Rust meetup \u{2013} Berlin".into(),
                    description: "Monthly meetup.\nBring a laptop.".into(),
                    avatar_file_id: String::new(),
                }),
            ))),
        ),
        (
            "event.chat.chat_deleted",
            Some("the last event of a deleted chat"),
            event(Ev::Chat(chat_event(
                17,
                ALICE,
                Body::ChatDeleted(pb::ChatDeleted {}),
            ))),
        ),
        (
            "event.receipt",
            None,
            event(Ev::Receipt(pb::ReceiptUpdate {
                chat_id: GROUP_CHAT,
                user_id: BOB,
                delivered_seq: 9,
                read_seq: 9,
            })),
        ),
        (
            "event.presence",
            None,
            event(Ev::Presence(pb::PresenceUpdate {
                user_id: BOB,
                status: pb::UserStatus::Online as i32,
                last_seen_at_ms: T0 + 1_800_000,
            })),
        ),
        (
            "event.typing",
            Some("the stream fallback of the typing datagram"),
            event(Ev::Typing(pb::Typing {
                chat_id: GROUP_CHAT,
                user_id: BOB,
                expires_in_ms: 5000,
            })),
        ),
        (
            "event.chat_state",
            Some("sent to the caller's other connections after SetChatState"),
            event(Ev::ChatState(pb::ChatStateChanged {
                chat_id: GROUP_CHAT,
                state: Some(group_state()),
            })),
        ),
        (
            "event.message_hidden",
            Some("the caller deleted a message for themselves on another device"),
            event(Ev::MessageHidden(pb::MessageHidden {
                chat_id: GROUP_CHAT,
                seq: 7,
            })),
        ),
        (
            "event.notification",
            Some("bob mentioned alice in the group"),
            event(Ev::Notification(mention_notification())),
        ),
        (
            "event.notification_broadcast",
            Some("carol, a server admin, announced maintenance to every user"),
            event(Ev::Notification(pb::Notification {
                id: 43,
                kind: pb::NotificationKind::Broadcast as i32,
                chat_id: 0,
                message_seq: 0,
                actor_id: CAROL,
                created_at_ms: T0 + 120_000,
                read: false,
                silent: false,
                preview: "Maintenance tonight at 22:00 UTC.\nExpect a minute of reconnects.".into(),
            })),
        ),
        (
            "event.notifications_updated",
            Some("two notifications were marked read on another device"),
            event(Ev::NotificationsUpdated(pb::NotificationsUpdated {
                ids: vec![41, 42],
                up_to_id: 0,
                cleared: false,
                unread_count: 5,
            })),
        ),
        (
            "event.go_away",
            None,
            event(Ev::GoAway(pb::GoAway {
                reason: "node draining for upgrade".into(),
                addresses: vec!["chat-2.example.org:4433".into()],
                reconnect_after_ms: 2500,
            })),
        ),
        (
            "event.session_revoked",
            Some("followed by a connection close with SESSION_REVOKED"),
            event(Ev::SessionRevoked(pb::SessionRevoked {
                reason: "session revoked from another device".into(),
            })),
        ),
    ];
    cases
        .iter()
        .map(|(name, note, msg)| ok(name, *note, msg))
        .collect()
}

/// The header frame of an upload stream (the file's raw bytes follow it).
pub(super) fn upload_headers() -> Result<Vec<Vector>, VectorError> {
    Ok(vec![ok(
        "upload_stream.header",
        Some("continues upload u_2mVbq7R0TkeY1xQh at byte 1048576; the raw bytes follow, then FIN"),
        &pb::UploadStreamHeader {
            upload_id: "u_2mVbq7R0TkeY1xQh".into(),
            offset: 1_048_576,
        },
    )?])
}

/// The typing datagram in both directions.
pub(super) fn datagrams() -> Result<Vec<Vector>, VectorError> {
    let typing = |typing: pb::Typing| pb::Datagram {
        kind: Some(pb::datagram::Kind::Typing(typing)),
    };
    Ok(vec![
        ok(
            "datagram.typing.client",
            Some("client to server: only chat_id; the server fills in user_id and expires_in_ms"),
            &typing(pb::Typing {
                chat_id: GROUP_CHAT,
                user_id: 0,
                expires_in_ms: 0,
            }),
        )?,
        ok(
            "datagram.typing.server",
            Some("server to client: bob is typing in the group"),
            &typing(pb::Typing {
                chat_id: GROUP_CHAT,
                user_id: BOB,
                expires_in_ms: 5000,
            }),
        )?,
    ])
}
