//! What a finished upload is checked for (type from the bytes, names, image limits) and how
//! long unreferenced files live.

use super::*;

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
        "invoice\u{200f}.pdf",
        "\u{200e}a.txt",
        "b\u{061c}.txt",
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

/// FILE takes anything (spec 13.4): bytes that begin like an image but do not decode, and an
/// image too large to decode, are kept as files, without a size or thumbnails; as IMAGE they
/// are refused.
#[tokio::test]
async fn a_file_that_only_looks_like_an_image_is_kept_as_a_file() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let mut broken = png_image(300, 200);
    broken.truncate(60);
    broken.extend(content(500, 9));
    for (bytes, name) in [
        (broken, "broken.png"),
        (png_bomb(100_000, 100_000), "bomb.png"),
    ] {
        let err = remote(upload(&alice.client, &bytes, name, pb::MessageKind::Image).await);
        assert_eq!(err.code, E::InvalidArgument, "{name} as an image");
        let file = upload(&alice.client, &bytes, name, pb::MessageKind::File)
            .await
            .unwrap_or_else(|e| panic!("{name} as a file: {e}"));
        assert_eq!(file.mime, "image/png", "{name}");
        assert_eq!((file.width, file.height), (0, 0), "{name}");
        assert!(file.thumbnails.is_empty(), "{name}");
        assert_eq!(file.size, bytes.len() as u64, "{name}");
    }
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
