//! chatctl's commands about the server as a whole, against a real chatd over QUIC: `broadcast`
//! (an announcement every user finds in their notifications), `bans` (access rules), `db`
//! (the schema) and `keys` (key rotation); their `--json` snapshots and exit statuses. (Refusals of non-admins:
//! `chatctl`'s table of every admin command; bans refusing connections: the api suite's
//! `access`.)

use chatproto::pb;
use tests::client::{PASSWORD, connect};

use crate::chatctl::{assert_status, chatctl, server_with_users, stable_json, stderr, stdout};
use crate::chatctl_moderation::login;

#[tokio::test(flavor = "multi_thread")]
async fn broadcast_asks_first_then_every_user_finds_the_announcement() {
    let (server, root_id, _) = server_with_users().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;

    // Without a terminal to ask on, nothing is sent without --yes.
    let out = chatctl(home, &[], &["broadcast", "Maintenance at 22:00 UTC"], "").await;
    assert_status(&out, 2);
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    // The server checks the text and names the field.
    let out = chatctl(home, &[], &["broadcast", "  ", "--yes"], "").await;
    assert_status(&out, 1);
    assert!(
        stderr(&out).contains("admin_broadcast.text"),
        "{}",
        stderr(&out)
    );

    let text = "Maintenance at 22:00 UTC.\nBack by 22:05.";
    let out = chatctl(home, &[], &["broadcast", text, "--yes", "--json"], "").await;
    assert_status(&out, 0);
    insta::assert_snapshot!("broadcast", stable_json(&out));
    let out = chatctl(home, &[], &["broadcast", "Done.", "--yes"], "").await;
    assert_status(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "announcement recorded for 2 users; connected ones get it now, the others when they \
         next sync"
    );

    // Alice was offline throughout: both are in her notifications, newest first.
    let alice = connect(&server).await;
    alice.login("alice", PASSWORD, "t").await.expect("login");
    let list = alice
        .list_notifications(pb::ListNotifications {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("notifications");
    let seen: Vec<(pb::NotificationKind, &str, u64)> = list
        .notifications
        .iter()
        .map(|n| (n.kind(), n.preview.as_str(), n.actor_id))
        .collect();
    assert_eq!(
        seen,
        vec![
            (pb::NotificationKind::Broadcast, "Done.", root_id),
            (pb::NotificationKind::Broadcast, text, root_id),
        ]
    );
    assert_eq!(list.unread_count, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn bans_add_list_remove_and_switch_the_mode() {
    let (server, _, _) = server_with_users().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;
    let run = |args: &'static [&'static str]| chatctl(home, &[], args, "");

    let out = run(&["bans", "list", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("bans_list_empty", stable_json(&out));
    let out = run(&[
        "bans",
        "add",
        "198.51.100.0/24",
        "--for",
        "1h",
        "--reason",
        "spam",
        "--json",
    ])
    .await;
    assert_status(&out, 0);
    insta::assert_snapshot!("bans_add", stable_json(&out));
    let out = run(&["bans", "add", "2001:DB8::/32", "--allow"]).await;
    assert_status(&out, 0);
    assert_eq!(stdout(&out).trim(), "2001:db8::/32: allowed until removed");
    let out = run(&["bans", "add", "10.0.0.1/8"]).await;
    assert_status(&out, 1);
    assert!(
        stderr(&out).contains("admin_add_access_rule.cidr") && stderr(&out).contains("10.0.0.0/8"),
        "{}",
        stderr(&out)
    );
    let out = run(&["bans", "add", "10.0.0.0/8", "--for", "soon"]).await;
    assert_status(&out, 2);

    let out = run(&["bans", "list"]).await;
    assert_status(&out, 0);
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "mode: open (everyone not banned may connect); your address: 127.0.0.1"
    );
    assert!(lines[1].starts_with("KIND"), "{table}");
    assert!(
        lines[2].starts_with("ban ") && lines[2].contains("198.51.100.0/24"),
        "{table}"
    );
    assert!(
        lines[2].contains("spam") && lines[2].contains("in 59m"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("allow") && lines[3].ends_with("never"),
        "{table}"
    );

    // Allow-list mode asks first; the server's default exemption (loopback) keeps us in.
    assert_status(&run(&["bans", "mode", "allow-list"]).await, 2);
    let out = run(&["bans", "mode", "allow-list", "--yes", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("bans_mode_allow_list", stable_json(&out));
    assert_status(&run(&["bans", "mode", "open"]).await, 0);

    let out = run(&["bans", "remove", "198.51.100.0/24", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("bans_remove", stable_json(&out));
    assert_status(&run(&["bans", "remove", "198.51.100.0/24"]).await, 4);
    let out = run(&["bans", "remove", "2001:db8:0::/32", "--allow"]).await;
    assert_status(&out, 0);
    assert_eq!(stdout(&out).trim(), "2001:db8:0::/32: allow rule removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn db_reports_the_schema_and_its_repairs_change_nothing_on_a_current_database() {
    let (server, _, _) = server_with_users().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;
    for (command, snapshot) in [
        ("status", "db_status"),
        ("migrate", "db_migrate"),
        ("ensure-indexes", "db_ensure_indexes"),
    ] {
        let out = chatctl(home, &[], &["db", command, "--json"], "").await;
        assert_status(&out, 0);
        insta::assert_snapshot!(snapshot, stable_json(&out));
    }
    let out = chatctl(home, &[], &["db", "status"], "").await;
    assert_status(&out, 0);
    let table = stdout(&out);
    assert!(table.starts_with("SCHEMA"), "{table}");
    assert!(
        table.contains("backend") && table.contains("sqlite"),
        "{table}"
    );
    assert!(table.contains("indexes missing     none"), "{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_list_rotate_and_retire_without_printing_a_secret() {
    let (server, _, _) = server_with_users().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;
    let run = |args: &'static [&'static str]| chatctl(home, &[], args, "");

    let out = run(&["keys", "list", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("keys_list", stable_json(&out));
    let out = run(&["keys", "rotate", "--kind", "tokens", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("keys_rotate_tokens", stable_json(&out));
    // The server-made kinds take no secret; the shared ones need one, and this server has no
    // webhooks (the server says so).
    let out = run(&[
        "keys",
        "rotate",
        "--kind",
        "refresh",
        "--secret-file",
        "/nonexistent",
    ])
    .await;
    assert_status(&out, 2);
    let out = run(&["keys", "rotate", "--kind", "webhook"]).await;
    assert_status(&out, 2);
    assert!(stderr(&out).contains("--secret-file"), "{}", stderr(&out));
    let secret = home.join("webhook.next");
    std::fs::write(&secret, "a-new-webhook-secret-0123\n").expect("write");
    let out = chatctl(
        home,
        &[],
        &[
            "keys",
            "rotate",
            "--kind",
            "webhook",
            "--secret-file",
            secret.to_str().expect("utf-8"),
        ],
        "",
    )
    .await;
    assert_status(&out, 1);
    assert!(
        stderr(&out).contains("no webhook secret configured"),
        "{}",
        stderr(&out)
    );
    // Ending an overlap asks first.
    let out = run(&["keys", "retire", "--kind", "tokens"]).await;
    assert_status(&out, 2);
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    let out = run(&["keys", "retire", "--kind", "tokens", "--yes", "--json"]).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("keys_retire_tokens", stable_json(&out));
    // The table: the current tokens key and the refresh keys, no secret anywhere.
    let out = run(&["keys", "list"]).await;
    assert_status(&out, 0);
    let table = stdout(&out);
    assert!(table.starts_with("KIND"), "{table}");
    let tokens: Vec<&str> = table.lines().filter(|l| l.starts_with("tokens")).collect();
    assert_eq!(tokens.len(), 1, "{table}");
    assert!(tokens[0].contains("current"), "{table}");
    let key = std::fs::read_to_string(server.data_dir().join("token.key")).expect("token.key");
    assert!(!table.contains(key.trim()) && !stdout(&out).contains(key.trim()));
}

/// `keys rotate --kind master` on a server encrypting at rest: the new key is in the key file,
/// the old one in the previous file, the ring lists both; a second rotation is refused until
/// the first is finished, and the master key is never printed.
#[tokio::test(flavor = "multi_thread")]
async fn keys_rotate_master_rewrites_the_key_files_and_waits_for_the_overlap() {
    let dir = tempfile::tempdir().expect("dir");
    let key = tests::keys::key_file(dir.path(), "master.key", true);
    let previous = dir.path().join("master.key.previous");
    let flags = [
        format!("--encryption-key-file={}", key.display()),
        format!("--previous-encryption-key-file={}", previous.display()),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = tests::server::TestServer::start_with(&flags).await;
    crate::chatctl::register_root(&server).await;
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    login(&home, &server).await;
    let run = |args: &'static [&'static str]| chatctl(&home, &[], args, "");
    let old = std::fs::read_to_string(&key).expect("key");

    let out = run(&["keys", "rotate", "--kind", "master", "--json"]).await;
    assert_status(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let master: Vec<(u64, String)> = json["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["kind"] == "master")
        .map(|k| {
            (
                k["kid"].as_u64().expect("kid"),
                k["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        master,
        [(1, "current".to_owned()), (0, "retiring".to_owned())]
    );
    let new = std::fs::read_to_string(&key).expect("key");
    assert_ne!(new, old);
    assert_eq!(std::fs::read_to_string(&previous).expect("previous"), old);
    for secret in [&old, &new] {
        assert!(!stdout(&out).contains(secret.trim()), "a key was printed");
    }
    let out = run(&["keys", "rotate", "--kind", "master"]).await;
    assert_status(&out, 1);
    assert!(stderr(&out).contains("not finished"), "{}", stderr(&out));
    let out = run(&["keys", "secrets", "--kind", "master"]).await;
    assert_status(&out, 2);
    let out = run(&["keys", "retire", "--kind", "master"]).await;
    assert_status(&out, 2);
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    let out = run(&["keys", "list"]).await;
    assert_status(&out, 0);
    let table = stdout(&out);
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("master")).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].contains("current") && rows[0].contains("by command"),
        "{rows:?}"
    );
}

/// `keys secrets` prints the shared secrets that verify (here the TURN secret, before and after
/// a rotation), never the server's own keys, and says so for a kind that is not configured.
#[tokio::test(flavor = "multi_thread")]
async fn keys_secrets_prints_the_shared_secrets_only() {
    let dir = tempfile::tempdir().expect("dir");
    let turn = dir.path().join("turn.secret");
    std::fs::write(&turn, "first-turn-secret-0001\n").expect("write");
    let server = tests::server::TestServer::start_with(&[
        "--ice-servers",
        "turn:127.0.0.1:3478",
        "--turn-secret-file",
        turn.to_str().expect("utf-8"),
    ])
    .await;
    crate::chatctl::register_root(&server).await;
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    login(&home, &server).await;
    let run = |args: &'static [&'static str]| chatctl(&home, &[], args, "");
    let out = run(&["keys", "secrets", "--kind", "turn"]).await;
    assert_status(&out, 0);
    let table = stdout(&out);
    assert!(table.starts_with("KID"), "{table}");
    assert!(table.contains("first-turn-secret-0001"), "{table}");
    let next = dir.path().join("turn.next");
    std::fs::write(&next, "second-turn-secret-0002\n").expect("write");
    let rotate = [
        "keys",
        "rotate",
        "--kind",
        "turn",
        "--secret-file",
        next.to_str().expect("utf-8"),
    ];
    assert_status(&chatctl(&home, &[], &rotate, "").await, 0);
    let out = run(&["keys", "secrets", "--kind", "turn", "--json"]).await;
    assert_status(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(json["kind"], "turn");
    let given: Vec<(u64, &str, &str)> = json["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .map(|k| {
            (
                k["kid"].as_u64().unwrap_or(99),
                k["state"].as_str().unwrap_or(""),
                k["secret"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        given,
        [
            (1, "current", "second-turn-secret-0002"),
            (0, "retiring", "first-turn-secret-0001")
        ]
    );
    // The server's own keys: refused before asking; webhooks: not configured here.
    let out = run(&["keys", "secrets", "--kind", "tokens"]).await;
    assert_status(&out, 2);
    assert!(stderr(&out).contains("never gives"), "{}", stderr(&out));
    let out = run(&["keys", "secrets", "--kind", "webhook"]).await;
    assert_status(&out, 1);
    assert!(
        stderr(&out).contains("no webhook secret configured"),
        "{}",
        stderr(&out)
    );
}
