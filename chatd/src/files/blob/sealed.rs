//! File bytes encrypted at rest: [`SealedBlobs`] over either backend, when a master key is
//! configured (`--encryption-key-file`). The formats are [`super::envelope`]'s.
//!
//! - **Content** (files, thumbnails) is stored in authenticated 64 KiB chunks under a random
//!   data key per content, wrapped by the master key in the content's head. A read from an
//!   offset decrypts from the chunk that holds it; a changed, moved or truncated chunk is an
//!   error ([`BlobError::Sealed`]), never other bytes.
//! - **Addresses**: content is stored under `HMAC(address key, content key)`, not under its
//!   SHA-256, so deduplication still finds equal content, but someone holding only the disk or
//!   the database cannot test whether a known file is stored. The address key is random, made
//!   once and kept as sealed content itself (named [`ADDRESS_KEY`]), so it survives master-key
//!   rotations. Nodes starting at once each make one, and the backend keeps the first stored
//!   ([`RawBlobs::put_first`]): every node uses that one.
//! - **Uploads** in progress are records sealed under a key derived from the master key and the
//!   upload's id. Finishing one seals its bytes into content (one pass) under its address.
//! - **Plain content** stored before encryption was turned on stays readable: it lives under its
//!   content key, where a read looks when the address holds nothing, and its first bytes are
//!   not [`envelope::MAGIC`]. [`SealedBlobs::maintain`] encrypts it (`chatd files encrypt`).
//! - **Rotation**: [`SealedBlobs::maintain`] re-wraps every data key wrapped by a previous
//!   master key with the current one, rewriting heads only ([`RawBlobs::rewrite_head`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _};
use ring::hmac;
use tokio::io::AsyncReadExt as _;

use super::envelope::{self, CHUNK, ContentKey, HEAD_LEN, Head, RECORD_HEADER, RecordHeader};
use super::{BlobError, BlobReader, BlobResult, BlobStore, BlobWriter, RawBlobs, check_name};
use crate::atrest::{AtRestError, MasterKeys};

/// The name of the sealed content that holds the address key.
pub const ADDRESS_KEY: &str = "address-key";

/// A backend with its content encrypted (see the module documentation).
pub struct SealedBlobs {
    inner: Arc<dyn RawBlobs>,
    keys: Arc<MasterKeys>,
    address: hmac::Key,
}

impl std::fmt::Debug for SealedBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedBlobs")
            .field("inner", &self.inner.backend())
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn io_error(e: std::io::Error) -> BlobError {
    match e.into_inner() {
        Some(inner) => match inner.downcast::<AtRestError>() {
            Ok(sealed) => BlobError::Sealed(*sealed),
            Err(other) => BlobError::Storage(other.to_string()),
        },
        None => BlobError::Storage("read failed".to_owned()),
    }
}

async fn read_all(mut reader: BlobReader) -> BlobResult<Vec<u8>> {
    let mut out = Vec::new();
    reader.read_to_end(&mut out).await.map_err(io_error)?;
    Ok(out)
}

/// Reads exactly `buf.len()` bytes, or fewer at the end; returns how many.
async fn read_full(reader: &mut BlobReader, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader
            .read(buf.get_mut(filled..).unwrap_or_default())
            .await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// What an upload's stored records hold.
struct Scan {
    /// Plaintext bytes in whole records.
    plain: u64,
    /// Stored bytes of the whole records.
    stored: u64,
    /// Bytes after the last whole record (a writer died mid-record).
    torn: bool,
}

/// What [`SealedBlobs::maintain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintained {
    /// Content looked at.
    pub checked: u64,
    /// Data keys re-wrapped with the current master key.
    pub rewrapped: u64,
    /// Plain content encrypted.
    pub encrypted: u64,
    /// Plain content left plain (not asked to encrypt it).
    pub plain: u64,
}

/// The name an upload's sealed content is staged under while it is written.
fn staging(upload: &str) -> String {
    format!("{upload}_sealed")
}

impl SealedBlobs {
    /// Encrypts what goes into `inner` with `keys`; reads (or makes, the first time) the
    /// address key. Fails when the address key is wrapped by a master key not in `keys`.
    pub async fn open(inner: Arc<dyn RawBlobs>, keys: Arc<MasterKeys>) -> BlobResult<SealedBlobs> {
        let address = match Self::address_key(&*inner, &keys).await? {
            Some(key) => key,
            None => {
                let key: [u8; 32] = rand::random();
                let sealed = envelope::seal_content(&keys, ADDRESS_KEY, &key);
                inner.put_first(ADDRESS_KEY, sealed.into()).await?;
                // Another node may have stored its key first: the one kept counts.
                Self::address_key(&*inner, &keys).await?.ok_or_else(|| {
                    BlobError::Storage("the address key vanished after it was stored".into())
                })?
            }
        };
        Ok(SealedBlobs {
            inner,
            keys,
            address: hmac::Key::new(hmac::HMAC_SHA256, &address),
        })
    }

    async fn address_key(inner: &dyn RawBlobs, keys: &MasterKeys) -> BlobResult<Option<[u8; 32]>> {
        let Some(sealed) = inner.first(ADDRESS_KEY).await? else {
            return Ok(None);
        };
        let plain = envelope::open_content(keys, ADDRESS_KEY, &sealed)?
            .ok_or_else(|| AtRestError::Format(format!("the file store's {ADDRESS_KEY}")))?;
        let key = plain
            .try_into()
            .map_err(|_| AtRestError::Format(format!("the file store's {ADDRESS_KEY}")))?;
        Ok(Some(key))
    }

    /// True when the files in `inner` are encrypted (an address key is stored): a server
    /// without a master key must not start on them.
    pub async fn is_sealed(inner: &dyn BlobStore) -> BlobResult<bool> {
        Ok(inner.open(ADDRESS_KEY, 0).await?.is_some())
    }

    /// Where content `key` is stored.
    fn address(&self, key: &str) -> BlobResult<String> {
        check_name(key)?;
        Ok(hex::encode(hmac::sign(&self.address, key.as_bytes())))
    }

    /// Reads the lengths of the stored records of `upload`.
    async fn scan(&self, upload: &str) -> BlobResult<Scan> {
        let mut scan = Scan {
            plain: 0,
            stored: 0,
            torn: false,
        };
        if self.inner.received(upload).await? == 0 {
            return Ok(scan);
        }
        let mut reader = self.inner.read_upload(upload).await?;
        let mut header = [0u8; RECORD_HEADER];
        let mut body = Vec::new();
        loop {
            let n = read_full(&mut reader, &mut header)
                .await
                .map_err(io_error)?;
            if n == 0 {
                return Ok(scan);
            }
            if n < RECORD_HEADER {
                scan.torn = true;
                return Ok(scan);
            }
            let record = RecordHeader::parse(&header, upload)?;
            body.resize(record.body_len(), 0);
            if read_full(&mut reader, &mut body).await.map_err(io_error)? < body.len() {
                scan.torn = true;
                return Ok(scan);
            }
            scan.plain += record.len as u64;
            scan.stored += (RECORD_HEADER + record.body_len()) as u64;
        }
    }

    /// Seals `source` (exactly `size` plaintext bytes) as content `address`, through an upload
    /// staged as `stage`, and commits it.
    async fn seal_into(
        &self,
        mut source: BlobReader,
        size: u64,
        stage: &str,
        address: &str,
    ) -> BlobResult<()> {
        self.inner.discard(stage).await?;
        let (head, key) = Head::new(&self.keys, address, size);
        let mut writer = self.inner.append(stage, 0).await?;
        let written = async {
            writer.write(&head.to_bytes()).await?;
            let count = envelope::chunk_count(size);
            let mut buf = Vec::with_capacity(CHUNK + envelope::TAG);
            for index in 0..count {
                buf.resize(envelope::chunk_len(size, index) - envelope::TAG, 0);
                if read_full(&mut source, &mut buf).await.map_err(io_error)? < buf.len() {
                    return Err(BlobError::Range(format!(
                        "the bytes for {address} ended before {size} bytes"
                    )));
                }
                key.seal_chunk(index, index + 1 == count, &mut buf);
                writer.write(&buf).await?;
            }
            Ok(())
        }
        .await;
        let closed = writer.close().await;
        written?;
        closed?;
        self.inner.commit(stage, address).await
    }

    /// Re-wraps data keys of a previous master key with the current one and, when `encrypt`
    /// is set, encrypts plain content (stored before encryption was turned on). Online: the
    /// server reads content in either state meanwhile.
    pub async fn maintain(&self, encrypt: bool) -> BlobResult<Maintained> {
        let mut done = Maintained::default();
        let mut after = String::new();
        loop {
            let names = self.inner.list(&after, 100).await?;
            let Some(last) = names.last() else {
                return Ok(done);
            };
            after = last.clone();
            for name in names {
                done.checked += 1;
                let Some(reader) = self.inner.open(&name, 0).await? else {
                    continue;
                };
                let mut head = vec![0u8; HEAD_LEN];
                let mut reader = reader;
                let n = read_full(&mut reader, &mut head).await.map_err(io_error)?;
                drop(reader);
                match Head::parse(head.get(..n).unwrap_or_default(), &name)? {
                    Some(head) => {
                        if let Some(new) = head.rewrap(&self.keys, &name)? {
                            self.inner.rewrite_head(&name, &new.to_bytes()).await?;
                            done.rewrapped += 1;
                        }
                    }
                    None if encrypt => {
                        self.encrypt_plain(&name).await?;
                        done.encrypted += 1;
                    }
                    None => done.plain += 1,
                }
            }
        }
    }

    /// Encrypts plain content `name` (its content key) to its address, then removes it.
    async fn encrypt_plain(&self, name: &str) -> BlobResult<()> {
        let address = self.address(name)?;
        if self.inner.open(&address, 0).await?.is_none() {
            let plain = read_all(
                self.inner
                    .open(name, 0)
                    .await?
                    .ok_or_else(|| BlobError::Range(format!("content {name} vanished")))?,
            )
            .await?;
            let size = plain.len() as u64;
            let source: BlobReader = Box::pin(std::io::Cursor::new(plain));
            self.seal_into(source, size, &format!("plain_{name}"), &address)
                .await?;
        }
        // The sealed copy serves every read from now on.
        let never_claimed = SystemTime::now() + Duration::from_secs(365 * 24 * 3600);
        self.inner.delete(name, never_claimed).await?;
        Ok(())
    }

    /// A reader of sealed content `address` (whose head is `head`) from plaintext `offset`.
    async fn decrypting(
        &self,
        address: String,
        head: Head,
        offset: u64,
        first: BlobReader,
    ) -> BlobResult<BlobReader> {
        let key = Arc::new(head.open(&self.keys, &address)?);
        let size = head.size;
        let count = envelope::chunk_count(size);
        let index = (offset / CHUNK as u64).min(count);
        let reader = if index == 0 {
            first
        } else {
            drop(first);
            self.inner
                .open(&address, envelope::chunk_offset(index))
                .await?
                .ok_or_else(|| BlobError::Range(format!("content {address} vanished")))?
        };
        let skip = (offset - index * CHUNK as u64) as usize;
        let chunks = futures_util::stream::try_unfold(
            (reader, index, skip),
            move |(mut reader, index, skip)| {
                let key: Arc<ContentKey> = key.clone();
                let address = address.clone();
                async move {
                    if index >= count {
                        return Ok::<_, std::io::Error>(None);
                    }
                    let mut buf = vec![0u8; envelope::chunk_len(size, index)];
                    if read_full(&mut reader, &mut buf).await? < buf.len() {
                        let e = AtRestError::Tampered(format!(
                            "file content {address} (truncated at chunk {index})"
                        ));
                        return Err(std::io::Error::other(e));
                    }
                    let plain = key
                        .open_chunk(index, index + 1 == count, &mut buf)
                        .map_err(std::io::Error::other)?;
                    let bytes = Bytes::copy_from_slice(plain.get(skip..).unwrap_or_default());
                    Ok(Some((bytes, (reader, index + 1, 0))))
                }
            },
        );
        // The first chunk is checked before the reader is handed out, so content that does not
        // open is an error of `open` (a refused download), not a stream that breaks at once.
        let mut chunks = Box::pin(chunks);
        let first = chunks.try_next().await.map_err(io_error)?;
        let rest = futures_util::stream::iter(first.map(Ok)).chain(chunks);
        Ok(Box::pin(tokio_util::io::StreamReader::new(rest)))
    }
}

/// Seals an upload's bytes into records of at most [`CHUNK`] plaintext bytes.
struct SealedWriter {
    inner: Box<dyn BlobWriter>,
    keys: Arc<MasterKeys>,
    upload: String,
    /// Plaintext offset of `buf`'s first byte.
    offset: u64,
    buf: Vec<u8>,
}

impl SealedWriter {
    async fn flush_record(&mut self, len: usize) -> BlobResult<()> {
        let rest = self.buf.split_off(len.min(self.buf.len()));
        let plain = std::mem::replace(&mut self.buf, rest);
        let record = envelope::seal_record(&self.keys, &self.upload, self.offset, &plain);
        self.inner.write(&record).await?;
        self.offset += plain.len() as u64;
        Ok(())
    }
}

#[async_trait]
impl BlobWriter for SealedWriter {
    async fn write(&mut self, bytes: &[u8]) -> BlobResult<()> {
        self.buf.extend_from_slice(bytes);
        while self.buf.len() >= CHUNK {
            self.flush_record(CHUNK).await?;
        }
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> BlobResult<()> {
        let flushed = if self.buf.is_empty() {
            Ok(())
        } else {
            let len = self.buf.len();
            self.flush_record(len).await
        };
        let closed = self.inner.close().await;
        flushed?;
        closed
    }
}

#[async_trait]
impl BlobStore for SealedBlobs {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn received(&self, upload: &str) -> BlobResult<u64> {
        check_name(upload)?;
        let scan = self.scan(upload).await?;
        // A record a dead writer left half-written: the upload starts over.
        Ok(if scan.torn { 0 } else { scan.plain })
    }

    async fn append(&self, upload: &str, offset: u64) -> BlobResult<Box<dyn BlobWriter>> {
        check_name(upload)?;
        let scan = self.scan(upload).await?;
        let have = if scan.torn { 0 } else { scan.plain };
        if have != offset {
            return Err(BlobError::Offset {
                have,
                asked: offset,
            });
        }
        let stored = if scan.torn {
            self.inner.discard(upload).await?;
            0
        } else {
            scan.stored
        };
        Ok(Box::new(SealedWriter {
            inner: self.inner.append(upload, stored).await?,
            keys: self.keys.clone(),
            upload: upload.to_owned(),
            offset,
            buf: Vec::with_capacity(CHUNK),
        }))
    }

    async fn read_upload(&self, upload: &str) -> BlobResult<BlobReader> {
        check_name(upload)?;
        let scan = self.scan(upload).await?;
        if scan.plain == 0 || scan.torn {
            return Err(BlobError::Range(format!("upload {upload} has no bytes")));
        }
        let reader = self.inner.read_upload(upload).await?;
        let keys = self.keys.clone();
        let upload = upload.to_owned();
        let records =
            futures_util::stream::try_unfold((reader, 0u64), move |(mut reader, offset)| {
                let keys = keys.clone();
                let upload = upload.clone();
                async move {
                    let mut header = [0u8; RECORD_HEADER];
                    if read_full(&mut reader, &mut header).await? < RECORD_HEADER {
                        return Ok::<_, std::io::Error>(None);
                    }
                    let record =
                        RecordHeader::parse(&header, &upload).map_err(std::io::Error::other)?;
                    let mut body = vec![0u8; record.body_len()];
                    if read_full(&mut reader, &mut body).await? < body.len() {
                        return Ok(None);
                    }
                    let plain = record
                        .open(&keys, &upload, offset, &mut body)
                        .map_err(std::io::Error::other)?;
                    let bytes = Bytes::copy_from_slice(plain);
                    Ok(Some((bytes, (reader, offset + record.len as u64))))
                }
            });
        Ok(Box::pin(tokio_util::io::StreamReader::new(records)))
    }

    async fn commit(&self, upload: &str, key: &str) -> BlobResult<()> {
        let address = self.address(key)?;
        let scan = self.scan(upload).await?;
        if scan.plain == 0 && scan.stored == 0 {
            return Err(BlobError::Range(format!("upload {upload} has no bytes")));
        }
        let source = self.read_upload(upload).await?;
        self.seal_into(source, scan.plain, &staging(upload), &address)
            .await?;
        self.inner.discard(upload).await
    }

    async fn put(&self, key: &str, bytes: Bytes) -> BlobResult<()> {
        let address = self.address(key)?;
        let sealed = envelope::seal_content(&self.keys, &address, &bytes);
        self.inner.put(&address, sealed.into()).await
    }

    async fn discard(&self, upload: &str) -> BlobResult<()> {
        self.inner.discard(upload).await?;
        self.inner.discard(&staging(upload)).await
    }

    async fn open(&self, key: &str, offset: u64) -> BlobResult<Option<BlobReader>> {
        let address = self.address(key)?;
        let Some(mut reader) = self.inner.open(&address, 0).await? else {
            // Content stored before encryption was turned on.
            return self.inner.open(key, offset).await;
        };
        let mut head = vec![0u8; HEAD_LEN];
        let n = read_full(&mut reader, &mut head).await.map_err(io_error)?;
        let head = Head::parse(head.get(..n).unwrap_or_default(), &address)?
            .ok_or_else(|| AtRestError::Format(format!("file content {address}")))?;
        if offset > head.size {
            return Err(BlobError::Range(format!(
                "offset {offset} is past the end ({} bytes)",
                head.size
            )));
        }
        Ok(Some(self.decrypting(address, head, offset, reader).await?))
    }

    async fn delete(&self, key: &str, claimed_before: SystemTime) -> BlobResult<bool> {
        let address = self.address(key)?;
        let sealed = self.inner.delete(&address, claimed_before).await?;
        let plain = self.inner.delete(key, claimed_before).await?;
        Ok(sealed && plain)
    }
}

/// A rotation re-wraps the data keys of all content ([`SealedBlobs::maintain`]); the keys it
/// uses are the store's own, which are the server's (`keys` is the same `Arc`).
#[async_trait]
impl crate::atrest::Rewrap for SealedBlobs {
    fn what(&self) -> &'static str {
        "the file store"
    }

    async fn rewrap(&self, _keys: &MasterKeys) -> Result<u64, crate::atrest::RewrapError> {
        Ok(self.maintain(false).await?.rewrapped)
    }
}

#[cfg(test)]
mod tests;
