//! The canonical vectors: every request kind, every response result, every event kind, every
//! chat event body, and the typing datagram in both directions.

use super::build::{event, ok, request, response};
use super::samples::*;
use super::{Vector, VectorError};
use crate::pb;
use crate::pb::chat_event::Body;
use crate::pb::event::Kind as Ev;
use crate::pb::request::Kind as Rq;
use crate::pb::response::Result as Rs;

/// One Request per kind, in field-number order.
pub(super) fn requests() -> Result<Vec<Vector>, VectorError> {
    let hello = pb::Hello {
        protocol_major: 1,
        protocol_minor: 0,
        capabilities: vec!["datagrams".into(), "redirect".into()],
        client_name: "chat-tui/0.1.0".into(),
    };
    let cases: Vec<(&str, Option<&str>, pb::Request)> = vec![
        (
            "request.hello",
            Some("the first request on every connection"),
            request(1, Rq::Hello(hello)),
        ),
        (
            "request.register",
            None,
            request(
                2,
                Rq::Register(pb::Register {
                    username: "alice".into(),
                    email: "alice@example.org".into(),
                    password: "correct horse battery staple".into(),
                    device_name: "laptop".into(),
                }),
            ),
        ),
        (
            "request.login",
            None,
            request(
                3,
                Rq::Login(pb::Login {
                    username: "alice".into(),
                    password: "correct horse battery staple".into(),
                    device_name: "phone \u{1f4f1}".into(),
                }),
            ),
        ),
        (
            "request.refresh",
            None,
            request(
                4,
                Rq::Refresh(pb::Refresh {
                    refresh_token: "rt_x3Qm9dYV0Hq2pL7sT4wZ8bN1cK6fA5eR".into(),
                }),
            ),
        ),
        (
            "request.authenticate",
            None,
            request(
                5,
                Rq::Authenticate(pb::Authenticate {
                    access_token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMDAxIn0.c2lnbmF0dXJl".into(),
                }),
            ),
        ),
        (
            "request.logout",
            None,
            request(6, Rq::Logout(pb::Logout {})),
        ),
        (
            "request.change_password",
            None,
            request(
                7,
                Rq::ChangePassword(pb::ChangePassword {
                    old_password: "correct horse battery staple".into(),
                    new_password: "tr0ub4dor&3-but-longer".into(),
                }),
            ),
        ),
        (
            "request.list_sessions",
            None,
            request(8, Rq::ListSessions(pb::ListSessions {})),
        ),
        (
            "request.revoke_session",
            None,
            request(9, Rq::RevokeSession(pb::RevokeSession { session_id: 77 })),
        ),
        (
            "request.revoke_other_sessions",
            None,
            request(10, Rq::RevokeOtherSessions(pb::RevokeOtherSessions {})),
        ),
        ("request.get_me", None, request(11, Rq::GetMe(pb::GetMe {}))),
        (
            "request.get_users",
            None,
            request(
                12,
                Rq::GetUsers(pb::GetUsers {
                    user_ids: vec![BOB, CAROL, 999_999],
                }),
            ),
        ),
        (
            "request.update_profile",
            Some("absent optional fields stay unchanged; bio is set to the empty string"),
            request(
                13,
                Rq::UpdateProfile(pb::UpdateProfile {
                    display_name: Some("Alice L.".into()),
                    bio: Some(String::new()),
                    avatar_file_id: None,
                    status: pb::UserStatus::Busy as i32,
                }),
            ),
        ),
        (
            "request.search_users",
            None,
            request(
                14,
                Rq::SearchUsers(pb::SearchUsers {
                    query: "bo".into(),
                    limit: 20,
                    cursor: "b2s:bob".into(),
                }),
            ),
        ),
        (
            "request.add_contact",
            None,
            request(15, Rq::AddContact(pb::AddContact { user_id: BOB })),
        ),
        (
            "request.remove_contact",
            None,
            request(16, Rq::RemoveContact(pb::RemoveContact { user_id: BOB })),
        ),
        (
            "request.list_contacts",
            None,
            request(17, Rq::ListContacts(pb::ListContacts::default())),
        ),
        (
            "request.block_user",
            None,
            request(18, Rq::BlockUser(pb::BlockUser { user_id: CAROL })),
        ),
        (
            "request.unblock_user",
            None,
            request(19, Rq::UnblockUser(pb::UnblockUser { user_id: CAROL })),
        ),
        (
            "request.list_blocked",
            None,
            request(20, Rq::ListBlocked(pb::ListBlocked::default())),
        ),
        (
            "request.create_private_chat",
            None,
            request(
                21,
                Rq::CreatePrivateChat(pb::CreatePrivateChat { user_id: BOB }),
            ),
        ),
        (
            "request.create_group",
            None,
            request(
                22,
                Rq::CreateGroup(pb::CreateGroup {
                    kind: pb::ChatKind::Group as i32,
                    title: "Rust meetup".into(),
                    description: "Monthly meetup.\nBring a laptop.".into(),
                    member_ids: vec![BOB, CAROL],
                }),
            ),
        ),
        (
            "request.update_chat",
            None,
            request(
                23,
                Rq::UpdateChat(pb::UpdateChat {
                    chat_id: GROUP_CHAT,
                    title: Some("Rust meetup \u{2013} Berlin".into()),
                    description: None,
                    avatar_file_id: Some(String::new()),
                }),
            ),
        ),
        (
            "request.delete_chat",
            None,
            request(24, Rq::DeleteChat(pb::DeleteChat { chat_id: CHANNEL })),
        ),
        (
            "request.add_members",
            None,
            request(
                25,
                Rq::AddMembers(pb::AddMembers {
                    chat_id: GROUP_CHAT,
                    user_ids: vec![CAROL],
                }),
            ),
        ),
        (
            "request.remove_member",
            None,
            request(
                26,
                Rq::RemoveMember(pb::RemoveMember {
                    chat_id: GROUP_CHAT,
                    user_id: CAROL,
                }),
            ),
        ),
        (
            "request.leave_chat",
            None,
            request(
                27,
                Rq::LeaveChat(pb::LeaveChat {
                    chat_id: GROUP_CHAT,
                }),
            ),
        ),
        (
            "request.set_member_role",
            None,
            request(
                28,
                Rq::SetMemberRole(pb::SetMemberRole {
                    chat_id: GROUP_CHAT,
                    user_id: BOB,
                    role: pb::MemberRole::Admin as i32,
                }),
            ),
        ),
        (
            "request.transfer_ownership",
            None,
            request(
                29,
                Rq::TransferOwnership(pb::TransferOwnership {
                    chat_id: GROUP_CHAT,
                    user_id: BOB,
                }),
            ),
        ),
        (
            "request.set_chat_state",
            Some("muted_until_ms set to 0 unmutes; pinned is absent and stays unchanged"),
            request(
                30,
                Rq::SetChatState(pb::SetChatState {
                    chat_id: GROUP_CHAT,
                    pinned: None,
                    muted_until_ms: Some(0),
                    archived: Some(true),
                    mentions_only: None,
                }),
            ),
        ),
        (
            "request.list_chats",
            None,
            request(
                31,
                Rq::ListChats(pb::ListChats {
                    limit: 50,
                    cursor: String::new(),
                    include_archived: true,
                }),
            ),
        ),
        (
            "request.get_chat",
            None,
            request(
                32,
                Rq::GetChat(pb::GetChat {
                    chat_id: GROUP_CHAT,
                }),
            ),
        ),
        (
            "request.send_message",
            Some("a text reply; a retry with the same client_msg_id returns the original message"),
            request(
                33,
                Rq::SendMessage(pb::SendMessage {
                    chat_id: GROUP_CHAT,
                    client_msg_id: "c5f1a2d0-7b1e-4c2a-9d35-0e8f6a4b2c11".into(),
                    kind: pb::MessageKind::Text as i32,
                    text: "Hi @alice \u{1f44b} see you at 18:00?".into(),
                    file_id: String::new(),
                    reply_to_seq: 5,
                    forward: None,
                }),
            ),
        ),
        (
            "request.send_message.forward",
            Some("a forward: kind, text and file come from the original"),
            request(
                34,
                Rq::SendMessage(pb::SendMessage {
                    chat_id: PRIVATE_CHAT,
                    client_msg_id: "fwd_0001".into(),
                    forward: Some(pb::MessageRef {
                        chat_id: CHANNEL,
                        seq: 3,
                    }),
                    ..Default::default()
                }),
            ),
        ),
        (
            "request.edit_message",
            None,
            request(
                35,
                Rq::EditMessage(pb::EditMessage {
                    chat_id: GROUP_CHAT,
                    seq: 7,
                    text: "Hi @alice \u{1f44b} see you at 18:30?".into(),
                }),
            ),
        ),
        (
            "request.delete_message",
            None,
            request(
                36,
                Rq::DeleteMessage(pb::DeleteMessage {
                    chat_id: GROUP_CHAT,
                    seq: 9,
                    for_everyone: true,
                }),
            ),
        ),
        (
            "request.react",
            None,
            request(
                37,
                Rq::React(pb::React {
                    chat_id: GROUP_CHAT,
                    seq: 7,
                    emoji: "\u{1f44d}".into(),
                    remove: false,
                }),
            ),
        ),
        (
            "request.get_history",
            Some("the 50 messages just below seq 100"),
            request(
                38,
                Rq::GetHistory(pb::GetHistory {
                    chat_id: GROUP_CHAT,
                    before_seq: 100,
                    after_seq: 0,
                    limit: 50,
                }),
            ),
        ),
        (
            "request.search_messages",
            None,
            request(
                39,
                Rq::SearchMessages(pb::SearchMessages {
                    query: "meetup ven".into(),
                    chat_id: 0,
                    limit: 20,
                    cursor: String::new(),
                }),
            ),
        ),
        (
            "request.mark_receipt",
            None,
            request(
                40,
                Rq::MarkReceipt(pb::MarkReceipt {
                    chat_id: GROUP_CHAT,
                    kind: pb::ReceiptKind::Read as i32,
                    up_to_seq: 9,
                }),
            ),
        ),
        (
            "request.get_receipts",
            None,
            request(
                41,
                Rq::GetReceipts(pb::GetReceipts {
                    chat_id: GROUP_CHAT,
                }),
            ),
        ),
        (
            "request.get_message_edits",
            None,
            request(
                42,
                Rq::GetMessageEdits(pb::GetMessageEdits {
                    chat_id: GROUP_CHAT,
                    seq: 7,
                    cursor: String::new(),
                }),
            ),
        ),
        (
            "request.send_typing",
            None,
            request(
                43,
                Rq::SendTyping(pb::SendTyping {
                    chat_id: GROUP_CHAT,
                }),
            ),
        ),
        (
            "request.sync",
            Some("sent after every (re)connect and authentication"),
            request(
                44,
                Rq::Sync(pb::Sync {
                    cursors: vec![
                        pb::ChatCursor {
                            chat_id: PRIVATE_CHAT,
                            seq: 12,
                        },
                        pb::ChatCursor {
                            chat_id: GROUP_CHAT,
                            seq: 6,
                        },
                    ],
                }),
            ),
        ),
        (
            "request.get_chat_events",
            None,
            request(
                45,
                Rq::GetChatEvents(pb::GetChatEvents {
                    chat_id: GROUP_CHAT,
                    after_seq: 6,
                    limit: 100,
                }),
            ),
        ),
        (
            "request.admin_list_users",
            None,
            request(
                46,
                Rq::AdminListUsers(pb::AdminListUsers {
                    query: "car".into(),
                    limit: 10,
                    cursor: String::new(),
                }),
            ),
        ),
        (
            "request.admin_set_user_disabled",
            None,
            request(
                47,
                Rq::AdminSetUserDisabled(pb::AdminSetUserDisabled {
                    user_id: CAROL,
                    disabled: true,
                }),
            ),
        ),
        (
            "request.admin_delete_user",
            None,
            request(
                48,
                Rq::AdminDeleteUser(pb::AdminDeleteUser { user_id: CAROL }),
            ),
        ),
        (
            "request.admin_reset_password",
            None,
            request(
                49,
                Rq::AdminResetPassword(pb::AdminResetPassword {
                    user_id: CAROL,
                    new_password: "a-fresh-start-2026".into(),
                }),
            ),
        ),
        (
            "request.admin_set_role",
            None,
            request(
                50,
                Rq::AdminSetRole(pb::AdminSetRole {
                    user_id: BOB,
                    role: pb::Role::Admin as i32,
                }),
            ),
        ),
        (
            "request.admin_list_sessions",
            None,
            request(
                51,
                Rq::AdminListSessions(pb::AdminListSessions { user_id: BOB }),
            ),
        ),
        (
            "request.admin_revoke_sessions",
            Some("session_id 0 revokes every session of the user"),
            request(
                52,
                Rq::AdminRevokeSessions(pb::AdminRevokeSessions {
                    user_id: BOB,
                    session_id: 0,
                }),
            ),
        ),
        (
            "request.admin_health",
            None,
            request(54, Rq::AdminHealth(pb::AdminHealth {})),
        ),
        (
            "request.admin_create_user",
            Some("an account made by an admin; no session is opened"),
            request(
                53,
                Rq::AdminCreateUser(pb::AdminCreateUser {
                    username: "erin".into(),
                    email: "erin@example.org".into(),
                    password: "a-first-password-2026".into(),
                    role: pb::Role::User as i32,
                }),
            ),
        ),
        (
            "request.admin_list_chats",
            Some("groups whose title contains \"team\" that bob is in, second page"),
            request(
                56,
                Rq::AdminListChats(pb::AdminListChats {
                    kind: pb::ChatKind::Group as i32,
                    query: "team".into(),
                    member_id: BOB,
                    limit: 20,
                    cursor: "BAAAAAAAAAH2".into(),
                }),
            ),
        ),
        (
            "request.admin_get_chat",
            None,
            request(
                57,
                Rq::AdminGetChat(pb::AdminGetChat {
                    chat_id: GROUP_CHAT,
                }),
            ),
        ),
        (
            "request.admin_list_members",
            None,
            request(
                58,
                Rq::AdminListMembers(pb::AdminListMembers {
                    chat_id: GROUP_CHAT,
                    limit: 0,
                    cursor: String::new(),
                }),
            ),
        ),
        (
            "request.admin_delete_message",
            Some("moderation: whoever sent it"),
            request(
                59,
                Rq::AdminDeleteMessage(pb::AdminDeleteMessage {
                    chat_id: GROUP_CHAT,
                    seq: 7,
                }),
            ),
        ),
        (
            "request.admin_purge_messages",
            Some("what carol sent in every chat since T0, 100 per request"),
            request(
                60,
                Rq::AdminPurgeMessages(pb::AdminPurgeMessages {
                    user_id: CAROL,
                    chat_id: 0,
                    limit: 100,
                    since_ms: T0,
                }),
            ),
        ),
        (
            "request.admin_stats",
            None,
            request(61, Rq::AdminStats(pb::AdminStats {})),
        ),
        (
            "request.admin_list_nodes",
            None,
            request(62, Rq::AdminListNodes(pb::AdminListNodes {})),
        ),
        (
            "request.admin_drain_node",
            Some("drain node-b for a rolling restart"),
            request(
                63,
                Rq::AdminDrainNode(pb::AdminDrainNode {
                    node_id: "node-b".into(),
                }),
            ),
        ),
        (
            "request.admin_list_audit",
            Some("what alice did as an admin since T0, 50 per page"),
            request(
                64,
                Rq::AdminListAudit(pb::AdminListAudit {
                    actor_id: ALICE,
                    action: String::new(),
                    subject: String::new(),
                    since_ms: T0,
                    limit: 50,
                    cursor: String::new(),
                }),
            ),
        ),
        (
            "request.list_notifications",
            Some("the unread notifications, 20 per page"),
            request(
                150,
                Rq::ListNotifications(pb::ListNotifications {
                    limit: 20,
                    cursor: String::new(),
                    unread_only: true,
                }),
            ),
        ),
        (
            "request.mark_notifications_read",
            None,
            request(
                151,
                Rq::MarkNotificationsRead(pb::MarkNotificationsRead { ids: vec![41, 42] }),
            ),
        ),
        (
            "request.mark_all_notifications_read",
            None,
            request(
                152,
                Rq::MarkAllNotificationsRead(pb::MarkAllNotificationsRead {}),
            ),
        ),
        (
            "request.clear_notifications",
            Some("every notification up to the newest; ids stay empty"),
            request(
                153,
                Rq::ClearNotifications(pb::ClearNotifications {
                    ids: Vec::new(),
                    all: true,
                }),
            ),
        ),
        (
            "request.get_notification_prefs",
            None,
            request(154, Rq::GetNotificationPrefs(pb::GetNotificationPrefs {})),
        ),
        (
            "request.set_notification_prefs",
            Some("quiet from 22:00 to 07:00 at UTC+1; mentions in muted chats notify"),
            request(
                155,
                Rq::SetNotificationPrefs(pb::SetNotificationPrefs {
                    prefs: Some(notification_prefs()),
                }),
            ),
        ),
        (
            "request.admin_export_history",
            Some("the page of the group's history after message 6, 100 per page"),
            request(
                65,
                Rq::AdminExportHistory(pb::AdminExportHistory {
                    chat_id: GROUP_CHAT,
                    after_seq: 6,
                    limit: 100,
                }),
            ),
        ),
        (
            "request.admin_backup",
            Some("a copy of the embedded database; its bytes follow the answer"),
            request(66, Rq::AdminBackup(pb::AdminBackup {})),
        ),
        (
            "request.begin_upload",
            Some("declares a 2.4 MB photo; declaring it again resumes the same upload"),
            request(
                53,
                Rq::BeginUpload(pb::BeginUpload {
                    size: 2_481_337,
                    sha256: venue_sha256(),
                    name: "venue.jpg".into(),
                    kind: pb::MessageKind::Image as i32,
                }),
            ),
        ),
        (
            "request.finish_upload",
            None,
            request(
                54,
                Rq::FinishUpload(pb::FinishUpload {
                    upload_id: "u_2mVbq7R0TkeY1xQh".into(),
                }),
            ),
        ),
        (
            "request.download_file",
            Some("resumes a download at byte 1048576, to the end"),
            request(
                55,
                Rq::DownloadFile(pb::DownloadFile {
                    file_id: "f_venue_photo_01".into(),
                    offset: 1_048_576,
                    length: 0,
                    prefer_url: false,
                }),
            ),
        ),
    ];
    cases
        .iter()
        .map(|(name, note, msg)| ok(name, *note, msg))
        .collect()
}

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

/// Bob mentioned alice in the group.
fn mention_notification() -> pb::Notification {
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
fn notification_prefs() -> pb::NotificationPrefs {
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
