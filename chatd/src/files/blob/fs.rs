//! File bytes on the local filesystem, under `<data dir>/files/`:
//!
//! - `uploads/<upload id>`: an upload's bytes so far, appended to by each upload stream.
//! - `blobs/<first two hex digits>/<content key>`: finished content, read-only from then on.
//! - `tmp/`: thumbnails being written.
//!
//! Finishing an upload fsyncs its file, renames it to its content key and fsyncs the directory,
//! so the blob is durable before the database row that names it is written. A blob's
//! modification time is its claim time: a commit of content that exists already touches it.
//!
//! [`RawBlobs::rewrite_head`] writes the new head over the old in one write at offset 0 and
//! syncs it: heads are shorter than a disk sector (512 bytes), which storage writes whole.
//! [`RawBlobs::put_first`] writes a file in `tmp/` and hard-links it to the blob's name, which
//! fails when the name exists: the first link wins, atomically, also between processes sharing
//! the directory.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use super::{BlobError, BlobReader, BlobResult, BlobStore, BlobWriter, RawBlobs, check_name};

/// The filesystem blob store (see the module documentation).
#[derive(Debug, Clone)]
pub struct FsBlobs {
    root: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> BlobError {
    BlobError::Storage(format!("{what} {}: {e}", path.display()))
}

impl FsBlobs {
    /// Uses (creating it with owner-only permissions) `root`, e.g. `<data dir>/files`.
    pub fn open(root: impl Into<PathBuf>) -> BlobResult<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        let root = root.into();
        for dir in [
            root.clone(),
            root.join("uploads"),
            root.join("blobs"),
            root.join("tmp"),
        ] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| io("cannot create", &dir, e))?;
        }
        Ok(FsBlobs { root })
    }

    fn upload_path(&self, upload: &str) -> BlobResult<PathBuf> {
        check_name(upload)?;
        Ok(self.root.join("uploads").join(upload))
    }

    fn blob_path(&self, key: &str) -> BlobResult<PathBuf> {
        check_name(key)?;
        let shard = key.get(..2).unwrap_or("00");
        Ok(self.root.join("blobs").join(shard).join(key))
    }
}

/// Appends to an upload file; its length is the upload's offset.
struct FsWriter {
    file: tokio::fs::File,
    path: PathBuf,
}

#[async_trait]
impl BlobWriter for FsWriter {
    async fn write(&mut self, bytes: &[u8]) -> BlobResult<()> {
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| io("cannot write", &self.path, e))
    }

    async fn close(mut self: Box<Self>) -> BlobResult<()> {
        self.file
            .flush()
            .await
            .map_err(|e| io("cannot write", &self.path, e))
    }
}

/// Moves `from` to `to` unless `to` exists (then `from` is removed and `to` touched), and makes
/// the result durable. Blocking.
fn install(from: &Path, to: &Path) -> BlobResult<()> {
    let dir = prepare(from, to)?;
    if to.exists() {
        std::fs::remove_file(from).map_err(|e| io("cannot remove", from, e))?;
        let blob = std::fs::File::options()
            .write(true)
            .open(to)
            .map_err(|e| io("cannot open", to, e))?;
        blob.set_modified(SystemTime::now())
            .map_err(|e| io("cannot touch", to, e))?;
        return Ok(());
    }
    std::fs::rename(from, to).map_err(|e| io("cannot rename to", to, e))?;
    sync_dir(dir)
}

/// Syncs `from` and creates the directory of `to`, which it returns: what both ways of
/// installing a blob do first.
fn prepare<'a>(from: &Path, to: &'a Path) -> BlobResult<&'a Path> {
    let file = std::fs::File::open(from).map_err(|e| io("cannot open", from, e))?;
    file.sync_all().map_err(|e| io("cannot sync", from, e))?;
    let dir = to.parent().unwrap_or(to);
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    Ok(dir)
}

fn sync_dir(dir: &Path) -> BlobResult<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync", dir, e))
}

/// Links the synced file `from` to `to` unless `to` exists, then removes `from`; syncs the
/// directory when the link was made.
fn install_first(from: &Path, to: &Path) -> BlobResult<()> {
    let dir = prepare(from, to)?;
    let linked = match std::fs::hard_link(from, to) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(io("cannot link to", to, e)),
    };
    std::fs::remove_file(from).map_err(|e| io("cannot remove", from, e))?;
    if linked {
        sync_dir(dir)?;
    }
    Ok(())
}

impl FsBlobs {
    /// Writes `bytes` to a file of its own in `tmp/`, then makes it the blob of `key` with
    /// `install` ([`install`] or [`install_first`]).
    async fn write_and_install(
        &self,
        key: &str,
        bytes: Bytes,
        install: fn(&Path, &Path) -> BlobResult<()>,
    ) -> BlobResult<()> {
        let to = self.blob_path(key)?;
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{key}.{:016x}", rand::random::<u64>()));
        blocking(move || {
            std::fs::write(&tmp, &bytes).map_err(|e| io("cannot write", &tmp, e))?;
            install(&tmp, &to)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> BlobResult<T> + Send + 'static,
) -> BlobResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BlobError::Storage(format!("file storage task failed: {e}")))?
}

#[async_trait]
impl BlobStore for FsBlobs {
    fn backend(&self) -> &'static str {
        "filesystem"
    }

    async fn received(&self, upload: &str) -> BlobResult<u64> {
        let path = self.upload_path(upload)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(meta.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io("cannot stat", &path, e)),
        }
    }

    async fn append(&self, upload: &str, offset: u64) -> BlobResult<Box<dyn BlobWriter>> {
        let path = self.upload_path(upload)?;
        let mut file = tokio::fs::File::options()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(|e| io("cannot open", &path, e))?;
        let have = file
            .seek(SeekFrom::End(0))
            .await
            .map_err(|e| io("cannot seek", &path, e))?;
        if have != offset {
            return Err(BlobError::Offset {
                have,
                asked: offset,
            });
        }
        Ok(Box::new(FsWriter { file, path }))
    }

    async fn read_upload(&self, upload: &str) -> BlobResult<BlobReader> {
        let path = self.upload_path(upload)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => Ok(Box::pin(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::Range(format!("upload {upload} has no bytes")))
            }
            Err(e) => Err(io("cannot open", &path, e)),
        }
    }

    async fn commit(&self, upload: &str, key: &str) -> BlobResult<()> {
        let (from, to) = (self.upload_path(upload)?, self.blob_path(key)?);
        blocking(move || install(&from, &to)).await
    }

    async fn put(&self, key: &str, bytes: Bytes) -> BlobResult<()> {
        self.write_and_install(key, bytes, install).await
    }

    async fn discard(&self, upload: &str) -> BlobResult<()> {
        let path = self.upload_path(upload)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("cannot remove", &path, e)),
        }
    }

    async fn open(&self, key: &str, offset: u64) -> BlobResult<Option<BlobReader>> {
        let path = self.blob_path(key)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("cannot open", &path, e)),
        };
        let size = file
            .metadata()
            .await
            .map_err(|e| io("cannot stat", &path, e))?
            .len();
        if offset > size {
            return Err(BlobError::Range(format!(
                "offset {offset} is past the end ({size} bytes)"
            )));
        }
        file.seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| io("cannot seek", &path, e))?;
        Ok(Some(Box::pin(file)))
    }

    async fn delete(&self, key: &str, claimed_before: SystemTime) -> BlobResult<bool> {
        let path = self.blob_path(key)?;
        let claimed = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta.modified().map_err(|e| io("cannot stat", &path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(io("cannot stat", &path, e)),
        };
        if claimed >= claimed_before {
            return Ok(false);
        }
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(io("cannot remove", &path, e)),
        }
    }
}

/// The names in one shard directory greater than `after`. Blocking.
fn shard_names(dir: &Path, after: &str) -> BlobResult<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("cannot list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io("cannot list", dir, e))?;
        if let Some(name) = entry.file_name().to_str()
            && name > after
        {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

#[async_trait]
impl RawBlobs for FsBlobs {
    async fn put_first(&self, key: &str, bytes: Bytes) -> BlobResult<()> {
        self.write_and_install(key, bytes, install_first).await
    }

    async fn first(&self, key: &str) -> BlobResult<Option<Bytes>> {
        let path = self.blob_path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read", &path, e)),
        }
    }

    async fn list(&self, after: &str, limit: usize) -> BlobResult<Vec<String>> {
        let blobs = self.root.join("blobs");
        let after = after.to_owned();
        blocking(move || {
            let mut shards: Vec<String> = shard_names(&blobs, "")?;
            shards.sort();
            // A shard holds the names that begin with it: earlier shards hold smaller names.
            let first = after.get(..2).unwrap_or("");
            let mut out = Vec::new();
            for shard in shards.iter().filter(|s| s.as_str() >= first) {
                let mut names = shard_names(&blobs.join(shard), &after)?;
                names.sort();
                out.extend(names);
                if out.len() >= limit {
                    break;
                }
            }
            out.truncate(limit);
            Ok(out)
        })
        .await
    }

    async fn rewrite_head(&self, key: &str, head: &[u8]) -> BlobResult<bool> {
        use std::os::unix::fs::FileExt as _;
        let path = self.blob_path(key)?;
        let head = head.to_vec();
        blocking(move || {
            let file = match std::fs::File::options().write(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io("cannot open", &path, e)),
            };
            let meta = file.metadata().map_err(|e| io("cannot stat", &path, e))?;
            if meta.len() < head.len() as u64 {
                return Err(BlobError::Range(format!(
                    "content {} is shorter than a head of {} bytes",
                    path.display(),
                    head.len()
                )));
            }
            let claimed = meta.modified().map_err(|e| io("cannot stat", &path, e))?;
            file.write_all_at(&head, 0)
                .map_err(|e| io("cannot write", &path, e))?;
            file.sync_data().map_err(|e| io("cannot sync", &path, e))?;
            file.set_modified(claimed)
                .map_err(|e| io("cannot touch", &path, e))?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    crate::blob_raw_conformance!(filesystem_raw, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = crate::files::blob::fs::FsBlobs::open(dir.path().join("files")).expect("open");
        (blobs, dir)
    });
    crate::blob_conformance!(sealed_filesystem, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = crate::files::blob::fs::FsBlobs::open(dir.path().join("files")).expect("open");
        let keys = std::sync::Arc::new(crate::atrest::MasterKeys::new(&[3; 32], &[]));
        let sealed =
            crate::files::blob::sealed::SealedBlobs::open(std::sync::Arc::new(blobs), keys)
                .await
                .expect("sealed");
        (sealed, dir)
    });
    crate::blob_conformance!(filesystem, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = crate::files::blob::fs::FsBlobs::open(dir.path().join("files")).expect("open");
        (blobs, dir)
    });
}
