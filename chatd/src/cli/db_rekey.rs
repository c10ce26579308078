//! `chatd db rekey --encryption-key-file OLD --new-key-file NEW`: give the encrypted embedded
//! database a new key (chatd stopped meanwhile); the old key stops opening it.

use anyhow::{Context as _, bail};

use crate::ops::config::DbRekey;
use crate::ops::datadir::load_database_key;
use crate::store::sqlite::reencrypt;

/// Re-encrypts the data directory's database from the key of `--encryption-key-file` to the
/// key of `--new-key-file`.
pub async fn run(args: DbRekey) -> anyhow::Result<()> {
    let (path, old_file) = super::embedded_database(&args.storage)?;
    let new_file = args.new_key_file;
    let done = super::blocking(path.clone(), move |path| {
        let old = load_database_key(&old_file).context("cannot read the current key")?;
        let new = load_database_key(&new_file).context("cannot read the new key")?;
        if old == new {
            bail!("the new key is the current key: make a new one");
        }
        reencrypt::rekey(path, &old, &new)
            .with_context(|| format!("cannot change the key of the database {}", path.display()))
    })
    .await?;
    println!(
        "re-encrypted {} ({} tables, {} rows); start chatd with the new key as \
         --encryption-key-file",
        path.display(),
        done.tables,
        done.rows
    );
    Ok(())
}
