//! Files in cluster mode: bytes in GridFS on FerretDB, so a file uploaded through one node
//! downloads through another, and an upload interrupted on one node resumes on another.

use chatproto::pb;
use tests::cluster::{ChatCluster, ClusterSpec};
use tests::files::{UploadConn, content, download, sha256, share, upload};
use tests::users::TestUser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_through_one_node_downloads_through_another() {
    let cluster = tokio::task::spawn_blocking(|| {
        ChatCluster::start_with(ClusterSpec {
            nodes: 2,
            ..ClusterSpec::default()
        })
    })
    .await
    .expect("start cluster");
    let alice = TestUser::register(cluster.client_config(0), "alice").await;
    let bob = TestUser::register(cluster.client_config(1), "bob").await;
    assert_eq!(alice.node_id().as_deref(), Some("node0"));
    assert_eq!(bob.node_id().as_deref(), Some("node1"));

    // 1.5 MiB: several GridFS chunks, and a resumed upload's two parts.
    let data = content(1_572_869, 21);
    let declaration = pb::BeginUpload {
        size: data.len() as u64,
        sha256: sha256(&data),
        name: "report.bin".into(),
        kind: pb::MessageKind::File as i32,
    };
    // The first 600 kB go to node0, whose stream then ends early.
    let ticket = alice
        .client
        .begin_upload(declaration.clone())
        .await
        .expect("begin on node0");
    let node0 = cluster.node(0);
    let token = alice.client.tokens().expect("tokens").access_token;
    let raw = UploadConn::connect(node0.addr(), node0.fingerprint(), &token).await;
    raw.send(&ticket.upload_id, 0, &data[..600_000]).await;

    // Alice moves to node1: the same declaration resumes there, from what node0 stored.
    let alice1 = TestUser::login(cluster.client_config(1), "alice").await;
    assert_eq!(alice1.node_id().as_deref(), Some("node1"));
    let resumed = alice1
        .client
        .begin_upload(declaration)
        .await
        .expect("begin on node1");
    assert_eq!(
        (resumed.upload_id.as_str(), resumed.offset),
        (ticket.upload_id.as_str(), 600_000)
    );
    let file = upload(&alice1.client, &data, "report.bin", pb::MessageKind::File)
        .await
        .expect("finish on node1");

    let chat = alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("chat");
    let sent = share(&alice.client, chat.id, &file.id, pb::MessageKind::File)
        .await
        .expect("send through node0");
    assert_eq!(sent.attachment.map(|a| a.id), Some(file.id.clone()));
    // Bob, on node1, reads it whole and from an offset; alice reads it through node0.
    assert_eq!(download(&bob.client, &file.id, 0).await.expect("bob"), data);
    assert_eq!(
        download(&bob.client, &file.id, 1_000_000)
            .await
            .expect("bob from 1 MB"),
        &data[1_000_000..]
    );
    assert_eq!(
        download(&alice.client, &file.id, 0).await.expect("alice"),
        data
    );

    // An image's thumbnails are in GridFS too.
    let png = chatd::testing::png_image(400, 300);
    let image = upload(&alice.client, &png, "i.png", pb::MessageKind::Image)
        .await
        .expect("image on node0");
    assert_eq!(image.thumbnails.len(), 1);
    assert!(
        download(&alice1.client, &image.thumbnails[0].file_id, 0)
            .await
            .is_ok()
    );
}
