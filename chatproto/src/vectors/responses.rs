//! The canonical Response vectors: every result kind.

use super::build::{ok, response};
use super::samples::*;
use super::{Vector, VectorError};
use crate::pb;
use crate::pb::chat_event::Body;
use crate::pb::response::Result as Rs;

/// Every Response result.
pub(super) fn responses() -> Result<Vec<Vector>, VectorError> {
    let welcome = pb::Welcome {
        protocol_major: 1,
        protocol_minor: 0,
        capabilities: vec!["datagrams".into()],
        server_name: "chatd/0.1.0".into(),
        node_id: "node-a1".into(),
        server_time_ms: T0,
        limits: Some(limits()),
        redirect: None,
    };
    let redirect = pb::Welcome {
        capabilities: vec!["redirect".into()],
        redirect: Some(pb::Redirect {
            addresses: vec![
                "chat-2.example.org:4433".into(),
                "[2001:db8::2]:4433".into(),
            ],
            reason: "rebalancing".into(),
        }),
        ..welcome.clone()
    };
    let auth = pb::AuthResult {
        user: Some(alice_self()),
        session_id: 77,
        access_token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMDAxIn0.c2lnbmF0dXJl".into(),
        access_expires_at_ms: T0 + 900_000,
        refresh_token: "rt_x3Qm9dYV0Hq2pL7sT4wZ8bN1cK6fA5eR".into(),
    };
    let sessions = pb::SessionList {
        sessions: vec![
            pb::Session {
                id: 77,
                device_name: "laptop".into(),
                created_at_ms: T0 - 86_400_000,
                last_seen_at_ms: T0,
                address: "192.0.2.10:50123".into(),
                current: true,
            },
            pb::Session {
                id: 78,
                device_name: "phone".into(),
                created_at_ms: T0 - 3_600_000,
                last_seen_at_ms: T0 - 60_000,
                address: "[2001:db8::7]:61000".into(),
                current: false,
            },
        ],
    };
    let events = pb::ChatEventList {
        events: vec![
            chat_event(8, CAROL, Body::MessageCreated(tombstone_as_created())),
            chat_event(
                9,
                CAROL,
                Body::MessageDeleted(pb::MessageDeleted { message_seq: 8 }),
            ),
        ],
        more: true,
    };
    let cases: Vec<(&str, Option<&str>, pb::Response)> = vec![
        (
            "response.error",
            Some("field names the offending field as request_kind.field"),
            response(
                2,
                Rs::Error(pb::Error::invalid_argument(
                    "register.username",
                    "must be 3-32 characters of [a-z0-9_.]",
                )),
            ),
        ),
        (
            "response.error.rate_limited",
            None,
            response(
                33,
                Rs::Error(pb::Error {
                    code: pb::ErrorCode::RateLimited as i32,
                    message: "too many messages".into(),
                    field: String::new(),
                    retry_after_ms: 1500,
                }),
            ),
        ),
        ("response.welcome", None, response(1, Rs::Welcome(welcome))),
        (
            "response.welcome.redirect",
            Some("only to clients that offered `redirect`; the server then closes with REDIRECTED"),
            response(1, Rs::Welcome(redirect)),
        ),
        ("response.auth", None, response(3, Rs::Auth(auth))),
        ("response.ok", None, response(6, Rs::Ok(pb::Ok {}))),
        (
            "response.sessions",
            None,
            response(8, Rs::Sessions(sessions)),
        ),
        ("response.user", None, response(11, Rs::User(alice_self()))),
        (
            "response.users",
            None,
            response(
                12,
                Rs::Users(pb::UserList {
                    users: vec![bob_public(), carol_for_admin()],
                    next_cursor: "u:1003".into(),
                }),
            ),
        ),
        ("response.chat", None, response(32, Rs::Chat(group_chat()))),
        (
            "response.health",
            Some("cluster mode with Redis unreachable: the node is not healthy"),
            response(
                54,
                Rs::Health(pb::ServerHealth {
                    healthy: false,
                    checks: vec![
                        pb::HealthCheck {
                            name: "store".into(),
                            healthy: true,
                            detail: String::new(),
                        },
                        pb::HealthCheck {
                            name: "redis".into(),
                            healthy: false,
                            detail: "connection refused".into(),
                        },
                    ],
                    server_name: "chatd/0.1.0".into(),
                    node_id: "node-a1".into(),
                }),
            ),
        ),
        (
            "response.members",
            Some("more members follow"),
            response(
                58,
                Rs::Members(pb::MemberList {
                    members: vec![
                        pb::Member {
                            user_id: ALICE,
                            role: pb::MemberRole::Owner as i32,
                            joined_at_ms: T0,
                        },
                        pb::Member {
                            user_id: BOB,
                            role: pb::MemberRole::Member as i32,
                            joined_at_ms: T0 + 60_000,
                        },
                    ],
                    next_cursor: "BQAAAAAAAAPq".into(),
                }),
            ),
        ),
        (
            "response.purged",
            Some("100 deleted, more remain: ask again"),
            response(
                60,
                Rs::Purged(pb::PurgeResult {
                    deleted: 100,
                    more: true,
                }),
            ),
        ),
        (
            "response.stats",
            None,
            response(
                61,
                Rs::Stats(pb::ServerStats {
                    users: 1204,
                    chats: 388,
                    messages: 96_310,
                    connections: 57,
                    uptime_ms: 86_400_000,
                    server_name: "chatd/0.1.0".into(),
                    node_id: "node-a1".into(),
                    messages_last_minute: 1_260,
                }),
            ),
        ),
        (
            "response.nodes",
            Some("two nodes; node-b was asked to drain"),
            response(
                62,
                Rs::Nodes(pb::NodeList {
                    nodes: vec![
                        pb::NodeStatus {
                            node_id: "node-a".into(),
                            addr: "chat-a.example.org:4433".into(),
                            connections: 812,
                            version: "0.1.0".into(),
                            started_at_ms: T0,
                            heartbeat_at_ms: T0 + 86_400_000,
                            draining: false,
                            answering: true,
                        },
                        pb::NodeStatus {
                            node_id: "node-b".into(),
                            addr: "chat-b.example.org:4433".into(),
                            connections: 790,
                            version: "0.1.0".into(),
                            started_at_ms: T0 + 3_600_000,
                            heartbeat_at_ms: T0 + 86_399_000,
                            draining: true,
                            answering: false,
                        },
                    ],
                    more: false,
                }),
            ),
        ),
        (
            "response.audit",
            Some("a role change by alice, and a refused deletion by a non-admin, newest first"),
            response(
                64,
                Rs::Audit(pb::AuditLog {
                    entries: vec![
                        pb::AuditEntry {
                            id: 42,
                            at_ms: T0 + 60_000,
                            actor_id: CAROL,
                            actor_username: "carol".into(),
                            address: "198.51.100.23:50113".into(),
                            action: "admin_delete_user".into(),
                            subject: format!("user:{BOB}"),
                            outcome: pb::ErrorCode::PermissionDenied as i32,
                            detail: String::new(),
                        },
                        pb::AuditEntry {
                            id: 41,
                            at_ms: T0,
                            actor_id: ALICE,
                            actor_username: "alice".into(),
                            address: "[2001:db8::7]:61002".into(),
                            action: "admin_set_role".into(),
                            subject: format!("user:{BOB}"),
                            outcome: pb::ErrorCode::Unspecified as i32,
                            detail: "role=ROLE_ADMIN".into(),
                        },
                    ],
                    next_cursor: "BgAAAAAAAAAp".into(),
                }),
            ),
        ),
        (
            "response.notifications",
            Some("a mention by bob, unread, and an earlier private message, read"),
            response(
                150,
                Rs::Notifications(pb::NotificationList {
                    notifications: vec![
                        mention_notification(),
                        pb::Notification {
                            id: 41,
                            kind: pb::NotificationKind::PrivateMessage as i32,
                            chat_id: PRIVATE_CHAT,
                            message_seq: 12,
                            actor_id: BOB,
                            created_at_ms: T0,
                            read: true,
                            silent: true,
                            preview: "see you tomorrow".into(),
                        },
                    ],
                    next_cursor: "BwAAAAAAAAAp".into(),
                    unread_count: 1,
                }),
            ),
        ),
        (
            "response.notifications_updated",
            Some("mark_all_notifications_read: everything up to id 42 is read"),
            response(
                152,
                Rs::NotificationsUpdated(pb::NotificationsUpdated {
                    ids: Vec::new(),
                    up_to_id: 42,
                    cleared: false,
                    unread_count: 0,
                }),
            ),
        ),
        (
            "response.notification_prefs",
            None,
            response(155, Rs::NotificationPrefs(notification_prefs())),
        ),
        (
            "response.dead_letters",
            Some("a webhook call that failed its eighth attempt"),
            response(
                160,
                Rs::DeadLetters(pb::DeadLetterList {
                    dead_letters: vec![pb::DeadLetter {
                        id: 17,
                        kind: pb::DeliveryKind::Webhook as i32,
                        user_id: BOB,
                        attempts: 8,
                        created_at_ms: T0,
                        failed_at_ms: T0 + 3_600_000,
                        last_error: "HTTP 503 Service Unavailable".into(),
                        target: "mention".into(),
                    }],
                    next_cursor: String::new(),
                }),
            ),
        ),
        (
            "response.dead_letters_changed",
            Some("two dead letters queued again"),
            response(
                161,
                Rs::DeadLettersChanged(pb::DeadLettersChanged { count: 2 }),
            ),
        ),
        (
            "response.two_factor_setup",
            Some("RFC 6238's test secret, for alice"),
            response(
                170,
                Rs::TwoFactorSetup(pb::TwoFactorSetup {
                    secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
                    otpauth_uri:
                        "otpauth://totp/chat:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
                                  &issuer=chat&algorithm=SHA1&digits=6&period=30"
                            .into(),
                    digits: 6,
                    period_seconds: 30,
                }),
            ),
        ),
        (
            "response.recovery_codes",
            Some("two of the ten"),
            response(
                171,
                Rs::RecoveryCodes(pb::RecoveryCodes {
                    codes: vec!["7hq2m-0zk4d".into(), "x3v9p-ttb1e".into()],
                }),
            ),
        ),
        (
            "response.code_sent",
            Some("a password reset code lives 15 minutes"),
            response(
                178,
                Rs::CodeSent(pb::CodeSent {
                    valid_for_seconds: 900,
                }),
            ),
        ),
        (
            "response.export",
            Some("two messages of the group, one deleted for everyone; more follow"),
            response(
                65,
                Rs::Export(pb::HistoryExport {
                    messages: vec![group_message(), tombstone()],
                    more: true,
                }),
            ),
        ),
        (
            "response.backup",
            Some("a 20 MiB copy; exactly that many raw bytes follow this frame"),
            response(
                66,
                Rs::Backup(pb::BackupInfo {
                    size: 20 * 1024 * 1024,
                    sha256: (0..32).map(|i| 0xa0 ^ i).collect(),
                }),
            ),
        ),
        (
            "response.broadcast",
            Some("recorded for 1250 users"),
            response(
                67,
                Rs::Broadcast(pb::BroadcastResult {
                    recipients: 1250,
                    sent_at_ms: T0 + 120_000,
                }),
            ),
        ),
        (
            "response.access_rule",
            Some("the ban as stored, expiring in a day"),
            response(68, Rs::AccessRule(ban_rule())),
        ),
        (
            "response.access",
            Some("allow-list mode with a ban and an office range; the caller is in the office"),
            response(
                71,
                Rs::Access(pb::AccessList {
                    rules: vec![
                        ban_rule(),
                        pb::AccessRule {
                            cidr: "2001:db8:42::/48".into(),
                            kind: pb::AccessRuleKind::Allow as i32,
                            reason: "office".into(),
                            created_by: CAROL,
                            created_at_ms: T0,
                            expires_at_ms: 0,
                        },
                    ],
                    allow_list: true,
                    caller_address: "2001:db8:42::17".into(),
                    more: false,
                }),
            ),
        ),
        (
            "response.schema",
            Some("an embedded database migrated from version 6; one index was missing"),
            response(
                73,
                Rs::Schema(pb::SchemaReport {
                    backend: "sqlite".into(),
                    version_before: 6,
                    version: 7,
                    latest_version: 7,
                    applied: vec!["7: access rules".into()],
                    indexes_created: vec!["blocks_by_target".into()],
                    indexes: 30,
                    indexes_missing: Vec::new(),
                }),
            ),
        ),
        (
            "response.keys",
            Some("access-token keys rotated at 09:00 with an overlap of 8 days; no webhooks"),
            response(
                76,
                Rs::Keys(pb::KeyRingList {
                    rings: vec![
                        pb::KeyRing {
                            kind: pb::KeyKind::Tokens as i32,
                            keys: vec![
                                pb::KeyInfo {
                                    kid: 3,
                                    state: pb::KeyState::Current as i32,
                                    created_at_ms: 1_767_258_000_000,
                                    retire_at_ms: 0,
                                },
                                pb::KeyInfo {
                                    kid: 2,
                                    state: pb::KeyState::Retiring as i32,
                                    created_at_ms: 1_764_666_000_000,
                                    retire_at_ms: 1_767_949_200_000,
                                },
                            ],
                            rotation_interval_ms: 2_592_000_000,
                        },
                        pb::KeyRing {
                            kind: pb::KeyKind::Refresh as i32,
                            keys: vec![pb::KeyInfo {
                                kid: 1,
                                state: pb::KeyState::Current as i32,
                                created_at_ms: 1_764_666_000_000,
                                retire_at_ms: 0,
                            }],
                            rotation_interval_ms: 2_592_000_000,
                        },
                        pb::KeyRing {
                            kind: pb::KeyKind::Webhook as i32,
                            keys: Vec::new(),
                            rotation_interval_ms: 0,
                        },
                        pb::KeyRing {
                            kind: pb::KeyKind::Turn as i32,
                            keys: vec![pb::KeyInfo {
                                kid: 0,
                                state: pb::KeyState::Current as i32,
                                created_at_ms: 0,
                                retire_at_ms: 0,
                            }],
                            rotation_interval_ms: 0,
                        },
                    ],
                    rotation_interval_ms: 2_592_000_000,
                    overlap_ms: 691_200_000,
                }),
            ),
        ),
        (
            "response.key_secrets",
            Some("the webhook secret made by the schedule at 09:00, and the one it replaced"),
            response(
                79,
                Rs::KeySecrets(pb::KeySecretList {
                    kind: pb::KeyKind::Webhook as i32,
                    keys: vec![
                        pb::KeySecret {
                            key: Some(pb::KeyInfo {
                                kid: 2,
                                state: pb::KeyState::Current as i32,
                                created_at_ms: 1_767_258_000_000,
                                retire_at_ms: 0,
                            }),
                            secret: b"q8Zk3rV0yWmN1cT7bH2sJ5dF9gL4pX6eA0uR3iO8wYz".to_vec(),
                        },
                        pb::KeySecret {
                            key: Some(pb::KeyInfo {
                                kid: 1,
                                state: pb::KeyState::Retiring as i32,
                                created_at_ms: 1_764_666_000_000,
                                retire_at_ms: 1_767_949_200_000,
                            }),
                            secret: b"whsec-2027-rotation-0001".to_vec(),
                        },
                    ],
                }),
            ),
        ),
        (
            "response.chats",
            None,
            response(
                31,
                Rs::Chats(pb::ChatList {
                    chats: vec![
                        private_chat(),
                        pb::Chat {
                            members: vec![],
                            ..group_chat()
                        },
                    ],
                    next_cursor: String::new(),
                }),
            ),
        ),
        (
            "response.message",
            None,
            response(33, Rs::Message(sent_group_message())),
        ),
        (
            "response.messages",
            None,
            response(
                38,
                Rs::Messages(pb::MessageList {
                    messages: vec![forwarded_image(), tombstone()],
                    next_cursor: String::new(),
                }),
            ),
        ),
        (
            "response.receipts",
            None,
            response(
                41,
                Rs::Receipts(pb::ReceiptList {
                    receipts: vec![
                        pb::MemberReceipt {
                            user_id: ALICE,
                            delivered_seq: 9,
                            read_seq: 6,
                        },
                        pb::MemberReceipt {
                            user_id: BOB,
                            delivered_seq: 9,
                            read_seq: 9,
                        },
                    ],
                }),
            ),
        ),
        (
            "response.edits",
            Some(
                "the texts an edit replaced, oldest first, each with the time it was written; the current text is not repeated",
            ),
            response(
                42,
                Rs::Edits(pb::EditList {
                    edits: vec![pb::MessageEdit {
                        text: "Hi @alice \u{1f44b} see you at 18:00?".into(),
                        at_ms: chat_event_at(7),
                    }],
                    next_cursor: String::new(),
                }),
            ),
        ),
        (
            "response.sync",
            Some("bob's former group 504 is reported up to the event that removed him"),
            response(
                44,
                Rs::Sync(pb::SyncResult {
                    heads: vec![
                        pb::ChatHead {
                            chat_id: PRIVATE_CHAT,
                            last_seq: 12,
                            member: true,
                        },
                        pb::ChatHead {
                            chat_id: GROUP_CHAT,
                            last_seq: 9,
                            member: true,
                        },
                        pb::ChatHead {
                            chat_id: 504,
                            last_seq: 40,
                            member: false,
                        },
                    ],
                    unread_notifications: 3,
                    next_after_chat_id: 0,
                }),
            ),
        ),
        (
            "response.sync.first_page",
            Some("more heads follow: ask again with after_chat_id 501"),
            response(
                44,
                Rs::Sync(pb::SyncResult {
                    heads: vec![pb::ChatHead {
                        chat_id: PRIVATE_CHAT,
                        last_seq: 12,
                        member: true,
                    }],
                    unread_notifications: 3,
                    next_after_chat_id: PRIVATE_CHAT,
                }),
            ),
        ),
        (
            "response.events",
            Some("more is set: page on with after_seq 9"),
            response(45, Rs::Events(events)),
        ),
        (
            "response.upload",
            Some("the server has the first MiB: the upload stream starts there"),
            response(
                53,
                Rs::Upload(pb::UploadTicket {
                    upload_id: "u_2mVbq7R0TkeY1xQh".into(),
                    offset: 1_048_576,
                }),
            ),
        ),
        (
            "response.file",
            Some("a photo with its size and two thumbnails, each a file of its own"),
            response(54, Rs::File(venue_photo())),
        ),
        (
            "response.download",
            Some("the frame is followed on the stream by exactly `length` raw bytes, then FIN"),
            response(
                55,
                Rs::Download(pb::Download {
                    file: Some(venue_photo()),
                    offset: 1_048_576,
                    length: 1_432_761,
                    url: String::new(),
                    url_expires_at_ms: 0,
                }),
            ),
        ),
        (
            "response.download.url",
            Some("prefer_url: a signed HTTPS URL instead of the bytes"),
            response(
                56,
                Rs::Download(pb::Download {
                    file: Some(venue_photo()),
                    offset: 0,
                    length: 0,
                    url: "https://files.example.org/f/f_venue_photo_01?u=1001&e=1767229200&s=Zm9v"
                        .into(),
                    url_expires_at_ms: 1_767_229_200_000,
                }),
            ),
        ),
    ];
    cases
        .iter()
        .map(|(name, note, msg)| ok(name, *note, msg))
        .collect()
}

/// Carol's message 8 as its creating event shows it now: already deleted (a tombstone).
fn tombstone_as_created() -> pb::Message {
    pb::Message {
        seq: 8,
        sent_at_ms: chat_event_at(8),
        ..tombstone()
    }
}

/// A day's ban of a /24, as stored.
fn ban_rule() -> pb::AccessRule {
    pb::AccessRule {
        cidr: "203.0.113.0/24".into(),
        kind: pb::AccessRuleKind::Ban as i32,
        reason: "credential stuffing".into(),
        created_by: CAROL,
        created_at_ms: T0 + 120_000,
        expires_at_ms: T0 + 120_000 + 86_400_000,
    }
}
