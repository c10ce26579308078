//! The canonical Request vectors: one valid frame for every request kind.

use super::build::{ok, request};
use super::samples::*;
use super::{Vector, VectorError};
use crate::pb;
use crate::pb::request::Kind as Rq;

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
                    two_factor_code: String::new(),
                }),
            ),
        ),
        (
            "request.login_two_factor",
            None,
            request(
                3,
                Rq::Login(pb::Login {
                    username: "alice".into(),
                    password: "correct horse battery staple".into(),
                    device_name: "phone \u{1f4f1}".into(),
                    two_factor_code: "287082".into(),
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
                    after_chat_id: 0,
                    through_chat_id: 0,
                }),
            ),
        ),
        (
            "request.sync.next_page",
            Some(
                "the next page after an answer with next_after_chat_id 501: the cursors above it, \
                 up to the bound of a client that sends its cursors in parts",
            ),
            request(
                180,
                Rq::Sync(pb::Sync {
                    cursors: vec![pb::ChatCursor {
                        chat_id: GROUP_CHAT,
                        seq: 6,
                    }],
                    after_chat_id: PRIVATE_CHAT,
                    through_chat_id: GROUP_CHAT,
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
            "request.begin_two_factor",
            None,
            request(
                170,
                Rq::BeginTwoFactor(pb::BeginTwoFactor {
                    password: "correct horse battery staple".into(),
                }),
            ),
        ),
        (
            "request.enable_two_factor",
            Some("a current code of the pending secret"),
            request(
                171,
                Rq::EnableTwoFactor(pb::EnableTwoFactor {
                    code: "287082".into(),
                }),
            ),
        ),
        (
            "request.disable_two_factor",
            Some("with a recovery code"),
            request(
                172,
                Rq::DisableTwoFactor(pb::DisableTwoFactor {
                    code: "7hq2m-0zk4d".into(),
                }),
            ),
        ),
        (
            "request.regenerate_recovery_codes",
            None,
            request(
                173,
                Rq::RegenerateRecoveryCodes(pb::RegenerateRecoveryCodes {
                    code: "081804".into(),
                }),
            ),
        ),
        (
            "request.admin_disable_two_factor",
            None,
            request(
                174,
                Rq::AdminDisableTwoFactor(pb::AdminDisableTwoFactor { user_id: BOB }),
            ),
        ),
        (
            "request.request_email_verification",
            None,
            request(
                175,
                Rq::RequestEmailVerification(pb::RequestEmailVerification {}),
            ),
        ),
        (
            "request.verify_email",
            Some("the code as the email shows it"),
            request(
                176,
                Rq::VerifyEmail(pb::VerifyEmail {
                    code: "k7q2-m9xd".into(),
                }),
            ),
        ),
        (
            "request.change_email",
            None,
            request(
                177,
                Rq::ChangeEmail(pb::ChangeEmail {
                    password: "correct horse battery staple".into(),
                    new_email: "alice@example.com".into(),
                }),
            ),
        ),
        (
            "request.request_password_reset",
            Some("by address; the answer is the same for any account"),
            request(
                178,
                Rq::RequestPasswordReset(pb::RequestPasswordReset {
                    account: "alice@example.org".into(),
                }),
            ),
        ),
        (
            "request.reset_password",
            Some("the code typed in capitals, without its dash"),
            request(
                179,
                Rq::ResetPassword(pb::ResetPassword {
                    account: "alice@example.org".into(),
                    code: "K7Q2M9XD".into(),
                    new_password: "a new horse battery staple".into(),
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
            "request.admin_list_dead_letters",
            Some("the first 20 deliveries that failed for good"),
            request(
                160,
                Rq::AdminListDeadLetters(pb::AdminListDeadLetters {
                    limit: 20,
                    cursor: String::new(),
                }),
            ),
        ),
        (
            "request.admin_retry_dead_letters",
            Some("tries two dead letters again"),
            request(
                161,
                Rq::AdminRetryDeadLetters(pb::AdminRetryDeadLetters {
                    ids: vec![17, 18],
                    all: false,
                }),
            ),
        ),
        (
            "request.admin_purge_dead_letters",
            Some("deletes every dead letter"),
            request(
                162,
                Rq::AdminPurgeDeadLetters(pb::AdminPurgeDeadLetters {
                    ids: Vec::new(),
                    all: true,
                }),
            ),
        ),
        (
            "request.admin_broadcast",
            Some("an announcement to every user, on two lines"),
            request(
                67,
                Rq::AdminBroadcast(pb::AdminBroadcast {
                    text: "Maintenance tonight at 22:00 UTC.\nExpect a minute of reconnects."
                        .into(),
                }),
            ),
        ),
        (
            "request.admin_add_access_rule",
            Some("bans a /24 for a day"),
            request(
                68,
                Rq::AdminAddAccessRule(pb::AdminAddAccessRule {
                    cidr: "203.0.113.0/24".into(),
                    kind: pb::AccessRuleKind::Ban as i32,
                    reason: "credential stuffing".into(),
                    expires_in_ms: 86_400_000,
                }),
            ),
        ),
        (
            "request.admin_remove_access_rule",
            Some("lets an IPv6 office range go from the allow-list"),
            request(
                69,
                Rq::AdminRemoveAccessRule(pb::AdminRemoveAccessRule {
                    cidr: "2001:db8:42::/48".into(),
                    kind: pb::AccessRuleKind::Allow as i32,
                }),
            ),
        ),
        (
            "request.admin_list_access_rules",
            None,
            request(70, Rq::AdminListAccessRules(pb::AdminListAccessRules {})),
        ),
        (
            "request.admin_set_access_mode",
            Some("only ranges with an allow rule may connect from now on"),
            request(
                71,
                Rq::AdminSetAccessMode(pb::AdminSetAccessMode { allow_list: true }),
            ),
        ),
        (
            "request.admin_db_status",
            None,
            request(72, Rq::AdminDbStatus(pb::AdminDbStatus {})),
        ),
        (
            "request.admin_db_migrate",
            None,
            request(73, Rq::AdminDbMigrate(pb::AdminDbMigrate {})),
        ),
        (
            "request.admin_db_ensure_indexes",
            None,
            request(74, Rq::AdminDbEnsureIndexes(pb::AdminDbEnsureIndexes {})),
        ),
        (
            "request.admin_list_keys",
            None,
            request(75, Rq::AdminListKeys(pb::AdminListKeys {})),
        ),
        (
            "request.admin_rotate_key",
            Some("the server makes the new access-token signing key: no secret"),
            request(
                76,
                Rq::AdminRotateKey(pb::AdminRotateKey {
                    kind: pb::KeyKind::Tokens as i32,
                    secret: Vec::new(),
                }),
            ),
        ),
        (
            "request.admin_rotate_key.webhook",
            Some("the operator's new webhook secret, already given to the receivers"),
            request(
                77,
                Rq::AdminRotateKey(pb::AdminRotateKey {
                    kind: pb::KeyKind::Webhook as i32,
                    secret: b"whsec-2027-rotation-0001".to_vec(),
                }),
            ),
        ),
        (
            "request.admin_retire_keys",
            Some("ends the overlap of the refresh-token pepper now"),
            request(
                78,
                Rq::AdminRetireKeys(pb::AdminRetireKeys {
                    kind: pb::KeyKind::Refresh as i32,
                }),
            ),
        ),
        (
            "request.admin_get_key_secrets",
            Some("the webhook secrets that verify, to give to the receivers"),
            request(
                79,
                Rq::AdminGetKeySecrets(pb::AdminGetKeySecrets {
                    kind: pb::KeyKind::Webhook as i32,
                }),
            ),
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
