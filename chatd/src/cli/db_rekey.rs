//! `chatd db rekey --encryption-key-file OLD --new-key-file NEW`: give the encrypted embedded
//! database a new key (chatd stopped meanwhile); the old key stops opening it.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::ops::config::{DbRekey, Storage};
use crate::ops::datadir::{DB_FILE, load_database_key};
use crate::store::sqlite::reencrypt;

/// Re-encrypts the data directory's database from the key of `--encryption-key-file` to the
/// key of `--new-key-file`.
pub async fn run(args: DbRekey) -> anyhow::Result<()> {
    let (path, old_file) = embedded(&args.storage)?;
    let new_file = args.new_key_file;
    let done = tokio::task::spawn_blocking(move || {
        let old = load_database_key(&old_file).context("cannot read the current key")?;
        let new = load_database_key(&new_file).context("cannot read the new key")?;
        if old == new {
            bail!("the new key is the current key: make a new one");
        }
        reencrypt::rekey(&path, &old, &new)
            .with_context(|| format!("cannot change the key of the database {}", path.display()))
            .map(|done| (done, path))
    })
    .await
    .context("database task")??;
    let (done, path) = done;
    println!(
        "re-encrypted {} ({} tables, {} rows); start chatd with --encryption-key-file set to the new key",
        path.display(),
        done.tables,
        done.rows
    );
    Ok(())
}

/// The embedded database and the key file of `--encryption-key-file`, which the `db`
/// commands need.
pub(super) fn embedded(storage: &Storage) -> anyhow::Result<(PathBuf, PathBuf)> {
    if storage.mongo_uri.is_some() {
        bail!("chatd db encrypt and rekey work on the embedded SQLite database, not on MongoDB");
    }
    let Some(key_file) = storage.encryption_key_file.clone() else {
        bail!("give the database key with --encryption-key-file (or CHATD_ENCRYPTION_KEY_FILE)");
    };
    Ok((storage.data_dir.join(DB_FILE), key_file))
}
