//! Backups of the embedded database (`admin_backup`, spec 9.6): a consistent copy taken while
//! another client keeps writing holds every message acknowledged before it began, arrives with
//! the size and SHA-256 it was announced with, leaves no file behind in the data directory and
//! is recorded in the audit log; a node makes one backup at a time; admins only.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatproto::pb;
use chatproto::pb::ErrorCode as E;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use crate::support::{User, WAIT, assert_code, group, register, register_admin, start};

/// The seqs stored in the copy for `chat_id`, read with SQLite itself.
fn seqs_in_copy(copy: &Path, chat_id: u64) -> Vec<u64> {
    let db = rusqlite::Connection::open(copy).expect("open the copy");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
    let mut stmt = db
        .prepare("SELECT seq FROM messages WHERE chat_id = ?1 ORDER BY seq")
        .expect("prepare");
    let chat_id = i64::try_from(chat_id).expect("chat id");
    stmt.query_map([chat_id], |r| r.get::<_, i64>(0))
        .expect("query")
        .map(|seq| u64::try_from(seq.expect("row")).expect("seq"))
        .collect()
}

/// Waits until the node has deleted its copies, which it does once the client acknowledged the
/// last byte, a moment after the client has them all; then its backup place is free.
async fn until_copies_are_deleted(data_dir: &Path) {
    tokio::time::timeout(WAIT, async {
        while !copies_left(data_dir).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the node kept its copy");
}

/// The copies a node has left in its data directory.
fn copies_left(data_dir: &Path) -> Vec<String> {
    std::fs::read_dir(data_dir)
        .expect("read the data directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(".backup-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_messages_are_sent_holds_every_one_acknowledged_before_it() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let team = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    for i in 0..20 {
        alice.send(team.id, &format!("before {i}")).await;
    }

    // Alice keeps sending during the backup; each acknowledged seq is noted.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let sender = tokio::spawn({
        let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
        async move {
            let stopped = stop.notified();
            tokio::pin!(stopped);
            for i in 0.. {
                let text = format!("during {i}");
                tokio::select! {
                    () = &mut stopped => return alice,
                    m = alice.client.send_text(team.id, &text) => {
                        acked.lock().expect("acked").push(m.expect("send").seq);
                    }
                }
            }
            alice
        }
    });
    // Some messages of the sender are in before the backup begins.
    while acked.lock().expect("acked").len() < 5 {
        tokio::task::yield_now().await;
    }
    let before: Vec<u64> = acked.lock().expect("acked").clone();
    let mut bytes = Vec::new();
    let info = tokio::time::timeout(
        WAIT,
        root.client.admin_backup_to_writer(&mut bytes, |_, _| {}),
    )
    .await
    .expect("the backup took too long")
    .expect("backup");
    stop.notify_one();
    let alice: User = sender.await.expect("sender");

    assert_eq!(info.size, bytes.len() as u64);
    assert_eq!(info.sha256, Sha256::digest(&bytes).to_vec());
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("chat.db.bak");
    std::fs::write(&copy, &bytes).expect("write the copy");
    let seqs = seqs_in_copy(&copy, team.id);
    for seq in &before {
        assert!(
            seqs.contains(seq),
            "message {seq} acknowledged before the backup is missing"
        );
    }
    assert!(
        seqs.len() >= 20 + before.len(),
        "{} messages in the copy",
        seqs.len()
    );
    until_copies_are_deleted(&server.data_dir()).await;

    // The server goes on writing after it; the audit log names the node.
    alice.send(team.id, "after").await;
    let log = root
        .client
        .admin_list_audit(pb::AdminListAudit {
            action: "admin_backup".into(),
            ..Default::default()
        })
        .await
        .expect("audit");
    let entry = log.entries.first().expect("an audit entry");
    assert!(entry.subject.starts_with("node:"), "{entry:?}");
    assert_eq!(entry.actor_id, root.id);
    assert_eq!(entry.outcome, E::Unspecified as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_makes_one_backup_at_a_time_and_only_for_admins() {
    let server = start().await;
    let root = register_admin(&server, "root").await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let team = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    assert_code(
        bob.client
            .admin_backup_to_writer(&mut Vec::new(), |_, _| {})
            .await,
        E::PermissionDenied,
    );

    // A database larger than what the client buffers of a stream it does not read (quinn's
    // default stream window is 1.25 MB), so a backup whose bytes are not taken stays running.
    let text = "backup ".repeat(580);
    for _ in 0..600 {
        alice.send(team.id, &text).await;
    }
    let (mut unread, mut stalled) = tokio::io::duplex(64 * 1024);
    let first = tokio::spawn(async move {
        let info = root
            .client
            .admin_backup_to_writer(&mut stalled, |_, _| {})
            .await;
        (root, info)
    });
    // The first backup holds the node's place from its copy on.
    let dir = server.data_dir();
    tokio::time::timeout(WAIT, async {
        while copies_left(&dir).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the first backup did not start");
    let other_admin = register_admin(&server, "root2").await;
    let busy = assert_code(
        other_admin
            .client
            .admin_backup_to_writer(&mut Vec::new(), |_, _| {})
            .await,
        E::Unavailable,
    );
    assert!(
        busy.retry_after.is_some_and(|d| d > Duration::ZERO),
        "{busy:?}"
    );

    // Once its bytes are taken, the first one completes and the place is free again.
    let mut received = Vec::new();
    let (read, done) = tokio::join!(unread.read_to_end(&mut received), first);
    read.expect("read");
    let (root, info) = done.expect("first backup");
    let info = info.expect("the first backup");
    assert_eq!(info.size, received.len() as u64);
    assert!(info.size > 2_000_000, "{} bytes", info.size);
    until_copies_are_deleted(&dir).await;
    let again = root
        .client
        .admin_backup_to_writer(&mut Vec::new(), |_, _| {})
        .await
        .expect("a backup after the first");
    assert!(again.size >= info.size);
    until_copies_are_deleted(&dir).await;
}
