//! `chatd db encrypt --encryption-key-file FILE`: encrypt the embedded database, which was plain,
//! with the key chatd will then be started with (chatd stopped meanwhile).

use anyhow::Context as _;

use crate::ops::config::DbEncrypt;
use crate::store::sqlite::reencrypt;

/// Encrypts the data directory's database with the key of `--encryption-key-file`.
pub async fn run(args: DbEncrypt) -> anyhow::Result<()> {
    let (path, key_file) = super::db_rekey::embedded(&args.storage)?;
    let done = tokio::task::spawn_blocking(move || {
        let key = crate::ops::datadir::load_database_key(&key_file)
            .context("cannot read the database encryption key")?;
        reencrypt::encrypt(&path, &key)
            .with_context(|| format!("cannot encrypt the database {}", path.display()))
            .map(|done| (done, path))
    })
    .await
    .context("database task")??;
    let (done, path) = done;
    println!(
        "encrypted {} ({} tables, {} rows); start chatd with the same --encryption-key-file",
        path.display(),
        done.tables,
        done.rows
    );
    Ok(())
}
