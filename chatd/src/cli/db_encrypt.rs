//! `chatd db encrypt --encryption-key-file FILE`: encrypt the embedded database, which was plain,
//! with the key chatd will then be started with (chatd stopped meanwhile).

use anyhow::Context as _;

use crate::ops::config::DbEncrypt;
use crate::ops::datadir::load_database_key;
use crate::store::sqlite::reencrypt;

/// Encrypts the data directory's database with the key of `--encryption-key-file`.
pub async fn run(args: DbEncrypt) -> anyhow::Result<()> {
    let (path, key_file) = super::embedded_database(&args.storage)?;
    let done = super::blocking(path.clone(), move |path| {
        let key = load_database_key(&key_file).context("cannot read the database key")?;
        reencrypt::encrypt(path, &key)
            .with_context(|| format!("cannot encrypt the database {}", path.display()))
    })
    .await?;
    println!(
        "encrypted {} ({} tables, {} rows); start chatd with the same --encryption-key-file \
         (files uploaded so far stay readable; chatd files encrypt encrypts them too)",
        path.display(),
        done.tables,
        done.rows
    );
    Ok(())
}
