//! chatctl's data commands against a real chatd over QUIC: `users import` (JSON Lines in, a
//! report per line, idempotent), `export` (a chat's history as JSON Lines, page after page) and
//! the message rate of `stats`, `backup` (a checked copy a chatd starts on); their `--json`
//! snapshots and exit statuses.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;

use chatproto::pb;
use sha2::{Digest as _, Sha256};
use tests::client::{PASSWORD, connect, register};
use tests::server::TestServer;

use crate::chatctl::{assert_status, chatctl, server_with_users, stable_json, stdout};
use crate::chatctl_moderation::login;

/// JSON Lines as one JSON array, so that [`stable_json`] can snapshot them.
fn lines_as_array(out: &Output) -> Output {
    let lines: Vec<serde_json::Value> = stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    Output {
        stdout: serde_json::to_vec(&lines).expect("json"),
        ..out.clone()
    }
}

const ACCOUNTS: &str = r#"{"username":"dave","email":"dave@example.test","password":"dave's long password"}
{"username":"erin","email":"erin@example.test","role":"admin"}
this is not JSON

{"username":"alice","email":"alice@example.test"}
{"username":"frank"}
{"username":"gina","email":"not an address"}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn users_import_creates_what_is_missing_and_reports_every_line() {
    let (server, _, _) = server_with_users().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;
    let file = home.join("accounts.jsonl");
    std::fs::write(&file, ACCOUNTS).expect("write accounts");
    let file = file.to_str().expect("utf-8 path");

    // Some lines are bad: the others are imported all the same, and the status says so.
    let out = chatctl(home, &[], &["users", "import", file, "--json"], "").await;
    assert_status(&out, 1);
    insta::assert_snapshot!("users_import", stable_json(&lines_as_array(&out)));
    let report: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let erin_password = report[1]["password"]
        .as_str()
        .expect("generated")
        .to_owned();
    assert!(
        report[0]["password"].is_null(),
        "a given password is not printed"
    );
    // The accounts work with their passwords, and have the roles asked for.
    for (name, password) in [("dave", "dave's long password"), ("erin", &erin_password)] {
        let client = connect(&server).await;
        client
            .login(name, password, "t")
            .await
            .unwrap_or_else(|e| panic!("{name} logs in: {e}"));
        client.close().await;
    }
    let erin = server
        .store()
        .user_by_username("erin")
        .await
        .expect("read")
        .expect("erin");
    assert_eq!(erin.role, pb::Role::Admin);
    assert!(
        server
            .store()
            .user_by_username("gina")
            .await
            .expect("read")
            .is_none()
    );

    // Again, from standard input, as a table: everything exists now and nothing changes.
    let again: String = ACCOUNTS.lines().take(2).map(|l| format!("{l}\n")).collect();
    let out = chatctl(home, &[], &["users", "import", "-"], &again).await;
    assert_status(&out, 0);
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].trim_start().starts_with("LINE  STATUS"), "{table}");
    assert!(
        lines[1].contains("exists") && lines[1].contains("dave"),
        "{table}"
    );
    assert!(
        lines[2].contains("exists") && lines[2].contains("erin"),
        "{table}"
    );
    assert_eq!(
        lines[3], "2 lines: 0 created, 2 exist, 0 invalid, 0 failed",
        "{table}"
    );
    let client = connect(&server).await;
    client
        .login("erin", &erin_password, "t")
        .await
        .expect("erin's password is unchanged");
    client.close().await;

    // A file that is not there: nothing is done.
    let out = chatctl(home, &[], &["users", "import", "/nonexistent/accounts"], "").await;
    assert_status(&out, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn export_prints_a_whole_chat_oldest_first_and_stats_its_rate() {
    let (server, _, _) = server_with_users().await;
    let alice = connect(&server).await;
    alice.login("alice", PASSWORD, "t").await.expect("login");
    let (bob, auth) = register(&server, "bob").await;
    let bob_id = auth.user.expect("user").id;
    let team = alice
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "team".into(),
            member_ids: vec![bob_id],
            ..Default::default()
        })
        .await
        .expect("group");
    // More than two pages of the server's default size (50).
    let mut sent = Vec::new();
    for i in 0..120 {
        let from = if i % 2 == 0 { &alice } else { &bob };
        sent.push(
            from.send_text(team.id, &format!("line {i}"))
                .await
                .expect("send"),
        );
    }
    bob.delete_message(pb::DeleteMessage {
        chat_id: team.id,
        seq: sent[1].seq,
        for_everyone: true,
    })
    .await
    .expect("delete");
    alice
        .react(pb::React {
            chat_id: team.id,
            seq: sent[0].seq,
            emoji: "\u{1f44d}".into(),
            remove: false,
        })
        .await
        .expect("react");
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;

    let out = chatctl(home, &[], &["export", &team.id.to_string()], "").await;
    assert_status(&out, 0);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), sent.len(), "every message, once");
    for (i, (line, m)) in lines.iter().zip(&sent).enumerate() {
        assert_eq!(line["seq"], m.seq, "oldest first");
        let (sender, text) = match i {
            1 => ("bob", String::new()),
            i if i % 2 == 0 => ("alice", format!("line {i}")),
            i => ("bob", format!("line {i}")),
        };
        assert_eq!(
            (line["sender"].as_str(), line["text"].as_str()),
            (Some(sender), Some(text.as_str()))
        );
        assert_eq!(line["deleted"], i == 1);
    }
    insta::assert_snapshot!(
        "export",
        stable_json(&Output {
            stdout: serde_json::to_vec(&lines[..2]).expect("json"),
            ..out.clone()
        })
    );
    // An unknown chat: not found.
    let out = chatctl(home, &[], &["export", "999999"], "").await;
    assert_status(&out, 4);

    // The messages above were all stored within the minute, by this node.
    let out = chatctl(home, &[], &["stats", "--json"], "").await;
    assert_status(&out, 0);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(stats["messages_last_minute"], 120, "{stats}");
    assert_eq!(stats["messages_per_second"], 2.0, "{stats}");
    let out = chatctl(home, &[], &["stats"], "").await;
    assert!(
        stdout(&out).contains("2.00 (120 messages)"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_writes_a_checked_copy_that_a_chatd_starts_on() {
    let (server, _, _) = server_with_users().await;
    let alice = connect(&server).await;
    alice.login("alice", PASSWORD, "t").await.expect("login");
    let (bob, auth) = register(&server, "bob").await;
    let chat = alice
        .create_private_chat(auth.user.expect("user").id)
        .await
        .expect("chat");
    for i in 0..10 {
        alice
            .send_text(chat.id, &format!("kept {i}"))
            .await
            .expect("send");
    }
    bob.close().await;
    alice.close().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;
    let path = home.join("chat.db.bak");
    let path_arg = path.to_str().expect("utf-8 path");

    let out = chatctl(home, &[], &["backup", path_arg, "--json"], "").await;
    assert_status(&out, 0);
    let mut view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let bytes = std::fs::read(&path).expect("the copy");
    let mode = std::fs::metadata(&path)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "a copy holds password hashes");
    assert_eq!(view["path"], path_arg);
    assert_eq!(view["size"], bytes.len());
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(view["sha256"], sha256);
    for key in ["path", "size", "sha256"] {
        view[key] = serde_json::Value::String(format!("[{key}]"));
    }
    insta::assert_snapshot!("backup", serde_json::to_string_pretty(&view).expect("json"));
    let partial = home.join("chat.db.bak.partial");
    assert!(!partial.exists(), "no partial copy is left");

    // An existing copy is overwritten only with --yes (no terminal here to ask on).
    let out = chatctl(home, &[], &["backup", path_arg], "").await;
    assert_status(&out, 2);
    assert_eq!(std::fs::read(&path).expect("the copy"), bytes);
    let out = chatctl(home, &[], &["backup", path_arg, "--yes"], "").await;
    assert_status(&out, 0);
    assert!(stdout(&out).starts_with("wrote "), "{}", stdout(&out));

    // Restored as a data directory's database, the copy serves everything it held.
    let restored = tempfile::tempdir().expect("restored data directory");
    std::fs::copy(&path, restored.path().join("chatd.sqlite3")).expect("restore");
    let restored = TestServer::start_in(std::sync::Arc::new(restored), &[]).await;
    let counts = restored.store().counts().await.expect("counts");
    assert_eq!((counts.users, counts.messages), (3, 10));
    let client = connect(&restored).await;
    client
        .login("alice", PASSWORD, "t")
        .await
        .expect("alice logs in on the restored server");
    client.close().await;
}
