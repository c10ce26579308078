//! The objects the vectors are made of: one small, consistent world.
//!
//! Users alice (1001, a server admin), bob (1002) and carol (1003); the private chat of alice and
//! bob (501), alice's group "Rust meetup" (502) and her channel "Announcements" (503). Times
//! start at 2026-01-01T00:00:00Z.

use crate::pb;

/// 2026-01-01T00:00:00Z in milliseconds since the Unix epoch.
pub(super) const T0: i64 = 1_767_225_600_000;

pub(super) const ALICE: u64 = 1001;
pub(super) const BOB: u64 = 1002;
pub(super) const CAROL: u64 = 1003;

pub(super) const PRIVATE_CHAT: u64 = 501;
pub(super) const GROUP_CHAT: u64 = 502;
pub(super) const CHANNEL: u64 = 503;

/// Alice as she sees herself (email and role are only sent about oneself and to admins; whether
/// two-factor login is on only in `get_me`).
pub(super) fn alice_self() -> pb::User {
    pb::User {
        id: ALICE,
        username: "alice".into(),
        display_name: "Alice Liddell".into(),
        bio: "Curiouser and curiouser.\nRust, tea, rabbits.".into(),
        avatar_file_id: "f_3Jx9-avatar".into(),
        status: pb::UserStatus::Online as i32,
        last_seen_at_ms: T0 + 3_600_000,
        created_at_ms: T0 - 86_400_000,
        email: "alice@example.org".into(),
        role: pb::Role::Admin as i32,
        disabled: false,
        two_factor_enabled: false,
        email_verified: false,
    }
}

/// Bob as others see him.
pub(super) fn bob_public() -> pb::User {
    pb::User {
        id: BOB,
        username: "bob".into(),
        display_name: "Bob".into(),
        status: pb::UserStatus::Away as i32,
        last_seen_at_ms: T0 + 1_800_000,
        created_at_ms: T0 - 43_200_000,
        ..Default::default()
    }
}

/// Carol as an admin sees her: disabled.
pub(super) fn carol_for_admin() -> pb::User {
    pb::User {
        id: CAROL,
        username: "carol.c".into(),
        display_name: "Carol Ç".into(),
        status: pb::UserStatus::Offline as i32,
        created_at_ms: T0 - 3_600_000,
        email: "carol@example.net".into(),
        role: pb::Role::User as i32,
        disabled: true,
        two_factor_enabled: false,
        ..Default::default()
    }
}

/// The server defaults of chat/1.0.
pub(super) fn limits() -> pb::Limits {
    pb::Limits {
        max_frame_bytes: 262_144,
        max_text_chars: 4096,
        max_page_size: 100,
        max_concurrent_requests: 24,
        max_chat_members: 10_000,
        max_file_bytes: 104_857_600,
        max_concurrent_uploads: 4,
        upload_quota_bytes: 1_073_741_824,
    }
}

/// The SHA-256 of the venue photo (any 32 bytes do for a vector).
pub(super) fn venue_sha256() -> Vec<u8> {
    (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect()
}

/// The venue photo as its readers see it, with its two thumbnails.
pub(super) fn venue_photo() -> pb::FileInfo {
    pb::FileInfo {
        id: "f_venue_photo_01".into(),
        name: "venue.jpg".into(),
        mime: "image/jpeg".into(),
        size: 2_481_337,
        sha256: venue_sha256(),
        kind: pb::MessageKind::Image as i32,
        width: 4000,
        height: 3000,
        thumbnails: vec![
            pb::Thumbnail {
                file_id: "t_venue_photo_160".into(),
                width: 160,
                height: 120,
                mime: "image/jpeg".into(),
                size: 6_120,
            },
            pb::Thumbnail {
                file_id: "t_venue_photo_640".into(),
                width: 640,
                height: 480,
                mime: "image/jpeg".into(),
                size: 58_004,
            },
        ],
        created_at_ms: T0 - 7_300_000,
    }
}

pub(super) fn member(user_id: u64, role: pb::MemberRole, joined_at_ms: i64) -> pb::Member {
    pb::Member {
        user_id,
        role: role as i32,
        joined_at_ms,
    }
}

/// Bob's message 7 in the group as the other members see it now: a text with a mention and a
/// reply, edited once (event 10) and with two reactions. Sent at the time of its creating event
/// (seq 7); no `client_msg_id`, which only the sender is shown (spec 11.7).
pub(super) fn group_message() -> pb::Message {
    pb::Message {
        text: "Hi @alice \u{1f44b} see you at 18:30?".into(),
        edited: true,
        edited_at_ms: chat_event_at(10),
        reactions: vec![
            pb::Reaction {
                emoji: "\u{1f44d}".into(),
                user_ids: vec![ALICE, CAROL],
                count: 2,
            },
            pb::Reaction {
                emoji: "\u{1f389}".into(),
                user_ids: vec![CAROL],
                count: 1,
            },
        ],
        client_msg_id: String::new(),
        ..sent_group_message()
    }
}

/// Bob's message 7 as `send_message` answers it to Bob: as sent, with his `client_msg_id`.
pub(super) fn sent_group_message() -> pb::Message {
    pb::Message {
        chat_id: GROUP_CHAT,
        seq: 7,
        sender_id: BOB,
        kind: pb::MessageKind::Text as i32,
        text: "Hi @alice \u{1f44b} see you at 18:00?".into(),
        reply_to_seq: 5,
        sent_at_ms: chat_event_at(7),
        mention_ids: vec![ALICE],
        client_msg_id: "c5f1a2d0-7b1e-4c2a-9d35-0e8f6a4b2c11".into(),
        ..Default::default()
    }
}

/// A photo alice forwarded from the channel into the private chat.
pub(super) fn forwarded_image() -> pb::Message {
    pb::Message {
        chat_id: PRIVATE_CHAT,
        seq: 12,
        sender_id: ALICE,
        kind: pb::MessageKind::Image as i32,
        text: "the venue".into(),
        file_id: "f_venue_photo_01".into(),
        attachment: Some(Box::new(venue_photo())),
        forwarded_from: Some(pb::ForwardedFrom {
            chat_id: CHANNEL,
            seq: 3,
            sender_id: ALICE,
            sent_at_ms: T0 - 7_200_000,
        }),
        sent_at_ms: T0 + 900_000,
        ..Default::default()
    }
}

/// Carol's message 9, deleted for everyone by event 11: only the tombstone remains.
pub(super) fn tombstone() -> pb::Message {
    pb::Message {
        chat_id: GROUP_CHAT,
        seq: 9,
        sender_id: CAROL,
        kind: pb::MessageKind::Text as i32,
        sent_at_ms: chat_event_at(9),
        deleted: true,
        deleted_at_ms: chat_event_at(11),
        ..Default::default()
    }
}

/// Alice's own view of the group.
pub(super) fn group_state() -> pb::ChatUserState {
    pb::ChatUserState {
        role: pb::MemberRole::Owner as i32,
        pinned: true,
        muted_until_ms: i64::MAX,
        archived: false,
        delivered_seq: 9,
        read_seq: 6,
        unread_count: 2,
        mentions_only: false,
    }
}

/// The group as GetChat returns it to alice: with members and the latest message.
pub(super) fn group_chat() -> pb::Chat {
    pb::Chat {
        id: GROUP_CHAT,
        kind: pb::ChatKind::Group as i32,
        title: "Rust meetup".into(),
        description: "Monthly meetup.\nBring a laptop.".into(),
        avatar_file_id: "f_group_avatar".into(),
        owner_id: ALICE,
        created_at_ms: T0,
        last_seq: 9,
        last_activity_ms: T0 + 720_000,
        last_message: Some(group_message()),
        member_count: 3,
        members: vec![
            member(ALICE, pb::MemberRole::Owner, T0),
            member(BOB, pb::MemberRole::Admin, T0),
            member(CAROL, pb::MemberRole::Member, T0 + 60_000),
        ],
        state: Some(group_state()),
    }
}

/// The private chat as a list entry (no members).
pub(super) fn private_chat() -> pb::Chat {
    pb::Chat {
        id: PRIVATE_CHAT,
        kind: pb::ChatKind::Private as i32,
        created_at_ms: T0 - 3_600_000,
        last_seq: 12,
        last_activity_ms: T0 + 900_000,
        last_message: Some(forwarded_image()),
        member_count: 2,
        state: Some(pb::ChatUserState {
            role: pb::MemberRole::Member as i32,
            delivered_seq: 12,
            read_seq: 12,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The channel as it was created (seq 1 of its history).
pub(super) fn channel_created() -> pb::Chat {
    pb::Chat {
        id: CHANNEL,
        kind: pb::ChatKind::Channel as i32,
        title: "Announcements".into(),
        owner_id: ALICE,
        created_at_ms: T0 - 86_000_000,
        last_seq: 1,
        last_activity_ms: T0 - 86_000_000,
        member_count: 1,
        members: vec![member(ALICE, pb::MemberRole::Owner, T0 - 86_000_000)],
        ..Default::default()
    }
}

/// A chat event of the group at `seq`, caused by `actor_id`.
/// When the group's event `seq` happened: one a minute from [`T0`]. Messages carry the time of
/// the event that created, edited or deleted them.
pub(super) fn chat_event_at(seq: u64) -> i64 {
    T0 + seq as i64 * 60_000
}

/// Event `seq` of the group chat, by `actor_id`.
pub(super) fn chat_event(seq: u64, actor_id: u64, body: pb::chat_event::Body) -> pb::ChatEvent {
    pb::ChatEvent {
        chat_id: GROUP_CHAT,
        seq,
        at_ms: chat_event_at(seq),
        actor_id,
        body: Some(body),
    }
}

/// Bob mentioned alice in the group.
pub(super) fn mention_notification() -> pb::Notification {
    pb::Notification {
        id: 42,
        kind: pb::NotificationKind::Mention as i32,
        chat_id: GROUP_CHAT,
        message_seq: 9,
        actor_id: BOB,
        created_at_ms: T0 + 60_000,
        read: false,
        silent: false,
        preview: "@alice can you review this?".into(),
    }
}

/// Quiet from 22:00 to 07:00 at UTC+1; mentions in muted chats notify.
pub(super) fn notification_prefs() -> pb::NotificationPrefs {
    pb::NotificationPrefs {
        disabled: false,
        do_not_disturb: Some(pb::DoNotDisturb {
            enabled: true,
            start_minute: 22 * 60,
            end_minute: 7 * 60,
            utc_offset_minutes: 60,
        }),
        mentions_in_muted_chats: true,
        email: false,
        email_digest_minutes: 0,
        webhook: false,
    }
}
