//! chatd as an operator runs it: the binary, its zero-configuration start, the offline
//! `user add` subcommand, and a SIGTERM in the middle of traffic.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatproto::client::{Client, ClientConfig};
use chatproto::pb;
use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::client::{PASSWORD, config_for};
use tests::server::GENEROUS_LIMITS;
use tests::tools::chatd_binary;

async fn client_of(chatd: &ChatdProcess) -> Client {
    Client::connect(config_for(chatd.addr(), chatd.fingerprint()))
        .await
        .expect("connect")
}

async fn registered(chatd: &ChatdProcess, name: &str) -> Client {
    let client = client_of(chatd).await;
    client
        .register_user(name, &format!("{name}@example.test"), PASSWORD, "")
        .await
        .expect("register");
    client
}

#[tokio::test]
async fn sigterm_during_traffic_drains_exits_zero_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut chatd = ChatdProcess::start(
        ChatdConfig::new()
            .data_dir(&data)
            .args(GENEROUS_LIMITS.iter().copied()),
    );
    let alice = registered(&chatd, "alice").await;
    let chat = alice
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "drain".into(),
            ..Default::default()
        })
        .await
        .expect("group");

    // Four senders keep sending until the server goes away; every acknowledged text is recorded.
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut senders = Vec::new();
    for s in 0..4 {
        let mut config: ClientConfig = config_for(chatd.addr(), chatd.fingerprint());
        config.retry.reconnect = false;
        let client = Client::connect(config).await.expect("connect");
        client
            .login("alice", PASSWORD, &format!("sender{s}"))
            .await
            .expect("login");
        let acked = acked.clone();
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                let text = format!("s{s}-{i}");
                match client.send_text(chat.id, &text).await {
                    Ok(_) => {
                        acked.lock().expect("lock").insert(text);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    while acked.lock().expect("lock").len() < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    chatd.sigterm();
    let status = chatd.wait_exit(Duration::from_secs(12));
    let took = started.elapsed();
    assert!(status.success(), "chatd exited with {status}");
    assert!(took < Duration::from_secs(10), "drain took {took:?}");
    for sender in senders {
        sender.await.expect("sender task");
    }

    // Everything acknowledged before the exit is there after a restart, once.
    chatd.restart();
    let reader = client_of(&chatd).await;
    reader
        .login("alice", PASSWORD, "reader")
        .await
        .expect("login");
    let mut stored = Vec::new();
    let mut before = 0;
    loop {
        let page = reader
            .get_history(pb::GetHistory {
                chat_id: chat.id,
                before_seq: before,
                limit: 100,
                ..Default::default()
            })
            .await
            .expect("history");
        let Some(first) = page.messages.first() else {
            break;
        };
        before = first.seq;
        stored.extend(page.messages.into_iter().map(|m| m.text));
    }
    let unique: BTreeSet<_> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "duplicates in history");
    let acked = acked.lock().expect("lock").clone();
    let missing: Vec<_> = acked.difference(&unique).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

#[tokio::test]
async fn user_add_creates_an_admin_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut child = Command::new(chatd_binary())
        .args([
            "user",
            "add",
            "Root",
            "--admin",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chatd user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"the admin password\n")
        .expect("write password");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user root"));

    // Again: refused, the name exists.
    let mut again = Command::new(chatd_binary())
        .args(["user", "add", "root", "--password-stdin", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    again
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"another password\n")
        .expect("write");
    let out = again.wait_with_output().expect("wait");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let chatd = ChatdProcess::start(ChatdConfig::new().data_dir(&data));
    let root = client_of(&chatd).await;
    let auth = root
        .login("root", "the admin password", "cli")
        .await
        .expect("admin logs in");
    assert_eq!(auth.user.expect("user").role(), pb::Role::Admin);
    root.admin_list_users(pb::AdminListUsers::default())
        .await
        .expect("admin request");
}

#[tokio::test]
async fn zero_configuration_start_serves_on_the_defaults() {
    // chatd with no arguments at all, in an empty working directory: QUIC on 127.0.0.1:4433,
    // admin HTTP on 127.0.0.1:9464, everything under ./chatd-data.
    let cwd = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(chatd_binary())
        .current_dir(cwd.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chatd");
    let stdout = child.stdout.take().expect("stdout");
    // The reader keeps draining stdout for the whole run: closing the pipe after two lines
    // would make chatd's later writes fail with EPIPE.
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = line_tx.send(line);
        }
    });
    let lines = tokio::task::spawn_blocking(move || line_rx.iter().take(2).collect::<Vec<_>>())
        .await
        .expect("reader");
    assert_eq!(
        lines.len(),
        2,
        "chatd exited before printing its addresses: are 127.0.0.1:4433 (udp) and 127.0.0.1:9464 (tcp) free?"
    );
    assert_eq!(lines[0], "chatd listening on 127.0.0.1:4433");
    let fingerprint = lines[1]
        .strip_prefix("certificate sha256 fingerprint: ")
        .expect("fingerprint line");
    assert_eq!(fingerprint.len(), 64);

    // The printed fingerprint is exactly what a client pins.
    let client = Client::connect(config_for("127.0.0.1:4433", fingerprint))
        .await
        .expect("pinned connect");
    client
        .register_user("first", "f@example.test", PASSWORD, "")
        .await
        .expect("register");

    let data = cwd.path().join("chatd-data");
    for secret in ["tls-key.pem", "token.key", "chatd.sqlite3"] {
        let mode = std::fs::metadata(data.join(secret))
            .expect(secret)
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{secret} has mode {mode:o}");
    }
    let (status, _) = tests::chatd::http_get("127.0.0.1:9464".parse().expect("addr"), "/healthz")
        .expect("healthz");
    assert_eq!(status, 200);

    // SIGTERM: a clean exit.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "exit {status}");
}

/// After kill -9 and a restart on the same port and data directory, the SDK learns at once that
/// its connection is gone and reconnects: the new process answers the old connection's packets
/// with a stateless reset the client recognises, because the reset key is derived from the
/// node secret persisted in the data directory. A read started after the restart completes in
/// well under the 30 s idle timeout clients used to wait for (the default SDK configuration;
/// the bound is generous for a loaded machine).
#[tokio::test]
async fn after_kill_9_and_a_restart_the_sdk_reconnects_at_once() {
    let mut chatd = ChatdProcess::start(ChatdConfig::new().args(GENEROUS_LIMITS.iter().copied()));
    let client = registered(&chatd, "kim").await;
    let me = client.get_me(pb::GetMe {}).await.expect("get_me");
    chatd.sigkill();
    chatd.restart();
    let started = Instant::now();
    let again = tokio::time::timeout(Duration::from_secs(30), client.get_me(pb::GetMe {}))
        .await
        .expect("no answer within the idle timeout")
        .expect("get_me on the new connection");
    let elapsed = started.elapsed();
    eprintln!("reconnected and answered {elapsed:?} after the restart");
    assert_eq!(again.id, me.id);
    assert!(
        elapsed < Duration::from_secs(3),
        "reconnecting took {elapsed:?}: the old connection was not reset"
    );
}
