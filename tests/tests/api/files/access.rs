//! Who may read a file, references from messages and avatars, and signed HTTPS URLs.

use super::*;

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
    share(&alice.client, g.id, &file.id, pb::MessageKind::Image)
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
    share(&alice.client, g.id, &later.id, pb::MessageKind::File)
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
    // An update refused for another field leaves the image Alice's alone.
    assert_field(
        alice
            .client
            .update_profile(pb::UpdateProfile {
                avatar_file_id: Some(avatar.id.clone()),
                display_name: Some("x".repeat(200)),
                ..Default::default()
            })
            .await,
        E::TooLarge,
        "update_profile.display_name",
    );
    assert_code(download(&carol.client, &avatar.id, 0).await, E::NotFound);
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
    assert!(expires > now_ms());
    assert!(server.sign_file_url(&file.id, alice.id, 0).is_some());
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
    let (expired, _) = server
        .sign_file_url(&file.id, alice.id, now_ms() - 3_600_000 - 1000)
        .expect("signer");
    let expired = https_get(&expired, &fp, &[]).await;
    assert_eq!(expired.status, 403);
    assert_eq!(
        String::from_utf8_lossy(&expired.body),
        "download url expired\n"
    );
    // Correctly signed for someone who may not read the file: not found.
    let (bobs, _) = server
        .sign_file_url(&file.id, bob.id, now_ms())
        .expect("signer");
    assert_eq!(https_get(&bobs, &fp, &[]).await.status, 404);
}
