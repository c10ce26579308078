//! MongoDB with a master key (`--encryption-key-file` with `--mongo-uri`): file content in GridFS
//! and message texts, their edits and attachments sealed by chatd, so the database holds none of
//! their plaintext, while a file uploaded through one node downloads through another and
//! replies, forwards, edits, reactions, deletes, history and event paging work across nodes;
//! search is refused (FAILED_PRECONDITION); a node without the key, or with another one,
//! refuses to start (exit status 3); and a master-key rotation with
//! `--previous-encryption-key-file` re-wraps every key online, after which the old key can go
//! and every file and message still reads.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chatd::testing::{MongoOptions, MongoStore, raw_documents};
use chatproto::pb;
use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::client::config_for;
use tests::cluster::{ChatCluster, ClusterSpec, RedisKind};
use tests::files::{download, share, upload};
use tests::keys::key_file;
use tests::process::{poll_until, run_bounded};
use tests::tools::chatd_binary;
use tests::users::TestUser;

/// A text no stored byte may hold.
const MARKER: &[u8] = b"the merger closes on friday, tell nobody";
/// Message texts no stored byte may hold.
const SENT: &str = "acquisition target is acme widgets";
const EDITED: &str = "acquisition target changed to globex";
const REPLY: &str = "understood, keeping it quiet";

/// Every text of `chat`'s history as `user` pages through it two at a time.
async fn history_texts(user: &TestUser, chat: u64) -> Vec<String> {
    let history = user.history_in_pages(chat, 2).await.expect("history");
    history.into_iter().map(|m| m.text).collect()
}

/// Nothing of the message texts in the collections that hold messages and events.
async fn assert_no_message_plaintext(uri: &str) {
    let store = MongoStore::connect(uri, MongoOptions::default())
        .await
        .expect("connect");
    for collection in ["messages", "events"] {
        let docs = raw_documents(&store, collection).await.expect("dump");
        assert!(!docs.is_empty(), "{collection} is empty");
        for text in [SENT, EDITED, REPLY, "merger.txt"] {
            assert!(
                !docs
                    .iter()
                    .any(|d| d.windows(text.len()).any(|w| w == text.as_bytes())),
                "{text:?} in {collection}"
            );
        }
    }
}

fn known(len: usize) -> Vec<u8> {
    MARKER.iter().copied().cycle().take(len).collect()
}

fn key_arg(flag: &str, path: &Path) -> String {
    format!("--{flag}={}", path.display())
}

/// chatd on the cluster's database with `args`, which must refuse to start: its status and
/// error output.
fn refused(uri: &str, args: &[String]) -> (Option<i32>, String) {
    let data = tempfile::tempdir().expect("data dir");
    let mut cmd = Command::new(chatd_binary());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CHATD_")) {
        cmd.env_remove(key);
    }
    cmd.args(args)
        .arg(format!("--data-dir={}", data.path().display()))
        .args(["--listen=127.0.0.1:0", "--admin-listen=127.0.0.1:0"])
        .env("CHATD_MONGO_URI", uri);
    let out = run_bounded(&mut cmd, Duration::from_secs(60)).expect("chatd refuses");
    (out.status.code(), out.stderr)
}

/// A chatd of its own on the cluster's database (no Redis) with `args`.
fn node(uri: &str, args: &[String]) -> ChatdProcess {
    let mut all = vec!["--log=info,quinn=warn".to_string()];
    all.extend(args.iter().cloned());
    ChatdProcess::start(ChatdConfig::new().args(all).env("CHATD_MONGO_URI", uri))
}

/// Nothing of [`MARKER`] in GridFS's chunks (and there are chunks to look at).
async fn assert_no_plaintext_in_gridfs(uri: &str, at_least: usize) {
    let store = MongoStore::connect(uri, MongoOptions::default())
        .await
        .expect("connect");
    let chunks = raw_documents(&store, "blobs.chunks").await.expect("dump");
    let stored: usize = chunks.iter().map(Vec::len).sum();
    assert!(stored >= at_least, "{stored} bytes of chunks");
    for chunk in &chunks {
        assert!(
            !chunk.windows(MARKER.len()).any(|w| w == MARKER),
            "a GridFS chunk holds plaintext"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_messages_are_sealed_in_mongodb_and_a_rotation_keeps_them_readable() {
    let keys = tempfile::tempdir().expect("keys");
    let old = key_file(keys.path(), "old.key", false);
    let new = key_file(keys.path(), "new.key", false);
    let old_arg = key_arg("encryption-key-file", &old);
    let mut cluster = tokio::task::spawn_blocking({
        let old_arg = old_arg.clone();
        move || {
            ChatCluster::start_with(ClusterSpec {
                nodes: 2,
                redis: RedisKind::Standalone,
                args: vec![old_arg],
                ..ClusterSpec::default()
            })
        }
    })
    .await
    .expect("start cluster");
    let uri = cluster.database_uri();
    let alice = TestUser::register(cluster.client_config(0), "alice").await;
    let data = known(700_000);
    let file = upload(&alice.client, &data, "merger.txt", pb::MessageKind::File)
        .await
        .expect("upload through node0");
    let alice1 = TestUser::login(cluster.client_config(1), "alice").await;
    assert_eq!(alice1.node_id().as_deref(), Some("node1"));
    assert_eq!(
        download(&alice1.client, &file.id, 300_000)
            .await
            .expect("download through node1"),
        &data[300_000..]
    );
    assert_no_plaintext_in_gridfs(&uri, data.len()).await;

    // Messages across the two nodes: a file message, a text, a reply, a forward, an edit, a
    // reaction and a deletion, all sealed in the database and all read back as written.
    let bob = TestUser::register(cluster.client_config(1), "bob").await;
    let chat = alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("chat")
        .id;
    let other = bob
        .client
        .create_private_chat(alice.id)
        .await
        .expect("same chat")
        .id;
    assert_eq!(other, chat);
    share(&alice.client, chat, &file.id, pb::MessageKind::File)
        .await
        .expect("file message");
    let sent = alice.client.send_text(chat, SENT).await.expect("send");
    let gone = alice
        .client
        .send_text(chat, "delete me soon")
        .await
        .expect("send");
    let reply = bob
        .client
        .send_message(pb::SendMessage {
            chat_id: chat,
            client_msg_id: "reply-1".into(),
            kind: pb::MessageKind::Text as i32,
            text: REPLY.into(),
            reply_to_seq: sent.seq,
            ..Default::default()
        })
        .await
        .expect("reply");
    assert_eq!(reply.reply_to_seq, sent.seq);
    let forwarded = bob
        .client
        .send_message(pb::SendMessage {
            chat_id: chat,
            client_msg_id: "fwd-1".into(),
            forward: Some(pb::MessageRef {
                chat_id: chat,
                seq: sent.seq,
            }),
            ..Default::default()
        })
        .await
        .expect("forward");
    assert_eq!(forwarded.text, SENT);
    let edited = alice
        .client
        .edit_message(pb::EditMessage {
            chat_id: chat,
            seq: sent.seq,
            text: EDITED.into(),
        })
        .await
        .expect("edit");
    assert_eq!(edited.text, EDITED);
    let reacted = bob
        .client
        .react(pb::React {
            chat_id: chat,
            seq: sent.seq,
            emoji: "👍".into(),
            remove: false,
        })
        .await
        .expect("react");
    assert_eq!(
        (reacted.text.as_str(), reacted.reactions.len()),
        (EDITED, 1)
    );
    alice
        .client
        .delete_message(pb::DeleteMessage {
            chat_id: chat,
            seq: gone.seq,
            for_everyone: true,
        })
        .await
        .expect("delete");
    let expected = ["", EDITED, "", REPLY, SENT];
    assert_eq!(history_texts(&bob, chat).await, expected);
    let events = bob
        .client
        .get_chat_events(pb::GetChatEvents {
            chat_id: chat,
            after_seq: 0,
            limit: 100,
        })
        .await
        .expect("events");
    assert!(
        events.events.iter().any(|e| matches!(
            &e.body,
            Some(pb::chat_event::Body::MessageEdited(m)) if m.text == EDITED
        )),
        "{events:?}"
    );
    let edits = bob
        .client
        .get_message_edits(pb::GetMessageEdits {
            chat_id: chat,
            seq: sent.seq,
            cursor: String::new(),
        })
        .await
        .expect("edits");
    assert_eq!(
        edits
            .edits
            .iter()
            .map(|e| e.text.as_str())
            .collect::<Vec<_>>(),
        [SENT]
    );
    let with_file = bob
        .client
        .get_history(pb::GetHistory {
            chat_id: chat,
            before_seq: sent.seq,
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("history");
    assert_eq!(
        with_file.messages[0]
            .attachment
            .as_ref()
            .map(|a| a.name.as_str()),
        Some("merger.txt")
    );
    // Refused, never answered with nothing found: also for a user in no chat (spec 9).
    let loner = TestUser::register(cluster.client_config(1), "loner").await;
    for user in [&bob, &loner] {
        let search = user
            .client
            .search_messages(pb::SearchMessages {
                query: "acquisition".into(),
                ..Default::default()
            })
            .await
            .expect_err("search on sealed texts");
        match search {
            chatproto::client::ClientError::Remote(e) => {
                assert_eq!(e.code, pb::ErrorCode::FailedPrecondition, "{e:?}");
                assert!(e.message.contains("encrypted"), "{e:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    loner.client.close().await;
    assert_no_message_plaintext(&uri).await;
    bob.client.close().await;

    // Without the key, or with another one, a node refuses to start.
    let (status, err) = refused(&uri, &[]);
    assert_eq!(status, Some(3), "{err}");
    assert!(
        err.contains("is encrypted but no master key is configured"),
        "{err}"
    );
    let new_arg = key_arg("encryption-key-file", &new);
    let (status, err) = refused(&uri, std::slice::from_ref(&new_arg));
    assert_eq!(status, Some(3), "{err}");
    assert!(err.contains("which is not configured"), "{err}");
    alice.client.close().await;
    alice1.client.close().await;
    cluster.drain(0);
    cluster.drain(1);

    // The rotation by restart: the new key, the old one as the previous key. Files read at
    // once; the node records the rotation in the master key ring, re-wraps the file keys and
    // the field key in the background, and says when everything is under the new key.
    let previous_arg = key_arg("previous-encryption-key-file", &old);
    let mut rotating = node(&uri, &[new_arg.clone(), previous_arg]);
    let config = config_for(rotating.addr(), rotating.fingerprint());
    let during = TestUser::login(config, "alice").await;
    assert_eq!(
        download(&during.client, &file.id, 0).await.expect("during"),
        data
    );
    assert_eq!(history_texts(&during, chat).await, expected);
    let log = rotating.process().log_path().to_path_buf();
    poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("everything kept at rest is under the current master key"))
    })
    .unwrap_or_else(|| panic!("no re-wrap in the log:\n{}", rotating.process().log_tail()));
    during.client.close().await;
    drop(rotating);

    // The old key is gone: everything reads with the new one alone, and nothing is left to do.
    let out = run_bounded(
        Command::new(chatd_binary())
            .args(["files", "encrypt", &new_arg])
            .env("CHATD_MONGO_URI", &uri),
        Duration::from_secs(60),
    )
    .expect("chatd files encrypt");
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains(" 0 encrypted, 0 keys re-wrapped"),
        "{}",
        out.stdout
    );
    let after = node(&uri, &[new_arg]);
    let config = config_for(after.addr(), after.fingerprint());
    let later = TestUser::login(config, "alice").await;
    assert_eq!(
        download(&later.client, &file.id, 0).await.expect("after"),
        data
    );
    assert_eq!(history_texts(&later, chat).await, expected);
    assert_no_message_plaintext(&uri).await;
    assert_no_plaintext_in_gridfs(&uri, data.len()).await;
}
