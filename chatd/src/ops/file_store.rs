//! The file store a configuration names: the backend (the data directory's `files/` or GridFS),
//! encrypted at rest ([`SealedBlobs`]) when `--encryption-key-file` gives a master key, and the
//! master keys themselves (`--encryption-key-file`, `--previous-encryption-key-file`), which
//! `auth::master_key` rotates.

use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::atrest::{AtRestError, MasterKeys};
use crate::files::blob::sealed::SealedBlobs;
use crate::files::blob::{BlobStore, RawBlobs};
use crate::ops::config::Storage;
use crate::ops::datadir::load_database_key;
use crate::ops::master_key_files::KeyFilePair;

/// The master keys the configuration gives, `None` without `--encryption-key-file`. A
/// `--previous-encryption-key-file` that does not exist gives no previous key: a rotation while
/// chatd runs writes it and moves it aside when the overlap is over. Blocking (two small files).
pub fn master_keys(storage: &Storage) -> anyhow::Result<Option<Arc<MasterKeys>>> {
    let Some(current) = &storage.encryption_key_file else {
        if storage.previous_encryption_key_file.is_some() {
            bail!(
                "--previous-encryption-key-file is the key before --encryption-key-file: give \
                 both"
            );
        }
        return Ok(None);
    };
    let current = load_database_key(current).context("cannot read the encryption key")?;
    let previous = storage
        .previous_encryption_key_file
        .as_deref()
        .filter(|path| path.exists())
        .map(load_database_key)
        .transpose()
        .context("cannot read the previous encryption key")?;
    let previous: Vec<[u8; 32]> = previous.iter().map(|k| *k.bytes()).collect();
    Ok(Some(Arc::new(MasterKeys::new(current.bytes(), &previous))))
}

/// The key files a rotation while chatd runs rewrites: both flags given.
pub fn key_files(storage: &Storage) -> Option<KeyFilePair> {
    Some(KeyFilePair {
        current: storage.encryption_key_file.clone()?,
        previous: storage.previous_encryption_key_file.clone()?,
    })
}

/// The file store in use.
#[derive(Clone)]
pub struct FileStore {
    /// What the file service reads and writes.
    pub blobs: Arc<dyn BlobStore>,
    /// The same, when it is encrypted.
    pub sealed: Option<Arc<SealedBlobs>>,
}

/// The file store over `backend`: encrypted with `keys` when given. Refuses a backend whose
/// content is encrypted when no key is given, and one whose keys are wrapped by a master key
/// not given ([`AtRestError`], exit status 3).
pub async fn open(
    backend: Arc<dyn RawBlobs>,
    keys: Option<Arc<MasterKeys>>,
) -> anyhow::Result<FileStore> {
    let what = format!("the file store ({})", backend.backend());
    let Some(keys) = keys else {
        if SealedBlobs::is_sealed(&*backend)
            .await
            .with_context(|| format!("cannot read {what}"))?
        {
            return Err(AtRestError::Missing(what).into());
        }
        return Ok(FileStore {
            blobs: backend,
            sealed: None,
        });
    };
    let sealed = Arc::new(
        SealedBlobs::open(backend, keys.clone())
            .await
            .with_context(|| format!("cannot open {what}"))?,
    );
    Ok(FileStore {
        blobs: sealed.clone(),
        sealed: Some(sealed),
    })
}
