//! Every request of spec section 9 with every error that section lists for it, table-driven.
//!
//! The expectations come from the spec itself: the tables of section 9 are parsed from
//! `spec/protocol.md`, and the test fails when a listed (request, error) pair has no case here,
//! when a request kind of the .proto is missing from section 9, or when the server answers a
//! case with another code. A request the section lists no error for is covered by the error
//! every request that needs authentication may get (UNAUTHENTICATED) or by NOT_FOUND.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chatproto::client::{Client, ClientConfig, ClientError};
use chatproto::pb;
use chatproto::pb::ErrorCode as E;
use chatproto::pb::request::Kind;
use tests::client::{PASSWORD, config_for};
use tests::files::UploadConn;
use tests::server::TestServer;

const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/protocol.md"));

/// An id no user, chat or message has.
const NONE: u64 = 9_999_999;
/// An id no upload or file has.
const NO_FILE: &str = "nosuchfile";
/// The server's `max_file_bytes` (its default).
const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// Errors section 9 lists that need a setup of their own, and the test that checks each.
const ELSEWHERE: [(&str, &str, &str); 2] = [
    (
        "admin_backup",
        "UNAVAILABLE",
        "api: backup::a_node_makes_one_backup_at_a_time_and_only_for_admins",
    ),
    (
        "admin_backup",
        "FAILED_PRECONDITION",
        "cluster (MongoDB): nodes::nodes_are_listed_from_the_registry_and_one_drains_when_asked_through_another",
    ),
];

/// Sends any request kind through the SDK's typed path and keeps only the outcome.
macro_rules! dispatch {
    ($({ name: $name:ident, variant: $variant:ident, message: $message:ident, doc: $doc:literal })*) => {
        async fn send(client: &Client, kind: Kind) -> Result<(), ClientError> {
            match kind {
                $( Kind::$variant(m) => client.request(m).await.map(drop), )*
            }
        }
    };
}
chatproto::for_each_request!(dispatch);

/// The error codes section 9 lists for each request, parsed from its tables. In 9.6 the errors
/// are stated once for all requests: PERMISSION_DENIED, and NOT_FOUND for those naming a user
/// or a chat;
/// a request's own errors are named in its row.
fn spec_errors() -> HashMap<String, BTreeSet<String>> {
    let start = SPEC.find("\n## 9. Requests").expect("section 9");
    let end = SPEC[start..].find("\n## 10.").expect("section 10") + start;
    let mut out = HashMap::new();
    let mut admin = false;
    for line in SPEC[start..end].lines() {
        if line.starts_with("### ") {
            admin = line.contains("Server administration");
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(name) = cells
            .get(1)
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
        else {
            continue;
        };
        let codes: BTreeSet<String> = if admin {
            let mut codes = BTreeSet::from(["PERMISSION_DENIED".to_owned()]);
            let names_no_id = [
                "admin_list_users",
                "admin_create_user",
                "admin_health",
                "admin_list_chats",
                "admin_stats",
                "admin_list_nodes",
                "admin_list_audit",
                "admin_backup",
            ];
            if !names_no_id.contains(&name) {
                codes.insert("NOT_FOUND".into());
            }
            codes.extend(named_codes(cells[cells.len() - 2]));
            codes
        } else {
            named_codes(cells[cells.len() - 2])
        };
        out.insert(name.to_owned(), codes);
    }
    out
}

/// The error codes a table cell names (in backquotes).
fn named_codes(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| E::from_str_name(&format!("ERROR_CODE_{w}")).is_some())
        .map(str::to_owned)
        .collect()
}

/// The name of a code as section 9 writes it (`PERMISSION_DENIED`).
fn spec_name(code: E) -> String {
    code.as_str_name()
        .trim_start_matches("ERROR_CODE_")
        .to_owned()
}

/// An SDP offer of `len` bytes for `call_id`.
fn offer(call_id: u64, len: usize) -> pb::CallSignal {
    pb::CallSignal {
        call_id,
        from_user_id: 0,
        kind: Some(pb::call_signal::Kind::Offer("v".repeat(len))),
    }
}

/// A client that shows every error as it came: no retries, no waiting out rate limits.
fn config(server: &TestServer) -> ClientConfig {
    let mut config = config_for(server.addr(), &server.fingerprint());
    config.retry.max_retry_wait = Duration::ZERO;
    config.retry.max_retries = 0;
    config
}

/// Connects and registers `name`; returns the client and the user's id and tokens.
async fn user(server: &TestServer, name: &str) -> (Client, pb::AuthResult) {
    let client = Client::connect(config(server)).await.expect("connect");
    let auth = client
        .register_user(name, &format!("{name}@example.test"), PASSWORD, "errors")
        .await
        .expect("register");
    (client, auth)
}

fn id(auth: &pb::AuthResult) -> u64 {
    auth.user.as_ref().expect("user").id
}

fn text(chat_id: u64, text: &str, client_msg_id: &str) -> pb::SendMessage {
    pb::SendMessage {
        chat_id,
        client_msg_id: client_msg_id.into(),
        kind: pb::MessageKind::Text as i32,
        text: text.into(),
        ..Default::default()
    }
}

/// Who sends a case's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    /// Greeted, never authenticated.
    Anon,
    /// Owner of the group and the channel, member of the private chats.
    Alice,
    /// Plain member of the group and the channel, alice's private chat peer.
    Bob,
    /// Admin of the group.
    Carol,
    /// Server admin.
    Root,
}

/// What the cases refer to, set up by the test.
struct Fixture {
    alice: u64,
    bob: u64,
    carol: u64,
    root: u64,
    /// Blocked alice.
    dave: u64,
    /// alice and bob.
    private: u64,
    /// alice and erin, who blocked alice.
    blocked_private: u64,
    /// Owned by alice; bob a member, carol an admin.
    group: u64,
    /// Owned by alice; bob a member.
    channel: u64,
    /// alice's message in the group.
    hello: u64,
    /// alice's message in the group, deleted for everyone.
    deleted: u64,
    /// alice's forward of `hello` in the group.
    forwarded: u64,
    bob_session: u64,
    bob_refresh: String,
    bob_access: String,
    /// alice's upload with no byte sent.
    empty_upload: String,
    /// alice's upload whose bytes are not those declared.
    wrong_upload: String,
    /// alice's finished file (not an image).
    file: pb::FileInfo,
}

/// The table: who sends what, the code section 9 says they get, and why. Run in order.
// One case a line: the table reads as one, and a formatted one would run to ten times the length.
#[rustfmt::skip]
fn cases(f: &Fixture) -> Vec<(Who, E, &'static str, Kind)> {
    use Who::*;
    use pb::request::Kind as K;
    let (g, long) = (f.group, "x".repeat(4097));
    let login = |username: &str, password: &str| pb::Login { username: username.into(), password: password.into(), device_name: String::new() };
    let register = |username: &str| pb::Register { username: username.into(), email: format!("{username}@x.test"), password: PASSWORD.into(), device_name: String::new() };
    let new_group = |kind: pb::ChatKind, members: Vec<u64>| pb::CreateGroup { kind: kind as i32, title: "x".into(), description: String::new(), member_ids: members };
    let add = |chat_id, user_id| pb::AddMembers { chat_id, user_ids: vec![user_id] };
    let remove = |user_id| pb::RemoveMember { chat_id: g, user_id };
    let role = |chat_id, user_id, role: pb::MemberRole| pb::SetMemberRole { chat_id, user_id, role: role as i32 };
    let transfer = |user_id| pb::TransferOwnership { chat_id: g, user_id };
    let rename = |chat_id| pb::UpdateChat { chat_id, title: Some("renamed".into()), ..Default::default() };
    let edit = |seq, text: &str| pb::EditMessage { chat_id: g, seq, text: text.into() };
    let delete = |seq| pb::DeleteMessage { chat_id: g, seq, for_everyone: true };
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
        (Alice, E::FailedPrecondition, "another user", K::Login(login("bob", PASSWORD))),
        (Anon, E::Unauthenticated, "unknown token", K::Refresh(pb::Refresh { refresh_token: "A".repeat(43) })),
        (Alice, E::FailedPrecondition, "another user", K::Refresh(pb::Refresh { refresh_token: f.bob_refresh.clone() })),
        (Anon, E::Unauthenticated, "bad token", K::Authenticate(pb::Authenticate { access_token: "no such token".into() })),
        (Alice, E::FailedPrecondition, "another user", K::Authenticate(pb::Authenticate { access_token: f.bob_access.clone() })),
        (Anon, E::Unauthenticated, "not authenticated", K::Logout(pb::Logout {})),
        (Alice, E::PermissionDenied, "wrong old password", K::ChangePassword(pb::ChangePassword { old_password: "wrong password".into(), new_password: "another good password".into() })),
        (Anon, E::Unauthenticated, "not authenticated", K::ListSessions(pb::ListSessions {})),
        (Alice, E::NotFound, "not the caller's", K::RevokeSession(pb::RevokeSession { session_id: f.bob_session })),
        (Anon, E::Unauthenticated, "not authenticated", K::RevokeOtherSessions(pb::RevokeOtherSessions {})),
        // 9.2 Users, contacts and blocking.
        (Anon, E::Unauthenticated, "not authenticated", K::GetMe(pb::GetMe {})),
        (Alice, E::InvalidArgument, "more than max_page_size ids", K::GetUsers(pb::GetUsers { user_ids: (1..=101).collect() })),
        (Alice, E::InvalidArgument, "status", K::UpdateProfile(pb::UpdateProfile { status: 99, ..Default::default() })),
        (Alice, E::NotFound, "avatar file", K::UpdateProfile(pb::UpdateProfile { avatar_file_id: Some(NO_FILE.into()), ..Default::default() })),
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
        (Bob, E::PermissionDenied, "not a chat admin", K::AddMembers(add(g, f.root))),
        (Alice, E::PermissionDenied, "private chat", K::AddMembers(add(f.private, f.root))),
        (Alice, E::PermissionDenied, "a user blocked the caller", K::AddMembers(add(g, f.dave))),
        (Alice, E::NotFound, "not a member", K::RemoveMember(remove(f.root))),
        (Carol, E::PermissionDenied, "removing the owner", K::RemoveMember(remove(f.alice))),
        (Alice, E::Conflict, "the owner leaving", K::LeaveChat(pb::LeaveChat { chat_id: g })),
        (Alice, E::PermissionDenied, "private chat", K::LeaveChat(pb::LeaveChat { chat_id: f.private })),
        (Alice, E::PermissionDenied, "private chat", K::SetMemberRole(role(f.private, f.bob, pb::MemberRole::Admin))),
        (Carol, E::PermissionDenied, "not the owner", K::SetMemberRole(role(g, f.bob, pb::MemberRole::Admin))),
        (Alice, E::NotFound, "not a member", K::SetMemberRole(role(g, f.root, pb::MemberRole::Admin))),
        (Alice, E::InvalidArgument, "role", K::SetMemberRole(role(g, f.bob, pb::MemberRole::Owner))),
        (Carol, E::PermissionDenied, "not the owner", K::TransferOwnership(transfer(f.bob))),
        (Alice, E::NotFound, "not a member", K::TransferOwnership(transfer(f.root))),
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
        (Bob, E::PermissionDenied, "channel member", K::SendTyping(pb::SendTyping { chat_id: f.channel })),
        // 9.5 Synchronisation.
        (Anon, E::Unauthenticated, "not authenticated", K::Sync(pb::Sync::default())),
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
        (Alice, E::InvalidArgument, "email_digest_minutes", K::SetNotificationPrefs(prefs(0, 0, 5))),
        // 9.7 Files.
        (Alice, E::TooLarge, "size over max_file_bytes", K::BeginUpload(declare(MAX_FILE_BYTES + 1))),
        (Alice, E::InvalidArgument, "size 0", K::BeginUpload(declare(0))),
        (Alice, E::NotFound, "upload", K::FinishUpload(finish(NO_FILE))),
        (Alice, E::FailedPrecondition, "bytes missing", K::FinishUpload(finish(&f.empty_upload))),
        (Alice, E::InvalidArgument, "SHA-256 mismatch", K::FinishUpload(finish(&f.wrong_upload))),
        (Bob, E::NotFound, "not readable", K::DownloadFile(fetch(&f.file.id, 0))),
        (Alice, E::NotFound, "no such file", K::DownloadFile(fetch(NO_FILE, 0))),
        (Alice, E::InvalidArgument, "offset past the end", K::DownloadFile(fetch(&f.file.id, f.file.size + 1))),
    ]
}

#[tokio::test]
async fn every_request_gets_the_errors_section_9_lists() {
    let server = TestServer::start_with(&[
        "--limit-send=1/m burst 12",
        "--limit-typing=1/m burst 1",
        "--limit-login-account=1/m burst 3",
        "--limit-login-account-address=1/m burst 3",
        "--limit-upload=1/m burst 8",
        "--limit-call-signal=1/m burst 3",
    ])
    .await;
    let anon = Client::connect(config(&server)).await.expect("connect");
    let (alice, alice_auth) = user(&server, "alice").await;
    let (bob, bob_auth) = user(&server, "bob").await;
    let (carol, carol_auth) = user(&server, "carol").await;
    let (root, root_auth) = user(&server, "root").await;
    // dave blocked alice; erin shares a private chat with alice and blocked her.
    let (dave, dave_auth) = user(&server, "dave").await;
    let (erin, erin_auth) = user(&server, "erin").await;
    let (_heidi, _) = user(&server, "heidi").await;
    let (alice_id, bob_id, carol_id, root_id) = (
        id(&alice_auth),
        id(&bob_auth),
        id(&carol_auth),
        id(&root_auth),
    );
    let (dave_id, erin_id) = (id(&dave_auth), id(&erin_auth));
    server
        .store()
        .set_role(root_id, pb::Role::Admin)
        .await
        .expect("make root a server admin");

    let private = alice.create_private_chat(bob_id).await.expect("private").id;
    let blocked_private = alice
        .create_private_chat(erin_id)
        .await
        .expect("private")
        .id;
    erin.block_user(pb::BlockUser { user_id: alice_id })
        .await
        .expect("block");
    dave.block_user(pb::BlockUser { user_id: alice_id })
        .await
        .expect("block");
    let new_group = |kind: pb::ChatKind, title: &str, members: Vec<u64>| pb::CreateGroup {
        kind: kind as i32,
        title: title.into(),
        description: String::new(),
        member_ids: members,
    };
    let group = alice
        .create_group(new_group(
            pb::ChatKind::Group,
            "team",
            vec![bob_id, carol_id],
        ))
        .await
        .expect("group")
        .id;
    alice
        .set_member_role(pb::SetMemberRole {
            chat_id: group,
            user_id: carol_id,
            role: pb::MemberRole::Admin as i32,
        })
        .await
        .expect("carol becomes a chat admin");
    let channel = alice
        .create_group(new_group(pb::ChatKind::Channel, "news", vec![bob_id]))
        .await
        .expect("channel")
        .id;
    let hello = alice
        .send_message(text(group, "hello", "m1"))
        .await
        .expect("send")
        .seq;
    let deleted = alice
        .send_message(text(group, "gone", "m2"))
        .await
        .expect("send")
        .seq;
    alice
        .delete_message(pb::DeleteMessage {
            chat_id: group,
            seq: deleted,
            for_everyone: true,
        })
        .await
        .expect("delete");
    let forwarded = alice
        .send_message(pb::SendMessage {
            chat_id: group,
            client_msg_id: "m3".into(),
            forward: Some(pb::MessageRef {
                chat_id: group,
                seq: hello,
            }),
            ..Default::default()
        })
        .await
        .expect("forward")
        .seq;
    // Files: an upload nothing was sent for, one whose bytes are not those declared, a file.
    let declared = tests::files::content(1000, 1);
    let begin = |bytes: &[u8], name: &str, kind: pb::MessageKind| pb::BeginUpload {
        size: bytes.len() as u64,
        sha256: tests::files::sha256(bytes),
        name: name.into(),
        kind: kind as i32,
    };
    let empty_upload = alice
        .begin_upload(begin(&declared, "empty.bin", pb::MessageKind::File))
        .await
        .expect("begin")
        .upload_id;
    let other = tests::files::content(1000, 4);
    let wrong_upload = alice
        .begin_upload(begin(&other, "wrong.bin", pb::MessageKind::File))
        .await
        .expect("begin")
        .upload_id;
    let raw = UploadConn::connect(
        server.addr(),
        &server.fingerprint(),
        &alice_auth.access_token,
    )
    .await;
    raw.send(&wrong_upload, 0, &tests::files::content(1000, 2))
        .await;
    let file = tests::files::upload(
        &alice,
        &tests::files::content(1000, 3),
        "a.bin",
        pb::MessageKind::File,
    )
    .await
    .expect("upload");
    // An image whose bytes arrive while image processing is busy, so that it stays unfinished.
    let image = chatd::testing::png_image(64, 64);
    let image_upload = alice
        .begin_upload(begin(&image, "i.png", pb::MessageKind::Image))
        .await
        .expect("begin")
        .upload_id;
    let busy = server.fill_image_queue().expect("the image queue fills");
    raw.send(&image_upload, 0, &image).await;
    let f = Fixture {
        alice: alice_id,
        bob: bob_id,
        carol: carol_id,
        root: root_id,
        dave: dave_id,
        private,
        blocked_private,
        group,
        channel,
        hello,
        deleted,
        forwarded,
        bob_session: bob_auth.session_id,
        bob_refresh: bob_auth.refresh_token.clone(),
        bob_access: bob_auth.access_token.clone(),
        empty_upload,
        wrong_upload,
        file,
    };

    let clients: HashMap<Who, &Client> = HashMap::from([
        (Who::Anon, &anon),
        (Who::Alice, &alice),
        (Who::Bob, &bob),
        (Who::Carol, &carol),
        (Who::Root, &root),
    ]);
    let mut covered: BTreeSet<(String, String)> = BTreeSet::new();
    let mut wrong = Vec::new();
    for (who, code, why, kind) in cases(&f) {
        let name = kind.name();
        let got = send(clients[&who], kind).await.err().and_then(|e| e.code());
        if got == Some(code) {
            covered.insert((name.to_owned(), spec_name(code)));
        } else {
            wrong.push(format!(
                "{name} ({why}) by {who:?}: expected {code:?}, got {got:?}"
            ));
        }
    }

    // Calls: errors that need a live call, in order.
    let ringing = alice
        .start_call(pb::StartCall {
            chat_id: f.private,
            video: false,
        })
        .await
        .expect("start a call")
        .call_id;
    // `None`: the request succeeds (it moves the call on).
    let live: [(&Client, Option<E>, &str, Kind); 7] = [
        (
            &alice,
            Some(E::Conflict),
            "the caller is in a call",
            Kind::StartCall(pb::StartCall {
                chat_id: f.private,
                video: false,
            }),
        ),
        (
            &alice,
            Some(E::PermissionDenied),
            "the caller accepts",
            Kind::AcceptCall(pb::AcceptCall { call_id: ringing }),
        ),
        (
            &carol,
            Some(E::NotFound),
            "not a user of the call",
            Kind::AcceptCall(pb::AcceptCall { call_id: ringing }),
        ),
        (
            &carol,
            Some(E::NotFound),
            "not a user of the call",
            Kind::EndCall(pb::EndCall { call_id: ringing }),
        ),
        (
            &alice,
            Some(E::Conflict),
            "not active",
            Kind::SendCallSignal(offer(ringing, 10)),
        ),
        (
            &bob,
            None,
            "decline",
            Kind::EndCall(pb::EndCall { call_id: ringing }),
        ),
        (
            &bob,
            Some(E::Conflict),
            "declined already",
            Kind::AcceptCall(pb::AcceptCall { call_id: ringing }),
        ),
    ];
    for (client, code, why, kind) in live {
        let name = kind.name();
        let got = send(client, kind).await.err().and_then(|e| e.code());
        match code {
            Some(code) if got == Some(code) => {
                covered.insert((name.to_owned(), spec_name(code)));
            }
            _ if got == code => {}
            _ => wrong.push(format!("{name} ({why}): expected {code:?}, got {got:?}")),
        }
    }

    // Image processing busy: the queue is still full when the image upload is finished.
    let got = send(
        &alice,
        Kind::FinishUpload(pb::FinishUpload {
            upload_id: image_upload.clone(),
        }),
    )
    .await
    .err()
    .and_then(|e| e.code());
    drop(busy);
    if got == Some(E::Unavailable) {
        covered.insert(("finish_upload".into(), "UNAVAILABLE".into()));
    } else {
        wrong.push(format!(
            "finish_upload (image processing busy): got {got:?}"
        ));
    }
    let after = send(
        &alice,
        Kind::FinishUpload(pb::FinishUpload {
            upload_id: image_upload,
        }),
    )
    .await;
    assert!(
        after.is_ok(),
        "finishing again once the queue has room: {after:?}"
    );

    // The rate limits last: each uses up a budget of its own.
    let mut limited = |name: &str| {
        covered.insert((name.to_owned(), "RATE_LIMITED".to_owned()));
    };
    let mut outcome = None;
    for i in 0..20 {
        let r = send(
            &alice,
            Kind::SendMessage(text(group, "again", &format!("r{i}"))),
        )
        .await;
        if let Err(e) = r {
            outcome = e.code();
            break;
        }
    }
    match outcome {
        Some(E::RateLimited) => limited("send_message"),
        other => wrong.push(format!("send_message (budget spent): got {other:?}")),
    }
    let mut outcome = None;
    for _ in 0..5 {
        if let Err(e) = send(&carol, Kind::SendTyping(pb::SendTyping { chat_id: group })).await {
            outcome = e.code();
            break;
        }
    }
    match outcome {
        Some(E::RateLimited) => limited("send_typing"),
        other => wrong.push(format!("send_typing (budget spent): got {other:?}")),
    }
    let mut outcome = None;
    for _ in 0..10 {
        let attempt = Kind::Login(pb::Login {
            username: "heidi".into(),
            password: "wrong password".into(),
            device_name: String::new(),
        });
        match send(&anon, attempt).await.err().and_then(|e| e.code()) {
            Some(E::Unauthenticated) => {}
            other => {
                outcome = other;
                break;
            }
        }
    }
    match outcome {
        Some(E::RateLimited) => limited("login"),
        other => wrong.push(format!("login (throttled): got {other:?}")),
    }
    let mut outcome = None;
    for _ in 0..10 {
        let attempt = Kind::ChangePassword(pb::ChangePassword {
            old_password: "wrong password".into(),
            new_password: "another good password".into(),
        });
        match send(&alice, attempt).await.err().and_then(|e| e.code()) {
            Some(E::PermissionDenied) => {}
            other => {
                outcome = other;
                break;
            }
        }
    }
    match outcome {
        Some(E::RateLimited) => limited("change_password"),
        other => wrong.push(format!("change_password (throttled): got {other:?}")),
    }
    let mut outcome = None;
    for i in 0..20 {
        let bytes = tests::files::content(100, 100 + i);
        let declaration = begin(&bytes, "r.bin", pb::MessageKind::File);
        if let Err(e) = send(&alice, Kind::BeginUpload(declaration)).await {
            outcome = e.code();
            break;
        }
    }
    match outcome {
        Some(E::RateLimited) => limited("begin_upload"),
        other => wrong.push(format!(
            "begin_upload (uploads per user spent): got {other:?}"
        )),
    }
    // Signals on an active call, until the call's budget for the sender is spent.
    let active = alice
        .start_call(pb::StartCall {
            chat_id: f.private,
            video: false,
        })
        .await
        .expect("start a call")
        .call_id;
    bob.accept_call(pb::AcceptCall { call_id: active })
        .await
        .expect("accept the call");
    let mut outcome = None;
    for _ in 0..10 {
        if let Err(e) = send(&alice, Kind::SendCallSignal(offer(active, 10))).await {
            outcome = e.code();
            break;
        }
    }
    match outcome {
        Some(E::RateLimited) => limited("send_call_signal"),
        other => wrong.push(format!(
            "send_call_signal (signals per call spent): got {other:?}"
        )),
    }

    assert!(
        wrong.is_empty(),
        "answers that differ:\n{}",
        wrong.join("\n")
    );
    covered.extend(
        ELSEWHERE
            .iter()
            .map(|(name, code, _test)| ((*name).to_owned(), (*code).to_owned())),
    );
    let spec = spec_errors();
    for name in chatproto::request::NAMES {
        assert!(spec.contains_key(*name), "{name} is missing from section 9");
        assert!(covered.iter().any(|(n, _)| n == name), "{name} has no case");
    }
    let missing: Vec<String> = spec
        .iter()
        .flat_map(|(name, codes)| codes.iter().map(move |c| (name.clone(), c.clone())))
        .filter(|pair| !covered.contains(pair))
        .map(|(name, code)| format!("{name}: {code}"))
        .collect();
    assert!(
        missing.is_empty(),
        "errors section 9 lists without a case: {missing:?}"
    );
}
