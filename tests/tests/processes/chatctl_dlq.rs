//! `chatctl dlq list | retry | purge` against a real chatd whose webhook endpoint fails: the dead
//! letters listed as a table and as JSON, retried once the endpoint works, purged after a
//! confirmation, and the exit statuses scripts rely on (2 usage, 3 not an admin, 4 not found).

use std::time::Duration;

use chatproto::pb;
use tests::client::{PASSWORD, register};
use tests::server::TestServer;
use tests::webhook::WebhookReceiver;

use crate::chatctl::{assert_status, chatctl, server_flags, stderr, stdout};
use crate::chatctl_moderation::login;

const SECRET: &str = "dlq-test-secret";

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_listed_retried_and_purged() {
    let receiver = WebhookReceiver::start(SECRET.as_bytes()).await;
    receiver.set_failing(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).expect("secret");
    let args = [
        format!("--webhooks=mention={}/m", receiver.base),
        format!("--webhook-secret-file={}", secret.display()),
        "--delivery-attempts=2".to_owned(),
        "--delivery-retry-base=100ms".to_owned(),
        "--delivery-retry-max=100ms".to_owned(),
        "--delivery-poll=100ms".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = TestServer::start_with(&args).await;
    let (root, auth) = register(&server, "root").await;
    server
        .store()
        .set_role(auth.user.expect("user").id, pb::Role::Admin, None)
        .await
        .expect("set role");
    root.close().await;
    let (alice, _) = register(&server, "alice").await;
    let (bob, auth) = register(&server, "bob").await;
    let bob_id = auth.user.expect("user").id;
    bob.set_notification_prefs(pb::SetNotificationPrefs {
        prefs: Some(pb::NotificationPrefs {
            webhook: true,
            ..Default::default()
        }),
    })
    .await
    .expect("prefs");
    let chat = alice
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "team".into(),
            description: String::new(),
            member_ids: vec![bob_id],
        })
        .await
        .expect("group");
    alice.send_text(chat.id, "@bob one").await.expect("send");
    alice.send_text(chat.id, "@bob two").await.expect("send");

    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;
    let run = |words: Vec<String>| async move {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        chatctl(home, &[], &words, "").await
    };
    let args = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    let listed = tests::process::eventually(
        Duration::from_secs(20),
        Duration::from_millis(200),
        async || {
            let out = run(args(&["dlq", "list", "--json"])).await;
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            json.as_array().is_some_and(|a| a.len() == 2)
        },
    )
    .await;
    assert!(listed, "two dead letters; calls: {:?}", receiver.calls());
    let out = run(args(&["dlq", "list", "--json"])).await;
    assert_status(&out, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let first = &json[0];
    assert_eq!(first["kind"], "webhook");
    assert_eq!(first["user_id"], bob_id);
    assert_eq!(first["target"], "mention");
    assert_eq!(first["attempts"], 2);
    assert!(
        first["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{first}"
    );
    let id = first["id"].as_u64().expect("id").to_string();
    let out = run(args(&["dlq", "list"])).await;
    assert!(stdout(&out).starts_with("ID"), "{}", stdout(&out));
    assert!(stdout(&out).contains("mention"), "{}", stdout(&out));

    // Usage mistakes and unknown ids.
    assert_status(&run(args(&["dlq", "retry"])).await, 2);
    assert_status(&run(args(&["dlq", "retry", "1", "--all"])).await, 2);
    let out = run(args(&["dlq", "retry", "999999"])).await;
    assert_status(&out, 4);
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    receiver.set_failing(false);
    let out = run(args(&["dlq", "retry", &id, "--json"])).await;
    assert_status(&out, 0);
    let retried: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(retried["retried"], 1);
    let delivered = tests::process::eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        async || receiver.calls().iter().any(|c| c.status == 204),
    )
    .await;
    assert!(delivered, "the retried call was not delivered");

    assert_status(&run(args(&["dlq", "purge", "--all"])).await, 2);
    let out = run(args(&["dlq", "purge", "--all", "--yes", "--json"])).await;
    assert_status(&out, 0);
    let purged: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(purged["purged"], 1);
    let out = run(args(&["dlq", "list", "--json"])).await;
    assert_eq!(stdout(&out).trim(), "[]");

    // Not for users.
    let user_home = tempfile::tempdir().expect("home");
    let mut words: Vec<String> = vec!["dlq".into(), "list".into()];
    words.extend(server_flags(&server));
    words.extend(["--user".into(), "alice".into(), "--password-stdin".into()]);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let out = chatctl(user_home.path(), &[], &words, &format!("{PASSWORD}\n")).await;
    assert_status(&out, 3);
}
