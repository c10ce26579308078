//! Files encrypted at rest (`--encryption-key-file`): nothing of an upload, a file or a thumbnail
//! readable in the files directory, exact bytes from any offset over QUIC and HTTPS ranges,
//! deduplication of the same upload by two users into one blob that is not named by its
//! SHA-256, and a damaged chunk refused with a clear error instead of other bytes.

use std::path::{Path, PathBuf};

use super::*;

/// A text no stored byte may contain.
const MARKER: &[u8] = b"minutes of the board meeting, strictly confidential";
/// Plaintext bytes per encrypted chunk (`files::blob::envelope::CHUNK`).
const CHUNK: usize = 64 * 1024;
/// The head before the first chunk, and the tag after each.
const HEAD: usize = 85;
const TAG: usize = 16;

fn known(len: usize) -> Vec<u8> {
    MARKER.iter().copied().cycle().take(len).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// An in-process chatd with a new master key (kept in `keys`) and the HTTPS file server.
async fn start_encrypted(keys: &Path) -> tests::server::TestServer {
    let key = tests::keys::key_file(keys, "master.key", true);
    start_with(&[
        &format!("--encryption-key-file={}", key.display()),
        "--files-https-listen=127.0.0.1:0",
    ])
    .await
}

/// A signed HTTPS URL of file `id` for `user`.
async fn signed_url(user: &User, id: &str) -> String {
    let (url, _) = user
        .client
        .file_url(id)
        .await
        .expect("url")
        .expect("urls offered");
    url
}

/// The stored content files (not the address key) under the files directory.
fn content_blobs(data_dir: &Path) -> Vec<PathBuf> {
    walk_files(&data_dir.join("files/blobs"))
        .into_iter()
        .filter(|p| !p.ends_with("address-key"))
        .collect()
}

fn assert_no_plaintext(data_dir: &Path, needles: &[&[u8]]) {
    for path in walk_files(&data_dir.join("files")) {
        let bytes = std::fs::read(&path).expect("read");
        for needle in needles {
            assert!(!contains(&bytes, needle), "plaintext in {}", path.display());
        }
    }
}

#[tokio::test]
async fn encrypted_files_hold_no_plaintext_and_read_back_exactly_from_any_offset() {
    let keys = tempfile::tempdir().expect("key dir");
    let server = start_encrypted(keys.path()).await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let data = known(5 * CHUNK + 1234);

    // Half an upload: its bytes on disk are already ciphertext.
    let ticket = alice
        .client
        .begin_upload(begin(&data, "minutes.txt", pb::MessageKind::File))
        .await
        .expect("begin");
    upload_conn(&server, &alice)
        .await
        .send(&ticket.upload_id, 0, &data[..2 * CHUNK + 7])
        .await;
    assert_no_plaintext(&server.data_dir(), &[MARKER]);
    let file = upload(&alice.client, &data, "minutes.txt", pb::MessageKind::File)
        .await
        .expect("upload");

    // Bob uploads the same bytes: a file of his own, stored once, under a keyed address.
    let copy = upload(&bob.client, &data, "copy.txt", pb::MessageKind::File)
        .await
        .expect("upload");
    assert_ne!(copy.id, file.id);
    let blobs = content_blobs(&server.data_dir());
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    let sha = hex::encode(&file.sha256);
    assert!(!blobs[0].ends_with(&sha), "stored under its SHA-256");

    // An image: the original and its thumbnails are ciphertext too.
    let png = png_image(800, 600);
    let image = upload(&alice.client, &png, "photo.png", pb::MessageKind::Image)
        .await
        .expect("image");
    let thumb = download(&alice.client, &image.thumbnails[0].file_id, 0)
        .await
        .expect("thumbnail");
    assert_eq!(
        content_blobs(&server.data_dir()).len(),
        4,
        "file, image, 2 thumbnails"
    );
    assert_no_plaintext(&server.data_dir(), &[MARKER, &png[..64], &thumb[..64]]);
    assert_eq!(
        download(&alice.client, &image.id, 0).await.expect("image"),
        png
    );

    // Whole, resumed from any offset (chunk edges included), and by HTTPS ranges.
    for offset in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 9, data.len()] {
        assert_eq!(
            download(&bob.client, &copy.id, offset as u64)
                .await
                .expect("download"),
            &data[offset..],
            "from {offset}"
        );
    }
    let url = signed_url(&alice, &file.id).await;
    let fp = server.fingerprint();
    for (range, start, end) in [
        ("bytes=70000-140000", 70_000, 140_001),
        ("bytes=65536-65536", CHUNK, CHUNK + 1),
        ("bytes=-100", data.len() - 100, data.len()),
    ] {
        let part = https_get(&url, &fp, &[("range", range)]).await;
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(part.body, &data[start..end], "{range}");
    }
}

#[tokio::test]
async fn a_damaged_chunk_is_refused_with_a_clear_error_and_never_served() {
    let keys = tempfile::tempdir().expect("key dir");
    let server = start_encrypted(keys.path()).await;
    let alice = register(&server, "alice").await;
    let data = known(4 * CHUNK);
    let file = upload(&alice.client, &data, "minutes.txt", pb::MessageKind::File)
        .await
        .expect("upload");
    let [blob] = content_blobs(&server.data_dir())
        .try_into()
        .expect("one blob");
    // Flip one byte of chunk 2.
    let mut stored = std::fs::read(&blob).expect("read");
    stored[HEAD + 2 * (CHUNK + TAG) + 100] ^= 1;
    std::fs::write(&blob, &stored).expect("write");

    // From the damaged chunk on: the answer is the error, no bytes follow.
    let refused = remote(download(&alice.client, &file.id, 2 * CHUNK as u64 + 5).await);
    assert_eq!(refused.code, E::Internal, "{refused:?}");
    assert!(refused.message.contains("does not open"), "{refused:?}");
    // From before it: the stream stops where the damage is, never with other bytes.
    let mut got = Vec::new();
    let broken = alice
        .client
        .download_to_writer(&file.id, 0, &mut got, |_, _| {})
        .await;
    assert!(broken.is_err(), "a damaged file downloaded whole");
    assert!(got.len() <= 2 * CHUNK, "{} bytes", got.len());
    assert_eq!(got, &data[..got.len()], "only authenticated bytes arrive");
    // Chunks before and after it still read.
    assert_eq!(
        download(&alice.client, &file.id, 3 * CHUNK as u64)
            .await
            .expect("chunk 3"),
        &data[3 * CHUNK..]
    );
    let url = signed_url(&alice, &file.id).await;
    let fp = server.fingerprint();
    let part = https_get(&url, &fp, &[("range", "bytes=131100-131200")]).await;
    assert_eq!(part.status, 500);
    let part = https_get(&url, &fp, &[("range", "bytes=0-99")]).await;
    assert_eq!((part.status, part.body.as_slice()), (206, &data[..100]));
}
