//! The formats of encrypted file bytes (see [`super::sealed`]), pure: no I/O.
//!
//! **Content** (a finished file or thumbnail) is a head and chunks:
//!
//! ```text
//! head:   "CHATDENC" | version 1 | plaintext size (u64 BE) | wrapped data key (68 bytes)
//! chunk i: AES-256-GCM(data key, nonce = i (96-bit BE), aad = name | i (u64 BE) | final (u8))
//!          of plaintext bytes [i * 64 KiB, (i + 1) * 64 KiB), then its 16-byte tag
//! ```
//!
//! The data key is random per content and wrapped by the master key with the content's name
//! and size as context, so a head moved to another blob, or a size changed, does not open.
//! Every chunk but the last holds exactly [`CHUNK`] bytes, so chunk `i` starts at a computed
//! offset and a range read decrypts only the chunks it needs; the last is flagged final in its
//! associated data, and the size is authenticated, so a truncated blob is an error, never a
//! shorter file. A blob of 0 bytes has one (final, empty) chunk.
//!
//! **Upload bytes** (an upload in progress, appended to by streams of any length) are records:
//!
//! ```text
//! record: plaintext length (u32 BE) | master key id (8) | nonce (12, random)
//!         | AES-256-GCM(upload key, aad = upload id | plaintext offset (u64 BE)) | tag (16)
//! ```
//!
//! The upload key is derived from the master key and the upload's id, so nothing needs storing
//! and any node continues an upload; binding the offset keeps records in their place.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::atrest::{AtRestError, KeyId, MasterKeys, WRAPPED_LEN, Wrapped};

/// Plaintext bytes per content chunk.
pub const CHUNK: usize = 64 * 1024;
/// The AES-GCM tag after each chunk and record.
pub const TAG: usize = 16;
/// The first bytes of every encrypted content blob.
pub const MAGIC: &[u8; 8] = b"CHATDENC";
const VERSION: u8 = 1;
/// Length of a content head.
pub const HEAD_LEN: usize = MAGIC.len() + 1 + 8 + WRAPPED_LEN;
/// Length of a record's header.
pub const RECORD_HEADER: usize = 4 + 8 + NONCE_LEN;
/// The largest plaintext of one record: records are cut at [`CHUNK`].
pub const MAX_RECORD: usize = CHUNK;

fn aead(key: &[u8; 32]) -> LessSafeKey {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .unwrap_or_else(|_| unreachable!("AES-256 takes 32-byte keys"))
}

/// How many chunks content of `size` bytes has (at least one).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK as u64).max(1)
}

/// Where chunk `index` starts in the blob.
pub fn chunk_offset(index: u64) -> u64 {
    HEAD_LEN as u64 + index * (CHUNK + TAG) as u64
}

/// The stored length (ciphertext and tag) of chunk `index` of content of `size` bytes.
pub fn chunk_len(size: u64, index: u64) -> usize {
    let start = index * CHUNK as u64;
    let plain = size.saturating_sub(start).min(CHUNK as u64);
    plain as usize + TAG
}

/// The stored length of content of `size` bytes.
#[cfg(test)]
pub fn sealed_len(size: u64) -> u64 {
    HEAD_LEN as u64 + size + chunk_count(size) * TAG as u64
}

fn wrap_context(name: &str, size: u64) -> Vec<u8> {
    let mut context = b"chatd blob v1\0".to_vec();
    context.extend_from_slice(name.as_bytes());
    context.push(0);
    context.extend_from_slice(&size.to_be_bytes());
    context
}

/// The decoded head of a content blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The plaintext size.
    pub size: u64,
    /// The wrapped data key.
    pub wrapped: Wrapped,
}

impl Head {
    /// Decodes a head; `None` when `bytes` does not begin with [`MAGIC`] (plain content).
    pub fn parse(bytes: &[u8], name: &str) -> Result<Option<Head>, AtRestError> {
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return Ok(None);
        };
        let format = || AtRestError::Format(format!("file content {name}"));
        let (&version, rest) = rest.split_first().ok_or_else(format)?;
        if version != VERSION {
            return Err(format());
        }
        let (size, rest) = rest.split_first_chunk::<8>().ok_or_else(format)?;
        let (wrapped, _) = rest.split_first_chunk::<WRAPPED_LEN>().ok_or_else(format)?;
        Ok(Some(Head {
            size: u64::from_be_bytes(*size),
            wrapped: Wrapped::from_bytes(wrapped),
        }))
    }

    /// Its encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.wrapped.to_bytes());
        out
    }

    /// A new head for content `name` of `size` bytes, with a new data key wrapped by the
    /// current master key.
    pub fn new(keys: &MasterKeys, name: &str, size: u64) -> (Head, ContentKey) {
        let data_key: [u8; 32] = rand::random();
        let wrapped = keys.wrap(&data_key, &wrap_context(name, size));
        (
            Head { size, wrapped },
            ContentKey {
                aead: aead(&data_key),
                name: name.to_owned(),
            },
        )
    }

    /// Unwraps the data key of content `name`.
    pub fn open(&self, keys: &MasterKeys, name: &str) -> Result<ContentKey, AtRestError> {
        let what = format!("file content {name}");
        let data_key = keys.unwrap(&self.wrapped, &wrap_context(name, self.size), &what)?;
        Ok(ContentKey {
            aead: aead(&data_key),
            name: name.to_owned(),
        })
    }

    /// The same head with its data key wrapped by the current master key; `None` when it is
    /// already.
    pub fn rewrap(&self, keys: &MasterKeys, name: &str) -> Result<Option<Head>, AtRestError> {
        if self.wrapped.key_id == keys.current_id() {
            return Ok(None);
        }
        let what = format!("file content {name}");
        let context = wrap_context(name, self.size);
        let data_key = keys.unwrap(&self.wrapped, &context, &what)?;
        Ok(Some(Head {
            size: self.size,
            wrapped: keys.wrap(&data_key, &context),
        }))
    }
}

/// The data key of one content blob, bound to its name.
pub struct ContentKey {
    aead: LessSafeKey,
    name: String,
}

impl ContentKey {
    fn nonce_aad(&self, index: u64, last: bool) -> (Nonce, Vec<u8>) {
        let mut nonce = [0u8; NONCE_LEN];
        if let Some((_, tail)) = nonce.split_last_chunk_mut::<8>() {
            *tail = index.to_be_bytes();
        }
        let mut aad = Vec::with_capacity(self.name.len() + 9);
        aad.extend_from_slice(self.name.as_bytes());
        aad.extend_from_slice(&index.to_be_bytes());
        aad.push(u8::from(last));
        (Nonce::assume_unique_for_key(nonce), aad)
    }

    /// Encrypts chunk `index` (`last` when it is the final one) in place, appending its tag.
    pub fn seal_chunk(&self, index: u64, last: bool, buf: &mut Vec<u8>) {
        let (nonce, aad) = self.nonce_aad(index, last);
        self.aead
            .seal_in_place_append_tag(nonce, Aad::from(aad), buf)
            .unwrap_or_else(|_| unreachable!("a chunk is within AES-GCM's limits"));
    }

    /// Decrypts chunk `index` in place; returns its plaintext.
    pub fn open_chunk<'b>(
        &self,
        index: u64,
        last: bool,
        buf: &'b mut [u8],
    ) -> Result<&'b mut [u8], AtRestError> {
        let (nonce, aad) = self.nonce_aad(index, last);
        self.aead
            .open_in_place(nonce, Aad::from(aad), buf)
            .map_err(|_| {
                AtRestError::Tampered(format!("chunk {index} of file content {}", self.name))
            })
    }
}

/// Seals whole content `name` in memory (small content: thumbnails, keys).
pub fn seal_content(keys: &MasterKeys, name: &str, plain: &[u8]) -> Vec<u8> {
    let size = plain.len() as u64;
    let (head, key) = Head::new(keys, name, size);
    let mut out = head.to_bytes();
    out.reserve(plain.len() + chunk_count(size) as usize * TAG);
    let count = chunk_count(size);
    let mut chunks = plain.chunks(CHUNK);
    for index in 0..count {
        let mut buf = chunks.next().unwrap_or_default().to_vec();
        key.seal_chunk(index, index + 1 == count, &mut buf);
        out.extend_from_slice(&buf);
    }
    out
}

/// Opens whole content `name` sealed by [`seal_content`]; `None` when it is plain.
pub fn open_content(
    keys: &MasterKeys,
    name: &str,
    sealed: &[u8],
) -> Result<Option<Vec<u8>>, AtRestError> {
    let Some(head) = Head::parse(sealed, name)? else {
        return Ok(None);
    };
    let key = head.open(keys, name)?;
    let mut rest = sealed.get(HEAD_LEN..).unwrap_or_default();
    let count = chunk_count(head.size);
    let mut out = Vec::with_capacity(usize::try_from(head.size).unwrap_or(0));
    for index in 0..count {
        let len = chunk_len(head.size, index);
        let Some((chunk, tail)) = rest.split_at_checked(len) else {
            return Err(AtRestError::Tampered(format!(
                "file content {name} (truncated)"
            )));
        };
        let mut buf = chunk.to_vec();
        out.extend_from_slice(key.open_chunk(index, index + 1 == count, &mut buf)?);
        rest = tail;
    }
    Ok(Some(out))
}

fn upload_key(keys: &MasterKeys, id: KeyId, upload: &str) -> Result<LessSafeKey, AtRestError> {
    let mut purpose = b"chatd upload v1\0".to_vec();
    purpose.extend_from_slice(upload.as_bytes());
    let what = format!("the bytes of upload {upload}");
    Ok(aead(&keys.derive(id, &purpose, &what)?))
}

fn record_aad(upload: &str, offset: u64) -> Vec<u8> {
    let mut aad = upload.as_bytes().to_vec();
    aad.extend_from_slice(&offset.to_be_bytes());
    aad
}

/// Seals `plain` (at most [`MAX_RECORD`] bytes) as the record at plaintext `offset` of
/// `upload`, with the current master key.
pub fn seal_record(keys: &MasterKeys, upload: &str, offset: u64, plain: &[u8]) -> Vec<u8> {
    let id = keys.current_id();
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut out = Vec::with_capacity(RECORD_HEADER + plain.len() + TAG);
    out.extend_from_slice(&(plain.len() as u32).to_be_bytes());
    out.extend_from_slice(&id.0);
    out.extend_from_slice(&nonce);
    let mut body = plain.to_vec();
    // The current key is always configured.
    if let Ok(key) = upload_key(keys, id, upload) {
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(record_aad(upload, offset)),
            &mut body,
        )
        .unwrap_or_else(|_| unreachable!("a record is within AES-GCM's limits"));
    }
    out.extend_from_slice(&body);
    out
}

/// A record's header.
#[derive(Debug, Clone, Copy)]
pub struct RecordHeader {
    /// Plaintext bytes.
    pub len: usize,
    key_id: KeyId,
    nonce: [u8; NONCE_LEN],
}

impl RecordHeader {
    /// Decodes a record header.
    pub fn parse(bytes: &[u8; RECORD_HEADER], upload: &str) -> Result<Self, AtRestError> {
        let (len, rest) = bytes.split_first_chunk::<4>().unwrap_or((&[0; 4], &[]));
        let (id, nonce) = rest.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_RECORD {
            return Err(AtRestError::Format(format!("the bytes of upload {upload}")));
        }
        Ok(RecordHeader {
            len,
            key_id: KeyId(*id),
            nonce: nonce.try_into().unwrap_or_default(),
        })
    }

    /// The bytes that follow the header: ciphertext and tag.
    pub fn body_len(&self) -> usize {
        self.len + TAG
    }

    /// Decrypts the record's body in place; returns its plaintext.
    pub fn open<'b>(
        &self,
        keys: &MasterKeys,
        upload: &str,
        offset: u64,
        body: &'b mut [u8],
    ) -> Result<&'b mut [u8], AtRestError> {
        upload_key(keys, self.key_id, upload)?
            .open_in_place(
                Nonce::assume_unique_for_key(self.nonce),
                Aad::from(record_aad(upload, offset)),
                body,
            )
            .map_err(|_| AtRestError::Tampered(format!("the bytes of upload {upload} at {offset}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> MasterKeys {
        MasterKeys::new(&[7; 32], &[])
    }

    #[test]
    fn content_round_trips_and_has_the_computed_length() {
        for size in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let sealed = seal_content(&keys(), "n", &plain);
            assert_eq!(sealed.len() as u64, sealed_len(size as u64), "size {size}");
            assert_eq!(
                open_content(&keys(), "n", &sealed).expect("opens"),
                Some(plain)
            );
        }
        assert_eq!(open_content(&keys(), "n", b"plain bytes"), Ok(None));
    }

    #[test]
    fn changed_moved_or_truncated_content_is_refused() {
        let plain = vec![5u8; 2 * CHUNK + 10];
        let sealed = seal_content(&keys(), "n", &plain);
        let mut flipped = sealed.clone();
        if let Some(b) = flipped.get_mut(HEAD_LEN + CHUNK + TAG + 3) {
            *b ^= 1;
        }
        let refused =
            |r: Result<Option<Vec<u8>>, AtRestError>| matches!(r, Err(AtRestError::Tampered(_)));
        assert!(refused(open_content(&keys(), "n", &flipped)));
        assert!(
            refused(open_content(&keys(), "other", &sealed)),
            "another name"
        );
        // Cut after a whole chunk: the size in the head says more should follow.
        let cut = sealed.get(..chunk_offset(2) as usize).expect("cut");
        assert!(refused(open_content(&keys(), "n", cut)));
        // A head claiming fewer bytes (so the cut chunk would be the last) does not open.
        let mut shorter = sealed.clone();
        if let Some(size) = shorter.get_mut(9..17) {
            size.copy_from_slice(&(2 * CHUNK as u64).to_be_bytes());
        }
        assert!(refused(open_content(&keys(), "n", &shorter)));
    }

    #[test]
    fn records_open_only_at_their_offset_of_their_upload() {
        let record = seal_record(&keys(), "up", 10, b"hello");
        let (header, body) = record.split_first_chunk::<RECORD_HEADER>().expect("header");
        let header = RecordHeader::parse(header, "up").expect("header");
        assert_eq!(header.len, 5);
        assert_eq!(header.body_len(), body.len());
        let mut buf = body.to_vec();
        assert_eq!(
            header.open(&keys(), "up", 10, &mut buf).expect("opens"),
            b"hello"
        );
        assert!(header.open(&keys(), "up", 0, &mut body.to_vec()).is_err());
        assert!(header.open(&keys(), "up2", 10, &mut body.to_vec()).is_err());
    }
}
