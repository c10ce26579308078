//! The table of the errors suite: one case a line, in the order section 9 lists the requests.

use super::*;

/// An SDP offer of `len` bytes for `call_id`.
pub(super) fn offer(call_id: u64, len: usize) -> pb::CallSignal {
    pb::CallSignal {
        call_id,
        from_user_id: 0,
        kind: Some(pb::call_signal::Kind::Offer("v".repeat(len))),
    }
}

/// An SDP offer of `len` bytes in group call `call_id`, to its device `to`.
pub(super) fn group_offer(call_id: u64, to: u64, len: usize) -> pb::GroupCallSignal {
    pb::GroupCallSignal {
        call_id,
        to_device_id: to,
        kind: Some(pb::group_call_signal::Kind::Offer("v".repeat(len))),
        ..Default::default()
    }
}

pub(super) fn text(chat_id: u64, text: &str, client_msg_id: &str) -> pb::SendMessage {
    pb::SendMessage {
        chat_id,
        client_msg_id: client_msg_id.into(),
        kind: pb::MessageKind::Text as i32,
        text: text.into(),
        ..Default::default()
    }
}

/// The table: who sends what, the code section 9 says they get, and why. Run in order.
// One case a line: the table reads as one, and a formatted one would run to ten times the length.
#[rustfmt::skip]
pub(super) fn cases(f: &Fixture) -> Vec<(Who, E, &'static str, Kind)> {
    use Who::*;
    use pb::request::Kind as K;
    let (g, long) = (f.group, "x".repeat(4097));
    let login = |username: &str, password: &str| pb::Login { username: username.into(), password: password.into(), device_name: String::new(), two_factor_code: String::new() };
    let register = |username: &str| pb::Register { username: username.into(), email: format!("{username}@x.test"), password: PASSWORD.into(), device_name: String::new() };
    let new_group = |kind: pb::ChatKind, members: Vec<u64>| pb::CreateGroup { kind: kind as i32, title: "x".into(), description: String::new(), member_ids: members };
    let add = |chat_id, user_id| pb::AddMembers { chat_id, user_ids: vec![user_id] };
    let remove = |user_id| pb::RemoveMember { chat_id: g, user_id };
    let role = |chat_id, user_id, role: pb::MemberRole| pb::SetMemberRole { chat_id, user_id, role: role as i32 };
    let transfer = |user_id| pb::TransferOwnership { chat_id: g, user_id };
    let rename = |chat_id| pb::UpdateChat { chat_id, title: Some("renamed".into()), ..Default::default() };
    let edit = |seq, text: &str| pb::EditMessage { chat_id: g, seq, text: text.into() };
    let delete = |seq| pb::DeleteMessage { chat_id: g, seq, for_everyone: true };
    let ban = |cidr: &str| pb::AdminAddAccessRule { cidr: cidr.into(), kind: pb::AccessRuleKind::Ban as i32, ..Default::default() };
    let unban = |cidr: &str| pb::AdminRemoveAccessRule { cidr: cidr.into(), kind: pb::AccessRuleKind::Ban as i32 };
    let react = |seq, emoji: &str| pb::React { chat_id: g, seq, emoji: emoji.into(), remove: false };
    let search = |chat_id, query: &str| pb::SearchMessages { query: query.into(), chat_id, ..Default::default() };
    let disable = |user_id| pb::AdminSetUserDisabled { user_id, disabled: true };
    let set_role = |user_id, role: pb::Role| pb::AdminSetRole { user_id, role: role as i32 };
    let reset = |user_id| pb::AdminResetPassword { user_id, new_password: "another good password".into() };
    let revoke = |user_id| pb::AdminRevokeSessions { user_id, session_id: 0 };
    let create = |name: &str| pb::AdminCreateUser { username: name.into(), email: format!("{name}@example.test"), password: PASSWORD.into(), role: 0 };
    let avatar = |id: &str| pb::UpdateChat { chat_id: g, avatar_file_id: Some(id.into()), ..Default::default() };
    let declare = |size: u64| pb::BeginUpload { size, sha256: vec![7; 32], name: "x.bin".into(), kind: pb::MessageKind::File as i32 };
    let finish = |upload_id: &str| pb::FinishUpload { upload_id: upload_id.into() };
    let fetch = |file_id: &str, offset: u64| pb::DownloadFile { file_id: file_id.into(), offset, ..Default::default() };
    let prefs = |start_minute, utc_offset_minutes, email_digest_minutes| pb::SetNotificationPrefs { prefs: Some(pb::NotificationPrefs { do_not_disturb: Some(pb::DoNotDisturb { enabled: true, start_minute, end_minute: 0, utc_offset_minutes }), email_digest_minutes, ..Default::default() }) };
    vec![
        // 9.1 Connection and accounts.
        (Alice, E::FailedPrecondition, "not first", K::Hello(pb::Hello { protocol_major: 1, ..Default::default() })),
        (Anon, E::Conflict, "username taken", K::Register(register("alice"))),
        (Alice, E::FailedPrecondition, "authenticated", K::Register(register("alice2"))),
        (Anon, E::InvalidArgument, "email required", K::Register(pb::Register { email: String::new(), ..register("noemail") })),
        (Anon, E::Unauthenticated, "wrong password", K::Login(login("alice", "wrong password"))),
        (Anon, E::TooLarge, "password over 1024 bytes", K::Login(login("alice", &"x".repeat(1025)))),
        (Anon, E::InvalidArgument, "empty password", K::Login(login("alice", ""))),
        (Alice, E::FailedPrecondition, "another user", K::Login(login("bob", PASSWORD))),
        (Anon, E::Unauthenticated, "unknown token", K::Refresh(pb::Refresh { refresh_token: "A".repeat(43) })),
        (Anon, E::Unauthenticated, "not a token", K::Refresh(pb::Refresh { refresh_token: "short".into() })),
        (Anon, E::Unauthenticated, "no token", K::Refresh(pb::Refresh { refresh_token: String::new() })),
        (Alice, E::FailedPrecondition, "another user", K::Refresh(pb::Refresh { refresh_token: f.bob_refresh.clone() })),
        (Anon, E::Unauthenticated, "bad token", K::Authenticate(pb::Authenticate { access_token: "no such token".into() })),
        (Anon, E::Unauthenticated, "no token", K::Authenticate(pb::Authenticate { access_token: String::new() })),
        (Anon, E::Unauthenticated, "over 4096 bytes", K::Authenticate(pb::Authenticate { access_token: "x".repeat(4097) })),
        (Alice, E::FailedPrecondition, "another user", K::Authenticate(pb::Authenticate { access_token: f.bob_access.clone() })),
        (Anon, E::Unauthenticated, "not authenticated", K::Logout(pb::Logout {})),
        (Alice, E::PermissionDenied, "wrong old password", K::ChangePassword(pb::ChangePassword { old_password: "wrong password".into(), new_password: "another good password".into() })),
        (Alice, E::InvalidArgument, "new password too short", K::ChangePassword(pb::ChangePassword { old_password: PASSWORD.into(), new_password: "short".into() })),
        (Alice, E::TooLarge, "old password over 1024 bytes", K::ChangePassword(pb::ChangePassword { old_password: "x".repeat(1025), new_password: "another good password".into() })),
        (Anon, E::Unauthenticated, "not authenticated", K::ListSessions(pb::ListSessions {})),
        (Alice, E::NotFound, "not the caller's", K::RevokeSession(pb::RevokeSession { session_id: f.bob_session })),
        (Anon, E::Unauthenticated, "not authenticated", K::RevokeOtherSessions(pb::RevokeOtherSessions {})),
        // 9.2 Users, contacts and blocking.
        (Anon, E::Unauthenticated, "not authenticated", K::GetMe(pb::GetMe {})),
        (Alice, E::InvalidArgument, "more than max_page_size ids", K::GetUsers(pb::GetUsers { user_ids: (1..=101).collect() })),
        (Alice, E::InvalidArgument, "status", K::UpdateProfile(pb::UpdateProfile { status: 99, ..Default::default() })),
        (Alice, E::NotFound, "avatar file", K::UpdateProfile(pb::UpdateProfile { avatar_file_id: Some(NO_FILE.into()), ..Default::default() })),
        (Alice, E::TooLarge, "display name", K::UpdateProfile(pb::UpdateProfile { display_name: Some("x".repeat(65)), ..Default::default() })),
        (Alice, E::InvalidArgument, "status, before the avatar", K::UpdateProfile(pb::UpdateProfile { status: 99, avatar_file_id: Some(NO_FILE.into()), ..Default::default() })),
        (Alice, E::InvalidArgument, "query", K::SearchUsers(pb::SearchUsers { query: " ".into(), ..Default::default() })),
        (Alice, E::NotFound, "user", K::AddContact(pb::AddContact { user_id: NONE })),
        (Alice, E::InvalidArgument, "oneself", K::AddContact(pb::AddContact { user_id: f.alice })),
        (Alice, E::NotFound, "user", K::RemoveContact(pb::RemoveContact { user_id: NONE })),
        (Anon, E::Unauthenticated, "not authenticated", K::ListContacts(pb::ListContacts::default())),
        (Alice, E::InvalidArgument, "limit", K::ListContacts(pb::ListContacts { limit: 101, ..Default::default() })),
        (Alice, E::InvalidArgument, "cursor", K::ListContacts(pb::ListContacts { cursor: "\u{1}".into(), ..Default::default() })),
        (Alice, E::NotFound, "user", K::BlockUser(pb::BlockUser { user_id: NONE })),
        (Alice, E::InvalidArgument, "oneself", K::BlockUser(pb::BlockUser { user_id: f.alice })),
        (Alice, E::NotFound, "user", K::UnblockUser(pb::UnblockUser { user_id: NONE })),
        (Anon, E::Unauthenticated, "not authenticated", K::ListBlocked(pb::ListBlocked::default())),
        (Alice, E::InvalidArgument, "limit", K::ListBlocked(pb::ListBlocked { limit: 101, ..Default::default() })),
        (Alice, E::InvalidArgument, "cursor", K::ListBlocked(pb::ListBlocked { cursor: "\u{1}".into(), ..Default::default() })),
        // 9.3 Chats and membership.
        (Alice, E::NotFound, "user", K::CreatePrivateChat(pb::CreatePrivateChat { user_id: NONE })),
        (Alice, E::InvalidArgument, "oneself", K::CreatePrivateChat(pb::CreatePrivateChat { user_id: f.alice })),
        (Alice, E::PermissionDenied, "blocked", K::CreatePrivateChat(pb::CreatePrivateChat { user_id: f.dave })),
        (Alice, E::InvalidArgument, "kind", K::CreateGroup(new_group(pb::ChatKind::Private, vec![]))),
        (Alice, E::NotFound, "a member id", K::CreateGroup(new_group(pb::ChatKind::Group, vec![NONE]))),
        (Alice, E::PermissionDenied, "a listed user blocked the caller", K::CreateGroup(new_group(pb::ChatKind::Group, vec![f.dave]))),
        (Bob, E::PermissionDenied, "not a chat admin", K::UpdateChat(rename(g))),
        (Alice, E::PermissionDenied, "private chat", K::UpdateChat(rename(f.private))),
        (Alice, E::NotFound, "avatar file", K::UpdateChat(avatar(NO_FILE))),
        (Alice, E::InvalidArgument, "avatar not an image", K::UpdateChat(avatar(&f.file.id))),
        (Bob, E::PermissionDenied, "not the owner", K::DeleteChat(pb::DeleteChat { chat_id: g })),
        (Alice, E::NotFound, "a user", K::AddMembers(add(g, NONE))),
        (Alice, E::Conflict, "already a member", K::AddMembers(add(g, f.bob))),
        (Alice, E::InvalidArgument, "user id 0", K::AddMembers(add(g, 0))),
        (Bob, E::PermissionDenied, "not a chat admin", K::AddMembers(add(g, f.root))),
        (Alice, E::PermissionDenied, "private chat", K::AddMembers(add(f.private, f.root))),
        (Alice, E::PermissionDenied, "a user blocked the caller", K::AddMembers(add(g, f.dave))),
        (Alice, E::NotFound, "not a member", K::RemoveMember(remove(f.root))),
        (Carol, E::PermissionDenied, "removing the owner", K::RemoveMember(remove(f.alice))),
        (Alice, E::InvalidArgument, "oneself", K::RemoveMember(remove(f.alice))),
        (Alice, E::Conflict, "the owner leaving", K::LeaveChat(pb::LeaveChat { chat_id: g })),
        (Alice, E::PermissionDenied, "private chat", K::LeaveChat(pb::LeaveChat { chat_id: f.private })),
        (Alice, E::PermissionDenied, "private chat", K::SetMemberRole(role(f.private, f.bob, pb::MemberRole::Admin))),
        (Carol, E::PermissionDenied, "not the owner", K::SetMemberRole(role(g, f.bob, pb::MemberRole::Admin))),
        (Alice, E::NotFound, "not a member", K::SetMemberRole(role(g, f.root, pb::MemberRole::Admin))),
        (Alice, E::InvalidArgument, "role", K::SetMemberRole(role(g, f.bob, pb::MemberRole::Owner))),
        (Carol, E::PermissionDenied, "not the owner", K::TransferOwnership(transfer(f.bob))),
        (Alice, E::NotFound, "not a member", K::TransferOwnership(transfer(f.root))),
        (Alice, E::InvalidArgument, "oneself", K::TransferOwnership(transfer(f.alice))),
        (Alice, E::InvalidArgument, "negative muted_until_ms", K::SetChatState(pb::SetChatState { chat_id: g, muted_until_ms: Some(-1), ..Default::default() })),
        (Alice, E::InvalidArgument, "limit", K::ListChats(pb::ListChats { limit: 101, ..Default::default() })),
        (Alice, E::NotFound, "not a member", K::GetChat(pb::GetChat { chat_id: NONE })),
        // 9.4 Messages.
        (Bob, E::PermissionDenied, "channel member", K::SendMessage(text(f.channel, "hi", "b1"))),
        (Alice, E::PermissionDenied, "a block in a private chat", K::SendMessage(text(f.blocked_private, "hi", "a1"))),
        (Alice, E::NotFound, "reply_to_seq", K::SendMessage(pb::SendMessage { reply_to_seq: NONE, ..text(g, "re", "a2") })),
        (Alice, E::NotFound, "forward source", K::SendMessage(pb::SendMessage { chat_id: g, client_msg_id: "a3".into(), forward: Some(pb::MessageRef { chat_id: g, seq: NONE }), ..Default::default() })),
        (Alice, E::InvalidArgument, "client_msg_id", K::SendMessage(text(g, "hi", "not an id!"))),
        (Alice, E::TooLarge, "text", K::SendMessage(text(g, &long, "a4"))),
        (Bob, E::PermissionDenied, "not the sender", K::EditMessage(edit(f.hello, "x"))),
        (Alice, E::Conflict, "deleted message", K::EditMessage(edit(f.deleted, "x"))),
        (Alice, E::Conflict, "forwarded message", K::EditMessage(edit(f.forwarded, "x"))),
        (Alice, E::TooLarge, "text", K::EditMessage(edit(f.hello, &long))),
        (Alice, E::NotFound, "no such message", K::EditMessage(edit(999_999, "x"))),
        (Bob, E::PermissionDenied, "not the sender", K::DeleteMessage(delete(f.hello))),
        (Alice, E::NotFound, "message", K::DeleteMessage(delete(NONE))),
        (Bob, E::NotFound, "message", K::React(react(NONE, "👍"))),
        (Bob, E::Conflict, "deleted message", K::React(react(f.deleted, "👍"))),
        (Bob, E::InvalidArgument, "emoji", K::React(react(f.hello, "a"))),
        (Bob, E::InvalidArgument, "both before_seq and after_seq", K::GetHistory(pb::GetHistory { chat_id: g, before_seq: 3, after_seq: 1, limit: 0 })),
        (Bob, E::InvalidArgument, "query", K::SearchMessages(search(0, " "))),
        (Bob, E::NotFound, "chat_id not readable", K::SearchMessages(search(f.blocked_private, "hello"))),
        (Bob, E::InvalidArgument, "kind unset", K::MarkReceipt(pb::MarkReceipt { chat_id: g, kind: 0, up_to_seq: 1 })),
        (Bob, E::PermissionDenied, "a plain member of a channel", K::GetReceipts(pb::GetReceipts { chat_id: f.channel })),
        (Bob, E::NotFound, "message", K::GetMessageEdits(pb::GetMessageEdits { chat_id: g, seq: NONE, ..Default::default() })),
        (Bob, E::InvalidArgument, "cursor", K::GetMessageEdits(pb::GetMessageEdits { chat_id: g, seq: f.hello, cursor: "not a cursor".into() })),
        (Bob, E::InvalidArgument, "cursor, before the message", K::GetMessageEdits(pb::GetMessageEdits { chat_id: g, seq: NONE, cursor: "not a cursor".into() })),
        (Bob, E::PermissionDenied, "channel member", K::SendTyping(pb::SendTyping { chat_id: f.channel })),
        // 9.5 Synchronisation.
        (Anon, E::Unauthenticated, "not authenticated", K::Sync(pb::Sync::default())),
        (Bob, E::InvalidArgument, "through_chat_id", K::Sync(pb::Sync { after_chat_id: g, through_chat_id: g, ..Default::default() })),
        (Bob, E::InvalidArgument, "limit", K::GetChatEvents(pb::GetChatEvents { chat_id: g, after_seq: 0, limit: 100_000 })),
        // 9.6 Server administration.
        (Bob, E::PermissionDenied, "not an admin", K::AdminListUsers(pb::AdminListUsers::default())),
        (Bob, E::PermissionDenied, "not an admin", K::AdminSetUserDisabled(disable(f.carol))),
        (Root, E::NotFound, "user", K::AdminSetUserDisabled(disable(NONE))),
        (Root, E::PermissionDenied, "oneself", K::AdminSetUserDisabled(disable(f.root))),
        (Bob, E::PermissionDenied, "not an admin", K::AdminDeleteUser(pb::AdminDeleteUser { user_id: f.carol })),
        (Root, E::NotFound, "user", K::AdminDeleteUser(pb::AdminDeleteUser { user_id: NONE })),
        (Root, E::PermissionDenied, "oneself", K::AdminDeleteUser(pb::AdminDeleteUser { user_id: f.root })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminResetPassword(reset(f.carol))),
        (Root, E::NotFound, "user", K::AdminResetPassword(reset(NONE))),
        (Bob, E::PermissionDenied, "not an admin", K::AdminSetRole(set_role(f.bob, pb::Role::Admin))),
        (Root, E::NotFound, "user", K::AdminSetRole(set_role(NONE, pb::Role::Admin))),
        (Root, E::PermissionDenied, "oneself", K::AdminSetRole(set_role(f.root, pb::Role::User))),
        (Bob, E::PermissionDenied, "not an admin", K::AdminListSessions(pb::AdminListSessions { user_id: f.carol })),
        (Root, E::NotFound, "user", K::AdminListSessions(pb::AdminListSessions { user_id: NONE })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminRevokeSessions(revoke(f.carol))),
        (Root, E::NotFound, "user", K::AdminRevokeSessions(revoke(NONE))),
        (Bob, E::PermissionDenied, "not an admin", K::AdminCreateUser(create("newcomer"))),
        (Bob, E::PermissionDenied, "not an admin", K::AdminHealth(pb::AdminHealth {})),
        (Root, E::Conflict, "username taken", K::AdminCreateUser(create("alice"))),
        (Root, E::InvalidArgument, "email required", K::AdminCreateUser(pb::AdminCreateUser { email: String::new(), ..create("noemail2") })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminListChats(pb::AdminListChats::default())),
        (Root, E::InvalidArgument, "kind", K::AdminListChats(pb::AdminListChats { kind: 99, ..Default::default() })),
        (Root, E::InvalidArgument, "query", K::AdminListChats(pb::AdminListChats { query: " ".into(), ..Default::default() })),
        (Root, E::InvalidArgument, "limit", K::AdminListChats(pb::AdminListChats { limit: 101, ..Default::default() })),
        (Root, E::InvalidArgument, "cursor", K::AdminListChats(pb::AdminListChats { cursor: "not a cursor".into(), ..Default::default() })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminGetChat(pb::AdminGetChat { chat_id: g })),
        (Root, E::NotFound, "chat", K::AdminGetChat(pb::AdminGetChat { chat_id: NONE })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminListMembers(pb::AdminListMembers { chat_id: g, ..Default::default() })),
        (Root, E::NotFound, "chat", K::AdminListMembers(pb::AdminListMembers { chat_id: NONE, ..Default::default() })),
        (Root, E::InvalidArgument, "limit", K::AdminListMembers(pb::AdminListMembers { chat_id: g, limit: 101, ..Default::default() })),
        (Root, E::InvalidArgument, "cursor", K::AdminListMembers(pb::AdminListMembers { chat_id: g, cursor: "not a cursor".into(), ..Default::default() })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminDeleteMessage(pb::AdminDeleteMessage { chat_id: g, seq: f.hello })),
        (Root, E::NotFound, "chat", K::AdminDeleteMessage(pb::AdminDeleteMessage { chat_id: NONE, seq: 1 })),
        (Root, E::NotFound, "message", K::AdminDeleteMessage(pb::AdminDeleteMessage { chat_id: g, seq: NONE })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminPurgeMessages(pb::AdminPurgeMessages { user_id: f.carol, ..Default::default() })),
        (Root, E::NotFound, "user", K::AdminPurgeMessages(pb::AdminPurgeMessages { user_id: NONE, ..Default::default() })),
        (Root, E::NotFound, "chat", K::AdminPurgeMessages(pb::AdminPurgeMessages { user_id: f.carol, chat_id: NONE, ..Default::default() })),
        (Root, E::InvalidArgument, "since_ms", K::AdminPurgeMessages(pb::AdminPurgeMessages { user_id: f.carol, since_ms: -1, ..Default::default() })),
        (Root, E::InvalidArgument, "limit", K::AdminPurgeMessages(pb::AdminPurgeMessages { user_id: f.carol, limit: 101, ..Default::default() })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminStats(pb::AdminStats {})),
        (Bob, E::PermissionDenied, "not an admin", K::AdminListNodes(pb::AdminListNodes {})),
        (Bob, E::PermissionDenied, "not an admin", K::AdminDrainNode(pb::AdminDrainNode::default())),
        (Root, E::NotFound, "not a live node", K::AdminDrainNode(pb::AdminDrainNode { node_id: "no-such-node".into() })),
        (Root, E::TooLarge, "node_id", K::AdminDrainNode(pb::AdminDrainNode { node_id: "n".repeat(65) })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminListAudit(pb::AdminListAudit::default())),
        (Root, E::InvalidArgument, "action", K::AdminListAudit(pb::AdminListAudit { action: "admin_nonsense".into(), ..Default::default() })),
        (Root, E::InvalidArgument, "limit", K::AdminListAudit(pb::AdminListAudit { limit: 101, ..Default::default() })),
        (Root, E::InvalidArgument, "cursor", K::AdminListAudit(pb::AdminListAudit { cursor: "not a cursor".into(), ..Default::default() })),
        (Root, E::TooLarge, "subject", K::AdminListAudit(pb::AdminListAudit { subject: "s".repeat(65), ..Default::default() })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminExportHistory(pb::AdminExportHistory { chat_id: f.group, ..Default::default() })),
        (Root, E::NotFound, "unknown chat", K::AdminExportHistory(pb::AdminExportHistory { chat_id: 999_999, ..Default::default() })),
        (Root, E::InvalidArgument, "limit", K::AdminExportHistory(pb::AdminExportHistory { chat_id: f.group, limit: 101, ..Default::default() })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminBackup(pb::AdminBackup {})),
        (Bob, E::PermissionDenied, "not an admin", K::AdminListDeadLetters(pb::AdminListDeadLetters::default())),
        (Root, E::InvalidArgument, "limit", K::AdminListDeadLetters(pb::AdminListDeadLetters { limit: 101, ..Default::default() })),
        (Root, E::InvalidArgument, "cursor", K::AdminListDeadLetters(pb::AdminListDeadLetters { cursor: "not a cursor".into(), ..Default::default() })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminRetryDeadLetters(pb::AdminRetryDeadLetters { ids: vec![1], all: false })),
        (Root, E::InvalidArgument, "ids empty without all", K::AdminRetryDeadLetters(pb::AdminRetryDeadLetters::default())),
        (Root, E::InvalidArgument, "ids with all", K::AdminRetryDeadLetters(pb::AdminRetryDeadLetters { ids: vec![1], all: true })),
        (Root, E::InvalidArgument, "id 0", K::AdminRetryDeadLetters(pb::AdminRetryDeadLetters { ids: vec![0], all: false })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminPurgeDeadLetters(pb::AdminPurgeDeadLetters { ids: Vec::new(), all: true })),
        (Root, E::InvalidArgument, "ids empty without all", K::AdminPurgeDeadLetters(pb::AdminPurgeDeadLetters::default())),
        (Root, E::InvalidArgument, "more than max_page_size ids", K::AdminPurgeDeadLetters(pb::AdminPurgeDeadLetters { ids: (1..=10_000).collect(), all: false })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminBroadcast(pb::AdminBroadcast { text: "hello".into() })),
        (Root, E::InvalidArgument, "text", K::AdminBroadcast(pb::AdminBroadcast { text: " ".into() })),
        (Root, E::TooLarge, "text", K::AdminBroadcast(pb::AdminBroadcast { text: "x".repeat(1001) })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminAddAccessRule(ban("192.0.2.1"))),
        (Root, E::InvalidArgument, "cidr", K::AdminAddAccessRule(ban("192.0.2.1/16"))),
        (Root, E::TooLarge, "cidr", K::AdminAddAccessRule(ban(&"1".repeat(65)))),
        (Bob, E::PermissionDenied, "not an admin", K::AdminRemoveAccessRule(unban("192.0.2.1"))),
        (Root, E::NotFound, "no such rule", K::AdminRemoveAccessRule(unban("192.0.2.1"))),
        (Root, E::InvalidArgument, "cidr", K::AdminRemoveAccessRule(unban("192.0.2"))),
        (Root, E::TooLarge, "cidr", K::AdminRemoveAccessRule(unban(&"1".repeat(65)))),
        (Bob, E::PermissionDenied, "not an admin", K::AdminListAccessRules(pb::AdminListAccessRules {})),
        (Bob, E::PermissionDenied, "not an admin", K::AdminSetAccessMode(pb::AdminSetAccessMode { allow_list: true })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminDbStatus(pb::AdminDbStatus {})),
        (Bob, E::PermissionDenied, "not an admin", K::AdminDbMigrate(pb::AdminDbMigrate {})),
        (Bob, E::PermissionDenied, "not an admin", K::AdminDbEnsureIndexes(pb::AdminDbEnsureIndexes {})),
        (Bob, E::PermissionDenied, "not an admin", K::AdminListKeys(pb::AdminListKeys {})),
        (Bob, E::PermissionDenied, "not an admin", K::AdminRotateKey(pb::AdminRotateKey { kind: pb::KeyKind::Tokens as i32, secret: Vec::new() })),
        (Root, E::InvalidArgument, "kind", K::AdminRotateKey(pb::AdminRotateKey { kind: 0, secret: Vec::new() })),
        (Root, E::InvalidArgument, "secret of a server-made kind", K::AdminRotateKey(pb::AdminRotateKey { kind: pb::KeyKind::Refresh as i32, secret: vec![7; 32] })),
        (Root, E::FailedPrecondition, "no webhooks configured", K::AdminRotateKey(pb::AdminRotateKey { kind: pb::KeyKind::Webhook as i32, secret: vec![7; 32] })),
        (Root, E::FailedPrecondition, "no master key (nothing encrypted at rest)", K::AdminRotateKey(pb::AdminRotateKey { kind: pb::KeyKind::Master as i32, secret: Vec::new() })),
        (Root, E::InvalidArgument, "secret of the master key", K::AdminRotateKey(pb::AdminRotateKey { kind: pb::KeyKind::Master as i32, secret: vec![7; 32] })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminRetireKeys(pb::AdminRetireKeys { kind: pb::KeyKind::Tokens as i32 })),
        (Root, E::InvalidArgument, "kind", K::AdminRetireKeys(pb::AdminRetireKeys { kind: 9 })),
        (Root, E::FailedPrecondition, "no TURN servers configured", K::AdminRetireKeys(pb::AdminRetireKeys { kind: pb::KeyKind::Turn as i32 })),
        (Root, E::FailedPrecondition, "no master key", K::AdminRetireKeys(pb::AdminRetireKeys { kind: pb::KeyKind::Master as i32 })),
        (Bob, E::PermissionDenied, "not an admin", K::AdminGetKeySecrets(pb::AdminGetKeySecrets { kind: pb::KeyKind::Webhook as i32 })),
        (Root, E::InvalidArgument, "kind", K::AdminGetKeySecrets(pb::AdminGetKeySecrets { kind: 0 })),
        (Root, E::InvalidArgument, "the server's own keys", K::AdminGetKeySecrets(pb::AdminGetKeySecrets { kind: pb::KeyKind::Tokens as i32 })),
        (Root, E::InvalidArgument, "the master key", K::AdminGetKeySecrets(pb::AdminGetKeySecrets { kind: pb::KeyKind::Master as i32 })),
        (Root, E::FailedPrecondition, "no webhooks configured", K::AdminGetKeySecrets(pb::AdminGetKeySecrets { kind: pb::KeyKind::Webhook as i32 })),
        // 9.9 Calls (the errors that need a live call are checked after the table).
        (Carol, E::NotFound, "not a member", K::StartCall(pb::StartCall { chat_id: f.private, video: false })),
        (Alice, E::PermissionDenied, "group", K::StartCall(pb::StartCall { chat_id: f.group, video: false })),
        (Alice, E::PermissionDenied, "blocked", K::StartCall(pb::StartCall { chat_id: f.blocked_private, video: false })),
        (Alice, E::NotFound, "call", K::AcceptCall(pb::AcceptCall { call_id: NONE })),
        (Alice, E::NotFound, "call", K::EndCall(pb::EndCall { call_id: NONE })),
        (Alice, E::NotFound, "call", K::SendCallSignal(offer(NONE, 10))),
        (Alice, E::InvalidArgument, "kind", K::SendCallSignal(pb::CallSignal { call_id: NONE, ..Default::default() })),
        (Alice, E::TooLarge, "offer", K::SendCallSignal(offer(NONE, 65_537))),
        (Anon, E::Unauthenticated, "not authenticated", K::GetIceServers(pb::GetIceServers {})),
        (Carol, E::NotFound, "not a member", K::JoinGroupCall(pb::JoinGroupCall { chat_id: f.private, video: false })),
        (Alice, E::PermissionDenied, "private chat", K::JoinGroupCall(pb::JoinGroupCall { chat_id: f.private, video: false })),
        (Alice, E::PermissionDenied, "channel", K::JoinGroupCall(pb::JoinGroupCall { chat_id: f.channel, video: false })),
        (Alice, E::NotFound, "call", K::LeaveGroupCall(pb::LeaveGroupCall { call_id: NONE })),
        (Alice, E::NotFound, "call", K::SendGroupCallSignal(group_offer(NONE, 1, 10))),
        (Alice, E::InvalidArgument, "kind", K::SendGroupCallSignal(pb::GroupCallSignal { call_id: NONE, ..Default::default() })),
        (Alice, E::TooLarge, "offer", K::SendGroupCallSignal(group_offer(NONE, 1, 65_537))),
        (Alice, E::NotFound, "no group call", K::GetGroupCall(pb::GetGroupCall { chat_id: f.group })),
        (Carol, E::NotFound, "not a member", K::GetGroupCall(pb::GetGroupCall { chat_id: f.private })),
        // 9.10 Notifications.
        (Alice, E::InvalidArgument, "limit", K::ListNotifications(pb::ListNotifications { limit: 101, ..Default::default() })),
        (Alice, E::InvalidArgument, "cursor", K::ListNotifications(pb::ListNotifications { cursor: "not a cursor".into(), ..Default::default() })),
        (Alice, E::InvalidArgument, "ids empty", K::MarkNotificationsRead(pb::MarkNotificationsRead { ids: Vec::new() })),
        (Alice, E::InvalidArgument, "more than max_page_size ids", K::MarkNotificationsRead(pb::MarkNotificationsRead { ids: (1..=101).collect() })),
        (Alice, E::InvalidArgument, "id 0", K::MarkNotificationsRead(pb::MarkNotificationsRead { ids: vec![1, 0] })),
        (Anon, E::Unauthenticated, "not authenticated", K::MarkAllNotificationsRead(pb::MarkAllNotificationsRead {})),
        (Alice, E::InvalidArgument, "ids empty without all", K::ClearNotifications(pb::ClearNotifications::default())),
        (Alice, E::InvalidArgument, "ids with all", K::ClearNotifications(pb::ClearNotifications { ids: vec![1], all: true })),
        (Alice, E::InvalidArgument, "more than max_page_size ids", K::ClearNotifications(pb::ClearNotifications { ids: (1..=10_000).collect(), all: false })),
        (Anon, E::Unauthenticated, "not authenticated", K::GetNotificationPrefs(pb::GetNotificationPrefs {})),
        (Alice, E::InvalidArgument, "minute 1440", K::SetNotificationPrefs(prefs(1440, 0, 0))),
        (Alice, E::InvalidArgument, "utc offset beyond 840", K::SetNotificationPrefs(prefs(0, 841, 0))),
        (Alice, E::InvalidArgument, "utc offset i32::MIN", K::SetNotificationPrefs(prefs(0, i32::MIN, 0))),
        (Alice, E::InvalidArgument, "email_digest_minutes", K::SetNotificationPrefs(prefs(0, 0, 5))),
        // 9.7 Files.
        (Alice, E::TooLarge, "size over max_file_bytes", K::BeginUpload(declare(MAX_FILE_BYTES + 1))),
        (Alice, E::InvalidArgument, "size 0", K::BeginUpload(declare(0))),
        (Alice, E::NotFound, "upload", K::FinishUpload(finish(NO_FILE))),
        (Alice, E::InvalidArgument, "no upload id", K::FinishUpload(finish(""))),
        (Alice, E::InvalidArgument, "upload id characters", K::FinishUpload(finish("../x"))),
        (Alice, E::TooLarge, "upload id over 128 bytes", K::FinishUpload(finish(&"a".repeat(129)))),
        (Alice, E::FailedPrecondition, "bytes missing", K::FinishUpload(finish(&f.empty_upload))),
        (Alice, E::InvalidArgument, "SHA-256 mismatch", K::FinishUpload(finish(&f.wrong_upload))),
        (Bob, E::NotFound, "not readable", K::DownloadFile(fetch(&f.file.id, 0))),
        (Alice, E::NotFound, "no such file", K::DownloadFile(fetch(NO_FILE, 0))),
        (Alice, E::InvalidArgument, "no file id", K::DownloadFile(fetch("", 0))),
        (Alice, E::InvalidArgument, "file id characters", K::DownloadFile(fetch("a b", 0))),
        (Alice, E::TooLarge, "file id over 128 bytes", K::DownloadFile(fetch(&"a".repeat(129), 0))),
        (Alice, E::InvalidArgument, "offset past the end", K::DownloadFile(fetch(&f.file.id, f.file.size + 1))),
    ]
}
