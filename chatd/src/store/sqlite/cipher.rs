//! Encryption at rest: the database key, and opening a connection with it.
//!
//! The store is built on SQLCipher, which encrypts every page of the database file and of its
//! write-ahead log (AES-256, each page authenticated by an HMAC), so messages, the search index,
//! sessions and everything else are ciphertext on disk. Without a key SQLCipher is plain SQLite:
//! the file format is SQLite's, and an unencrypted database opens unchanged.
//!
//! The key is 32 random bytes given in SQLCipher's raw-key form (`PRAGMA key = "x'…'"`), so
//! opening a connection costs no key derivation. It is applied to every connection before any
//! other statement, and each connection then reads the schema, so a key that does not fit is an
//! error when the store opens, never an empty database later. Whether a file is encrypted is
//! told by its first 16 bytes: a plain SQLite file begins with `SQLite format 3\0`, an encrypted
//! one with its random salt. That tells "no key configured" and "the database is plain" apart
//! from "the key is wrong", each with its own error.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::store::StoreError;

/// The first bytes of every plain SQLite database file.
const PLAIN_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The flag and variable that give the key, named in errors.
const KEY_SETTING: &str = "--encryption-key-file (or CHATD_ENCRYPTION_KEY_FILE)";

/// A database encryption key: 32 bytes. Its `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseKey([u8; 32]);

impl std::fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseKey(..)")
    }
}

/// Why the contents of a key file are not a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a database key of 32 bytes, raw or as 64 hexadecimal characters, found {len} bytes"
)]
pub struct KeyFormatError {
    /// How many bytes the file held.
    pub len: usize,
}

impl DatabaseKey {
    /// The key from a key file's contents: exactly 32 raw bytes, or 64 hexadecimal characters
    /// (surrounding whitespace, such as a final newline, ignored).
    pub fn parse(contents: &[u8]) -> Result<DatabaseKey, KeyFormatError> {
        if let Ok(raw) = <[u8; 32]>::try_from(contents) {
            return Ok(DatabaseKey(raw));
        }
        let mut key = [0u8; 32];
        hex::decode_to_slice(contents.trim_ascii(), &mut key).map_err(|_| KeyFormatError {
            len: contents.len(),
        })?;
        Ok(DatabaseKey(key))
    }

    /// The key of these bytes (a master key's).
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> DatabaseKey {
        DatabaseKey(bytes)
    }

    /// A new random key.
    pub fn generate() -> DatabaseKey {
        DatabaseKey(rand::random())
    }

    /// The key's bytes, which are also the master key of the files chatd encrypts itself
    /// (`crate::atrest`).
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hex text form, as a key file may hold it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// SQLCipher's raw-key form: the key used as it is, with no key derivation.
    pub(super) fn sql_literal(&self) -> String {
        format!("x'{}'", self.to_hex())
    }
}

/// Why a database and the configured key do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key opens nothing: the file is encrypted with another key (or is no database).
    #[error("the database {0} is encrypted and this key does not open it")]
    Wrong(PathBuf),
    /// The file is encrypted and no key was given.
    #[error(
        "the database {0} is encrypted but no key is configured: give its key with {KEY_SETTING}"
    )]
    Missing(PathBuf),
    /// A key was given for a plain database.
    #[error(
        "a key is configured but the database {0} is plain: run chatd db encrypt (with chatd \
         stopped) to encrypt it with this key"
    )]
    Plain(PathBuf),
}

/// What a database file holds, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// No file, or an empty one: a new database, encrypted or not as the key says.
    New,
    /// A plain SQLite database.
    Plain,
    /// An encrypted database (or a file that is no SQLite database at all).
    Encrypted,
}

/// What the database file at `path` holds.
pub fn file_state(path: &Path) -> std::io::Result<FileState> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::New),
        Err(e) => return Err(e),
    };
    let mut header = Vec::with_capacity(PLAIN_HEADER.len());
    file.by_ref()
        .take(PLAIN_HEADER.len() as u64)
        .read_to_end(&mut header)?;
    Ok(match header.as_slice() {
        [] => FileState::New,
        h if h == PLAIN_HEADER => FileState::Plain,
        _ => FileState::Encrypted,
    })
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The key and the database do not go together.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        OpenError::Store(e.into())
    }
}

/// Opens a connection to the database at `path` with `flags`, applies `key` (when given) before
/// anything else and checks that the database opens with it.
pub(super) fn open(
    path: &Path,
    flags: OpenFlags,
    key: Option<&DatabaseKey>,
) -> Result<Connection, OpenError> {
    let state = file_state(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot read {}: {e}", path.display())))?;
    match (state, key) {
        (FileState::Plain, Some(_)) => return Err(KeyError::Plain(path.to_path_buf()).into()),
        (FileState::Encrypted, None) => {
            return Err(KeyError::Missing(path.to_path_buf()).into());
        }
        _ => {}
    }
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    // SQLCipher's own log (to standard error, process-wide) would repeat what the errors
    // below say, less clearly.
    conn.pragma_update(None, "cipher_log_level", "NONE")?;
    if let Some(key) = key {
        conn.pragma_update(None, "key", key.sql_literal())?;
    }
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
        Ok(()) => Ok(conn),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => Err(match key {
            Some(_) => KeyError::Wrong(path.to_path_buf()),
            // Pages written with a key, still only in the write-ahead log.
            None => KeyError::Missing(path.to_path_buf()),
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE.union(OpenFlags::SQLITE_OPEN_CREATE);

    fn write_row(conn: &Connection, text: &str) {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (x TEXT)")
            .expect("create");
        conn.execute("INSERT INTO t VALUES (?1)", [text])
            .expect("insert");
    }

    #[test]
    fn key_files_hold_raw_or_hex_bytes() {
        let key = DatabaseKey::generate();
        assert_eq!(DatabaseKey::parse(&key.0), Ok(key.clone()));
        let hex = format!("{}\n", key.to_hex());
        assert_eq!(DatabaseKey::parse(hex.as_bytes()), Ok(key.clone()));
        assert_eq!(
            DatabaseKey::parse(b"short"),
            Err(KeyFormatError { len: 5 }),
            "neither 32 bytes nor 64 hex characters"
        );
        assert!(DatabaseKey::parse(&[b'z'; 64]).is_err());
        assert_eq!(format!("{key:?}"), "DatabaseKey(..)");
    }

    #[test]
    fn a_keyed_database_is_ciphertext_and_opens_only_with_its_key() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db");
        let key = DatabaseKey::generate();
        let conn = open(&path, RW, Some(&key)).expect("create encrypted");
        write_row(&conn, "a very secret sentence");
        drop(conn);
        let bytes = std::fs::read(&path).expect("read");
        assert!(!bytes.is_empty());
        assert!(
            !bytes
                .windows(b"secret sentence".len())
                .any(|w| w == b"secret sentence")
        );
        assert_eq!(file_state(&path).expect("state"), FileState::Encrypted);

        assert!(matches!(
            open(&path, RW, None),
            Err(OpenError::Key(KeyError::Missing(_)))
        ));
        assert!(matches!(
            open(&path, RW, Some(&DatabaseKey::generate())),
            Err(OpenError::Key(KeyError::Wrong(_)))
        ));
        let conn = open(&path, RW, Some(&key)).expect("reopen");
        let text: String = conn
            .query_row("SELECT x FROM t", [], |row| row.get(0))
            .expect("read back");
        assert_eq!(text, "a very secret sentence");
    }

    #[test]
    fn without_a_key_the_file_is_plain_sqlite_and_a_key_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db");
        let conn = open(&path, RW, None).expect("create plain");
        write_row(&conn, "plain words");
        drop(conn);
        assert_eq!(file_state(&path).expect("state"), FileState::Plain);
        assert!(matches!(
            open(&path, RW, Some(&DatabaseKey::generate())),
            Err(OpenError::Key(KeyError::Plain(_)))
        ));
        open(&path, RW, None).expect("reopen plain");
    }
}
