//! User content sealed before it reaches MongoDB: a dump of the collections holds none of it,
//! every read opens it, content stored before sealing was turned on still reads, and the field
//! key needs its master key (refused without it) and follows a rotation.

use std::sync::Arc;

use chatproto::pb;
use chatproto::pb::chat_event::Body;

use super::{group, text, users};
use crate::atrest::{AtRestError, MasterKeys};
use crate::store::mongo::testserver::{another_instance, store};
use crate::store::mongo::{FieldKeyError, MongoStore};
use crate::store::{
    Actor, FileRecord, FileStore, HistoryQuery, MessageStore, UploadRecord, UploadState,
};

const SECRET: &str = "plans for the surprise party";
const EDITED: &str = "the party moved to saturday";
const FILE_NAME: &str = "guest-list-confidential.pdf";
const SHA: [u8; 32] = [0xab; 32];

fn keys(current: u8, previous: &[u8]) -> Option<Arc<MasterKeys>> {
    let previous: Vec<[u8; 32]> = previous.iter().map(|b| [*b; 32]).collect();
    Some(Arc::new(MasterKeys::new(&[current; 32], &previous)))
}

async fn sealed(store: &MongoStore, keys: Option<Arc<MasterKeys>>) -> MongoStore {
    let mut other = another_instance(store).await;
    other.seal_fields(keys).await.expect("seal fields");
    other
}

fn file() -> FileRecord {
    FileRecord {
        info: pb::FileInfo {
            id: "f1".into(),
            name: FILE_NAME.into(),
            mime: "application/pdf".into(),
            size: 10,
            sha256: SHA.to_vec(),
            kind: pb::MessageKind::File as i32,
            created_at_ms: 5_000,
            ..Default::default()
        },
        owner_id: 0,
        parent_id: None,
        public: false,
    }
}

/// Every document of the collections that hold user content, as a dump has them.
async fn dump(store: &MongoStore) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for collection in ["messages", "events", "files", "uploads", "upload_keys"] {
        all.extend(
            crate::testing::raw_documents(store, collection)
                .await
                .expect("dump"),
        );
    }
    all
}

fn holds(docs: &[Vec<u8>], needle: &[u8]) -> bool {
    docs.iter()
        .any(|d| d.windows(needle.len()).any(|w| w == needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_holds_no_message_text_or_file_metadata_and_every_read_opens_them() {
    let plain = store().await;
    let store = sealed(&plain, keys(1, &[])).await;
    let ids = users(&store, &["ann", "bob"]).await;
    let chat = group(&store, ids[0], &[ids[1]]).await;

    // An upload declared and finished, its file attached to a message that is then edited.
    let upload = UploadRecord {
        id: "up1".into(),
        user_id: ids[0],
        size: 10,
        sha256: SHA.to_vec(),
        name: FILE_NAME.into(),
        kind: pb::MessageKind::File,
        created_at_ms: 4_000,
        state: UploadState::Open,
    };
    store.open_upload(upload.clone()).await.expect("declare");
    let (again, new) = store.open_upload(upload).await.expect("declare again");
    assert!(!new, "the same content finds the open upload");
    assert_eq!(again.name, FILE_NAME);
    let file = FileRecord {
        owner_id: ids[0],
        ..file()
    };
    store
        .complete_upload("up1", file.clone(), Vec::new())
        .await
        .expect("complete");
    let mut message = text(chat, ids[0], "m1", SECRET, 6_000);
    message.kind = pb::MessageKind::File;
    message.file_id = "f1".into();
    message.attachment = Some(Box::new(file.info.clone()));
    let sent = store.append_message(message).await.expect("send").message;
    let (edited, event) = store
        .edit_message(chat, sent.seq, Actor::unjudged(ids[0]), EDITED, 7_000)
        .await
        .expect("edit");
    assert_eq!(edited.text, EDITED);
    assert!(matches!(event.body, Some(Body::MessageEdited(ref e)) if e.text == EDITED));

    let docs = dump(&store).await;
    for needle in [
        SECRET.as_bytes(),
        EDITED.as_bytes(),
        FILE_NAME.as_bytes(),
        &SHA[..],
    ] {
        assert!(
            !holds(&docs, needle),
            "{:?} in a dump",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(
        !holds(&docs, hex::encode(SHA).as_bytes()),
        "the content hash in a dump"
    );
    assert!(!holds(&docs, b"party"), "no search words are kept");

    // Every read opens them.
    let read = store
        .message(chat, sent.seq)
        .await
        .expect("read")
        .expect("message");
    assert_eq!(read.text, EDITED);
    assert_eq!(
        read.attachment.as_ref().map(|a| a.name.as_str()),
        Some(FILE_NAME)
    );
    let edits = store.edits(chat, sent.seq).await.expect("edits");
    assert_eq!(
        edits.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
        [SECRET]
    );
    let events = store.events(chat, 0, u64::MAX, 100).await.expect("events");
    let texts: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            Some(Body::MessageCreated(m)) => Some(m.text.clone()),
            Some(Body::MessageEdited(m)) => Some(m.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, [EDITED, EDITED]);
    let history = store
        .history(HistoryQuery {
            chat_id: chat,
            viewer: ids[1],
            before_seq: 0,
            after_seq: 0,
            up_to_seq: u64::MAX,
            limit: 10,
        })
        .await
        .expect("history");
    assert_eq!(history.last().map(|m| m.text.as_str()), Some(EDITED));
    let stored = store.file("f1").await.expect("file").expect("the file");
    assert_eq!(
        (stored.info.name.as_str(), stored.info.sha256.as_slice()),
        (FILE_NAME, &SHA[..])
    );
    let up = store
        .upload("up1")
        .await
        .expect("upload")
        .expect("the upload");
    assert_eq!(
        (up.name.as_str(), up.sha256.as_slice()),
        (FILE_NAME, &SHA[..])
    );
    // Deleting the file names its content key, for the blob store.
    store
        .delete_message(chat, sent.seq, Actor::unjudged(ids[0]), 8_000)
        .await
        .expect("delete");
    assert_eq!(
        store.delete_file("f1").await.expect("delete file"),
        [hex::encode(SHA)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_content_still_reads_and_the_field_key_needs_its_master_key() {
    let plain = store().await;
    let ids = users(&plain, &["ann", "bob"]).await;
    let chat = group(&plain, ids[0], &[ids[1]]).await;
    let old = plain
        .append_message(text(chat, ids[0], "m0", "stored before sealing", 5_000))
        .await
        .expect("send")
        .message;

    let first = sealed(&plain, keys(1, &[])).await;
    let new = first
        .append_message(text(chat, ids[0], "m1", SECRET, 6_000))
        .await
        .expect("send")
        .message;
    let read = |store: MongoStore| async move {
        let a = store
            .message(chat, old.seq)
            .await
            .expect("old")
            .expect("old");
        let b = store
            .message(chat, new.seq)
            .await
            .expect("new")
            .expect("new");
        (a.text, b.text)
    };
    let expected = ("stored before sealing".to_string(), SECRET.to_string());
    assert_eq!(read(first.clone()).await, expected);

    // Without a key, or with another one only: refused, saying which key is missing.
    let mut without = another_instance(&plain).await;
    assert!(matches!(
        without.seal_fields(None).await,
        Err(FieldKeyError::Key(AtRestError::Missing(_)))
    ));
    let mut other = another_instance(&plain).await;
    assert!(matches!(
        other.seal_fields(keys(2, &[])).await,
        Err(FieldKeyError::Key(AtRestError::UnknownKey { .. }))
    ));
    // A rotation re-wraps the field key at start; then the new key alone opens everything.
    let rotating = sealed(&plain, keys(2, &[1])).await;
    assert_eq!(read(rotating).await, expected);
    let after = sealed(&plain, keys(2, &[])).await;
    assert_eq!(read(after).await, expected);
}
