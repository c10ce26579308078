//! The subcommands of the `chatd` binary, one file each. `main` parses the configuration and
//! calls one of these.

pub mod db_encrypt;
pub mod db_rekey;
pub mod files_encrypt;
pub mod hints;
pub mod serve;
pub mod user_add;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::ops::config::Storage;
use crate::ops::datadir::DB_FILE;

/// The embedded database and the key file of `--encryption-key-file`, which the `db` commands
/// need.
fn embedded_database(storage: &Storage) -> anyhow::Result<(PathBuf, PathBuf)> {
    if storage.mongo_uri.is_some() {
        bail!("chatd db encrypt and rekey work on the embedded SQLite database, not on MongoDB");
    }
    let Some(key_file) = storage.encryption_key_file.clone() else {
        bail!("give the database key with --encryption-key-file (or CHATD_ENCRYPTION_KEY_FILE)");
    };
    Ok((storage.data_dir.join(DB_FILE), key_file))
}

/// Runs the blocking `work` on the database at `path` off the async workers.
async fn blocking<T: Send + 'static>(
    path: PathBuf,
    work: impl FnOnce(&Path) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(move || work(&path))
        .await
        .context("database task")?
}
