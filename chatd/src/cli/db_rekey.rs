//! `chatd db rekey --encryption-key-file OLD --new-key-file NEW`: give the encrypted embedded
//! database a new key (chatd stopped meanwhile); the old key stops opening it. The key is also
//! the master key of the files in the data directory: their keys are re-wrapped with the new
//! key in the same run (heads only, the content stays as it is), and the master key ring records
//! the new key as current (`auth::master_key`), so chatd starts with the new key alone.

use anyhow::{Context as _, bail};

use std::sync::Arc;

use crate::atrest::MasterKeys;
use crate::ops::config::DbRekey;
use crate::ops::datadir::load_database_key;
use crate::ops::file_store;
use crate::store::sqlite::{SqliteOptions, SqliteStore, reencrypt};

/// Re-encrypts the data directory's database from the key of `--encryption-key-file` to the
/// key of `--new-key-file`.
pub async fn run(args: DbRekey) -> anyhow::Result<()> {
    let (path, old_file) = super::embedded_database(&args.storage)?;
    let new_file = args.new_key_file.clone();
    let done = super::blocking(path.clone(), move |path| {
        let old = load_database_key(&old_file).context("cannot read the current key")?;
        let new = load_database_key(&new_file).context("cannot read the new key")?;
        if old == new {
            bail!("the new key is the current key: make a new one");
        }
        let done = reencrypt::rekey(path, &old, &new)
            .with_context(|| format!("cannot change the key of the database {}", path.display()))?;
        let keys = MasterKeys::new(new.bytes(), &[*old.bytes()]);
        let options = SqliteOptions {
            key: Some(new),
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open_with(path, options)
            .with_context(|| format!("cannot open {} with the new key", path.display()))?;
        Ok((done, keys, store))
    })
    .await?;
    let (done, keys, store) = done;
    // Nothing is left under the old key: its overlap ends at once.
    crate::auth::master_key::catch_up(&store, &keys, None, std::time::Duration::ZERO)
        .await
        .context("cannot record the new key in the master key ring")?;
    drop(store);
    let backend = crate::daemon::open_file_backend(&args.storage).await?;
    let files = file_store::open(backend, Some(Arc::new(keys)))
        .await
        .context("cannot open the file store with the old and the new key")?;
    if let Some(sealed) = files.sealed {
        let rewrapped = sealed
            .maintain(false)
            .await
            .context("cannot re-wrap the file keys with the new key")?;
        println!(
            "re-wrapped {} file keys with the new key",
            rewrapped.rewrapped
        );
    }
    println!(
        "re-encrypted {} ({} tables, {} rows); start chatd with the new key as \
         --encryption-key-file",
        path.display(),
        done.tables,
        done.rows
    );
    Ok(())
}
