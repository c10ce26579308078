//! chatctl's `chats`, `messages`, `stats`, `audit` and `nodes` commands against a real chatd over QUIC:
//! listing and reading chats from outside, moderation that members see as ordinary deletes, the
//! server's counts, its one node and draining it; their `--json` snapshots and exit statuses.
//! (Nodes of a cluster: the cluster suite's `nodes`.)

use std::path::Path;
use std::time::Duration;

use chatproto::pb;
use chatproto::pb::chat_event::Body;
use tests::client::{PASSWORD, connect, register, wait_chat_event};

use crate::chatctl::{
    assert_status, chatctl, server_flags, server_with_users, stable_json, stderr, stdout,
};

/// Logs `root` in with a saved profile under `home`.
pub(crate) async fn login(home: &Path, server: &tests::server::TestServer) {
    let mut args: Vec<String> = vec!["login".into()];
    args.extend(server_flags(server));
    args.extend(["--user".into(), "root".into(), "--password-stdin".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_status(
        &chatctl(home, &[], &args, &format!("{PASSWORD}\n")).await,
        0,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn chats_messages_and_stats_as_an_admin_runs_them() {
    let (server, _, alice_id) = server_with_users().await;
    let (bob, auth) = register(&server, "bob").await;
    let bob_id = auth.user.expect("user").id;
    let alice = connect(&server).await;
    alice.login("alice", PASSWORD, "t").await.expect("login");
    let team = alice
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "Team Alpha".into(),
            description: "where the team talks".into(),
            member_ids: vec![bob_id],
        })
        .await
        .expect("group");
    alice
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Channel as i32,
            title: "news".into(),
            ..Default::default()
        })
        .await
        .expect("channel");
    alice.send_text(team.id, "hello team").await.expect("send");
    let spam = bob.send_text(team.id, "buy now").await.expect("send");
    bob.send_text(team.id, "buy more").await.expect("send");
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        chatctl(home, &[], &args, "").await
    };
    let args = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    let chat = team.id.to_string();

    let out = run(args(&["chats", "list", "--json"])).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("chats_list", stable_json(&out));
    let out = run(args(&[
        "chats", "list", "--kind", "group", "--name", "ALPHA", "--member", "bob",
    ]))
    .await;
    assert_status(&out, 0);
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID  KIND   TITLE"), "{table}");
    assert_eq!(lines.len(), 2, "the header and the team: {table}");
    assert!(lines[1].contains("Team Alpha"), "{table}");
    let out = run(args(&["chats", "list", "--limit", "1", "--json"])).await;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    let out = run(args(&["chats", "show", &chat, "--json"])).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("chats_show", stable_json(&out));
    let out = run(args(&["chats", "show", &chat])).await;
    assert!(
        stdout(&out).contains(&format!("owner          alice ({alice_id})")),
        "{}",
        stdout(&out)
    );
    let out = run(args(&["chats", "members", &chat, "--json"])).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("chats_members", stable_json(&out));
    let out = run(args(&["chats", "members", &chat])).await;
    assert!(
        stdout(&out).starts_with("ID  USERNAME  ROLE"),
        "{}",
        stdout(&out)
    );
    let out = run(args(&["chats", "show", "9999"])).await;
    assert_status(&out, 4);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    // One message, asked first; the members see an ordinary delete by the admin.
    let seq = spam.seq.to_string();
    assert_status(&run(args(&["messages", "delete", &chat, &seq])).await, 2);
    let out = run(args(&[
        "messages", "delete", &chat, &seq, "--yes", "--json",
    ]))
    .await;
    assert_status(&out, 0);
    insta::assert_snapshot!("messages_delete", stable_json(&out));
    let event = wait_chat_event(
        &alice,
        team.id,
        |e| matches!(&e.body, Some(Body::MessageDeleted(d)) if d.message_seq == spam.seq),
    )
    .await;
    assert_ne!(event.actor_id, alice_id);
    let out = run(args(&["messages", "delete", &chat, "9999", "--yes"])).await;
    assert_status(&out, 4);

    // Everything bob sent: the one message left.
    let out = run(args(&[
        "messages", "purge", "--sender", "bob", "--yes", "--json",
    ]))
    .await;
    assert_status(&out, 0);
    insta::assert_snapshot!("messages_purge", stable_json(&out));
    let out = run(args(&["messages", "purge", "--sender", "bob", "--yes"])).await;
    assert_status(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "bob: 0 messages deleted for everyone in every chat"
    );
    let history = alice
        .get_history(pb::GetHistory {
            chat_id: team.id,
            ..Default::default()
        })
        .await
        .expect("history");
    for m in &history.messages {
        assert_eq!(m.deleted, m.sender_id == bob_id, "{m:?}");
    }
    let out = run(args(&["messages", "purge", "--sender", "nobody", "--yes"])).await;
    assert_status(&out, 4);

    let out = run(args(&["stats", "--json"])).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("stats", stable_json(&out));
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // chatctl itself, alice and bob.
    assert_eq!(stats["connections"].as_u64(), Some(3), "{stats}");
    let out = run(args(&["stats"])).await;
    assert_status(&out, 0);
    assert!(stdout(&out).contains("messages"), "{}", stdout(&out));

    // The audit log holds the moderation above, newest first, the refused delete included.
    let out = run(args(&["audit", "--json"])).await;
    assert_status(&out, 0);
    insta::assert_snapshot!("audit", stable_json(&out));
    let out = run(args(&["audit", "--action", "admin_delete_message"])).await;
    assert_status(&out, 0);
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID  WHEN"), "{table}");
    assert_eq!(lines.len(), 3, "the header and two deletes: {table}");
    assert!(
        lines[1].contains("NOT_FOUND") && lines[2].contains("OK"),
        "{table}"
    );
    let out = run(args(&[
        "audit", "--actor", "root", "--since", "1h", "--limit", "1", "--json",
    ]))
    .await;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed[0]["action"], "admin_purge_messages", "{listed}");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let out = run(args(&["audit", "--since", "yesterday"])).await;
    assert_status(&out, 2);
    assert!(stderr(&out).contains("--since"), "{}", stderr(&out));

    // A purge of what was sent recently.
    let out = run(args(&[
        "messages", "purge", "--sender", "bob", "--since", "1h", "--yes",
    ]))
    .await;
    assert_status(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "bob: 0 messages deleted for everyone in every chat, sent since 1h ago"
    );

    // Deleting the chat takes it out of the list.
    assert_status(&run(args(&["chats", "delete", &chat, "--yes"])).await, 0);
    let out = run(args(&["chats", "list", "--kind", "group", "--json"])).await;
    assert_eq!(stable_json(&out), "[]");
    tokio::time::timeout(Duration::from_secs(10), bob.close())
        .await
        .expect("closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_lists_the_embedded_node_and_drain_stops_it() {
    let (server, _, _) = server_with_users().await;
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;
    let out = chatctl(home, &[], &["nodes", "--json"], "").await;
    assert_status(&out, 0);
    insta::assert_snapshot!("nodes", stable_json(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed[0]["addr"], server.addr().to_string());
    let node = listed[0]["node_id"].as_str().expect("node id").to_owned();
    let out = chatctl(home, &[], &["nodes"], "").await;
    assert_status(&out, 0);
    let table = stdout(&out);
    assert!(table.starts_with("NODE"), "{table}");
    assert!(
        table.contains(&format!("{node} *")) && table.contains("serving"),
        "{table}"
    );

    assert_status(&chatctl(home, &[], &["nodes", "drain", &node], "").await, 2);
    let out = chatctl(home, &[], &["nodes", "drain", &node, "--yes", "--json"], "").await;
    assert_status(&out, 0);
    insta::assert_snapshot!("nodes_drain", stable_json(&out));
    // Drained: nothing answers any more.
    let out = chatctl(home, &[], &["nodes"], "").await;
    assert_status(&out, 5);
}
