//! The conformance suite of [`BlobStore`]: every backend passes exactly these cases.
//!
//! ```ignore
//! crate::blob_conformance!(filesystem, async { (FsBlobs::open(dir)?, guard) });
//! ```
//! expands to a module with one `#[tokio::test]` per case; the expression yields a fresh, empty
//! store and whatever must live as long as it.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::io::AsyncReadExt as _;

use super::{BlobError, BlobReader, BlobStore, RawBlobs};

/// Expands to one test per conformance case for the blob store built by `$make`.
#[macro_export]
macro_rules! blob_conformance {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::blob_conformance!(@cases $make;
                uploads_resume_and_commit,
                append_at_the_wrong_offset_is_refused,
                commit_deduplicates,
                discard_removes_an_upload,
                reads_start_anywhere,
                put_and_delete_respect_claims,
                unknown_content_is_none,
            );
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (store, _guard) = $make.await;
                $crate::files::blob::conformance::$case(&store).await;
            }
        )*
    };
}

/// Expands to one test per [`RawBlobs`] case for the backend built by `$make`.
#[macro_export]
macro_rules! blob_raw_conformance {
    ($backend:ident, $make:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::blob_conformance!(@cases $make;
                lists_content_in_order,
                rewrites_heads_in_place,
                put_first_keeps_one_of_racing_writers,
                first_gives_content_put_before,
            );
        }
    };
}

/// Bytes that differ at every position (so an off-by-one shows).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}

async fn read_all(mut reader: BlobReader) -> Vec<u8> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.expect("read");
    out
}

async fn upload(store: &dyn BlobStore, id: &str, content: &[u8], pieces: usize) {
    let step = content.len().div_ceil(pieces.max(1));
    let mut offset = store.received(id).await.expect("received") as usize;
    for piece in content[offset..].chunks(step.max(1)) {
        let mut writer = store.append(id, offset as u64).await.expect("append");
        writer.write(piece).await.expect("write");
        writer.close().await.expect("close");
        offset += piece.len();
        assert_eq!(store.received(id).await.expect("received"), offset as u64);
    }
}

/// An upload written in several streams (each closed, as an interrupted stream is) counts every
/// byte; committed, it reads back whole and the upload has no bytes left.
pub async fn uploads_resume_and_commit(store: &dyn BlobStore) {
    // Larger than a GridFS chunk (255 KiB), with a tail.
    let content = pattern(700_001, 7);
    assert_eq!(store.received("up1").await.expect("received"), 0);
    upload(store, "up1", &content, 3).await;
    assert_eq!(
        read_all(store.read_upload("up1").await.expect("read")).await,
        content
    );
    store.commit("up1", "key1").await.expect("commit");
    assert_eq!(store.received("up1").await.expect("received"), 0);
    let blob = store.open("key1", 0).await.expect("open").expect("blob");
    assert_eq!(read_all(blob).await, content);
}

/// A stream that does not start where the stored bytes end is refused.
pub async fn append_at_the_wrong_offset_is_refused(store: &dyn BlobStore) {
    upload(store, "up2", b"hello", 1).await;
    for wrong in [0, 4, 6] {
        match store.append("up2", wrong).await {
            Err(BlobError::Offset { have: 5, asked }) => assert_eq!(asked, wrong),
            Err(e) => panic!("append at {wrong}: {e}"),
            Ok(_) => panic!("append at {wrong} was accepted"),
        }
    }
    assert_eq!(store.received("up2").await.expect("received"), 5);
}

/// The same content committed twice is one blob; the second upload's bytes are dropped.
pub async fn commit_deduplicates(store: &dyn BlobStore) {
    let content = pattern(1000, 3);
    upload(store, "a", &content, 1).await;
    upload(store, "b", &content, 2).await;
    store.commit("a", "same").await.expect("commit a");
    store.commit("b", "same").await.expect("commit b");
    assert_eq!(store.received("b").await.expect("received"), 0);
    let blob = store.open("same", 0).await.expect("open").expect("blob");
    assert_eq!(read_all(blob).await, content);
}

/// Discarding drops an upload's bytes, and is idempotent.
pub async fn discard_removes_an_upload(store: &dyn BlobStore) {
    upload(store, "gone", &pattern(300_000, 1), 2).await;
    store.discard("gone").await.expect("discard");
    store.discard("gone").await.expect("discard again");
    assert_eq!(store.received("gone").await.expect("received"), 0);
    assert!(matches!(
        store.read_upload("gone").await,
        Err(BlobError::Range(_))
    ));
    // It can start over from 0.
    upload(store, "gone", b"again", 1).await;
}

/// A read starts at any offset up to the size; past it is an error.
pub async fn reads_start_anywhere(store: &dyn BlobStore) {
    let content = pattern(600_000, 9);
    upload(store, "r", &content, 1).await;
    store.commit("r", "range").await.expect("commit");
    for offset in [0usize, 1, 261_119, 261_120, 261_121, 599_999, 600_000] {
        let blob = store
            .open("range", offset as u64)
            .await
            .expect("open")
            .expect("blob");
        assert_eq!(read_all(blob).await, &content[offset..], "from {offset}");
    }
    assert!(matches!(
        store.open("range", 600_001).await,
        Err(BlobError::Range(_))
    ));
}

/// Small content stored directly; a delete spares content claimed since the cutoff.
pub async fn put_and_delete_respect_claims(store: &dyn BlobStore) {
    let before = SystemTime::now() - Duration::from_secs(60);
    store
        .put("thumb", Bytes::from_static(b"tiny"))
        .await
        .expect("put");
    store
        .put("thumb", Bytes::from_static(b"tiny"))
        .await
        .expect("put again");
    assert!(
        !store.delete("thumb", before).await.expect("delete"),
        "claimed after the cutoff"
    );
    assert!(store.open("thumb", 0).await.expect("open").is_some());
    let later = SystemTime::now() + Duration::from_secs(60);
    assert!(store.delete("thumb", later).await.expect("delete"));
    assert!(store.open("thumb", 0).await.expect("open").is_none());
    assert!(store.delete("thumb", later).await.expect("delete again"));
}

/// Content nobody stored is `None`.
pub async fn unknown_content_is_none(store: &dyn BlobStore) {
    assert!(store.open("nothing", 0).await.expect("open").is_none());
    assert!(matches!(
        store.read_upload("nothing").await,
        Err(BlobError::Range(_))
    ));
}

/// Content is listed by name, in pages, without uploads, each name once.
pub async fn lists_content_in_order(store: &dyn RawBlobs) {
    assert!(store.list("", 10).await.expect("list").is_empty());
    for name in ["cc", "aa", "ab", "ba"] {
        store
            .put(name, Bytes::from(name.as_bytes().to_vec()))
            .await
            .expect("put");
    }
    store
        .put("aa", Bytes::from_static(b"aa"))
        .await
        .expect("put again");
    upload(store, "pending", b"not content", 1).await;
    upload(store, "done", b"committed", 2).await;
    store.commit("done", "bb").await.expect("commit");
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.list(&after, 2).await.expect("list");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = last.clone();
        all.extend(page);
    }
    assert_eq!(all, ["aa", "ab", "ba", "bb", "cc"]);
    assert_eq!(store.list("b", 10).await.expect("list"), ["ba", "bb", "cc"]);
}

/// A head is replaced in place: the rest of the content and its claim time stay.
pub async fn rewrites_heads_in_place(store: &dyn RawBlobs) {
    let content = pattern(300_000, 5);
    upload(store, "h", &content, 2).await;
    store.commit("h", "headed").await.expect("commit");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        store
            .rewrite_head("headed", b"NEW HEAD")
            .await
            .expect("rewrite")
    );
    let mut expected = b"NEW HEAD".to_vec();
    expected.extend_from_slice(&content[8..]);
    let blob = store.open("headed", 0).await.expect("open").expect("blob");
    assert_eq!(read_all(blob).await, expected);
    assert!(!store.rewrite_head("none", b"x").await.expect("rewrite"));
    store
        .put("short", Bytes::from_static(b"ab"))
        .await
        .expect("put");
    assert!(matches!(
        store.rewrite_head("short", b"abc").await,
        Err(BlobError::Range(_))
    ));
    // Claimed before `between`: the rewrite did not claim it again.
    assert!(store.delete("headed", between).await.expect("delete"));
}

/// Writers racing to store a name first: one blob is kept, every read gives it, and a later
/// writer changes nothing.
pub async fn put_first_keeps_one_of_racing_writers(store: &dyn RawBlobs) {
    assert!(store.first("once").await.expect("first").is_none());
    let written: Vec<Vec<u8>> = (0..8u8).map(|i| pattern(200 + usize::from(i), i)).collect();
    let races = written
        .iter()
        .map(|bytes| store.put_first("once", Bytes::from(bytes.clone())));
    for result in futures_util::future::join_all(races).await {
        result.expect("put_first");
    }
    let kept = store.first("once").await.expect("first").expect("a blob");
    assert!(
        written.iter().any(|w| w[..] == kept[..]),
        "one of the writers' bytes"
    );
    let reads = futures_util::future::join_all((0..4).map(|_| store.first("once"))).await;
    for read in reads {
        assert_eq!(read.expect("first"), Some(kept.clone()));
    }
    store
        .put_first("once", Bytes::from_static(b"later"))
        .await
        .expect("put_first");
    assert_eq!(
        store.first("once").await.expect("first"),
        Some(kept.clone())
    );
    let opened = store.open("once", 0).await.expect("open").expect("blob");
    assert_eq!(read_all(opened).await, kept.to_vec(), "open reads it too");
}

/// Content stored with `put` before anyone used `put_first` is what `first` gives, and stays.
pub async fn first_gives_content_put_before(store: &dyn RawBlobs) {
    store
        .put("earlier", Bytes::from_static(b"stored before"))
        .await
        .expect("put");
    assert_eq!(
        store.first("earlier").await.expect("first").as_deref(),
        Some(&b"stored before"[..])
    );
    store
        .put_first("earlier", Bytes::from_static(b"another"))
        .await
        .expect("put_first");
    assert_eq!(
        store.first("earlier").await.expect("first").as_deref(),
        Some(&b"stored before"[..])
    );
}
