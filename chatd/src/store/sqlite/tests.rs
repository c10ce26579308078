//! The conformance suite against SQLite, plus what only this backend has: migrations, pragmas,
//! group commit and the FTS index.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chatproto::pb;
use rusqlite::Connection;
use tempfile::TempDir;

use super::cipher::OpenError;
use super::writer::Writer;
use super::*;
use crate::store::conformance::store_conformance;

store_conformance!(conformance, async {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("chat.db")).expect("open store");
    (store, dir)
});

// The same suite through the wrapper handlers actually use: every method forwarded by
// `delegate_store!` with the right arguments, errors passed through unchanged.
store_conformance!(guarded, async {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("chat.db")).expect("open store");
    let guarded = crate::resilience::guarded_store::GuardedStore::new(
        Arc::new(store),
        Duration::from_secs(10),
        Arc::new(crate::ops::metrics::Metrics::new()),
    );
    (guarded, dir)
});

// The same suite on an encrypted database (SQLCipher): every entity, the search index and the
// sessions through keyed connections.
store_conformance!(encrypted, async {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteOptions {
        key: Some(super::cipher::DatabaseKey::generate()),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path().join("chat.db"), options).expect("open store");
    (store, dir)
});

fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    (dir, path)
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).expect("raw connection")
}

/// A store in a fresh temporary directory with users `a` and `b` and their private chat.
struct PrivateChat {
    dir: TempDir,
    path: PathBuf,
    store: SqliteStore,
    a: u64,
    b: u64,
    chat: u64,
}

async fn private_chat() -> PrivateChat {
    let (dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("open");
    let a = store.create_user(new_user("a")).await.expect("user a").id;
    let b = store.create_user(new_user("b")).await.expect("user b").id;
    let (chat, _) = store.open_private_chat(a, b, 1).await.expect("chat");
    PrivateChat {
        dir,
        path,
        store,
        a,
        b,
        chat: chat.id,
    }
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: String::new(),
        password_hash: "h".into(),
        role: pb::Role::User,
        now_ms: 1,
    }
}

fn text(chat_id: u64, sender_id: u64, cmid: &str, text: &str) -> NewMessage {
    NewMessage {
        chat_id,
        sender_id,
        client_msg_id: cmid.into(),
        kind: pb::MessageKind::Text,
        text: text.into(),
        file_id: String::new(),
        attachment: None,
        reply_to_seq: 0,
        forwarded_from: None,
        mention_ids: Vec::new(),
        now_ms: 1,
        members_seq: None,
    }
}

#[tokio::test]
async fn open_sets_wal_and_connection_pragmas() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("open");
    let (sync, fk, secure) = store
        .write(|c| {
            let get = |pragma: &str| -> StoreResult<i64> {
                Ok(c.query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))?)
            };
            Ok((
                get("synchronous")?,
                get("foreign_keys")?,
                get("secure_delete")?,
            ))
        })
        .await
        .expect("pragmas");
    assert_eq!((sync, fk, secure), (1, 1, 2), "NORMAL, on, FAST");
    let auto_checkpoint: i64 = store
        .write(|c| Ok(c.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))?))
        .await
        .expect("pragma");
    assert_eq!(
        auto_checkpoint, 0,
        "the writer's commits leave checkpoints to the checkpointer"
    );
    let mode: String = raw(&path)
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    let read_only = store
        .read(|c| Ok(c.execute_batch("CREATE TABLE nope (x)").is_err()))
        .await
        .expect("read");
    assert!(read_only, "pooled connections cannot write");

    let (_dir2, path2) = temp_db();
    let durable = SqliteStore::open_with(
        &path2,
        SqliteOptions {
            durability: Durability::PowerLoss,
            read_connections: 1,
            ..Default::default()
        },
    )
    .expect("open");
    let sync: i64 = durable
        .write(|c| Ok(c.query_row("PRAGMA synchronous", [], |row| row.get(0))?))
        .await
        .expect("pragma");
    assert_eq!(sync, 2, "FULL");
}

#[tokio::test]
async fn migrations_run_once_and_data_survives_reopen() {
    let (_dir, path) = temp_db();
    let (alice, chat) = {
        let store = SqliteStore::open(&path).expect("open");
        let a = store.create_user(new_user("alice")).await.expect("user").id;
        let b = store.create_user(new_user("bob")).await.expect("user").id;
        let (chat, _) = store.open_private_chat(a, b, 1).await.expect("chat");
        store
            .append_message(text(chat.id, a, "c1", "before"))
            .await
            .expect("send");
        (a, chat.id)
    };
    let version: u32 = raw(&path)
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, migrations::latest_version());

    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        store.user(alice).await.expect("user").map(|u| u.username),
        Some("alice".to_string())
    );
    let out = store
        .append_message(text(chat, alice, "c2", "after"))
        .await
        .expect("send");
    assert_eq!(out.message.seq, 3, "seqs continue after a restart");
    let dup = store
        .append_message(text(chat, alice, "c1", "again"))
        .await
        .expect("send");
    assert!(dup.event.is_none(), "idempotency keys survive a restart");
    let carol = store.create_user(new_user("carol")).await.expect("user").id;
    assert!(carol > alice);

    let mut conn = raw(&path);
    migrations::migrate(&mut conn).expect("migrating an up-to-date database is a no-op");
    assert_eq!(
        migrations::current_version(&conn).expect("version"),
        migrations::latest_version()
    );
}

#[tokio::test]
async fn a_dropped_index_is_reported_and_created_again() {
    let (_dir, path) = temp_db();
    drop(SqliteStore::open(&path).expect("open"));
    raw(&path)
        .execute_batch("DROP INDEX audit_by_action; DROP INDEX notifications_unread;")
        .expect("drop");
    // Opening creates what is missing.
    let store = SqliteStore::open(&path).expect("reopen");
    assert!(
        store
            .schema_status()
            .await
            .expect("status")
            .indexes_missing
            .is_empty()
    );
    drop(store);

    raw(&path)
        .execute_batch("DROP INDEX blocks_by_target;")
        .expect("drop");
    let conn = raw(&path);
    let status = schema::read_status(&conn).expect("status");
    assert_eq!(status.indexes_missing, ["blocks_by_target"]);
    assert_eq!(status.version, migrations::latest_version());
    let ensured = schema::ensure(&conn).expect("ensure");
    assert_eq!(ensured.indexes_created, ["blocks_by_target"]);
    assert!(ensured.indexes_missing.is_empty());
    assert_eq!(
        schema::ensure(&conn).expect("again").indexes_created,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn an_old_database_is_migrated_by_the_admin_call_and_reports_it() {
    let (_dir, path) = temp_db();
    {
        let mut conn = raw(&path);
        let tx = conn.transaction().expect("tx");
        for (index, (_, sql)) in migrations::MIGRATIONS.iter().enumerate().take(6) {
            tx.execute_batch(sql).expect("old schema");
            let version = u32::try_from(index + 1).expect("small");
            tx.pragma_update(None, "user_version", version)
                .expect("version");
        }
        tx.commit().expect("commit");
    }
    let conn = raw(&path);
    let before = schema::read_status(&conn).expect("status");
    assert_eq!(before.version, 6);
    let status = schema::migrate(&conn).expect("migrate");
    assert_eq!(
        (status.version_before, status.version),
        (6, migrations::latest_version())
    );
    assert_eq!(
        status.applied,
        [
            "7: outbox",
            "8: access rules",
            "9: email verification and password reset",
            "10: key rings",
            "11: dead sessions",
            "12: membership versions"
        ]
    );
    assert!(status.indexes_missing.is_empty());
    assert!(schema::migrate(&conn).expect("again").applied.is_empty());
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let (_dir, path) = temp_db();
    drop(SqliteStore::open(&path).expect("open"));
    let newer = migrations::latest_version() + 1;
    raw(&path)
        .pragma_update(None, "user_version", newer)
        .expect("bump version");
    match SqliteStore::open(&path) {
        Err(OpenError::Store(StoreError::Internal(msg))) => {
            assert!(msg.contains("newer"), "{msg}");
            assert!(msg.contains(&newer.to_string()), "{msg}");
        }
        Err(other) => panic!("expected a schema error, got {other}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

/// Holds the writer in a first command until ten more are queued, so those ten form one batch,
/// and checks that a failing command rolls back alone while the others commit, and that nothing
/// of the batch is visible to other connections before it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_isolates_failures_and_commits_once() {
    let (_dir, path) = temp_db();
    let conn = raw(&path);
    conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER PRIMARY KEY);")
        .expect("schema");
    let writer = Arc::new(Writer::spawn(conn, 256, 1024).expect("writer"));

    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let first = {
        let writer = Arc::clone(&writer);
        tokio::spawn(async move {
            writer
                .write(move |c| {
                    let _ = started_tx.send(());
                    release_rx
                        .recv()
                        .map_err(|_| StoreError::Internal("test released nothing".into()))?;
                    c.execute("INSERT INTO t (x) VALUES (0)", [])?;
                    Ok(())
                })
                .await
        })
    };
    started.await.expect("first command runs");
    let mut queued = Vec::new();
    for x in 1..=10i64 {
        let writer = Arc::clone(&writer);
        let path = path.clone();
        queued.push(tokio::spawn(async move {
            writer
                .write(move |c| {
                    c.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
                    if x == 5 {
                        // Fails after writing: its own insert must be rolled back. It collides
                        // with the first batch's row, whatever order the queued commands run in.
                        c.execute("INSERT INTO t (x) VALUES (0)", [])?;
                    }
                    // What another connection sees while this batch is open.
                    let outside: i64 =
                        raw(&path).query_row("SELECT count(*) FROM t", [], |row| row.get(0))?;
                    Ok(outside)
                })
                .await
        }));
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        while writer.queued() < 10 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("ten commands queue up");
    release.send(()).expect("release the first command");
    first.await.expect("task").expect("first write");

    for (i, task) in queued.into_iter().enumerate() {
        match (i + 1, task.await.expect("task")) {
            (5, Err(StoreError::Conflict(_))) => {}
            (5, other) => panic!("command 5 should fail with a conflict, got {other:?}"),
            (_, Ok(outside)) => assert_eq!(
                outside, 1,
                "only the first batch is visible while the second is open"
            ),
            (n, Err(e)) => panic!("command {n} failed: {e}"),
        }
    }
    let rows: Vec<i64> = {
        let c = raw(&path);
        let mut stmt = c.prepare("SELECT x FROM t ORDER BY x").expect("prepare");
        stmt.query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(rows, vec![0, 1, 2, 3, 4, 6, 7, 8, 9, 10]);
}

#[tokio::test]
async fn a_panicking_command_fails_alone() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).expect("open");
    let result: StoreResult<()> = store
        .write(|c| {
            c.execute(
                "INSERT INTO users (username, email, password_hash, status, role, created_at_ms) \
                 VALUES ('ghost', '', '', 1, 1, 1)",
                [],
            )?;
            panic!("boom")
        })
        .await;
    assert!(matches!(result, Err(StoreError::Internal(_))));
    assert_eq!(
        store.user_by_username("ghost").await.expect("read"),
        None,
        "the panicking command's writes are rolled back"
    );
    let user = store
        .create_user(new_user("after"))
        .await
        .expect("writer still works");
    assert_eq!(user.username, "after");
}

#[tokio::test]
async fn fts_index_stays_consistent_and_forgets_purged_text() {
    let PrivateChat {
        dir: _dir,
        path,
        store,
        a,
        b,
        chat,
    } = private_chat().await;
    let m = store
        .append_message(text(chat, a, "m1", "Crème brûlée secret"))
        .await
        .expect("send")
        .message;
    store
        .append_message(text(chat, b, "m2", "keep me"))
        .await
        .expect("send");
    let found = store
        .search(SearchQuery {
            viewer: b,
            text: "creme brulee".into(),
            chats: vec![(chat, u64::MAX)],
            before: None,
            limit: 10,
            senders_blocked: Vec::new(),
        })
        .await
        .expect("search");
    assert_eq!(found.len(), 1, "diacritics are ignored");
    store
        .edit_message(chat, m.seq, Actor::unjudged(a), "edited secret", 2)
        .await
        .expect("edit");
    store
        .delete_message(chat, m.seq, Actor::unjudged(a), 3)
        .await
        .expect("delete");

    let c = raw(&path);
    c.execute_batch("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
        .expect("fts index matches the messages table");
    for term in ["secret", "creme", "edited"] {
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?1",
                [term],
                |row| row.get(0),
            )
            .expect("match");
        assert_eq!(n, 0, "{term} still indexed");
    }
    let kept: i64 = c
        .query_row(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'keep'",
            [],
            |row| row.get(0),
        )
        .expect("match");
    assert_eq!(kept, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_beyond_the_pool_size_wait_for_a_connection() {
    let (_dir, path) = temp_db();
    let store = Arc::new(
        SqliteStore::open_with(
            &path,
            SqliteOptions {
                read_connections: 2,
                ..Default::default()
            },
        )
        .expect("open"),
    );
    let id = store
        .create_user(new_user("reader"))
        .await
        .expect("user")
        .id;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.user(id).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.expect("task").expect("read").is_some());
    }
    store.ping().await.expect("ping");
    assert_eq!(store.backend(), "sqlite");
}

/// The chat heads of a user in thousands of chats are far past what a point read may run on a
/// worker (`readers::INLINE_BUDGET_OPS`): the interrupted inline attempt is dropped and the pool
/// answers with every head, and the store's cached statements serve the next small read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_state_of_a_user_in_thousands_of_chats_is_complete() {
    const CHATS: usize = 3_000;
    let (_dir, path) = temp_db();
    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    let me = store.create_user(new_user("me")).await.expect("me").id;
    // Concurrent writes: group commit takes them in a few transactions.
    let peers = futures_util::future::try_join_all((0..CHATS).map(|i| {
        let store = Arc::clone(&store);
        async move { store.create_user(new_user(&format!("p{i}"))).await }
    }))
    .await
    .expect("peers");
    let mut chats = futures_util::future::try_join_all(peers.iter().map(|peer| {
        let store = Arc::clone(&store);
        let peer = peer.id;
        async move {
            store
                .open_private_chat(me, peer, 1)
                .await
                .map(|(chat, _)| chat.id)
        }
    }))
    .await
    .expect("chats");
    chats.sort_unstable();

    let (heads, unread) = store.sync_state(me, &[]).await.expect("sync state");
    let got: Vec<u64> = heads.iter().map(|h| h.chat_id).collect();
    assert_eq!(got, chats);
    assert!(heads.iter().all(|h| h.member));
    assert_eq!(unread, 0);
    assert_eq!(
        heads,
        store.heads(me, &[]).await.expect("heads from the pool")
    );
    // A small read right after, on the connections the interrupted read used.
    let peer = peers[0].id;
    assert_eq!(store.sync_state(peer, &[]).await.expect("small").0.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_one_snapshot_taken_while_the_writer_goes_on() {
    let PrivateChat {
        dir,
        store,
        a,
        b,
        chat,
        ..
    } = private_chat().await;
    let store = Arc::new(store);
    for i in 0..50 {
        store
            .append_message(text(chat, a, &format!("before-{i}"), "before"))
            .await
            .expect("send");
    }
    // Writes go on during the copy; none waits for it to end.
    let writing = tokio::spawn({
        let store = Arc::clone(&store);
        async move {
            for i in 0..200 {
                store
                    .append_message(text(chat, b, &format!("during-{i}"), "during"))
                    .await
                    .expect("send during the backup");
            }
        }
    });
    let copy = dir.path().join("copy.db");
    store.backup(&copy).await.expect("backup");
    writing.await.expect("writer");

    // The copy is a database of its own, consistent: its seqs have no gap, and it holds at
    // least what was committed before the backup began.
    let check = raw(&copy);
    let integrity: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity");
    assert_eq!(integrity, "ok");
    let (count, max): (i64, i64) = check
        .query_row(
            "SELECT COUNT(*), MAX(seq) FROM messages WHERE chat_id = ?1",
            [i64::try_from(chat).expect("id")],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count");
    assert!(count >= 50, "{count} messages");
    // seq 1 is the chat's creation event; messages follow without a gap.
    assert_eq!(max, count + 1, "a gap: {count} messages up to seq {max}");
    drop(check);
    let reopened = SqliteStore::open(&copy).expect("the copy opens as a store");
    assert!(reopened.user(a).await.expect("read").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rekey_while_reads_and_writes_run_loses_nothing_and_only_the_new_key_opens() {
    use super::cipher::{DatabaseKey, KeyError};
    let (_dir, path) = temp_db();
    let (old, new) = (
        DatabaseKey::from_bytes([1; 32]),
        DatabaseKey::from_bytes([2; 32]),
    );
    let open = |key: &DatabaseKey| {
        SqliteStore::open_with(
            &path,
            SqliteOptions {
                key: Some(key.clone()),
                ..SqliteOptions::default()
            },
        )
    };
    let store = Arc::new(open(&old).expect("open"));
    let mut tasks = Vec::new();
    for i in 0..64 {
        let task_store = store.clone();
        tasks.push(tokio::spawn(async move {
            let user = task_store
                .create_user(new_user(&format!("u{i}")))
                .await
                .expect("write");
            task_store
                .user(user.id)
                .await
                .expect("read")
                .expect("found")
                .id
        }));
        if i == 20 {
            assert!(store.rekey(new.clone()).await.expect("rekey"));
        }
    }
    for task in tasks {
        task.await.expect("task");
    }
    assert!(
        !store.rekey(new.clone()).await.expect("same key"),
        "nothing to do"
    );
    drop(store);
    assert!(matches!(
        open(&old),
        Err(OpenError::Key(KeyError::Wrong(_)))
    ));
    let reopened = open(&new).expect("the new key opens it");
    for i in 0..64 {
        let found = reopened
            .user_by_username(&format!("u{i}"))
            .await
            .expect("read");
        assert!(found.is_some(), "u{i} was written");
    }
    let plain = SqliteStore::open(temp_db().1).expect("plain");
    assert!(
        plain.rekey(new).await.is_err(),
        "a plain database is refused"
    );
}

/// A rekey that waits for a backup's copy (minutes for a large database) does not stop the
/// reads meanwhile: it waits before it holds the read permits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rekey_waiting_for_a_backup_lets_reads_run() {
    use super::cipher::DatabaseKey;
    let (_dir, path) = temp_db();
    let (old, new) = (
        DatabaseKey::from_bytes([1; 32]),
        DatabaseKey::from_bytes([2; 32]),
    );
    let options = SqliteOptions {
        key: Some(old),
        ..SqliteOptions::default()
    };
    let store = Arc::new(SqliteStore::open_with(&path, options).expect("open"));
    let user = store.create_user(new_user("reader")).await.expect("user");
    // What a backup holds for its whole copy.
    let copying = store.key_in_use.lock().await;
    let rekeying = tokio::spawn({
        let store = store.clone();
        async move { store.rekey(new).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!rekeying.is_finished(), "the rekey waits for the copy");
    for _ in 0..20 {
        let read = tokio::time::timeout(Duration::from_secs(5), store.user(user.id)).await;
        assert!(
            matches!(read, Ok(Ok(Some(_)))),
            "a read waited behind the rekey"
        );
        let by_name =
            tokio::time::timeout(Duration::from_secs(5), store.user_by_username("reader")).await;
        assert!(
            matches!(by_name, Ok(Ok(Some(_)))),
            "a pooled read waited behind the rekey"
        );
    }
    drop(copying);
    assert!(rekeying.await.expect("task").expect("rekey"));
}

#[tokio::test]
async fn after_a_rekey_the_checkpointer_copies_the_log_under_the_new_key() {
    use super::cipher::{DatabaseKey, KeyError};
    let (_dir, path) = temp_db();
    let (old, new) = (
        DatabaseKey::from_bytes([1; 32]),
        DatabaseKey::from_bytes([2; 32]),
    );
    let options = |key: &DatabaseKey| SqliteOptions {
        key: Some(key.clone()),
        read_connections: 1,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&path, options(&old)).expect("open");
    store
        .write(|c| Ok(c.execute_batch("CREATE TABLE scratch (x BLOB)")?))
        .await
        .expect("create");
    assert!(store.rekey(new.clone()).await.expect("rekey"));
    // Past the soft limit: about two pages of log per commit.
    for _ in 0..700 {
        store
            .write(|c| Ok(c.execute("INSERT INTO scratch VALUES (zeroblob(3000))", [])?))
            .await
            .expect("insert");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.checkpointer.rounds() == 0 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(store);
    // The database file without its log: what the checkpoints wrote into it.
    for suffix in ["-wal", "-shm"] {
        let mut log = path.clone().into_os_string();
        log.push(suffix);
        let _ = std::fs::remove_file(log);
    }
    assert!(matches!(
        SqliteStore::open_with(&path, options(&old)),
        Err(OpenError::Key(KeyError::Wrong(_)))
    ));
    let reopened = SqliteStore::open_with(&path, options(&new)).expect("the new key opens it");
    let (integrity, rows): (String, i64) = reopened
        .read(|c| {
            let integrity = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            let rows = c.query_row("SELECT count(*) FROM scratch", [], |r| r.get(0))?;
            Ok((integrity, rows))
        })
        .await
        .expect("read");
    assert_eq!(integrity, "ok");
    assert!(rows >= 300, "{rows} rows were checkpointed");
}

/// How often `sql` was compiled again over runs with two different bindings of `?1`, on `c`.
fn recompiles_on_rebinding(c: &Connection, sql: &str, values: [u64; 2]) -> StoreResult<i32> {
    let mut compiled = 0;
    for value in values {
        let mut stmt = c.prepare_cached(sql)?;
        stmt.query_map([super::convert::sql_u64(value)], |_| Ok(()))?
            .collect::<rusqlite::Result<Vec<()>>>()?;
        compiled = stmt.get_status(rusqlite::StatementStatus::RePrepare);
    }
    Ok(compiled)
}

// SQLite recompiles a statement whose plan looked at a bound value when that binding changes,
// and rusqlite clears the bindings of every statement it caches: without the planner stability
// guarantee, every join with a parameter was compiled anew on each use.
#[tokio::test]
async fn cached_statements_are_not_recompiled_for_new_bindings() {
    let PrivateChat {
        dir: _dir,
        store,
        a,
        b,
        ..
    } = private_chat().await;
    const JOIN: &str = "SELECT c.id FROM members m JOIN chats c ON c.id = m.chat_id \
                        WHERE m.user_id = ?1 LIMIT 10";
    let read = store
        .read(move |c| recompiles_on_rebinding(c, JOIN, [a, b]))
        .await
        .expect("read");
    let written = store
        .write(move |c| recompiles_on_rebinding(c, JOIN, [a, b]))
        .await
        .expect("write");
    assert_eq!(
        (read, written),
        (0, 0),
        "recompiled on the reader, the writer"
    );
}
