//! Hints for the failures a new user meets first, naming the setting that fixes them.

use std::io::ErrorKind;

use chat_cli::Hint;
use chat_cli::report::io_error;

use crate::atrest::AtRestError;
use crate::daemon::{ListenError, Listener};
use crate::files::blob::BlobError;
use crate::ops::datadir::DataDirError;
use crate::store::mongo::FieldKeyError;
use crate::store::sqlite::cipher::{KeyError, OpenError};
use crate::store::sqlite::reencrypt::ReencryptError;

/// The exit status when the encryption key does not fit the database or the file store (wrong,
/// missing, or given for a plain database); every other failure exits 1.
pub const KEY_MISMATCH_STATUS: u8 = 3;

/// The exit status of a failed run.
pub fn status(err: &anyhow::Error) -> u8 {
    // The errors that carry a `KeyError` show it as their own (transparently), so it is not a
    // cause of its own in the chain.
    let key_mismatch = err.chain().any(|e| {
        e.is::<KeyError>()
            || matches!(e.downcast_ref(), Some(OpenError::Key(_)))
            || matches!(e.downcast_ref(), Some(ReencryptError::Key(_)))
            || e.downcast_ref::<AtRestError>().is_some_and(key_missing)
            || matches!(e.downcast_ref(), Some(BlobError::Sealed(a)) if key_missing(a))
            || matches!(e.downcast_ref(), Some(FieldKeyError::Key(a)) if key_missing(a))
    });
    if key_mismatch { KEY_MISMATCH_STATUS } else { 1 }
}

/// True when sealed data does not open for want of its master key.
fn key_missing(e: &AtRestError) -> bool {
    matches!(e, AtRestError::UnknownKey { .. } | AtRestError::Missing(_))
}

/// The hint for `err`, when chatd knows one.
pub fn hint(err: &anyhow::Error) -> Option<Hint> {
    let kind = io_error(err).map(std::io::Error::kind);
    if let Some(listen) = err.downcast_ref::<ListenError>()
        && kind == Some(ErrorKind::AddrInUse)
    {
        let (flag, var) = match listen.listener {
            Listener::Quic => ("--listen", "CHATD_LISTEN"),
            Listener::Admin => ("--admin-listen", "CHATD_ADMIN_LISTEN"),
            Listener::FilesHttps => ("--files-https-listen", "CHATD_FILES_HTTPS_LISTEN"),
        };
        return Some(Hint(format!(
            "another process (perhaps another chatd) uses {}: stop it, or choose another address \
             with {flag} (or {var}), e.g. {flag} {}",
            listen.addr,
            std::net::SocketAddr::new(listen.addr.ip(), 0)
        )));
    }
    if kind == Some(ErrorKind::PermissionDenied)
        && let Some(dir) = data_dir_of(err)
    {
        return Some(Hint(format!(
            "chatd's user needs read, write and search (rwx) permission on the data directory \
             {dir} (and write permission on its parent to create it): choose a directory it owns \
             with --data-dir (or CHATD_DATA_DIR), or grant it, e.g. chown $(id -un) {dir} && \
             chmod 700 {dir}"
        )));
    }
    None
}

/// The data directory an error is about, from the path of a data-directory error.
fn data_dir_of(err: &anyhow::Error) -> Option<String> {
    let path = match err.chain().find_map(|e| e.downcast_ref::<DataDirError>())? {
        DataDirError::CreateDir { path, .. } => path.clone(),
        DataDirError::Read { path, .. } | DataDirError::Write { path, .. } => {
            path.parent()?.to_path_buf()
        }
        _ => return None,
    };
    Some(path.display().to_string())
}
