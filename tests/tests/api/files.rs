//! Files end to end (capability `files`, protocol.md section 13): uploads and downloads over real
//! QUIC with resume, the checks of a finished upload (hash, type, names, image limits), limits
//! and quota, who may read a file, references from messages and avatars, signed HTTPS URLs and
//! the collector.

use std::time::{Duration, Instant};

use chatd::files::testdata::{png_bomb, png_image};
use chatproto::error::StreamCode;
use chatproto::pb;
use chatproto::pb::ErrorCode as E;
use tests::files::{UploadConn, content, download, https_get, sha256, upload};

use crate::support::*;

/// The access token of a user's current session.
fn token(user: &User) -> String {
    user.client.tokens().expect("tokens").access_token
}

async fn upload_conn(server: &tests::server::TestServer, user: &User) -> UploadConn {
    UploadConn::connect(server.addr(), &server.fingerprint(), &token(user)).await
}

fn begin(bytes: &[u8], name: &str, kind: pb::MessageKind) -> pb::BeginUpload {
    pb::BeginUpload {
        size: bytes.len() as u64,
        sha256: sha256(bytes),
        name: name.into(),
        kind: kind as i32,
    }
}

/// Polls `check` every 20 ms until it returns `Some`, failing after [`WAIT`].
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what} did not happen within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_image_round_trips_with_its_size_and_thumbnails() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let png = png_image(800, 600);
    let mut seen = Vec::new();
    let file = alice
        .client
        .upload_reader(
            std::io::Cursor::new(png.clone()),
            "holiday.png",
            pb::MessageKind::Image,
            |done, total| seen.push((done, total)),
        )
        .await
        .expect("upload");
    assert_eq!(
        (file.name.as_str(), file.mime.as_str(), file.size),
        ("holiday.png", "image/png", png.len() as u64)
    );
    assert_eq!((file.width, file.height), (800, 600));
    assert_eq!(file.sha256, sha256(&png));
    assert_eq!(seen.last(), Some(&(png.len() as u64, png.len() as u64)));
    let sizes: Vec<(u32, u32)> = file
        .thumbnails
        .iter()
        .map(|t| (t.width, t.height))
        .collect();
    assert_eq!(sizes, vec![(160, 120), (640, 480)]);

    assert_eq!(
        download(&alice.client, &file.id, 0)
            .await
            .expect("download"),
        png
    );
    let small = &file.thumbnails[0];
    let thumb = download(&alice.client, &small.file_id, 0)
        .await
        .expect("thumbnail");
    assert_eq!(thumb.len() as u64, small.size);
    let decoded = image::load_from_memory(&thumb).expect("the thumbnail is an image");
    assert_eq!((decoded.width(), decoded.height()), (160, 120));

    // Repeating finish_upload answers the same file; the same content uploaded again is a new
    // file (its own id) stored once.
    let again = upload(&alice.client, &png, "copy.png", pb::MessageKind::Image)
        .await
        .expect("second upload");
    assert_ne!(again.id, file.id);
    let blobs = walk_files(&server.data_dir().join("files/blobs"));
    let key = hex::encode(&file.sha256);
    assert_eq!(
        blobs.iter().filter(|p| p.ends_with(&key)).count(),
        1,
        "{blobs:?}"
    );
}

/// Every regular file under `dir`.
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk_files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_servers_offset() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(3 * 1024 * 1024 + 17, 1);
    let ticket = alice
        .client
        .begin_upload(begin(&data, "big.bin", pb::MessageKind::File))
        .await
        .expect("begin");
    assert_eq!(ticket.offset, 0);

    // The first MiB, then the stream ends early (as a dropped connection would end it).
    let raw = upload_conn(&server, &alice).await;
    let first = 1024 * 1024;
    raw.send(&ticket.upload_id, 0, &data[..first]).await;
    // A second stream from the wrong offset is refused.
    assert_eq!(
        raw.send_refused(&ticket.upload_id, 5, &data[5..10]).await,
        u64::from(StreamCode::UploadRejected.code())
    );
    // Finishing now says how far the server got.
    let incomplete = remote(
        alice
            .client
            .finish_upload(pb::FinishUpload {
                upload_id: ticket.upload_id.clone(),
            })
            .await,
    );
    assert_eq!(incomplete.code, E::FailedPrecondition);
    assert!(incomplete.message.contains("1048576"), "{incomplete:?}");

    // Another stream dies with its connection midway; what arrived stays.
    let dying = upload_conn(&server, &alice).await;
    let mut send = dying.raw.conn.open_uni().await.expect("stream");
    let header = pb::UploadStreamHeader {
        upload_id: ticket.upload_id.clone(),
        offset: first as u64,
    };
    send.write_all(&chatproto::io::encode_frames([&header], 1024).expect("header"))
        .await
        .expect("header");
    send.write_all(&data[first..first + 300_000])
        .await
        .expect("bytes");
    dying.raw.conn.close(0u32.into(), b"gone");
    let resumed_at = eventually("the server to settle the interrupted stream", || async {
        let t = alice
            .client
            .begin_upload(begin(&data, "big.bin", pb::MessageKind::File))
            .await
            .expect("begin again");
        assert_eq!(
            t.upload_id, ticket.upload_id,
            "the same content resumes the same upload"
        );
        // The server may still be writing what arrived; once its stream task ended, begin_upload
        // reports it. Either way the SDK continues from whatever offset it is told.
        (t.offset >= first as u64).then_some(t.offset)
    })
    .await;
    assert!(resumed_at <= (first + 300_000) as u64);

    // The SDK declares the same content, learns the offset and sends only the rest.
    let mut first_progress = None;
    let file = alice
        .client
        .upload_reader(
            std::io::Cursor::new(data.clone()),
            "big.bin",
            pb::MessageKind::File,
            |done, _| {
                first_progress.get_or_insert(done);
            },
        )
        .await
        .expect("resumed upload");
    assert!(first_progress.expect("progress") >= first as u64);
    assert_eq!(file.size, data.len() as u64);
    assert_eq!(
        download(&alice.client, &file.id, 0)
            .await
            .expect("download"),
        data
    );
}

#[tokio::test]
async fn downloads_start_anywhere_and_resume_into_a_path() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(2 * 1024 * 1024 + 3, 2);
    let file = upload(&alice.client, &data, "d.bin", pb::MessageKind::File)
        .await
        .expect("upload");
    for offset in [1u64, 262_144, 2 * 1024 * 1024, data.len() as u64] {
        let part = download(&alice.client, &file.id, offset)
            .await
            .expect("download");
        assert_eq!(part, &data[offset as usize..], "from {offset}");
    }
    let past = remote(download(&alice.client, &file.id, data.len() as u64 + 1).await);
    assert_eq!(
        (past.code, past.field.as_str()),
        (E::InvalidArgument, "download_file.offset")
    );

    // A download to a path that was interrupted earlier continues from its `.part`.
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join("d.bin");
    std::fs::write(dir.path().join("d.bin.part"), &data[..1_000_000]).expect("part");
    let mut first_progress = None;
    let info = alice
        .client
        .download_to_path(&file.id, &target, |done, _| {
            first_progress.get_or_insert(done);
        })
        .await
        .expect("resume into path");
    assert_eq!(info.id, file.id);
    assert!(first_progress.expect("progress") > 1_000_000);
    assert_eq!(std::fs::read(&target).expect("file"), data);
    assert!(!dir.path().join("d.bin.part").exists());

    // A stale part longer than the file (another file's) is started over.
    let other = dir.path().join("other.bin");
    std::fs::write(
        dir.path().join("other.bin.part"),
        content(3 * 1024 * 1024, 99),
    )
    .expect("part");
    alice
        .client
        .download_to_path(&file.id, &other, |_, _| {})
        .await
        .expect("start over");
    assert_eq!(std::fs::read(&other).expect("file"), data);
}

#[tokio::test]
async fn a_hash_mismatch_discards_the_upload() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(100_000, 3);
    let mut declared = begin(&data, "x.bin", pb::MessageKind::File);
    declared.sha256 = sha256(b"something else");
    let ticket = alice
        .client
        .begin_upload(declared.clone())
        .await
        .expect("begin");
    let raw = upload_conn(&server, &alice).await;
    raw.send(&ticket.upload_id, 0, &data).await;
    let finish = pb::FinishUpload {
        upload_id: ticket.upload_id.clone(),
    };
    for _ in 0..2 {
        let err = remote(alice.client.finish_upload(finish.clone()).await);
        assert_eq!(
            (err.code, err.field.as_str()),
            (E::InvalidArgument, "finish_upload.upload_id")
        );
        assert!(err.message.contains("sha-256"), "{err:?}");
    }
    // Its bytes are gone, and the same declaration starts a new upload from 0.
    assert!(walk_files(&server.data_dir().join("files/uploads")).is_empty());
    let again = alice
        .client
        .begin_upload(declared)
        .await
        .expect("begin again");
    assert_ne!(again.upload_id, ticket.upload_id);
    assert_eq!(again.offset, 0);
}

#[tokio::test]
async fn content_types_come_from_the_bytes_not_the_client() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let chat = alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("chat")
        .id;
    let pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n".to_vec();

    for kind in [
        pb::MessageKind::Image,
        pb::MessageKind::Video,
        pb::MessageKind::Voice,
    ] {
        let err = remote(upload(&alice.client, &pdf, "cat.jpg", kind).await);
        assert_eq!(err.code, E::InvalidArgument, "{kind:?}");
        assert!(err.message.contains("detected application/pdf"), "{err:?}");
    }
    // As a FILE it is fine, and its type is what the bytes say.
    let file = upload(&alice.client, &pdf, "cat.jpg", pb::MessageKind::File)
        .await
        .expect("pdf as a file");
    assert_eq!(file.mime, "application/pdf");
    // Sent as an image it is refused; as a file it goes, with its metadata.
    let as_image = pb::SendMessage {
        chat_id: chat,
        kind: pb::MessageKind::Image as i32,
        file_id: file.id.clone(),
        ..Default::default()
    };
    assert_field(
        alice.client.send_message(as_image.clone()).await,
        E::InvalidArgument,
        "send_message.kind",
    );
    let sent = alice
        .client
        .send_message(pb::SendMessage {
            kind: pb::MessageKind::File as i32,
            ..as_image
        })
        .await
        .expect("send the file");
    let attachment = sent.attachment.expect("attachment");
    assert_eq!(
        (
            attachment.id.as_str(),
            attachment.mime.as_str(),
            attachment.name.as_str()
        ),
        (file.id.as_str(), "application/pdf", "cat.jpg")
    );
    // Bob sees the same metadata on the message, live and in history.
    let live = bob.next_message(chat).await;
    assert_eq!(
        live.attachment.as_ref().map(|a| a.id.as_str()),
        Some(file.id.as_str())
    );
}

#[tokio::test]
async fn names_are_metadata_only_and_sanitized() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let data = content(1000, 4);
    let file = upload(
        &alice.client,
        &data,
        "../../etc/passwd",
        pb::MessageKind::File,
    )
    .await
    .expect("traversal name");
    assert_eq!(file.name, "passwd");
    let file = upload(
        &alice.client,
        &content(10, 5),
        "C:\\temp\\..\\x.txt",
        pb::MessageKind::File,
    )
    .await
    .expect("windows path");
    assert_eq!(file.name, "x.txt");
    for bad in [
        "a\u{0}b",
        "line\nbreak",
        "..",
        "dir/",
        "esc\u{1b}[31m",
        "x\u{202e}gpj.exe",
    ] {
        let err = remote(
            alice
                .client
                .begin_upload(begin(&data, bad, pb::MessageKind::File))
                .await,
        );
        assert_eq!(
            (err.code, err.field.as_str()),
            (E::InvalidArgument, "begin_upload.name"),
            "{bad:?}"
        );
    }
    let long = remote(
        alice
            .client
            .begin_upload(begin(&data, &"n".repeat(256), pb::MessageKind::File))
            .await,
    );
    assert_eq!(long.code, E::TooLarge);
    // Nothing in the data directory is named after a client's name.
    let names: Vec<String> = walk_files(&server.data_dir())
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert!(
        !names.iter().any(|n| n == "passwd" || n == "x.txt"),
        "{names:?}"
    );
}

#[tokio::test]
async fn only_readers_may_download_and_everyone_else_gets_not_found() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let png = png_image(700, 300);
    let file = upload(&alice.client, &png, "p.png", pb::MessageKind::Image)
        .await
        .expect("upload");
    let thumb = file.thumbnails[0].file_id.clone();

    // Before it is shared only alice reads it; the answer to others is the made-up id's.
    let made_up = remote(download(&bob.client, "f_does_not_exist", 0).await);
    for id in [&file.id, &thumb] {
        let err = remote(download(&bob.client, id, 0).await);
        assert_eq!(
            (err.code, err.message.as_str()),
            (E::NotFound, made_up.message.as_str())
        );
    }

    // Shared in a group: its members read it (and its thumbnails).
    let g = group(&alice, pb::ChatKind::Group, "g", &[&bob, &carol]).await;
    alice
        .client
        .send_message(pb::SendMessage {
            chat_id: g.id,
            kind: pb::MessageKind::Image as i32,
            file_id: file.id.clone(),
            ..Default::default()
        })
        .await
        .expect("send");
    assert_eq!(download(&bob.client, &file.id, 0).await.expect("bob"), png);
    assert!(download(&carol.client, &thumb, 0).await.is_ok());

    // Carol, removed from the group, keeps what was shared before her removal, not after.
    alice
        .client
        .remove_member(pb::RemoveMember {
            chat_id: g.id,
            user_id: carol.id,
        })
        .await
        .expect("remove carol");
    assert!(download(&carol.client, &file.id, 0).await.is_ok());
    let later = upload(
        &alice.client,
        &content(5000, 6),
        "later.bin",
        pb::MessageKind::File,
    )
    .await
    .expect("upload later");
    alice
        .client
        .send_message(pb::SendMessage {
            chat_id: g.id,
            kind: pb::MessageKind::File as i32,
            file_id: later.id.clone(),
            ..Default::default()
        })
        .await
        .expect("send later");
    assert!(download(&bob.client, &later.id, 0).await.is_ok());
    assert_code(download(&carol.client, &later.id, 0).await, E::NotFound);

    // Bob may forward what he can read; the forward carries the file and grants its chat.
    let dave = register(&server, "dave").await;
    let bd = bob
        .client
        .create_private_chat(dave.id)
        .await
        .expect("chat")
        .id;
    let original = bob.next_message(g.id).await;
    let forwarded = bob
        .client
        .send_message(pb::SendMessage {
            chat_id: bd,
            forward: Some(pb::MessageRef {
                chat_id: g.id,
                seq: original.seq,
            }),
            ..Default::default()
        })
        .await
        .expect("forward");
    assert_eq!(
        forwarded.attachment.as_ref().map(|a| a.id.as_str()),
        Some(file.id.as_str())
    );
    assert!(download(&dave.client, &file.id, 0).await.is_ok());
    // A user who cannot read a file cannot send it either.
    let err = remote(
        carol
            .client
            .send_message(pb::SendMessage {
                chat_id: carol
                    .client
                    .create_private_chat(dave.id)
                    .await
                    .expect("chat")
                    .id,
                kind: pb::MessageKind::File as i32,
                file_id: later.id.clone(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(err.code, E::NotFound);
}

#[tokio::test]
async fn made_up_file_ids_are_refused_in_messages_and_avatars() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let chat = alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("chat")
        .id;
    let made_up = pb::SendMessage {
        chat_id: chat,
        kind: pb::MessageKind::Image as i32,
        file_id: "f_0123-abc".into(),
        ..Default::default()
    };
    assert_code(alice.client.send_message(made_up).await, E::NotFound);
    assert_code(
        alice
            .client
            .update_profile(pb::UpdateProfile {
                avatar_file_id: Some("file_123".into()),
                ..Default::default()
            })
            .await,
        E::NotFound,
    );
    let g = group(&alice, pb::ChatKind::Group, "g", &[&bob]).await;
    assert_code(
        alice
            .client
            .update_chat(pb::UpdateChat {
                chat_id: g.id,
                avatar_file_id: Some("file_123".into()),
                ..Default::default()
            })
            .await,
        E::NotFound,
    );
    // Someone else's private upload is as unknown as a made-up id.
    let bobs = upload(
        &bob.client,
        &png_image(64, 64),
        "b.png",
        pb::MessageKind::Image,
    )
    .await
    .expect("bob's upload");
    assert_code(
        alice
            .client
            .update_profile(pb::UpdateProfile {
                avatar_file_id: Some(bobs.id.clone()),
                ..Default::default()
            })
            .await,
        E::NotFound,
    );
    // An avatar must be an image.
    let doc = upload(
        &alice.client,
        &content(100, 7),
        "doc.bin",
        pb::MessageKind::File,
    )
    .await
    .expect("doc");
    assert_field(
        alice
            .client
            .update_profile(pb::UpdateProfile {
                avatar_file_id: Some(doc.id),
                ..Default::default()
            })
            .await,
        E::InvalidArgument,
        "update_profile.avatar_file_id",
    );
    // A real avatar becomes readable by every signed-in user, also by strangers.
    let face = png_image(96, 96);
    let avatar = upload(&alice.client, &face, "me.png", pb::MessageKind::Image)
        .await
        .expect("avatar upload");
    let me = alice
        .client
        .update_profile(pb::UpdateProfile {
            avatar_file_id: Some(avatar.id.clone()),
            ..Default::default()
        })
        .await
        .expect("set avatar");
    assert_eq!(me.avatar_file_id, avatar.id);
    assert_eq!(
        download(&carol.client, &avatar.id, 0).await.expect("carol"),
        face
    );
    alice
        .client
        .update_chat(pb::UpdateChat {
            chat_id: g.id,
            avatar_file_id: Some(avatar.id.clone()),
            ..Default::default()
        })
        .await
        .expect("chat avatar");
}

#[tokio::test]
async fn size_limits_quota_and_overlong_streams() {
    let server = start_with(&["--max-file-size=512KiB", "--upload-quota=1MiB"]).await;
    let alice = register(&server, "alice").await;
    let limits = alice
        .client
        .welcome()
        .expect("welcome")
        .limits
        .expect("limits");
    assert_eq!(
        (
            limits.max_file_bytes,
            limits.upload_quota_bytes,
            limits.max_concurrent_uploads
        ),
        (512 * 1024, 1024 * 1024, 4)
    );

    // Over the size limit: refused from the declaration, before any byte.
    let big = content(512 * 1024 + 1, 8);
    let err = remote(
        alice
            .client
            .begin_upload(begin(&big, "big", pb::MessageKind::File))
            .await,
    );
    assert_eq!(
        (err.code, err.field.as_str()),
        (E::TooLarge, "begin_upload.size")
    );
    for (bad, field) in [
        (
            pb::BeginUpload {
                size: 0,
                ..begin(b"x", "x", pb::MessageKind::File)
            },
            "begin_upload.size",
        ),
        (
            pb::BeginUpload {
                sha256: vec![1; 31],
                ..begin(b"x", "x", pb::MessageKind::File)
            },
            "begin_upload.sha256",
        ),
        (begin(b"x", "x", pb::MessageKind::Text), "begin_upload.kind"),
    ] {
        let err = remote(alice.client.begin_upload(bad).await);
        assert_eq!((err.code, err.field.as_str()), (E::InvalidArgument, field));
    }

    // The quota counts files and unfinished uploads.
    let a = content(400 * 1024, 9);
    let b = content(400 * 1024, 10);
    upload(&alice.client, &a, "a", pb::MessageKind::File)
        .await
        .expect("a");
    alice
        .client
        .begin_upload(begin(&b, "b", pb::MessageKind::File))
        .await
        .expect("b begun");
    let c = content(400 * 1024, 11);
    let err = remote(upload(&alice.client, &c, "c", pb::MessageKind::File).await);
    assert_eq!(
        (err.code, err.field.as_str()),
        (E::TooLarge, "begin_upload.size")
    );
    assert!(err.message.contains("quota"), "{err:?}");

    // A stream with more bytes than declared is stopped and its upload discarded.
    let bob = register(&server, "bob").await;
    let ten = b"0123456789";
    let ticket = bob
        .client
        .begin_upload(begin(ten, "ten", pb::MessageKind::File))
        .await
        .expect("begin");
    let raw = upload_conn(&server, &bob).await;
    let stopped = raw
        .send_refused(&ticket.upload_id, 0, &content(200_000, 12))
        .await;
    assert_eq!(stopped, u64::from(StreamCode::UploadTooLong.code()));
    let err = remote(
        bob.client
            .finish_upload(pb::FinishUpload {
                upload_id: ticket.upload_id,
            })
            .await,
    );
    assert!(err.message.contains("more bytes than declared"), "{err:?}");
}

#[tokio::test]
async fn a_decompression_bomb_is_refused() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    for (w, h) in [(100_000, 100_000), (16_000, 16_000)] {
        let bomb = png_bomb(w, h);
        assert!(bomb.len() < 200, "the bomb is tiny: {} bytes", bomb.len());
        let err = remote(upload(&alice.client, &bomb, "bomb.png", pb::MessageKind::Image).await);
        assert_eq!(err.code, E::InvalidArgument);
        assert!(err.message.contains("too large to decode"), "{err:?}");
    }
    // The server is fine: a real image still goes through.
    assert!(
        upload(
            &alice.client,
            &png_image(300, 200),
            "ok.png",
            pb::MessageKind::Image
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn files_need_the_capability_and_an_upload_of_ones_own() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let mut config = config(&server);
    config.capabilities.retain(|c| c != "files");
    let old = register_with(config, "old").await;
    assert_code(
        old.client
            .begin_upload(begin(b"x", "x", pb::MessageKind::File))
            .await,
        E::FailedPrecondition,
    );
    assert!(
        old.client
            .upload_reader(
                std::io::Cursor::new(vec![1u8]),
                "x",
                pb::MessageKind::File,
                |_, _| {}
            )
            .await
            .is_err()
    );
    // Without `files`, an upload stream is stopped with FRAME_ERROR.
    let raw = tests::raw::RawConn::connect(server.addr(), &server.fingerprint()).await;
    raw.hello().await;
    let send = raw.conn.open_uni().await.expect("stream");
    assert_eq!(
        tests::files::stop_code(send, b"\x00").await,
        u64::from(StreamCode::FrameError.code())
    );
    // Bob cannot write to, finish or resume alice's upload.
    let data = content(1000, 13);
    let ticket = alice
        .client
        .begin_upload(begin(&data, "a", pb::MessageKind::File))
        .await
        .expect("begin");
    let bobs_conn = upload_conn(&server, &bob).await;
    assert_eq!(
        bobs_conn.send_refused(&ticket.upload_id, 0, &data).await,
        u64::from(StreamCode::UploadRejected.code())
    );
    assert_code(
        bob.client
            .finish_upload(pb::FinishUpload {
                upload_id: ticket.upload_id.clone(),
            })
            .await,
        E::NotFound,
    );
    let bobs = bob
        .client
        .begin_upload(begin(&data, "a", pb::MessageKind::File))
        .await
        .expect("bob's own");
    assert_ne!(bobs.upload_id, ticket.upload_id);
}

#[tokio::test]
async fn signed_https_urls_serve_ranges_and_refuse_expired_or_tampered_ones() {
    let server = start_with(&["--files-https-listen=127.0.0.1:0"]).await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let data = content(300_000, 14);
    let file = upload(&alice.client, &data, "résumé.bin", pb::MessageKind::File)
        .await
        .expect("upload");
    let (url, expires) = alice
        .client
        .file_url(&file.id)
        .await
        .expect("url")
        .expect("the server offers urls");
    assert!(expires > chatd::state::now_ms());
    let https = server.state().files.urls.is_some();
    assert!(https);
    let addr = server.files_https_addr().expect("https address");
    assert!(
        url.starts_with(&format!("https://{addr}/f/{}?", file.id)),
        "{url}"
    );
    let fp = server.fingerprint();

    let whole = https_get(&url, &fp, &[]).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, data);
    let etag = format!("\"{}\"", hex::encode(&file.sha256));
    assert_eq!(whole.header("etag"), Some(etag.as_str()));
    assert!(
        whole
            .header("cache-control")
            .is_some_and(|c| c.contains("immutable"))
    );
    assert_eq!(
        whole.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        whole.header("content-disposition"),
        Some("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.bin")
    );
    assert_eq!(whole.header("x-content-type-options"), Some("nosniff"));

    let part = https_get(&url, &fp, &[("range", "bytes=1000-1999")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/300000"));
    assert_eq!(part.body, &data[1000..2000]);
    let tail = https_get(&url, &fp, &[("range", "bytes=-10")]).await;
    assert_eq!(tail.body, &data[data.len() - 10..]);
    let past = https_get(&url, &fp, &[("range", "bytes=300000-")]).await;
    assert_eq!(past.status, 416);
    let cached = https_get(&url, &fp, &[("if-none-match", &etag)]).await;
    assert_eq!((cached.status, cached.body.len()), (304, 0));

    // Tampered: another file, another user, a later expiry, a changed signature.
    let other_user = url.replace(&format!("u={}", alice.id), &format!("u={}", bob.id));
    let later = url.replace(
        &format!("e={}", expires / 1000),
        &format!("e={}", expires / 1000 + 3600),
    );
    let bad_sig = {
        let (head, sig) = url.rsplit_once("s=").expect("signature");
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        format!("{head}s={flipped}{}", &sig[1..])
    };
    let other_file = url.replace(&file.id, "f_does_not_exist");
    for tampered in [&other_user, &later, &bad_sig, &other_file] {
        assert_eq!(
            https_get(tampered, &fp, &[]).await.status,
            403,
            "{tampered}"
        );
    }
    // Expired: a URL signed an hour ago with a one-hour lifetime.
    let signer = server.state();
    let signer = signer.files.urls.as_ref().expect("signer");
    let (expired, _) = signer.sign(
        &file.id,
        alice.id,
        chatd::state::now_ms() - 3_600_000 - 1000,
    );
    let expired = https_get(&expired, &fp, &[]).await;
    assert_eq!(expired.status, 403);
    assert_eq!(
        String::from_utf8_lossy(&expired.body),
        "download url expired\n"
    );
    // Correctly signed for someone who may not read the file: not found.
    let (bobs, _) = signer.sign(&file.id, bob.id, chatd::state::now_ms());
    assert_eq!(https_get(&bobs, &fp, &[]).await.status, 404);
}

#[tokio::test]
async fn the_collector_removes_unreferenced_files_and_stale_uploads() {
    let server = start_with(&["--file-gc-grace=1s", "--file-gc-interval=100ms"]).await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let chat = alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("chat")
        .id;
    let send = |file: &pb::FileInfo| pb::SendMessage {
        chat_id: chat,
        kind: pb::MessageKind::File as i32,
        file_id: file.id.clone(),
        ..Default::default()
    };
    let kept = upload(
        &alice.client,
        &content(1000, 15),
        "kept",
        pb::MessageKind::File,
    )
    .await
    .expect("kept");
    alice
        .client
        .send_message(send(&kept))
        .await
        .expect("send kept");
    let deleted = upload(
        &alice.client,
        &content(1000, 16),
        "deleted",
        pb::MessageKind::File,
    )
    .await
    .expect("deleted");
    let message = alice
        .client
        .send_message(send(&deleted))
        .await
        .expect("send");
    alice
        .client
        .delete_message(pb::DeleteMessage {
            chat_id: chat,
            seq: message.seq,
            for_everyone: true,
        })
        .await
        .expect("delete for everyone");
    let never_sent = upload(
        &alice.client,
        &content(1000, 17),
        "lonely",
        pb::MessageKind::File,
    )
    .await
    .expect("lonely");
    let stale = alice
        .client
        .begin_upload(begin(&content(5000, 18), "stale", pb::MessageKind::File))
        .await
        .expect("stale upload");
    let raw = upload_conn(&server, &alice).await;
    raw.send(&stale.upload_id, 0, &content(5000, 18)[..100])
        .await;

    for gone in [&deleted, &never_sent] {
        eventually("the collector to remove a file", || async {
            (download(&alice.client, &gone.id, 0).await.err()?.code() == Some(E::NotFound))
                .then_some(())
        })
        .await;
    }
    // The stale upload's bytes went too: its id starts over.
    eventually("the collector to remove the stale upload", || async {
        walk_files(&server.data_dir().join("files/uploads"))
            .is_empty()
            .then_some(())
    })
    .await;
    // The file a live message carries stays, bytes and all.
    assert_eq!(
        download(&bob.client, &kept.id, 0).await.expect("kept"),
        content(1000, 15)
    );
    let blobs = walk_files(&server.data_dir().join("files/blobs"));
    assert_eq!(blobs.len(), 1, "{blobs:?}");
}

#[tokio::test]
async fn uploads_are_rate_limited_and_bounded_per_connection() {
    let server = start_with(&["--limit-upload=1/m burst 2"]).await;
    let alice = register(&server, "alice").await;
    for seed in 0..2 {
        alice
            .client
            .begin_upload(begin(&content(10, seed), "x", pb::MessageKind::File))
            .await
            .expect("within the burst");
    }
    let limited = remote(
        alice
            .client
            .begin_upload(begin(&content(10, 9), "x", pb::MessageKind::File))
            .await,
    );
    assert_eq!(limited.code, E::RateLimited);
    assert!(limited.retry_after.is_some());

    // Four upload streams at once per connection: a fifth waits for credit until one ends.
    let conn = upload_conn(&server, &alice).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(conn.raw.conn.open_uni().await.expect("within the credit"));
    }
    let fifth = tokio::time::timeout(Duration::from_millis(300), conn.raw.conn.open_uni()).await;
    assert!(
        fifth.is_err(),
        "a fifth concurrent upload stream was granted"
    );
    let mut first = open.remove(0);
    first.finish().expect("finish");
    // The server stops the headerless stream once it ends; its credit comes back.
    tokio::time::timeout(WAIT, conn.raw.conn.open_uni())
        .await
        .expect("credit returned")
        .expect("fifth stream");
}
