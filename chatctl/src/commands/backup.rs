//! `chatctl backup PATH`: a consistent copy of the server's embedded database, taken while it
//! runs (`admin_backup`, spec/protocol.md 9.6), written here, so it works against a remote
//! server too. The copy goes to `PATH.partial`, is checked against the size and SHA-256 the
//! server announced (as received, and again as written to disk), synced, and only then renamed
//! to `PATH`: a `PATH` that exists is always a whole, checked copy. Both are owner-only (mode
//! 0600): the database holds password hashes.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

use crate::output::{confirm, hex, human_size};
use crate::session::Admin;
use crate::settings::Settings;

/// What `backup --json` prints. The field names are stable: scripts read them.
#[derive(Debug, Serialize)]
struct BackupView {
    /// Where the copy is, as given.
    path: String,
    size: u64,
    /// Hex.
    sha256: String,
}

pub(super) async fn run(path: &Path, yes: bool, settings: &Settings) -> anyhow::Result<()> {
    if path.exists() {
        confirm(&format!("overwrite {}?", path.display()), yes)?;
    }
    let partial = partial_path(path);
    let admin = Admin::sign_in(settings).await?;
    let result = backup(admin.client(), &partial).await;
    let finished = admin.finish(settings).await;
    let info = match result.and_then(|info| finished.map(|()| info)) {
        Ok(info) => info,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(e);
        }
    };
    tokio::fs::rename(&partial, path)
        .await
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    sync_parent(path).await;
    let view = BackupView {
        path: path.display().to_string(),
        size: info.size,
        sha256: hex(&info.sha256),
    };
    let human = format!(
        "wrote {} ({}, {} bytes), sha256 {}",
        view.path,
        human_size(view.size),
        view.size,
        view.sha256
    );
    settings.output.result(&view, &human)
}

/// `PATH.partial`.
fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Receives the copy into `partial`, then checks what is on disk and syncs it.
async fn backup(
    client: &chatproto::client::Client,
    partial: &Path,
) -> anyhow::Result<chatproto::pb::BackupInfo> {
    // A copy holds password hashes: owner-only from its first byte, even where an old partial
    // copy was readable by others.
    match tokio::fs::remove_file(partial).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot replace {}", partial.display())),
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .await
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let info = client
        .admin_backup_to_writer(&mut file, |_, _| {})
        .await
        .context("cannot take a backup of the server's database")?;
    file.sync_all()
        .await
        .with_context(|| format!("cannot sync {}", partial.display()))?;
    drop(file);
    let (size, sha256) = measure(partial).await?;
    if size != info.size || sha256[..] != info.sha256[..] {
        anyhow::bail!(
            "{} does not hold what the server sent ({size} of {} bytes, or another sha-256)",
            partial.display(),
            info.size
        );
    }
    Ok(info)
}

/// The size and SHA-256 of the file at `path`, read back.
async fn measure(path: &Path) -> anyhow::Result<(u64, [u8; 32])> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok((size, hasher.finalize().into()));
        }
        hasher.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
    }
}

/// Makes the rename durable; a directory that cannot be synced only loses that guarantee.
async fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = tokio::fs::File::open(parent).await {
        let _ = dir.sync_all().await;
    }
}
