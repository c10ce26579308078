//! Uploads and files: resuming an upload by its content, finishing and failing once, who a file
//! is shared with, what references it, and deleting it with its thumbnails.

use super::*;

fn declared(id: &str, user_id: u64, content: &[u8], now_ms: i64) -> UploadRecord {
    UploadRecord {
        id: id.into(),
        user_id,
        size: content.len() as u64,
        sha256: content
            .iter()
            .map(|b| b ^ 0x5a)
            .chain(std::iter::repeat_n(7, 32))
            .take(32)
            .collect(),
        name: "report.pdf".into(),
        kind: pb::MessageKind::File,
        created_at_ms: now_ms,
        state: UploadState::Open,
    }
}

fn file_record(
    id: &str,
    owner_id: u64,
    key_byte: u8,
    size: u64,
    parent: Option<&str>,
) -> FileRecord {
    FileRecord {
        info: pb::FileInfo {
            id: id.into(),
            name: format!("{id}.bin"),
            mime: "application/octet-stream".into(),
            size,
            sha256: vec![key_byte; 32],
            kind: pb::MessageKind::File as i32,
            created_at_ms: T0,
            ..Default::default()
        },
        owner_id,
        parent_id: parent.map(str::to_owned),
        public: false,
    }
}

fn media_message(chat_id: u64, sender_id: u64, file: &FileRecord, now_ms: i64) -> NewMessage {
    NewMessage {
        kind: pb::MessageKind::File,
        file_id: file.id().to_owned(),
        attachment: Some(Box::new(file.info.clone())),
        text: String::new(),
        ..text_message(chat_id, sender_id, "", now_ms)
    }
}

/// Declaring the same content again finds the open upload; finishing it inserts the file and
/// its thumbnails once, and is answered the same file when repeated.
pub async fn files_upload_resume_and_complete<S: Store + 'static>(s: S) {
    let alice = user(&s, "alice").await;
    let first = declared("u1", alice, b"abc", T0);
    let (opened, created) = s.open_upload(first.clone()).await.expect("open");
    assert!(created);
    assert_eq!(opened, first);
    let again = UploadRecord {
        id: "u2".into(),
        name: "renamed.pdf".into(),
        kind: pb::MessageKind::Image,
        ..first.clone()
    };
    let (found, created) = s.open_upload(again).await.expect("open again");
    assert!(!created, "the same content resumes the open upload");
    assert_eq!(
        (found.id.as_str(), found.name.as_str(), found.kind),
        ("u1", "renamed.pdf", pb::MessageKind::Image)
    );
    let other = declared("u3", alice, b"abcd", T0);
    assert!(s.open_upload(other).await.expect("other content").1);
    assert_eq!(s.user_file_bytes(alice).await.expect("bytes"), 3 + 4);

    let file = file_record("f1", alice, 1, 3, None);
    let thumb = file_record("t1", alice, 2, 100, Some("f1"));
    let done = s
        .complete_upload("u1", file.clone(), vec![thumb.clone()])
        .await
        .expect("complete");
    assert_eq!(done, file);
    assert_eq!(
        s.upload("u1").await.expect("upload").map(|u| u.state),
        Some(UploadState::Done {
            file_id: "f1".into()
        })
    );
    let other_file = file_record("f_other", alice, 3, 3, None);
    assert_eq!(
        s.complete_upload("u1", other_file, vec![])
            .await
            .expect("again"),
        file,
        "a finished upload answers its file and inserts nothing"
    );
    assert!(s.file("f_other").await.expect("file").is_none());
    assert_eq!(s.file("t1").await.expect("thumb"), Some(thumb));
    // Thumbnails do not count; the finished upload no longer does either.
    assert_eq!(s.user_file_bytes(alice).await.expect("bytes"), 3 + 4);
    // A finished upload is no longer the open one of its content.
    assert!(
        s.open_upload(declared("u4", alice, b"abc", T0))
            .await
            .expect("new")
            .1
    );
    assert_not_found(s.complete_upload("nope", file, vec![]).await, "upload");
    assert_not_found(s.set_file_public("nope").await, "file");
    assert!(s.upload("nope").await.expect("unknown").is_none());
}

/// A failed upload stays failed; its content can be declared anew.
pub async fn files_upload_fail_once<S: Store + 'static>(s: S) {
    let alice = user(&s, "alice").await;
    s.open_upload(declared("u1", alice, b"xyz", T0))
        .await
        .expect("open");
    s.fail_upload("u1", "bad hash").await.expect("fail");
    assert_eq!(
        s.upload("u1").await.expect("upload").map(|u| u.state),
        Some(UploadState::Failed {
            reason: "bad hash".into()
        })
    );
    assert_conflict(
        s.fail_upload("u1", "bad hash").await,
        ConflictKind::UploadNotOpen,
    );
    assert_conflict(
        s.complete_upload("u1", file_record("f1", alice, 1, 3, None), vec![])
            .await,
        ConflictKind::UploadNotOpen,
    );
    assert!(s.file("f1").await.expect("file").is_none());
    assert_not_found(s.fail_upload("nope", "x").await, "upload");
    let (fresh, created) = s
        .open_upload(declared("u2", alice, b"xyz", T0))
        .await
        .expect("anew");
    assert!(created);
    assert_eq!(fresh.id, "u2");
    assert_eq!(s.user_file_bytes(alice).await.expect("bytes"), 3);
    assert_not_found(
        s.open_upload(declared("u3", 999_999, b"q", T0)).await,
        "user",
    );
}

/// Uploads older than a cutoff, oldest first; deleting them is idempotent.
pub async fn files_stale_uploads<S: Store + 'static>(s: S) {
    let alice = user(&s, "alice").await;
    for (id, content, at) in [
        ("old", b"1".as_slice(), T0),
        ("mid", b"22", T0 + 10),
        ("new", b"333", T0 + 20),
    ] {
        s.open_upload(declared(id, alice, content, at))
            .await
            .expect("open");
    }
    let stale = s.stale_uploads(T0 + 20, 10).await.expect("stale");
    let ids: Vec<&str> = stale.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, vec!["old", "mid"]);
    assert_eq!(s.stale_uploads(T0 + 20, 1).await.expect("limit").len(), 1);
    s.delete_upload("old").await.expect("delete");
    s.delete_upload("old").await.expect("delete again");
    assert!(s.upload("old").await.expect("gone").is_none());
    // Its content may be declared again at once.
    assert!(
        s.open_upload(declared("old2", alice, b"1", T0))
            .await
            .expect("anew")
            .1
    );
}

/// Who a file is shared with, and what keeps it referenced.
pub async fn files_shares_and_references<S: Store + 'static>(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let carol = user(&s, "carol").await;
    let g = group(&s, alice, &[bob]).await;
    for (upload, file) in [("u1", "f1"), ("u2", "f2"), ("u3", "f3")] {
        s.open_upload(declared(upload, alice, upload.as_bytes(), T0))
            .await
            .expect("open");
        let record = file_record(file, alice, file.as_bytes()[1], 10, None);
        s.complete_upload(upload, record, vec![])
            .await
            .expect("complete");
    }
    let f1 = s.file("f1").await.expect("f1").expect("f1");
    assert!(s.file_shares("f1", bob).await.expect("none yet").is_empty());
    let sent = s
        .append_message(media_message(g, alice, &f1, T0 + 1))
        .await
        .expect("send")
        .message;
    assert_eq!(sent.attachment.as_ref().map(|a| a.id.as_str()), Some("f1"));
    s.append_message(media_message(g, bob, &f1, T0 + 2))
        .await
        .expect("send again");
    assert_eq!(
        s.file_shares("f1", bob).await.expect("bob"),
        vec![(g, sent.seq)]
    );
    assert!(s.file_shares("f1", carol).await.expect("carol").is_empty());
    // A former member keeps the row (the server checks the seq against the removal).
    s.remove_member(g, Actor::unjudged(alice), bob, false, T0 + 3)
        .await
        .expect("remove bob");
    assert_eq!(
        s.file_shares("f1", bob).await.expect("former"),
        vec![(g, sent.seq)]
    );

    // References: f1 by messages, f2 by an avatar, f3 by nothing.
    let cutoff = T0 + 1_000_000;
    s.update_profile(
        alice,
        ProfilePatch {
            avatar_file_id: Some("f2".into()),
            ..Default::default()
        },
    )
    .await
    .expect("avatar");
    s.set_file_public("f2").await.expect("public");
    assert!(s.file("f2").await.expect("f2").expect("f2").public);
    let unreferenced = |files: Vec<FileRecord>| -> Vec<String> {
        files.iter().map(|f| f.id().to_owned()).collect()
    };
    assert_eq!(
        unreferenced(s.unreferenced_files(cutoff, 10).await.expect("gc")),
        vec!["f3"]
    );
    assert!(
        s.unreferenced_files(T0, 10)
            .await
            .expect("none older")
            .is_empty()
    );
    // Deleting every message that carries f1 for everyone leaves it unreferenced.
    for m in full_history(&s, g, alice)
        .await
        .iter()
        .filter(|m| m.file_id == "f1")
    {
        s.delete_message(g, m.seq, Actor::unjudged(alice), T0 + 4)
            .await
            .expect("delete");
    }
    let purged = full_history(&s, g, alice).await;
    assert!(
        purged
            .iter()
            .all(|m| m.file_id.is_empty() && m.attachment.is_none())
    );
    assert!(s.file_shares("f1", alice).await.expect("gone").is_empty());
    let mut ids = unreferenced(s.unreferenced_files(cutoff, 10).await.expect("gc"));
    ids.sort();
    assert_eq!(ids, vec!["f1", "f3"]);
}

/// Deleting a file takes its thumbnails; content keys are freed only when no file shares them.
pub async fn files_delete_with_thumbnails_and_shared_content<S: Store + 'static>(s: S) {
    let alice = user(&s, "alice").await;
    s.open_upload(declared("u1", alice, b"a", T0))
        .await
        .expect("open");
    s.open_upload(declared("u2", alice, b"b", T0))
        .await
        .expect("open");
    // Two files of the same content (key byte 9), the first with a thumbnail (key byte 8).
    s.complete_upload(
        "u1",
        file_record("f1", alice, 9, 1, None),
        vec![file_record("t1", alice, 8, 1, Some("f1"))],
    )
    .await
    .expect("f1");
    s.complete_upload("u2", file_record("f2", alice, 9, 1, None), vec![])
        .await
        .expect("f2");
    let key = |b: u8| hex::encode([b; 32]);
    assert_eq!(s.delete_file("f1").await.expect("delete f1"), vec![key(8)]);
    assert!(s.file("t1").await.expect("thumb").is_none());
    assert_eq!(s.delete_file("f2").await.expect("delete f2"), vec![key(9)]);
    assert!(s.delete_file("f2").await.expect("again").is_empty());
    assert_eq!(s.user_file_bytes(alice).await.expect("bytes"), 0);
}
