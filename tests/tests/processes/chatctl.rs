//! chatctl as an admin runs it, against a real chatd over QUIC: login and profiles, every
//! `users` command, a non-admin refused every admin command, the exit statuses scripts rely on,
//! and snapshots that keep the `--json` field names stable. The helpers here serve
//! `chatctl_moderation` too.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use chatproto::pb;
use tests::client::{PASSWORD, connect, register};
use tests::server::TestServer;
use tokio::io::AsyncWriteExt as _;

/// One chatctl run: `args`, `stdin` written to it, profiles under `home`, no other environment.
pub(crate) async fn chatctl(
    home: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> Output {
    let mut child = tokio::process::Command::new(tests::tools::chatctl_binary())
        .args(args)
        .env_clear()
        .env("XDG_CONFIG_HOME", home)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn chatctl");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("chatctl finished in time")
        .expect("chatctl ran")
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit status, showing what chatctl said otherwise.
#[track_caller]
pub(crate) fn assert_status(out: &Output, status: i32) {
    assert_eq!(
        out.status.code(),
        Some(status),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// The `--json` output with what changes from run to run (times, addresses, presence,
/// generated passwords, a node's live connections and version) replaced by its kind, for
/// snapshots.
pub(crate) fn stable_json(out: &Output) -> String {
    fn redact(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    // Whether a user shows online right after their client closed, and
                    // when they were last seen, depend on timing.
                    let volatile = key.ends_with("_at_ms")
                        || [
                            "address",
                            "addr",
                            "version",
                            "server",
                            "online",
                            "node_id",
                            "server_name",
                            "last_activity_ms",
                            "uptime_ms",
                            "at_ms",
                            "connections",
                            "messages_last_minute",
                            "messages_per_second",
                        ]
                        .contains(&key.as_str())
                        || key == "password" && value.is_string();
                    if volatile {
                        *value = serde_json::Value::String(format!("[{key}]"));
                    } else {
                        redact(value);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
            _ => {}
        }
    }
    let mut value: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)));
    redact(&mut value);
    serde_json::to_string_pretty(&value).expect("json")
}

/// A server with the admin `root` and the user `alice`; `root`'s and `alice`'s ids.
pub(crate) async fn server_with_users() -> (TestServer, u64, u64) {
    let server = TestServer::start().await;
    let root_id = register_root(&server).await;
    let (alice, auth) = register(&server, "alice").await;
    alice.close().await;
    (server, root_id, auth.user.expect("user").id)
}

/// Registers `root` (the account chatctl logs in as) and makes it a server admin; its id.
pub(crate) async fn register_root(server: &TestServer) -> u64 {
    let (root, auth) = register(server, "root").await;
    let root_id = auth.user.expect("user").id;
    server
        .store()
        .set_role(root_id, pb::Role::Admin, None)
        .await
        .expect("set role");
    root.close().await;
    root_id
}

pub(crate) fn server_flags(server: &TestServer) -> [String; 4] {
    [
        "--server".into(),
        server.addr().to_string(),
        "--pin".into(),
        server.fingerprint(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn login_then_every_users_command_then_logout() {
    let (server, _root_id, alice_id) = server_with_users().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    let flags = server_flags(&server);
    let mut login: Vec<&str> = vec!["login"];
    login.extend(flags.iter().map(String::as_str));
    login.extend(["--user", "root", "--password-stdin", "--json"]);
    let out = chatctl(home, &[], &login, &format!("{PASSWORD}\n")).await;
    assert_status(&out, 0);
    let profile = home.join("chatctl/profiles/default.toml");
    let mode = std::fs::metadata(&profile)
        .expect("profile")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the profile holds a refresh token");
    let saved = std::fs::read_to_string(&profile).expect("read profile");
    assert!(!saved.contains(PASSWORD), "the password is never saved");
    insta::assert_snapshot!("login", stable_json(&out));

    // From here on the saved profile signs in: no server, certificate or password given.
    let run = |args: &'static [&'static str]| chatctl(home, &[], args, "");
    let out = run(&["users", "list", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_list", stable_json(&out));
    let out = run(&["users", "list"]).await;
    assert_status(&out, 0);
    let table = stdout(&out);
    let header = table.lines().next().expect("header");
    assert!(header.starts_with("ID  USERNAME  ROLE"), "{table}");
    assert!(
        !table.contains('\x1b'),
        "no colour without a terminal: {table:?}"
    );

    let out = run(&["health", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("health", stable_json(&out));
    let out = run(&["health"]).await;
    assert_status(&out, 0);
    assert!(stdout(&out).contains("store  ok"), "{}", stdout(&out));

    let out = run(&["users", "show", "alice", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_show", stable_json(&out));

    let out = run(&[
        "users",
        "create",
        "bob",
        "--email",
        "bob@example.test",
        "--json",
    ])
    .await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_create", stable_json(&out));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let generated = created["created"]["password"].as_str().expect("password");
    connect(&server)
        .await
        .login("bob", generated, "t")
        .await
        .expect("the printed password works");
    let out = chatctl(
        home,
        &[],
        &[
            "users",
            "create",
            "carol",
            "--email",
            "carol@example.test",
            "--admin",
            "--new-password-stdin",
        ],
        "carol's own password\n",
    )
    .await;
    assert_status(&out, 0);
    assert!(
        !stdout(&out).contains("carol's own"),
        "a given password is not printed"
    );
    let carol = connect(&server).await;
    carol
        .login("carol", "carol's own password", "t")
        .await
        .expect("the password read from standard input works");
    carol
        .admin_list_users(pb::AdminListUsers::default())
        .await
        .expect("carol was created an admin");
    let out = run(&["users", "create", "bob", "--email", "bob@example.test"]).await;
    assert_status(&out, 1);
    assert!(stderr(&out).contains("Conflict"), "{}", stderr(&out));

    // Destructive commands want --yes when nobody can be asked, and change nothing without.
    let out = run(&["users", "disable", "alice"]).await;
    assert_status(&out, 2);
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    let alice = server
        .store()
        .user(alice_id)
        .await
        .expect("read")
        .expect("alice");
    assert!(!alice.disabled, "not disabled without confirmation");
    let out = run(&["users", "disable", "alice", "--yes", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_disable", stable_json(&out));
    let alice_client = connect(&server).await;
    assert!(
        alice_client.login("alice", PASSWORD, "t").await.is_err(),
        "a disabled account cannot log in"
    );
    let out = run(&["users", "enable", "alice", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_enable", stable_json(&out));
    alice_client
        .login("alice", PASSWORD, "t")
        .await
        .expect("enabled again");

    let out = run(&["users", "set-role", "alice", "admin", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_set_role", stable_json(&out));
    let alice = server
        .store()
        .user(alice_id)
        .await
        .expect("read")
        .expect("alice");
    assert_eq!(alice.role, pb::Role::Admin);
    let out = run(&["users", "set-role", "alice", "user"]).await;
    assert_status(&out, 0);

    let out = run(&["users", "sessions", "alice", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_sessions", stable_json(&out));
    let sessions: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let session = sessions[0]["id"].as_u64().expect("a session id");
    let session = session.to_string();
    let out = chatctl(
        home,
        &[],
        &[
            "users",
            "revoke-sessions",
            "alice",
            "--session",
            &session,
            "--yes",
            "--json",
        ],
        "",
    )
    .await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_revoke_session", stable_json(&out));
    let out = run(&["users", "sessions", "alice", "--json"]).await;
    assert_eq!(stable_json(&out), "[]", "the session is gone");

    let out = run(&["users", "reset-password", "alice", "--yes", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_reset_password", stable_json(&out));
    let reset: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let generated = reset["password_reset"]["password"]
        .as_str()
        .expect("password");
    connect(&server)
        .await
        .login("alice", generated, "t")
        .await
        .expect("the printed password works");
    let out = chatctl(
        home,
        &[],
        &[
            "users",
            "reset-password",
            "alice",
            "--yes",
            "--new-password-stdin",
        ],
        "chosen-password\n",
    )
    .await;
    assert_status(&out, 0);
    connect(&server)
        .await
        .login("alice", "chosen-password", "t")
        .await
        .expect("the password read from standard input works");
    let out = run(&["users", "revoke-sessions", "alice", "--yes"]).await;
    assert_status(&out, 0);
    assert_eq!(
        stable_json(&run(&["users", "sessions", "alice", "--json"]).await),
        "[]"
    );

    let out = run(&["users", "delete", "alice", "--yes", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_delete", stable_json(&out));
    let alice = server
        .store()
        .user(alice_id)
        .await
        .expect("read")
        .expect("alice");
    assert!(alice.deleted, "deleted");
    // The name stays reserved, so the account is still listed, disabled.
    let out = run(&["users", "show", "alice", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("users_show_deleted", stable_json(&out));

    let out = run(&["logout", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("logout", stable_json(&out));
    assert!(!profile.exists(), "the profile is forgotten");
    let out = run(&["users", "list"]).await;
    assert_status(&out, 3);
    assert!(stderr(&out).contains("chatctl login"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_without_the_admin_role_is_refused_every_admin_command() {
    let (server, _, _) = server_with_users().await;
    let (mallory, _) = register(&server, "mallory").await;
    mallory.close().await;
    let home = tempfile::tempdir().expect("home");
    let flags = server_flags(&server);
    let env = [("CHATCTL_PASSWORD", PASSWORD)];
    let accounts = home.path().join("accounts.jsonl");
    std::fs::write(
        &accounts,
        "{\"username\":\"eve\",\"email\":\"eve@example.test\"}\n",
    )
    .expect("accounts");
    let accounts = accounts.to_str().expect("utf-8 path");
    let copy = home.path().join("mallory.db");
    let copy_arg = copy.to_str().expect("utf-8 path");
    let commands: [&[&str]; 40] = [
        &["backup", copy_arg],
        &["broadcast", "hello everyone", "--yes"],
        &["bans", "list"],
        &["bans", "add", "192.0.2.1"],
        &["bans", "remove", "192.0.2.1"],
        &["bans", "mode", "open"],
        &["db", "status"],
        &["db", "migrate"],
        &["db", "ensure-indexes"],
        &["keys", "list"],
        &["keys", "rotate", "--kind", "tokens"],
        &["keys", "retire", "--kind", "refresh", "--yes"],
        &["keys", "secrets", "--kind", "webhook"],
        &["dlq", "list"],
        &["dlq", "retry", "--all"],
        &["dlq", "purge", "--all", "--yes"],
        &["health"],
        &["stats"],
        &["export", "1"],
        &["users", "import", accounts],
        &["audit"],
        &["nodes"],
        &["nodes", "drain", "node-b", "--yes"],
        &["chats", "list"],
        &["chats", "show", "1"],
        &["chats", "members", "1"],
        &["messages", "delete", "1", "1", "--yes"],
        &["messages", "purge", "--sender", "alice", "--yes"],
        &["users", "list"],
        &["users", "create", "eve", "--email", "eve@example.test"],
        &["users", "show", "alice"],
        &["users", "disable", "alice", "--yes"],
        &["users", "enable", "alice"],
        &["users", "delete", "alice", "--yes"],
        &["users", "reset-password", "alice", "--yes"],
        &["users", "set-role", "mallory", "admin"],
        &["users", "sessions", "alice"],
        &["users", "revoke-sessions", "alice", "--yes"],
        &["users", "disable-two-factor", "alice", "--yes"],
        &["users", "set-role", "alice", "user"],
    ];
    for command in commands {
        let mut args: Vec<&str> = command.to_vec();
        args.extend(flags.iter().map(String::as_str));
        args.extend(["--user", "mallory"]);
        let out = chatctl(home.path(), &env, &args, "").await;
        assert_status(&out, 3);
        assert!(
            stderr(&out).contains("PermissionDenied") && stderr(&out).contains("hint: "),
            "{command:?}: {}",
            stderr(&out)
        );
    }
    let mallory = server
        .store()
        .user_by_username("mallory")
        .await
        .expect("read")
        .expect("mallory");
    assert_eq!(mallory.role, pb::Role::User, "still no admin");
    assert!(!copy.exists(), "no copy for a non-admin");
    assert!(!home.path().join("mallory.db.partial").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_statuses_tell_scripts_what_failed() {
    let (server, _, _) = server_with_users().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    let flags = server_flags(&server);
    let with = |extra: &[&'static str]| {
        let mut args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        args.extend(flags.iter().cloned());
        args.extend(["--user".to_owned(), "root".to_owned()]);
        args
    };
    let env = [("CHATCTL_PASSWORD", PASSWORD)];
    let call = |args: Vec<String>, env: &'static [(&'static str, &'static str)]| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        chatctl(home, env, &args, "").await
    };
    const ADMIN: &[(&str, &str)] = &[("CHATCTL_PASSWORD", PASSWORD)];
    assert_eq!(env, ADMIN);

    // 2: usage.
    assert_status(
        &chatctl(home, &[], &["users", "list", "--bogus"], "").await,
        2,
    );
    assert_status(&call(with(&["users", "delete", "alice"]), ADMIN).await, 2);
    let out = chatctl(home, &[], &["users", "list", "--server", "no-port"], "").await;
    assert_status(&out, 2);
    // 3: no login, a wrong password.
    assert_status(&call(with(&["users", "list"]), &[]).await, 3);
    let wrong: &[(&str, &str)] = &[("CHATCTL_PASSWORD", "not the password")];
    assert_status(&call(with(&["users", "list"]), wrong).await, 3);
    // 4: not found.
    let out = call(with(&["users", "show", "nobody"]), ADMIN).await;
    assert_status(&out, 4);
    assert!(
        stderr(&out).contains("\"nobody\" not found"),
        "{}",
        stderr(&out)
    );
    // 0 with the right password, for contrast.
    assert_status(&call(with(&["users", "show", "alice"]), ADMIN).await, 0);
    // 5: nothing answers at the address.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    let mut args: Vec<String> = ["users", "list", "--server", &silent_addr, "--pin"]
        .map(str::to_owned)
        .to_vec();
    args.extend([server.fingerprint(), "--user".into(), "root".into()]);
    let out = call(args, ADMIN).await;
    assert_status(&out, 5);
    assert!(
        stderr(&out).contains("hint: check --server"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn help_completions_and_man_page_come_from_the_same_definitions() {
    let home = tempfile::tempdir().expect("home");
    let out = chatctl(home.path(), &[], &["help", "users", "disable"], "").await;
    assert_status(&out, 0);
    assert!(
        stdout(&out).contains("Example:\n  chatctl users disable"),
        "{}",
        stdout(&out)
    );
    let out = chatctl(home.path(), &[], &["completions", "bash"], "").await;
    assert_status(&out, 0);
    assert!(
        stdout(&out).contains("reset-password"),
        "completions know the subcommands"
    );
    let out = chatctl(home.path(), &[], &["--generate", "man"], "").await;
    assert_status(&out, 0);
    assert!(stdout(&out).starts_with(".ie"), "roff");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_exits_5_and_names_what_is_down() {
    let mut redis = tests::redis::RedisServer::start();
    let server = TestServer::start_with(&[&format!("--redis-url={}", redis.url())]).await;
    let (root, auth) = register(&server, "root").await;
    root.close().await;
    let root_id = auth.user.expect("user").id;
    server
        .store()
        .set_role(root_id, pb::Role::Admin, None)
        .await
        .expect("set role");
    let home = tempfile::tempdir().expect("home");
    let mut args: Vec<String> = vec!["health".into()];
    args.extend(server_flags(&server));
    args.extend(["--user".into(), "root".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [("CHATCTL_PASSWORD", PASSWORD)];
    assert_status(&chatctl(home.path(), &env, &args, "").await, 0);
    redis.kill();
    let out = chatctl(home.path(), &env, &args, "").await;
    assert_status(&out, 5);
    assert!(stdout(&out).contains("redis  failing"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("is not healthy: redis ("),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refreshed_session_is_saved_so_the_next_command_still_signs_in() {
    let (server, _, _) = server_with_users().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    let mut login: Vec<String> = vec!["login".into()];
    login.extend(server_flags(&server));
    login.extend(["--user".into(), "root".into(), "--password-stdin".into()]);
    let login: Vec<&str> = login.iter().map(String::as_str).collect();
    assert_status(
        &chatctl(home, &[], &login, &format!("{PASSWORD}\n")).await,
        0,
    );
    let path = home.join("chatctl/profiles/default.toml");
    let refresh_token = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("refresh_token = "))
            .expect("a refresh token")
            .to_owned()
    };
    for round in 0..3 {
        // An expired access token makes the SDK spend the single-use refresh token; chatctl
        // must save its successor, or the next run would present a spent one and the server
        // would revoke the session.
        let saved = std::fs::read_to_string(&path).expect("profile");
        let before = refresh_token(&saved);
        let expired: String = saved
            .lines()
            .map(|l| {
                if l.starts_with("access_expires_at_ms = ") {
                    "access_expires_at_ms = 1".to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, expired).expect("expire the access token");
        let out = chatctl(home, &[], &["users", "show", "root"], "").await;
        assert_status(&out, 0);
        let after = refresh_token(&std::fs::read_to_string(&path).expect("profile"));
        assert_ne!(
            before, after,
            "round {round}: the new refresh token was saved"
        );
        let mode = std::fs::metadata(&path)
            .expect("profile")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_deletes_any_chat_and_others_learn_nothing_about_it() {
    let (server, _, _) = server_with_users().await;
    let alice = connect(&server).await;
    alice.login("alice", PASSWORD, "t").await.expect("login");
    let group = alice
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "to be moderated".into(),
            ..Default::default()
        })
        .await
        .expect("group");
    let (mallory, _) = register(&server, "mallory").await;
    mallory.close().await;
    let home = tempfile::tempdir().expect("home");
    let chat = group.id.to_string();
    let call = |user: &'static str, extra: &'static [&'static str]| {
        let mut args: Vec<String> = ["chats", "delete", chat.as_str()]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect();
        args.extend(server_flags(&server));
        args.extend(["--user".into(), user.into()]);
        let home = home.path().to_owned();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            chatctl(&home, &[("CHATCTL_PASSWORD", PASSWORD)], &args, "").await
        }
    };
    assert_status(&call("root", &[]).await, 2);
    // Not a member and not an admin: the chat does not exist for mallory.
    assert_status(&call("mallory", &["--yes"]).await, 4);
    let out = call("root", &["--yes", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("chats_delete", stable_json(&out));
    assert_eq!(
        tests::client::code(alice.get_chat(pb::GetChat { chat_id: group.id }).await),
        pb::ErrorCode::NotFound,
        "gone for its members"
    );
    assert_status(&call("root", &["--yes"]).await, 4);
}
