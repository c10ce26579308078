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

mod cases;
mod recovery;
mod two_factor;
use cases::{cases, group_offer, offer, text};

const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/protocol.md"));

/// An id no user, chat or message has.
const NONE: u64 = 9_999_999;
/// An id no upload or file has.
const NO_FILE: &str = "nosuchfile";
/// The server's `max_file_bytes` (its default).
const MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;

/// Errors section 9 lists that need a setup of their own, and the test that checks each.
const ELSEWHERE: [(&str, &str, &str); 6] = [
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
    // The server here lets loopback in whatever the rules say (its default), so no change
    // can shut its admin out; that suite's server exempts another address.
    (
        "admin_add_access_rule",
        "FAILED_PRECONDITION",
        "api: access::a_ban_refuses_new_connections_from_its_range_until_it_expires_or_is_removed",
    ),
    (
        "admin_remove_access_rule",
        "FAILED_PRECONDITION",
        "api: access::allow_list_mode_admits_only_allowed_and_exempt_ranges_and_never_shuts_out_its_admin",
    ),
    (
        "admin_set_access_mode",
        "FAILED_PRECONDITION",
        "api: access::allow_list_mode_admits_only_allowed_and_exempt_ranges_and_never_shuts_out_its_admin",
    ),
    // Only a server that keeps message texts sealed in MongoDB refuses every search.
    (
        "search_messages",
        "FAILED_PRECONDITION",
        "cluster (MongoDB): encryption::files_and_messages_are_sealed_in_mongodb_and_a_rotation_keeps_them_readable",
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
                "admin_list_dead_letters",
                "admin_retry_dead_letters",
                "admin_purge_dead_letters",
                "admin_broadcast",
                "admin_add_access_rule",
                "admin_remove_access_rule",
                "admin_list_access_rules",
                "admin_set_access_mode",
                "admin_db_status",
                "admin_db_migrate",
                "admin_db_ensure_indexes",
                "admin_list_keys",
                "admin_rotate_key",
                "admin_retire_keys",
                "admin_get_key_secrets",
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

/// Sends one case's request: adds (request, code) to `covered` when the answer is `expected`,
/// a line to `wrong` otherwise (the suites of their own that `check` their sections).
async fn expect(
    client: &Client,
    expected: E,
    why: &str,
    kind: Kind,
    covered: &mut BTreeSet<(String, String)>,
    wrong: &mut Vec<String>,
) {
    let name = kind.name();
    match send(client, kind).await.err().and_then(|e| e.code()) {
        Some(code) if code == expected => {
            covered.insert((name.to_owned(), spec_name(code)));
        }
        got => wrong.push(format!(
            "{name} ({why}): expected {expected:?}, got {got:?}"
        )),
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
        .set_role(root_id, pb::Role::Admin, None)
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
    let live: [(&Client, Option<E>, &str, Kind); 8] = [
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
            &alice,
            Some(E::Conflict),
            "the caller is in a private call",
            Kind::JoinGroupCall(pb::JoinGroupCall {
                chat_id: f.group,
                video: false,
            }),
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

    // Group calls: carol takes part in the group's call, bob does not.
    let group_call = carol
        .join_group_call(pb::JoinGroupCall {
            chat_id: group,
            video: false,
        })
        .await
        .expect("carol starts the group call");
    let live_group: [(&Client, E, &str, Kind); 3] = [
        (
            &carol,
            E::Conflict,
            "already in the call",
            Kind::JoinGroupCall(pb::JoinGroupCall {
                chat_id: group,
                video: false,
            }),
        ),
        (
            &bob,
            E::Conflict,
            "bob does not take part",
            Kind::SendGroupCallSignal(group_offer(group_call.call_id, group_call.device_id, 10)),
        ),
        (
            &carol,
            E::NotFound,
            "to_device_id: carol's own device",
            Kind::SendGroupCallSignal(group_offer(group_call.call_id, group_call.device_id, 10)),
        ),
    ];
    for (client, code, why, kind) in live_group {
        let name = kind.name();
        let got = send(client, kind).await.err().and_then(|e| e.code());
        if got == Some(code) {
            covered.insert((name.to_owned(), spec_name(code)));
        } else {
            wrong.push(format!("{name} ({why}): expected {code:?}, got {got:?}"));
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
            two_factor_code: String::new(),
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
    // The same budget in a group call, once bob is free to join carol's.
    alice
        .end_call(pb::EndCall { call_id: active })
        .await
        .expect("hang up");
    let bob_device = bob
        .join_group_call(pb::JoinGroupCall {
            chat_id: group,
            video: false,
        })
        .await
        .expect("bob joins the group call")
        .device_id;
    let mut outcome = None;
    for _ in 0..10 {
        let signal = group_offer(group_call.call_id, bob_device, 10);
        if let Err(e) = send(&carol, Kind::SendGroupCallSignal(signal)).await {
            outcome = e.code();
            break;
        }
    }
    match outcome {
        Some(E::RateLimited) => limited("send_group_call_signal"),
        other => wrong.push(format!(
            "send_group_call_signal (signals per call spent): got {other:?}"
        )),
    }

    two_factor::check(&mut covered, &mut wrong).await;
    recovery::check(&mut covered, &mut wrong).await;

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
