//! `chatd files encrypt --encryption-key-file FILE [--previous-encryption-key-file OLD]`:
//! encrypt the file content stored plain (uploaded before a master key was given) and re-wrap
//! the file keys of the previous master key with the current one. Online: a running chatd
//! reads every file in either state meanwhile, so the command may run beside it.

use anyhow::{Context as _, bail};

use crate::ops::config::FilesEncrypt;
use crate::ops::file_store;

/// Encrypts and re-wraps the file content of the data directory or of MongoDB's GridFS.
pub async fn run(args: FilesEncrypt) -> anyhow::Result<()> {
    let keys = file_store::master_keys(&args.storage)?;
    let Some(keys) = keys else {
        bail!("give the master key with --encryption-key-file (or CHATD_ENCRYPTION_KEY_FILE)");
    };
    let backend = crate::daemon::open_file_backend(&args.storage).await?;
    let store = file_store::open(backend, Some(keys.clone())).await?;
    let Some(sealed) = store.sealed else {
        bail!("the file store did not open encrypted");
    };
    let done = sealed
        .maintain(true)
        .await
        .context("cannot encrypt the file store")?;
    println!(
        "{} file contents checked: {} encrypted, {} keys re-wrapped with master key {}",
        done.checked,
        done.encrypted,
        done.rewrapped,
        keys.current_id()
    );
    Ok(())
}
