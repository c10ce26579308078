//! The master key rotated while two nodes serve on one MongoDB database (FerretDB), each with key
//! files of its own: the node asked makes the key, the other takes it from the store's ring
//! within a few seconds and writes it to its own key file; files uploaded through either node
//! before and after download through both; the GridFS file keys and the field key of sealed
//! messages are re-wrapped; after the overlap both nodes move the old key's file aside, and a
//! node restarted on its new key file alone reads everything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chatproto::client::HistoryRange;
use chatproto::pb;
use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::client::config_for;
use tests::ferretdb::FerretDb;
use tests::files::{download, share, upload};
use tests::process::poll_until;
use tests::users::TestUser;

const SECRET: &str = "the board meets on the ninth about the sale";

/// The flags of a node whose key files are `name.key` and `name.key.previous` in `dir`.
fn key_flags(dir: &Path, name: &str) -> Vec<String> {
    vec![
        format!(
            "--encryption-key-file={}",
            dir.join(format!("{name}.key")).display()
        ),
        format!(
            "--previous-encryption-key-file={}",
            dir.join(format!("{name}.key.previous")).display()
        ),
    ]
}

fn node(uri: &str, flags: &[String]) -> ChatdProcess {
    let mut args = vec!["--log=info,quinn=warn".to_string()];
    args.extend(flags.iter().cloned());
    ChatdProcess::start(ChatdConfig::new().args(args).env("CHATD_MONGO_URI", uri))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Copies a key file, owner-only as chatd requires.
fn copy_key(from: &Path, to: &Path) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .expect("key copy");
    file.write_all(&std::fs::read(from).expect("key"))
        .expect("write");
}

fn retired_file(dir: &Path, name: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(&format!("{name}.key.previous.retired-"))
            })
        })
}

fn wait_for_log(node: &mut ChatdProcess, line: &str) {
    let log = node.process().log_path().to_path_buf();
    poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        read(&log).contains(line).then_some(())
    })
    .unwrap_or_else(|| panic!("no {line:?} in the log:\n{}", node.process().log_tail()));
}

async fn texts(user: &TestUser, chat: u64) -> Vec<String> {
    let page = user
        .client
        .history(chat, HistoryRange::Latest, 100)
        .await
        .expect("history");
    page.messages
        .into_iter()
        .map(|m| m.text)
        .filter(|t| !t.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_takes_the_master_key_another_rotated_and_both_forget_the_old_one() {
    let ferret = tokio::task::spawn_blocking(FerretDb::start)
        .await
        .expect("ferretdb");
    let uri = ferret.uri();
    let keys = tempfile::tempdir().expect("keys");
    let a_key = tests::keys::key_file(keys.path(), "a.key", true);
    copy_key(&a_key, &keys.path().join("b.key"));
    let old = read(&a_key);
    let (a_flags, b_flags) = (key_flags(keys.path(), "a"), key_flags(keys.path(), "b"));
    tokio::task::block_in_place(|| crate::nodes::add_admin_on(&uri, &[&a_flags[0]]));
    // One node first: it makes the file store's address key.
    let mut a = tokio::task::block_in_place(|| node(&uri, &a_flags));
    let mut b = tokio::task::block_in_place(|| node(&uri, &b_flags));
    let root = TestUser::login(config_for(a.addr(), a.fingerprint()), "root").await;
    let alice = TestUser::register(config_for(b.addr(), b.fingerprint()), "alice").await;
    let bob = TestUser::register(config_for(a.addr(), a.fingerprint()), "bob").await;
    let chat = alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("chat")
        .id;
    alice.client.send_text(chat, SECRET).await.expect("send");
    let before = vec![7u8; 200_000];
    let first = upload(&alice.client, &before, "before.bin", pb::MessageKind::File)
        .await
        .expect("upload through b");
    share(&alice.client, chat, &first.id, pb::MessageKind::File)
        .await
        .expect("file message");

    let rotated = root
        .client
        .admin_rotate_key(pb::AdminRotateKey {
            kind: pb::KeyKind::Master as i32,
            secret: Vec::new(),
        })
        .await
        .expect("rotate through a");
    let ring: Vec<u32> = rotated
        .rings
        .iter()
        .find(|r| r.kind == pb::KeyKind::Master as i32)
        .expect("master ring")
        .keys
        .iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(ring, [1, 0]);
    let new = read(&a_key);
    assert_ne!(new, old);
    // b takes it from the ring at its next round and writes it to its own files.
    let b_key = keys.path().join("b.key");
    poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        (read(&b_key) == new).then_some(())
    })
    .unwrap_or_else(|| panic!("b never took the key:\n{}", b.process().log_tail()));
    assert_eq!(read(&keys.path().join("b.key.previous")), old);

    // Content through both nodes, before and after, reads through both.
    let after = vec![9u8; 150_000];
    let second = upload(&bob.client, &after, "after.bin", pb::MessageKind::File)
        .await
        .expect("upload through a");
    share(&bob.client, chat, &second.id, pb::MessageKind::File)
        .await
        .expect("file message");
    bob.client
        .send_text(chat, "after the rotation")
        .await
        .expect("send");
    assert_eq!(
        download(&alice.client, &second.id, 0).await.expect("b"),
        after
    );
    assert_eq!(
        download(&bob.client, &first.id, 0).await.expect("a"),
        before
    );
    let everything = "everything kept at rest is under the current master key";
    wait_for_log(&mut a, everything);
    wait_for_log(&mut b, everything);

    tokio::time::sleep(chatd::testing::MASTER_KEY_ADOPT_LEAD).await;
    root.client
        .admin_retire_keys(pb::AdminRetireKeys {
            kind: pb::KeyKind::Master as i32,
        })
        .await
        .expect("end the overlap");
    for name in ["a", "b"] {
        let moved = poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
            retired_file(keys.path(), name)
        })
        .unwrap_or_else(|| panic!("{name} kept its previous key file"));
        assert_eq!(read(&moved), old);
    }

    // b alone, on its new key file only: every file and message reads.
    for user in [&root, &alice, &bob] {
        user.client.close().await;
    }
    drop(a);
    drop(b);
    let b = tokio::task::block_in_place(|| node(&uri, &b_flags));
    let alice = TestUser::login(config_for(b.addr(), b.fingerprint()), "alice").await;
    assert_eq!(
        download(&alice.client, &first.id, 0).await.expect("first"),
        before
    );
    assert_eq!(
        download(&alice.client, &second.id, 0)
            .await
            .expect("second"),
        after
    );
    assert_eq!(
        texts(&alice, chat).await,
        [SECRET.to_owned(), "after the rotation".to_owned()]
    );
}
