//! File bytes in MongoDB GridFS (cluster mode): every node reads and writes the same bucket,
//! `blobs` (collections `blobs.files` and `blobs.chunks`), so a file uploaded through one node
//! downloads through any other.
//!
//! - An upload's bytes are *parts*: one GridFS file per upload stream, `_id` =
//!   `"<upload id>.<offset>"`, filename `"upload:<upload id>"`, written through the GridFS upload
//!   API and closed when the stream ends, also when it was interrupted, so the bytes that arrived
//!   count. An upload's offset is the sum of its parts' lengths. A part whose writer died with
//!   its process never got a files document: its chunks are found by its `_id` and removed when
//!   the upload continues at that offset again, or is discarded.
//! - Content is a GridFS file whose filename is its content key, with `metadata.claimed_at_ms`.
//!   Committing a one-part upload renames the part (GridFS rename); a resumed upload's parts are
//!   copied into one file, then removed.
//! - Reads from an offset go to `blobs.chunks` directly from the chunk that holds it (the GridFS
//!   download API has no seek): chunk `n` holds bytes `[n * chunkSize, (n + 1) * chunkSize)`.
//! - [`RawBlobs::rewrite_head`] replaces chunk 0's data in one update (a document update is
//!   atomic); heads are far shorter than a chunk.
//! - [`RawBlobs::put_first`] stores its file under a fresh `_id`, then *elects* it: it inserts
//!   `{_id: <content key>, file: <its _id>}` into `blobs.first`, which succeeds for one writer
//!   only (`_id` is unique); a writer that lost removes its file. [`RawBlobs::first`] reads the
//!   elected file, and elects the newest file of the name when none is (content stored before),
//!   so every reader gets the same blob, however writers and readers interleave.

use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{AsyncWriteExt as _, StreamExt as _, TryStreamExt as _};
use mongodb::bson::{Bson, Document, doc};
use mongodb::gridfs::{FilesCollectionDocument, GridFsBucket, GridFsUploadStream};
use mongodb::options::GridFsBucketOptions;
use mongodb::{Collection, Database};
use tokio::io::AsyncReadExt as _;
use tokio_util::compat::FuturesAsyncReadCompatExt as _;

use super::{BlobError, BlobReader, BlobResult, BlobStore, BlobWriter, RawBlobs, check_name};

/// The bucket's name.
const BUCKET: &str = "blobs";

/// The GridFS blob store (see the module documentation).
#[derive(Debug, Clone)]
pub struct GridFsBlobs {
    bucket: GridFsBucket,
    files: Collection<Document>,
    chunks: Collection<Document>,
    /// `blobs.first`: which file [`RawBlobs::first`] gives for a name.
    elected: Collection<Document>,
}

fn db_error(what: &str, e: impl std::fmt::Display) -> BlobError {
    BlobError::Storage(format!("gridfs {what}: {e}"))
}

fn part_filename(upload: &str) -> String {
    format!("upload:{upload}")
}

fn part_id(upload: &str, offset: u64) -> Bson {
    Bson::String(format!("{upload}.{offset}"))
}

fn now_ms() -> i64 {
    millis(SystemTime::now())
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl GridFsBlobs {
    /// The bucket in `db` (the cluster's database).
    pub fn new(db: &Database) -> Self {
        let options = GridFsBucketOptions::builder()
            .bucket_name(BUCKET.to_string())
            .build();
        GridFsBlobs {
            bucket: db.gridfs_bucket(options),
            files: db.collection(&format!("{BUCKET}.files")),
            chunks: db.collection(&format!("{BUCKET}.chunks")),
            elected: db.collection(&format!("{BUCKET}.first")),
        }
    }

    /// The id of the file elected for `key`, if one is.
    async fn elected_file(&self, key: &str) -> BlobResult<Option<Bson>> {
        Ok(self
            .elected
            .find_one(doc! { "_id": key })
            .await
            .map_err(|e| db_error("find elected", e))?
            .and_then(|d| d.get("file").cloned()))
    }

    /// Elects file `id` for `key` unless one is elected; the id of the elected file.
    async fn elect(&self, key: &str, id: Bson) -> BlobResult<Bson> {
        match self
            .elected
            .insert_one(doc! { "_id": key, "file": id.clone() })
            .await
        {
            Ok(_) => Ok(id),
            Err(e) if crate::store::mongo::is_duplicate(&e) => self
                .elected_file(key)
                .await?
                .ok_or_else(|| BlobError::Storage(format!("the elected file of {key} vanished"))),
            Err(e) => Err(db_error("elect", e)),
        }
    }

    /// The whole content of file `id`.
    async fn download(&self, id: Bson) -> BlobResult<Bytes> {
        let mut stream = self
            .bucket
            .open_download_stream(id)
            .await
            .map_err(|e| db_error("download", e))?
            .compat();
        let mut out = Vec::new();
        stream
            .read_to_end(&mut out)
            .await
            .map_err(|e| db_error("download", e))?;
        Ok(out.into())
    }

    /// The closed parts of an upload, by offset.
    async fn parts(&self, upload: &str) -> BlobResult<Vec<FilesCollectionDocument>> {
        let mut parts: Vec<FilesCollectionDocument> = self
            .bucket
            .find(doc! { "filename": part_filename(upload) })
            .await
            .map_err(|e| db_error("find", e))?
            .try_collect()
            .await
            .map_err(|e| db_error("find", e))?;
        parts.sort_by_key(|p| {
            p.metadata
                .as_ref()
                .and_then(|m| m.get_i64("offset").ok())
                .unwrap_or(0)
        });
        Ok(parts)
    }

    /// The newest file holding content `key`.
    async fn content(&self, key: &str) -> BlobResult<Option<FilesCollectionDocument>> {
        self.bucket
            .find_one(doc! { "filename": key })
            .sort(doc! { "uploadDate": -1 })
            .await
            .map_err(|e| db_error("find", e))
    }

    /// Every file holding content `key` (normally one; two commits that raced make two).
    async fn files_named(&self, key: &str) -> BlobResult<Vec<FilesCollectionDocument>> {
        check_name(key)?;
        self.bucket
            .find(doc! { "filename": key })
            .await
            .map_err(|e| db_error("find", e))?
            .try_collect()
            .await
            .map_err(|e| db_error("find", e))
    }

    /// Sets the claim time of every file holding content `key`; true when there is one.
    async fn claim(&self, key: &str) -> BlobResult<bool> {
        let result = self
            .files
            .update_many(
                doc! { "filename": key },
                doc! { "$set": { "metadata.claimed_at_ms": now_ms() } },
            )
            .await
            .map_err(|e| db_error("claim", e))?;
        Ok(result.matched_count > 0)
    }

    async fn remove_chunks(&self, id: Bson) -> BlobResult<()> {
        self.chunks
            .delete_many(doc! { "files_id": id })
            .await
            .map_err(|e| db_error("delete chunks", e))?;
        Ok(())
    }

    async fn remove(&self, id: Bson) -> BlobResult<()> {
        match self.bucket.delete(id.clone()).await {
            Ok(()) => Ok(()),
            // Its files document is gone already: the chunks may still be there.
            Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::GridFs(_)) => {
                self.remove_chunks(id).await
            }
            Err(e) => Err(db_error("delete", e)),
        }
    }

    async fn open_upload_stream(
        &self,
        filename: &str,
        id: Option<Bson>,
        metadata: Document,
    ) -> BlobResult<GridFsUploadStream> {
        let open = self.bucket.open_upload_stream(filename).metadata(metadata);
        let open = match id {
            Some(id) => open.id(id),
            None => open,
        };
        open.await.map_err(|e| db_error("open upload stream", e))
    }
}

/// Writes one part of an upload through the GridFS upload API.
struct PartWriter {
    stream: GridFsUploadStream,
}

#[async_trait]
impl BlobWriter for PartWriter {
    async fn write(&mut self, bytes: &[u8]) -> BlobResult<()> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| db_error("write", e))
    }

    async fn close(mut self: Box<Self>) -> BlobResult<()> {
        self.stream.close().await.map_err(|e| db_error("close", e))
    }
}

#[async_trait]
impl BlobStore for GridFsBlobs {
    fn backend(&self) -> &'static str {
        "gridfs"
    }

    async fn received(&self, upload: &str) -> BlobResult<u64> {
        check_name(upload)?;
        Ok(self.parts(upload).await?.iter().map(|p| p.length).sum())
    }

    async fn append(&self, upload: &str, offset: u64) -> BlobResult<Box<dyn BlobWriter>> {
        let have = self.received(upload).await?;
        if have != offset {
            return Err(BlobError::Offset {
                have,
                asked: offset,
            });
        }
        // Chunks of an earlier writer at this offset that never closed (its process died).
        self.remove_chunks(part_id(upload, offset)).await?;
        let stream = self
            .open_upload_stream(
                &part_filename(upload),
                Some(part_id(upload, offset)),
                doc! { "offset": i64::try_from(offset).unwrap_or(i64::MAX) },
            )
            .await?;
        Ok(Box::new(PartWriter { stream }))
    }

    async fn read_upload(&self, upload: &str) -> BlobResult<BlobReader> {
        check_name(upload)?;
        let parts = self.parts(upload).await?;
        if parts.is_empty() {
            return Err(BlobError::Range(format!("upload {upload} has no bytes")));
        }
        let bucket = self.bucket.clone();
        let streams = futures_util::stream::iter(parts).then(move |part| {
            let bucket = bucket.clone();
            async move {
                let download = bucket
                    .open_download_stream(part.id)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::new(download.compat()))
            }
        });
        let bytes = streams.try_flatten();
        Ok(Box::pin(tokio_util::io::StreamReader::new(bytes)))
    }

    async fn commit(&self, upload: &str, key: &str) -> BlobResult<()> {
        check_name(upload)?;
        check_name(key)?;
        let parts = self.parts(upload).await?;
        if self.claim(key).await? {
            for part in parts {
                self.remove(part.id).await?;
            }
            return Ok(());
        }
        match parts.as_slice() {
            [] => Err(BlobError::Range(format!("upload {upload} has no bytes"))),
            [only] => {
                self.bucket
                    .rename(only.id.clone(), key)
                    .await
                    .map_err(|e| db_error("rename", e))?;
                self.claim(key).await?;
                Ok(())
            }
            _ => {
                let mut reader = self.read_upload(upload).await?;
                let mut stream = self
                    .open_upload_stream(key, None, doc! { "claimed_at_ms": now_ms() })
                    .await?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = reader
                        .read(&mut buf)
                        .await
                        .map_err(|e| db_error("read", e))?;
                    if n == 0 {
                        break;
                    }
                    stream
                        .write_all(buf.get(..n).unwrap_or_default())
                        .await
                        .map_err(|e| db_error("write", e))?;
                }
                stream.close().await.map_err(|e| db_error("close", e))?;
                for part in parts {
                    self.remove(part.id).await?;
                }
                Ok(())
            }
        }
    }

    async fn put(&self, key: &str, bytes: Bytes) -> BlobResult<()> {
        check_name(key)?;
        if self.claim(key).await? {
            return Ok(());
        }
        let mut stream = self
            .open_upload_stream(key, None, doc! { "claimed_at_ms": now_ms() })
            .await?;
        stream
            .write_all(&bytes)
            .await
            .map_err(|e| db_error("write", e))?;
        stream.close().await.map_err(|e| db_error("close", e))
    }

    async fn discard(&self, upload: &str) -> BlobResult<()> {
        check_name(upload)?;
        let parts = self.parts(upload).await?;
        let end: u64 = parts.iter().map(|p| p.length).sum();
        for part in parts {
            self.remove(part.id).await?;
        }
        // A writer that died at the end never closed its part.
        self.remove_chunks(part_id(upload, end)).await
    }

    async fn open(&self, key: &str, offset: u64) -> BlobResult<Option<BlobReader>> {
        check_name(key)?;
        let Some(file) = self.content(key).await? else {
            return Ok(None);
        };
        if offset > file.length {
            return Err(BlobError::Range(format!(
                "offset {offset} is past the end ({} bytes)",
                file.length
            )));
        }
        let chunk_size = u64::from(file.chunk_size_bytes.max(1));
        let first = offset / chunk_size;
        let mut skip = usize::try_from(offset % chunk_size).unwrap_or(0);
        let cursor = self
            .chunks
            .find(doc! {
                "files_id": file.id,
                "n": { "$gte": i64::try_from(first).unwrap_or(i64::MAX) },
            })
            .sort(doc! { "n": 1 })
            .await
            .map_err(|e| db_error("find chunks", e))?;
        let bytes = cursor.map(move |chunk| {
            let chunk = chunk.map_err(std::io::Error::other)?;
            let data = chunk
                .get_binary_generic("data")
                .map_err(std::io::Error::other)?;
            // Past the end: nothing of this chunk is wanted.
            let rest = data.get(skip..).unwrap_or_default();
            skip = 0;
            Ok::<_, std::io::Error>(Bytes::copy_from_slice(rest))
        });
        Ok(Some(Box::pin(tokio_util::io::StreamReader::new(bytes))))
    }

    async fn delete(&self, key: &str, claimed_before: SystemTime) -> BlobResult<bool> {
        let files = self.files_named(key).await?;
        let cutoff = millis(claimed_before);
        let claimed_late = files.iter().any(|f| {
            f.metadata
                .as_ref()
                .and_then(|m| m.get_i64("claimed_at_ms").ok())
                .is_some_and(|at| at >= cutoff)
        });
        if claimed_late {
            return Ok(false);
        }
        for file in files {
            self.remove(file.id).await?;
        }
        Ok(true)
    }
}

#[async_trait]
impl RawBlobs for GridFsBlobs {
    async fn put_first(&self, key: &str, bytes: Bytes) -> BlobResult<()> {
        check_name(key)?;
        if self.elected_file(key).await?.is_some() {
            return Ok(());
        }
        let mine = Bson::ObjectId(mongodb::bson::oid::ObjectId::new());
        let mut stream = self
            .open_upload_stream(key, Some(mine.clone()), doc! { "claimed_at_ms": now_ms() })
            .await?;
        stream
            .write_all(&bytes)
            .await
            .map_err(|e| db_error("write", e))?;
        stream.close().await.map_err(|e| db_error("close", e))?;
        if self.elect(key, mine.clone()).await? != mine {
            // Another writer's file is the one; ours is never read.
            self.remove(mine).await?;
        }
        Ok(())
    }

    async fn first(&self, key: &str) -> BlobResult<Option<Bytes>> {
        check_name(key)?;
        let id = match self.elected_file(key).await? {
            Some(id) => id,
            None => match self.content(key).await? {
                Some(file) => self.elect(key, file.id).await?,
                None => return Ok(None),
            },
        };
        self.download(id).await.map(Some)
    }

    async fn list(&self, after: &str, limit: usize) -> BlobResult<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let mut from = after.to_owned();
        let batch = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        while out.len() < limit {
            let files: Vec<Document> = self
                .files
                .find(doc! { "filename": { "$gt": &from } })
                .projection(doc! { "filename": 1 })
                .sort(doc! { "filename": 1 })
                .limit(batch)
                .await
                .map_err(|e| db_error("list", e))?
                .try_collect()
                .await
                .map_err(|e| db_error("list", e))?;
            let Some(last) = files.last().and_then(|f| f.get_str("filename").ok()) else {
                break;
            };
            from = last.to_owned();
            for name in files.iter().filter_map(|f| f.get_str("filename").ok()) {
                // Upload parts are not content; a name held by two files is listed once.
                if !name.starts_with("upload:") && out.last().is_none_or(|l| l != name) {
                    out.push(name.to_owned());
                }
            }
            if files.len() < limit.max(1) {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn rewrite_head(&self, key: &str, head: &[u8]) -> BlobResult<bool> {
        let files = self.files_named(key).await?;
        for file in &files {
            let chunk = self
                .chunks
                .find_one(doc! { "files_id": file.id.clone(), "n": 0 })
                .await
                .map_err(|e| db_error("find chunk", e))?;
            let data = chunk
                .as_ref()
                .and_then(|c| c.get_binary_generic("data").ok())
                .cloned()
                .unwrap_or_default();
            let Some(rest) = data.get(head.len()..) else {
                return Err(BlobError::Range(format!(
                    "content {key} is shorter than a head of {} bytes",
                    head.len()
                )));
            };
            let mut new = head.to_vec();
            new.extend_from_slice(rest);
            let binary = mongodb::bson::Binary {
                subtype: mongodb::bson::spec::BinarySubtype::Generic,
                bytes: new,
            };
            self.chunks
                .update_one(
                    doc! { "files_id": file.id.clone(), "n": 0 },
                    doc! { "$set": { "data": binary } },
                )
                .await
                .map_err(|e| db_error("rewrite chunk", e))?;
        }
        Ok(!files.is_empty())
    }
}

#[cfg(test)]
mod tests {
    crate::blob_raw_conformance!(gridfs_raw, async {
        let store = crate::store::mongo::testserver::store().await;
        (
            crate::files::blob::gridfs::GridFsBlobs::new(&store.database()),
            store,
        )
    });
    crate::blob_conformance!(sealed_gridfs, async {
        let store = crate::store::mongo::testserver::store().await;
        let blobs = crate::files::blob::gridfs::GridFsBlobs::new(&store.database());
        let keys = std::sync::Arc::new(crate::atrest::MasterKeys::new(&[3; 32], &[]));
        let sealed =
            crate::files::blob::sealed::SealedBlobs::open(std::sync::Arc::new(blobs), keys)
                .await
                .expect("sealed");
        (sealed, store)
    });
    crate::blob_conformance!(gridfs, async {
        let store = crate::store::mongo::testserver::store().await;
        (
            crate::files::blob::gridfs::GridFsBlobs::new(&store.database()),
            store,
        )
    });
}
