//! The bytes of files: one [`BlobStore`] trait, two backends, one conformance suite.
//!
//! Content is addressed by its SHA-256 (lowercase hex, the *content key*): two files with the
//! same bytes share one blob. An upload's bytes are kept under the upload's id until the upload
//! is finished; [`BlobStore::commit`] then makes them the blob of their content key, durably,
//! before the database row that names the file is written. So a row never names bytes that are
//! not stored, and bytes whose row was never written are only an upload the collector removes.
//!
//! - [`fs::FsBlobs`]: the local filesystem under the data directory (the embedded default).
//! - [`gridfs::GridFsBlobs`]: MongoDB GridFS (cluster mode), shared by every node.
//!
//! - [`sealed::SealedBlobs`]: either of them with the content encrypted (a master key is
//!   configured); [`envelope`] is its format.
//!
//! Every backend, and each under [`sealed::SealedBlobs`], passes [`conformance`]
//! (`blob_conformance!`); the backends also pass its [`RawBlobs`] cases.

#[cfg(test)]
pub(crate) mod conformance;
pub mod envelope;
pub mod fs;
pub mod gridfs;
pub mod sealed;

use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

/// What can go wrong with stored bytes.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// An upload continued at an offset other than the bytes stored.
    #[error("upload has {have} bytes, not {asked}")]
    Offset {
        /// Bytes stored.
        have: u64,
        /// Offset asked for.
        asked: u64,
    },
    /// A read past the end, or of an upload with no bytes.
    #[error("{0}")]
    Range(String),
    /// The storage failed (disk, database).
    #[error("file storage: {0}")]
    Storage(String),
    /// Encrypted bytes do not open: changed at rest, or their master key is not configured.
    #[error(transparent)]
    Sealed(#[from] crate::atrest::AtRestError),
}

/// Shorthand for blob results.
pub type BlobResult<T> = Result<T, BlobError>;

/// A reader of stored bytes.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// Appends to an upload's bytes (see [`BlobStore::append`]).
#[async_trait]
pub trait BlobWriter: Send {
    /// Appends `bytes`.
    async fn write(&mut self, bytes: &[u8]) -> BlobResult<()>;
    /// Ends the writer: what was written counts in [`BlobStore::received`] from now on, also
    /// when the stream that fed it was interrupted.
    async fn close(self: Box<Self>) -> BlobResult<()>;
}

/// Where file bytes are kept.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// A short name for logs ("filesystem", "gridfs").
    fn backend(&self) -> &'static str;
    /// The bytes of upload `upload` stored so far; 0 for an unknown upload.
    async fn received(&self, upload: &str) -> BlobResult<u64>;
    /// Continues the bytes of `upload` at `offset`, which must be [`received`](Self::received)
    /// ([`BlobError::Offset`] otherwise). One writer per upload at a time: the server makes sure.
    async fn append(&self, upload: &str, offset: u64) -> BlobResult<Box<dyn BlobWriter>>;
    /// Reads the bytes of `upload` from the start.
    async fn read_upload(&self, upload: &str) -> BlobResult<BlobReader>;
    /// Makes the bytes of `upload` the blob of content key `key`, durably; when that blob exists
    /// already, keeps it and drops the upload's bytes (deduplication). Either way the blob's
    /// claim time becomes now (see [`delete`](Self::delete)) and the upload has no bytes after.
    async fn commit(&self, upload: &str, key: &str) -> BlobResult<()>;
    /// Stores small content (a thumbnail) as the blob of `key`, durably, like
    /// [`commit`](Self::commit).
    async fn put(&self, key: &str, bytes: Bytes) -> BlobResult<()>;
    /// Drops the bytes of `upload` (idempotent).
    async fn discard(&self, upload: &str) -> BlobResult<()>;
    /// Reads the blob of `key` from byte `offset` (at most its size); `None` when there is no
    /// such blob.
    async fn open(&self, key: &str, offset: u64) -> BlobResult<Option<BlobReader>>;
    /// Deletes the blob of `key` unless it was claimed at or after `claimed_before` (a commit of
    /// the same content racing the collector keeps it). True when it is gone.
    async fn delete(&self, key: &str, claimed_before: SystemTime) -> BlobResult<bool>;
}

/// What [`sealed::SealedBlobs`] needs of a backend beyond [`BlobStore`]: to walk the stored
/// content and to replace the head of one (a re-wrapped data key), in place.
#[async_trait]
pub trait RawBlobs: BlobStore {
    /// Up to `limit` names of stored content (not uploads) greater than `after`, ascending.
    async fn list(&self, after: &str, limit: usize) -> BlobResult<Vec<String>>;
    /// Replaces the first `head.len()` bytes of the content of `key`, durably and atomically
    /// (a reader sees the old head or the new one), keeping its claim time.
    /// [`BlobError::Range`] when the content is shorter; `Ok(false)` when there is none.
    async fn rewrite_head(&self, key: &str, head: &[u8]) -> BlobResult<bool>;
    /// Stores small `bytes` as the blob of `key` unless one is stored already, durably: of
    /// writers racing (nodes starting at once), exactly one blob is kept, and
    /// [`first`](Self::first) gives every reader that one from then on. Content stored with
    /// [`put`](BlobStore::put) before counts as stored.
    async fn put_first(&self, key: &str, bytes: Bytes) -> BlobResult<()>;
    /// The whole blob of `key` as [`put_first`](Self::put_first) kept it; `None` when there is
    /// none.
    async fn first(&self, key: &str) -> BlobResult<Option<Bytes>>;
}

/// True for names this module accepts as upload ids and content keys: what the server makes
/// (URL-safe characters only), so no name can reach outside the store's directory or collection.
pub fn is_safe_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_name(name: &str) -> BlobResult<()> {
    if is_safe_name(name) {
        Ok(())
    } else {
        Err(BlobError::Storage(format!("invalid blob name {name:?}")))
    }
}
