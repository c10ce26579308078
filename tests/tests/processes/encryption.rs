//! The embedded store encrypted at rest (`--encryption-key-file`), as an operator meets it: no
//! message, username or search word in the database, its write-ahead log or a `chatctl backup`
//! copy; the copy restored by the README's steps and served with the key; chatd refusing to
//! start with a wrong key, without the key, or with a key for a plain database (exit status 3,
//! the reason said once); `chatd db encrypt` converting a plain database whose messages the
//! search still finds, and `chatd db rekey` keeping every message while the old key stops
//! working. Files ride along: one uploaded while the store was plain stays readable once it is
//! encrypted, `chatd files encrypt` encrypts it, and `chatd db rekey` re-wraps its key so the new
//! key alone reads it.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use chatproto::pb;
use tests::client::{PASSWORD, connect, register};
use tests::keys::key_file;
use tests::server::TestServer;
use tests::tools::chatd_binary;

use crate::chatctl::{assert_status, chatctl, register_root};
use crate::chatctl_moderation::login;

/// The words every message carries: never to be found in the files.
const MARKER: &str = "zebracrossingmarmalade";
/// A username found in the files only if they are plain.
const USERNAME: &str = "quokkawhisperer";
/// How many messages the tests send.
const SENT: usize = 20;
/// The exit status of a key that does not fit the database.
const KEY_MISMATCH: i32 = 3;

fn key_flag(path: &Path) -> String {
    format!("--encryption-key-file={}", path.display())
}

/// Whether `needle` occurs anywhere in the file at `path` (a missing file holds nothing).
fn file_contains(path: &Path, needle: &str) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

/// The database, its write-ahead log and its shared-memory index in `dir`.
fn database_files(dir: &Path) -> [PathBuf; 3] {
    ["chatd.sqlite3", "chatd.sqlite3-wal", "chatd.sqlite3-shm"].map(|f| dir.join(f))
}

/// Neither a message nor the username is in the database, its log or its index in `dir`.
fn assert_no_plaintext(dir: &Path) {
    for file in database_files(dir) {
        for needle in [MARKER, USERNAME] {
            assert!(
                !file_contains(&file, needle),
                "{needle} in {}",
                file.display()
            );
        }
    }
}

/// Registers `root` (made an admin) and [`USERNAME`], who sends [`SENT`] messages to root;
/// returns the chat.
async fn fill(server: &TestServer) -> u64 {
    let root_id = register_root(server).await;
    let (user, _) = register(server, USERNAME).await;
    let chat = user.create_private_chat(root_id).await.expect("chat");
    for i in 0..SENT {
        user.send_text(chat.id, &format!("{MARKER} number {i}"))
            .await
            .expect("send");
    }
    user.close().await;
    chat.id
}

/// Bytes of a file no stored byte may hold.
const FILE_MARKER: &[u8] = b"salary review spreadsheet, do not forward";

fn file_content() -> Vec<u8> {
    FILE_MARKER.iter().copied().cycle().take(300_000).collect()
}

/// `USERNAME` uploads [`file_content`]; returns the file's id.
async fn upload_file(server: &TestServer) -> String {
    let client = connect(server).await;
    client.login(USERNAME, PASSWORD, "t").await.expect("login");
    let file = tests::files::upload(
        &client,
        &file_content(),
        "salaries.ods",
        pb::MessageKind::File,
    )
    .await
    .expect("upload");
    client.close().await;
    file.id
}

/// `USERNAME` downloads file `id` whole.
async fn assert_file_reads(server: &TestServer, id: &str) {
    let client = connect(server).await;
    client.login(USERNAME, PASSWORD, "t").await.expect("login");
    let bytes = tests::files::download(&client, id, 0)
        .await
        .expect("download");
    assert!(bytes == file_content(), "the file reads back");
    client.close().await;
}

/// Whether any file under the data directory's `files/` holds [`FILE_MARKER`].
fn files_hold_plaintext(dir: &Path) -> bool {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&dir.join("files"), &mut files);
    files.iter().any(|f| {
        let bytes = std::fs::read(f).expect("read");
        bytes.windows(FILE_MARKER.len()).any(|w| w == FILE_MARKER)
    })
}

/// Every message of `chat` as `USERNAME` reads it, and what a search for the marker finds.
async fn read_back(server: &TestServer, chat: u64) -> (Vec<String>, usize) {
    let client = connect(server).await;
    client.login(USERNAME, PASSWORD, "t").await.expect("login");
    let page = client
        .get_history(pb::GetHistory {
            chat_id: chat,
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("history");
    let texts = page
        .messages
        .iter()
        .map(|m| m.text.clone())
        .collect::<Vec<_>>();
    let found = client
        .search_messages(pb::SearchMessages {
            query: MARKER.into(),
            chat_id: chat,
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("search")
        .messages
        .len();
    client.close().await;
    (texts, found)
}

/// Starts a chatd on `dir` with `key`, checks that it serves every message of `chat` and finds
/// each by search, and stops it.
async fn assert_serves_every_message(
    dir: Arc<tempfile::TempDir>,
    key: &Path,
    chat: u64,
) -> Arc<tempfile::TempDir> {
    let server = TestServer::start_in(dir, &[&key_flag(key)]).await;
    let (texts, found) = read_back(&server, chat).await;
    let expected: Vec<String> = (0..SENT).map(|i| format!("{MARKER} number {i}")).collect();
    assert_eq!(texts, expected);
    assert_eq!(found, SENT, "the search index holds every message");
    server.stop().await
}

/// The real chatd binary with `args`, which must exit (refusing to start) within a minute.
fn chatd(args: &[&str]) -> Output {
    let mut child = Command::new(chatd_binary())
        .args(args)
        .args(["--listen=127.0.0.1:0", "--admin-listen=127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .envs(
            std::env::vars()
                .filter(|(k, _)| k.starts_with("CHATD_"))
                .map(|(k, _)| (k, String::new())),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run chatd");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chatd {args:?} started instead of refusing");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// `chatd db ARGS...`, to its end.
fn chatd_db(args: &[&str]) -> Output {
    Command::new(chatd_binary())
        .arg("db")
        .args(args)
        .output()
        .expect("run chatd db")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// chatd exited with `status` and said `reason` once.
fn assert_refused(out: &Output, status: i32, reason: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(status), "{err}");
    assert!(err.starts_with("chatd: error: "), "{err}");
    assert_eq!(err.matches(reason).count(), 1, "{reason:?} once in:\n{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_store_and_its_backup_hold_no_plaintext_and_restore_with_the_key() {
    let keys = tempfile::tempdir().expect("key dir");
    let key = key_file(keys.path(), "db.key", false);
    let dir = Arc::new(tempfile::tempdir().expect("data dir"));
    let server = TestServer::start_in(dir.clone(), &[&key_flag(&key)]).await;
    let chat = fill(&server).await;

    // While chatd runs the newest pages are in the write-ahead log: both are ciphertext.
    let wal = std::fs::metadata(dir.path().join("chatd.sqlite3-wal")).expect("the log");
    assert!(wal.len() > 0, "the newest pages are in the write-ahead log");
    assert_no_plaintext(dir.path());
    let header = std::fs::read(dir.path().join("chatd.sqlite3")).expect("database");
    assert!(!header.starts_with(b"SQLite format 3"), "not a plain file");

    // The online backup is encrypted with the same key.
    let home = tempfile::tempdir().expect("home");
    let home = home.path();
    login(home, &server).await;
    let backup = home.join("chat.db.bak");
    let out = chatctl(
        home,
        &[],
        &["backup", backup.to_str().expect("utf-8 path")],
        "",
    )
    .await;
    assert_status(&out, 0);
    for needle in [MARKER, USERNAME, "SQLite format 3"] {
        assert!(!file_contains(&backup, needle), "{needle} in the backup");
    }

    // The README's restore steps: install the copy as a data directory's database, remove the
    // -wal and -shm files of the database it replaces (here none), start chatd with the key.
    let restored = Arc::new(tempfile::tempdir().expect("restored data directory"));
    std::fs::set_permissions(restored.path(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    let installed = restored.path().join("chatd.sqlite3");
    std::fs::copy(&backup, &installed).expect("install");
    std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    for stale in &database_files(restored.path())[1..] {
        let _ = std::fs::remove_file(stale);
    }
    let data_dir = format!("--data-dir={}", restored.path().display());
    // Without the key, or with another one, the copy opens nothing.
    assert_refused(
        &chatd(&[&data_dir]),
        KEY_MISMATCH,
        "is encrypted but no key is configured",
    );
    let other = key_file(keys.path(), "other.key", true);
    assert_refused(
        &chatd(&[&data_dir, &key_flag(&other)]),
        KEY_MISMATCH,
        "is encrypted and this key does not open it",
    );
    assert_serves_every_message(restored, &key, chat).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn db_encrypt_converts_a_plain_store_and_rekey_keeps_every_message() {
    let keys = tempfile::tempdir().expect("key dir");
    let dir = Arc::new(tempfile::tempdir().expect("data dir"));
    let server = TestServer::start_in(dir.clone(), &[]).await;
    let chat = fill(&server).await;
    let file = upload_file(&server).await;
    let data_dir = format!("--data-dir={}", dir.path().display());
    let key = key_file(keys.path(), "db.key", true);

    // A running chatd keeps the database: the command refuses and changes nothing.
    let out = chatd_db(&["encrypt", &data_dir, &key_flag(&key)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is in use"), "{}", stderr(&out));
    let dir = server.stop().await;
    assert!(
        database_files(dir.path())
            .iter()
            .any(|f| file_contains(f, MARKER)),
        "plain so far"
    );

    // A key for the plain database is refused at start, naming the command that encrypts it.
    assert_refused(
        &chatd(&[&data_dir, &key_flag(&key)]),
        KEY_MISMATCH,
        "is plain: run chatd db encrypt",
    );

    let out = chatd_db(&["encrypt", &data_dir, &key_flag(&key)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_no_plaintext(dir.path());
    let dir = assert_serves_every_message(dir, &key, chat).await;

    // The file uploaded while everything was plain still reads; `chatd files encrypt` (here
    // beside a running chatd) encrypts it, and it reads the same.
    assert!(files_hold_plaintext(dir.path()), "plain so far");
    let server = TestServer::start_in(dir, &[&key_flag(&key)]).await;
    assert_file_reads(&server, &file).await;
    let out = Command::new(chatd_binary())
        .args(["files", "encrypt", &data_dir, &key_flag(&key)])
        .output()
        .expect("chatd files encrypt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 1 encrypted, "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!files_hold_plaintext(&server.data_dir()), "encrypted");
    assert_file_reads(&server, &file).await;
    let dir = server.stop().await;

    // Rekey: the new key opens every message, the old one nothing.
    let new = key_file(keys.path(), "new.key", false);
    let new_flag = format!("--new-key-file={}", new.display());
    let out = chatd_db(&["rekey", &data_dir, &key_flag(&key), &new_flag]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_refused(
        &chatd(&[&data_dir, &key_flag(&key)]),
        KEY_MISMATCH,
        "this key does not open it",
    );
    let dir = assert_serves_every_message(dir, &new, chat).await;
    // The file's key was re-wrapped with the new key: the new key alone reads it. The master
    // key ring names it current (the old one ended with the rekey).
    let server = TestServer::start_in(dir, &[&key_flag(&new)]).await;
    assert_file_reads(&server, &file).await;
    let root = tests::client::connect(&server).await;
    root.login("root", tests::client::PASSWORD, "check")
        .await
        .expect("root");
    let list = root
        .admin_list_keys(chatproto::pb::AdminListKeys {})
        .await
        .expect("keys");
    let master = list
        .rings
        .iter()
        .find(|r| r.kind == chatproto::pb::KeyKind::Master as i32)
        .expect("master ring");
    let kids: Vec<(u32, i32)> = master.keys.iter().map(|k| (k.kid, k.state)).collect();
    assert_eq!(kids, [(1, chatproto::pb::KeyState::Current as i32)]);
    root.close().await;
    server.stop().await;
}
