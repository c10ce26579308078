//! What encryption adds to the blob store's contract: nothing readable at rest, chunks that
//! refuse tampering, keyed deduplication, plain content kept readable, rotation.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncReadExt as _;

use super::{ADDRESS_KEY, Maintained, SealedBlobs};
use crate::atrest::{AtRestError, MasterKeys};
use crate::files::blob::envelope::{CHUNK, HEAD_LEN, TAG};
use crate::files::blob::fs::FsBlobs;
use crate::files::blob::{BlobError, BlobStore};

/// A known text repeated: the plaintext the tests look for at rest.
const MARKER: &[u8] = b"a known upload: the quarterly numbers nobody may read";

fn known_content(len: usize) -> Vec<u8> {
    MARKER.iter().copied().cycle().take(len).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn keys(current: u8, previous: &[u8]) -> Arc<MasterKeys> {
    let previous: Vec<[u8; 32]> = previous.iter().map(|b| [*b; 32]).collect();
    Arc::new(MasterKeys::new(&[current; 32], &previous))
}

async fn sealed(inner: &Arc<FsBlobs>, keys: Arc<MasterKeys>) -> SealedBlobs {
    SealedBlobs::open(inner.clone(), keys)
        .await
        .expect("sealed")
}

fn fs(dir: &Path) -> Arc<FsBlobs> {
    Arc::new(FsBlobs::open(dir.join("files")).expect("open"))
}

async fn upload(store: &dyn BlobStore, id: &str, content: &[u8], pieces: usize) {
    let step = content.len().div_ceil(pieces).max(1);
    for piece in content.chunks(step) {
        let offset = store.received(id).await.expect("received");
        let mut writer = store.append(id, offset).await.expect("append");
        writer.write(piece).await.expect("write");
        writer.close().await.expect("close");
    }
}

async fn read(store: &dyn BlobStore, key: &str, offset: u64) -> Result<Vec<u8>, BlobError> {
    let mut reader = store.open(key, offset).await?.expect("content");
    let mut out = Vec::new();
    match reader.read_to_end(&mut out).await {
        Ok(_) => Ok(out),
        Err(e) => Err(super::io_error(e)),
    }
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).expect("read");
            out.push((path, bytes));
        }
    }
    out
}

fn blob_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    files_under(&dir.join("files/blobs"))
        .into_iter()
        .filter(|(p, _)| !p.ends_with(ADDRESS_KEY))
        .collect()
}

#[tokio::test]
async fn uploads_files_and_thumbnails_hold_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = fs(dir.path());
    let store = sealed(&inner, keys(1, &[])).await;
    let content = known_content(3 * CHUNK + 100);
    upload(&store, "up", &content, 3).await;
    for (path, bytes) in files_under(&dir.path().join("files")) {
        assert!(
            !contains(&bytes, MARKER),
            "{} holds plaintext",
            path.display()
        );
    }
    store.commit("up", "content").await.expect("commit");
    store
        .put("thumb", Bytes::from(known_content(500)))
        .await
        .expect("put");
    let stored = files_under(&dir.path().join("files"));
    assert_eq!(
        stored.len(),
        3,
        "the content, the thumbnail, the address key"
    );
    for (path, bytes) in stored {
        assert!(
            !contains(&bytes, MARKER),
            "{} holds plaintext",
            path.display()
        );
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(
            name != "content" && name != "thumb",
            "stored under its address"
        );
    }
    assert_eq!(read(&store, "content", 0).await.expect("read"), content);
    assert_eq!(
        read(&store, "thumb", 0).await.expect("read"),
        known_content(500)
    );
}

#[tokio::test]
async fn reads_from_any_offset_decrypt_from_the_chunk_that_holds_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sealed(&fs(dir.path()), keys(1, &[])).await;
    let content: Vec<u8> = (0..2 * CHUNK + 7).map(|i| (i * 7 % 253) as u8).collect();
    upload(&store, "r", &content, 5).await;
    store.commit("r", "ranged").await.expect("commit");
    let len = content.len();
    for offset in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, len - 1, len] {
        assert_eq!(
            read(&store, "ranged", offset as u64).await.expect("read"),
            &content[offset..],
            "from {offset}"
        );
    }
    assert!(matches!(
        store.open("ranged", len as u64 + 1).await,
        Err(BlobError::Range(_))
    ));
    // Empty content has one (empty, final) chunk.
    upload(&store, "e", b"", 1).await;
    store.put("empty", Bytes::new()).await.expect("put");
    assert_eq!(read(&store, "empty", 0).await.expect("read"), b"");
}

#[tokio::test]
async fn a_changed_chunk_is_refused_and_the_others_still_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sealed(&fs(dir.path()), keys(1, &[])).await;
    let content = known_content(3 * CHUNK);
    upload(&store, "t", &content, 1).await;
    store.commit("t", "tampered").await.expect("commit");
    let [(path, mut bytes)] = blob_files(dir.path()).try_into().expect("one blob");
    // A byte of chunk 1.
    bytes[HEAD_LEN + CHUNK + TAG + 10] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    let refused = |r: Result<Vec<u8>, BlobError>| match r {
        Err(BlobError::Sealed(AtRestError::Tampered(what))) => {
            assert!(what.contains("chunk 1"), "{what}");
        }
        other => panic!("not refused: {other:?}"),
    };
    refused(read(&store, "tampered", 0).await);
    // From chunk 1 on, the error comes when it is opened.
    match store.open("tampered", CHUNK as u64 + 5).await {
        Err(BlobError::Sealed(AtRestError::Tampered(_))) => {}
        other => panic!("opened: {:?}", other.map(|r| r.is_some())),
    }
    assert_eq!(
        read(&store, "tampered", 2 * CHUNK as u64)
            .await
            .expect("chunk 2"),
        &content[2 * CHUNK..]
    );
    // Cut after chunk 1: reading past it is an error, not a shorter file.
    bytes[HEAD_LEN + CHUNK + TAG + 10] ^= 0x40;
    bytes.truncate(HEAD_LEN + 2 * (CHUNK + TAG));
    std::fs::write(&path, &bytes).expect("write");
    refused_truncated(read(&store, "tampered", 0).await);
}

fn refused_truncated(r: Result<Vec<u8>, BlobError>) {
    match r {
        Err(BlobError::Sealed(AtRestError::Tampered(what))) => {
            assert!(what.contains("truncated"), "{what}")
        }
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn equal_content_is_one_blob_under_a_keyed_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sealed(&fs(dir.path()), keys(1, &[])).await;
    let content = known_content(100_000);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content));
    upload(&store, "alice", &content, 1).await;
    upload(&store, "bob", &content, 2).await;
    store.commit("alice", &sha).await.expect("commit");
    store.commit("bob", &sha).await.expect("commit");
    let blobs = blob_files(dir.path());
    assert_eq!(blobs.len(), 1, "one blob for both uploads");
    let name = blobs[0]
        .0
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name");
    assert_ne!(name, sha, "the address is not the content's SHA-256");
    assert_eq!(read(&store, &sha, 0).await.expect("read"), content);
    // Another deployment (another address key) stores the same content elsewhere.
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = sealed(&fs(other_dir.path()), keys(1, &[])).await;
    other.put(&sha, Bytes::from(content)).await.expect("put");
    let other_name = blob_files(other_dir.path())[0].0.clone();
    assert_ne!(other_name.file_name(), blobs[0].0.file_name());
}

/// Nodes of a cluster opening a fresh GridFS bucket at once each make an address key; all of
/// them use the one kept, so content stored through any node is found through every other, and
/// after a restart. A few rounds, each on a fresh bucket, as the interleaving varies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_share_one_address_key() {
    for _ in 0..4 {
        nodes_start_at_once().await;
    }
}

async fn nodes_start_at_once() {
    let store = crate::store::mongo::testserver::store().await;
    let inner = Arc::new(crate::files::blob::gridfs::GridFsBlobs::new(
        &store.database(),
    ));
    let opening = (0..8).map(|_| {
        let inner = inner.clone();
        tokio::spawn(async move { SealedBlobs::open(inner, keys(1, &[])).await })
    });
    let mut nodes = Vec::new();
    for node in futures_util::future::join_all(opening).await {
        nodes.push(node.expect("task").expect("open"));
    }
    let content = known_content(100);
    for (i, node) in nodes.iter().enumerate() {
        node.put(&format!("key{i}"), Bytes::from(content.clone()))
            .await
            .expect("put");
    }
    nodes.push(
        SealedBlobs::open(inner.clone(), keys(1, &[]))
            .await
            .expect("restart"),
    );
    for (n, node) in nodes.iter().enumerate() {
        for i in 0..8 {
            assert_eq!(
                read(node, &format!("key{i}"), 0).await.expect("read"),
                content,
                "node {n} reads what node {i} stored"
            );
        }
    }
}

#[tokio::test]
async fn plain_content_stays_readable_and_is_encrypted_on_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = fs(dir.path());
    let content = known_content(CHUNK + 3);
    upload(&*inner, "old", &content, 1).await;
    inner.commit("old", "plainkey").await.expect("commit");
    let store = sealed(&inner, keys(1, &[])).await;
    assert_eq!(
        read(&store, "plainkey", 5).await.expect("read"),
        &content[5..]
    );
    let done = store.maintain(false).await.expect("maintain");
    assert_eq!(done.plain, 1, "{done:?}");
    let done = store.maintain(true).await.expect("maintain");
    assert_eq!(done.encrypted, 1, "{done:?}");
    for (path, bytes) in files_under(&dir.path().join("files")) {
        assert!(
            !contains(&bytes, MARKER),
            "{} holds plaintext",
            path.display()
        );
    }
    assert_eq!(read(&store, "plainkey", 0).await.expect("read"), content);
    assert_eq!(
        store.maintain(true).await.expect("maintain"),
        Maintained {
            checked: 2,
            ..Maintained::default()
        }
    );
}

#[tokio::test]
async fn a_rotation_rewraps_every_key_and_the_old_key_can_then_go() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = fs(dir.path());
    let before = sealed(&inner, keys(1, &[])).await;
    let content = known_content(2 * CHUNK + 1);
    upload(&before, "f", &content, 1).await;
    before.commit("f", "file").await.expect("commit");
    before
        .put("thumb", Bytes::from_static(b"small"))
        .await
        .expect("put");
    // An upload in progress when the keys change.
    upload(&before, "pending", &content[..CHUNK + 9], 1).await;
    let bodies = |dir: &Path| -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = blob_files(dir)
            .into_iter()
            .map(|(_, b)| b[HEAD_LEN..].to_vec())
            .collect();
        all.sort();
        all
    };
    let ciphertext = bodies(dir.path());

    // Only the new key: nothing opens, and starting says which key is missing.
    match SealedBlobs::open(inner.clone(), keys(2, &[])).await {
        Err(BlobError::Sealed(AtRestError::UnknownKey { id, .. })) => {
            assert_eq!(id, keys(1, &[]).current_id())
        }
        other => panic!("opened without the key: {:?}", other.map(|_| ())),
    }
    // During the overlap both keys open everything.
    let during = sealed(&inner, keys(2, &[1])).await;
    assert_eq!(read(&during, "file", 0).await.expect("read"), content);
    let rest = &content[CHUNK + 9..];
    let mut writer = during
        .append("pending", (CHUNK + 9) as u64)
        .await
        .expect("append");
    writer.write(rest).await.expect("write");
    writer.close().await.expect("close");
    let done = during.maintain(false).await.expect("maintain");
    assert_eq!(done.rewrapped, 3, "file, thumbnail, address key: {done:?}");
    assert_eq!(
        bodies(dir.path()),
        ciphertext,
        "content is not re-encrypted"
    );
    during.commit("pending", "finished").await.expect("commit");

    // After it, the old key is not needed.
    let after = sealed(&inner, keys(2, &[])).await;
    assert_eq!(
        read(&after, "file", CHUNK as u64).await.expect("read"),
        &content[CHUNK..]
    );
    assert_eq!(read(&after, "thumb", 0).await.expect("read"), b"small");
    assert_eq!(read(&after, "finished", 0).await.expect("read"), content);
    assert_eq!(after.maintain(false).await.expect("maintain").rewrapped, 0);
}

#[tokio::test]
async fn a_half_written_record_starts_the_upload_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = fs(dir.path());
    let store = sealed(&inner, keys(1, &[])).await;
    upload(&store, "torn", &known_content(1000), 1).await;
    assert_eq!(store.received("torn").await.expect("received"), 1000);
    // A writer that died in the middle of a record.
    let mut writer = inner
        .append("torn", inner.received("torn").await.expect("raw"))
        .await
        .expect("append");
    writer.write(&[0, 0, 1, 0, 9, 9]).await.expect("write");
    writer.close().await.expect("close");
    assert_eq!(store.received("torn").await.expect("received"), 0);
    assert!(matches!(
        store.append("torn", 1000).await,
        Err(BlobError::Offset {
            have: 0,
            asked: 1000
        })
    ));
    upload(&store, "torn", &known_content(10), 1).await;
    store.commit("torn", "again").await.expect("commit");
    assert_eq!(
        read(&store, "again", 0).await.expect("read"),
        known_content(10)
    );
}

/// GridFS: the raw chunks collection holds no plaintext of content or uploads.
#[tokio::test]
async fn gridfs_chunks_hold_no_plaintext() {
    use futures_util::TryStreamExt as _;
    use mongodb::bson::{Document, doc};
    let db_store = crate::store::mongo::testserver::store().await;
    let db = db_store.database();
    let inner = Arc::new(crate::files::blob::gridfs::GridFsBlobs::new(&db));
    let store = SealedBlobs::open(inner, keys(1, &[]))
        .await
        .expect("sealed");
    let content = known_content(600_000);
    upload(&store, "g", &content, 3).await;
    upload(&store, "pending", &content[..1000], 1).await;
    store.commit("g", "gridkey").await.expect("commit");
    store
        .put("thumb", Bytes::from(known_content(900)))
        .await
        .expect("put");
    let chunks: Vec<Document> = db
        .collection::<Document>("blobs.chunks")
        .find(doc! {})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("chunks");
    assert!(chunks.len() >= 4, "{} chunks", chunks.len());
    for chunk in &chunks {
        let data = chunk.get_binary_generic("data").expect("data");
        assert!(!contains(data, MARKER), "a chunk holds plaintext");
    }
    let files: Vec<Document> = db
        .collection::<Document>("blobs.files")
        .find(doc! {})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("files");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content));
    for file in files {
        let name = file.get_str("filename").expect("filename");
        assert!(name != "gridkey" && name != sha, "{name}");
    }
    assert_eq!(
        read(&store, "gridkey", 300_000).await.expect("read"),
        &content[300_000..]
    );
}
