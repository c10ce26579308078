//! The master key of encryption at rest rotated while the server serves (spec 9.6, "Key
//! rotation", kind `MASTER`): `admin_rotate_key` makes a new key, writes it to
//! `--encryption-key-file` and the old one to `--previous-encryption-key-file`, and rekeys the
//! embedded database while messages keep flowing; the overlap ends by `admin_retire_keys` (not
//! before every node could take the key), after which the old key's file is moved aside and the
//! server restarts on the new key alone with every message. The schedule
//! (`--encryption-key-rotation-interval`) does the same by itself, and a start after a crash
//! between the key files and the rekey finishes the rotation. The errors: a second rotation
//! before the first is finished, an early end, a server without a master key or without a
//! previous key file, and the secret refused; two rotations at once make one key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chatproto::client::HistoryRange;
use chatproto::pb;
use chatproto::pb::ErrorCode as E;
use tests::server::TestServer;

use crate::support::{
    User, assert_code, assert_field, group, register, register_admin, start_with,
};

const MARKER: &str = "the launch date moves to the ninth, keep it quiet";

/// A new master key in `master.key` under `dir`, where its previous one goes, and the flags
/// naming both (then `extra`).
fn key_files(dir: &Path, extra: &[&str]) -> (PathBuf, PathBuf, Vec<String>) {
    let key = tests::keys::key_file(dir, "master.key", true);
    let previous = dir.join("master.key.previous");
    let mut flags = vec![
        format!("--encryption-key-file={}", key.display()),
        format!("--previous-encryption-key-file={}", previous.display()),
    ];
    flags.extend(extra.iter().map(|f| (*f).to_owned()));
    (key, previous, flags)
}

fn master_ring(list: &pb::KeyRingList) -> Vec<(u32, pb::KeyState)> {
    list.rings
        .iter()
        .find(|r| r.kind == pb::KeyKind::Master as i32)
        .expect("the master ring is listed")
        .keys
        .iter()
        .map(|k| (k.kid, k.state()))
        .collect()
}

fn rotate() -> pb::AdminRotateKey {
    pb::AdminRotateKey {
        kind: pb::KeyKind::Master as i32,
        secret: Vec::new(),
    }
}

fn retire() -> pb::AdminRetireKeys {
    pb::AdminRetireKeys {
        kind: pb::KeyKind::Master as i32,
    }
}

fn contains(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or(false)
}

/// A server with a master key and a previous key file (then the `extra` flags): an admin, and
/// alice and bob in a group where alice said [`MARKER`].
struct Seeded {
    keys: tempfile::TempDir,
    key: PathBuf,
    previous: PathBuf,
    flags: Vec<String>,
    server: TestServer,
    root: User,
    alice: User,
    bob: User,
    team: pb::Chat,
}

impl Seeded {
    async fn start(extra: &[&str]) -> Seeded {
        let keys = tempfile::tempdir().expect("key dir");
        let (key, previous, flags) = key_files(keys.path(), extra);
        let server = start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let root = register_admin(&server, "root").await;
        let alice = register(&server, "alice").await;
        let bob = register(&server, "bob").await;
        let team = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
        alice.send(team.id, MARKER).await;
        Seeded {
            keys,
            key,
            previous,
            flags,
            server,
            root,
            alice,
            bob,
            team,
        }
    }
}

async fn texts(client: &chatproto::client::Client, chat: u64) -> Vec<String> {
    let page = client
        .history(chat, HistoryRange::Latest, 100)
        .await
        .expect("history");
    page.messages.into_iter().map(|m| m.text).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_key_rotates_while_messages_flow_and_the_server_restarts_on_the_new_key() {
    let Seeded {
        keys,
        key,
        previous,
        flags,
        server,
        root,
        alice,
        bob,
        team,
    } = Seeded::start(&[]).await;
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let old_key = std::fs::read_to_string(&key).expect("key");

    let before = root
        .client
        .admin_list_keys(pb::AdminListKeys {})
        .await
        .expect("list");
    assert_eq!(master_ring(&before), [(0, pb::KeyState::Current)]);
    assert_field(
        root.client
            .admin_get_key_secrets(pb::AdminGetKeySecrets {
                kind: pb::KeyKind::Master as i32,
            })
            .await,
        E::InvalidArgument,
        "admin_get_key_secrets.kind",
    );

    // Messages keep flowing while the key changes and the database is rekeyed.
    let phone = crate::support::device(&server, &alice).await;
    let sender = tokio::spawn(async move {
        for i in 0..60 {
            phone
                .client
                .send_text(team.id, &format!("during {i}"))
                .await
                .expect("a send during the rotation");
        }
        phone
    });
    let rotated = root
        .client
        .admin_rotate_key(rotate())
        .await
        .expect("rotate");
    assert_eq!(
        master_ring(&rotated),
        [(1, pb::KeyState::Current), (0, pb::KeyState::Retiring)]
    );
    let phone = sender.await.expect("sender");
    let new_key = std::fs::read_to_string(&key).expect("key");
    assert_ne!(new_key, old_key, "the key file holds the new key");
    assert_eq!(
        std::fs::read_to_string(&previous).expect("previous"),
        old_key.trim().to_owned() + "\n",
        "the old key is kept as the previous one"
    );
    let e = assert_code(
        root.client.admin_rotate_key(rotate()).await,
        E::FailedPrecondition,
    );
    assert!(e.message.contains("not finished"), "{e}");
    let e = assert_code(
        root.client.admin_retire_keys(retire()).await,
        E::FailedPrecondition,
    );
    assert!(e.message.contains("every node takes the new key"), "{e}");
    assert_eq!(texts(&bob.client, team.id).await.len(), 61);

    // After the lead the overlap ends; the server forgets the old key and moves its file aside.
    tokio::time::sleep(chatd::testing::MASTER_KEY_ADOPT_LEAD).await;
    let ended = root
        .client
        .admin_retire_keys(retire())
        .await
        .expect("retire");
    assert_eq!(master_ring(&ended), [(1, pb::KeyState::Current)]);
    let retired =
        tests::process::poll_until(Duration::from_secs(20), Duration::from_millis(50), || {
            std::fs::read_dir(keys.path())
                .expect("key dir")
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().contains("master.key.previous.retired-"))
        })
        .expect("the previous key file is moved aside");
    assert!(!previous.exists());
    assert_eq!(
        std::fs::read_to_string(&retired).expect("retired"),
        old_key.trim().to_owned() + "\n"
    );
    let audit = root
        .client
        .admin_list_audit(pb::AdminListAudit {
            action: "admin_rotate_key".into(),
            ..Default::default()
        })
        .await
        .expect("audit");
    assert!(
        audit.entries.iter().any(|e| e.subject == "keys:master"),
        "{audit:?}"
    );

    // Nothing readable at rest, and the new key alone opens everything after a restart.
    alice.client.close().await;
    phone.client.close().await;
    bob.client.close().await;
    root.client.close().await;
    let dir = server.stop().await;
    for name in ["chatd.sqlite3", "chatd.sqlite3-wal"] {
        assert!(
            !contains(&dir.path().join(name), MARKER),
            "plaintext in {name}"
        );
    }
    let server = TestServer::start_in(dir, &flags).await;
    let bob = crate::support::device(&server, &bob).await;
    let history = texts(&bob.client, team.id).await;
    assert_eq!(history.len(), 61, "{history:?}");
    assert_eq!(history[0], MARKER);
    assert_eq!(history[60], "during 59");
}

/// Two rotations at once on one connection: one makes the new key, the other is refused as not
/// finished, and the ring and the key files hold that one new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rotations_at_once_make_one_new_key() {
    let Seeded {
        key,
        previous,
        root,
        bob,
        team,
        keys: _keys,
        server: _server,
        ..
    } = Seeded::start(&[]).await;
    let old_key = std::fs::read_to_string(&key).expect("key");
    let (first, second) = tokio::join!(
        root.client.admin_rotate_key(rotate()),
        root.client.admin_rotate_key(rotate())
    );
    let (rotated, refused) = match (first, second) {
        (Ok(ring), Err(e)) | (Err(e), Ok(ring)) => (ring, e),
        other => panic!("one rotation and one refusal expected: {other:?}"),
    };
    assert_eq!(
        master_ring(&rotated),
        [(1, pb::KeyState::Current), (0, pb::KeyState::Retiring)]
    );
    let e = assert_code(Err::<(), _>(refused), E::FailedPrecondition);
    assert!(e.message.contains("not finished"), "{e}");
    let list = root
        .client
        .admin_list_keys(pb::AdminListKeys {})
        .await
        .expect("list");
    assert_eq!(master_ring(&list), master_ring(&rotated));
    assert_ne!(std::fs::read_to_string(&key).expect("key"), old_key);
    assert_eq!(
        std::fs::read_to_string(&previous).expect("previous"),
        old_key.trim().to_owned() + "\n"
    );
    assert_eq!(texts(&bob.client, team.id).await, [MARKER]);
}

#[tokio::test]
async fn without_a_master_key_or_its_previous_file_the_master_key_does_not_rotate() {
    let plain = start_with(&[]).await;
    let root = register_admin(&plain, "root").await;
    let list = root
        .client
        .admin_list_keys(pb::AdminListKeys {})
        .await
        .expect("list");
    assert!(master_ring(&list).is_empty(), "no master key");
    let e = assert_code(
        root.client.admin_rotate_key(rotate()).await,
        E::FailedPrecondition,
    );
    assert!(e.message.contains("no master key"), "{e}");
    assert_code(
        root.client.admin_retire_keys(retire()).await,
        E::FailedPrecondition,
    );

    // A key file but nowhere to keep the key it replaces.
    let keys = tempfile::tempdir().expect("key dir");
    let key = tests::keys::key_file(keys.path(), "master.key", true);
    let flag = format!("--encryption-key-file={}", key.display());
    let server = start_with(&[&flag]).await;
    let root = register_admin(&server, "root").await;
    let e = assert_code(
        root.client.admin_rotate_key(rotate()).await,
        E::FailedPrecondition,
    );
    assert!(e.message.contains("--previous-encryption-key-file"), "{e}");
    // Nothing changed: no rotation under way to end.
    let ended = root
        .client
        .admin_retire_keys(retire())
        .await
        .expect("retire");
    assert_eq!(master_ring(&ended), [(0, pb::KeyState::Current)]);
}

/// A crash after the key files were rewritten but before the database was rekeyed: the next
/// start opens the database with the previous key, records the key as a rotation and rekeys;
/// once the overlap ends the server restarts on the new key alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_between_the_key_files_and_the_rekey_finishes_the_rotation() {
    let Seeded {
        keys,
        key,
        previous,
        flags,
        server,
        root,
        alice,
        bob,
        team,
    } = Seeded::start(&[]).await;
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    for user in [&root, &alice, &bob] {
        user.client.close().await;
    }
    let dir = server.stop().await;
    // The files as a rotation leaves them just before its rekey.
    std::fs::rename(&key, &previous).expect("old key to the previous file");
    tests::keys::key_file(keys.path(), "master.key", true);

    let server = TestServer::start_in(dir, &flags).await;
    let root = crate::support::device(&server, &root).await;
    let list = root
        .client
        .admin_list_keys(pb::AdminListKeys {})
        .await
        .expect("list");
    assert_eq!(
        master_ring(&list),
        [(1, pb::KeyState::Current), (0, pb::KeyState::Retiring)]
    );
    tokio::time::sleep(chatd::testing::MASTER_KEY_ADOPT_LEAD).await;
    root.client
        .admin_retire_keys(retire())
        .await
        .expect("retire");
    tests::process::poll_until(Duration::from_secs(20), Duration::from_millis(50), || {
        (!previous.exists()).then_some(())
    })
    .expect("the previous key is forgotten once the database is rekeyed");
    root.client.close().await;
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, &flags).await;
    let bob = crate::support::device(&server, &bob).await;
    assert_eq!(texts(&bob.client, team.id).await, [MARKER]);
}

/// `--encryption-key-rotation-interval`: the server rotates the master key by itself when it is
/// that old, and forgets the old one when the overlap has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_rotates_the_master_key_and_the_overlap_ends_by_itself() {
    let keys = tempfile::tempdir().expect("key dir");
    let (key, previous, flags) = key_files(
        keys.path(),
        &[
            "--access-token-ttl=1s",
            "--key-overlap=7s",
            "--key-rotation-interval=off",
            "--encryption-key-rotation-interval=7s",
        ],
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = start_with(&flags).await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let team = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    alice.send(team.id, MARKER).await;
    let old = std::fs::read_to_string(&key).expect("key");
    tests::process::poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let now = std::fs::read_to_string(&key).expect("key");
        (now != old).then_some(())
    })
    .expect("a scheduled rotation");
    assert_eq!(std::fs::read_to_string(&previous).expect("previous"), old);
    alice.send(team.id, "after").await;
    // The overlap (7 s) passes: the old key is forgotten, its file moved aside.
    tests::process::poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
        (!previous.exists()).then_some(())
    })
    .expect("the overlap ends by itself");
    // (The next scheduled rotation may begin from here on: a restart finishes it.)
    alice.client.close().await;
    bob.client.close().await;
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, &flags).await;
    let bob = crate::support::device(&server, &bob).await;
    assert_eq!(texts(&bob.client, team.id).await, [MARKER, "after"]);
}
