//! Encrypting a plain database and changing the key of an encrypted one (`chatd db encrypt`,
//! `chatd db rekey`).
//!
//! Both write a new database beside the old one with `sqlcipher_export` (every table, index,
//! trigger and the search index, with the new key or none), check that every table holds as
//! many rows as the original, then rename it over the original: a crash before the rename
//! leaves the original as it was, and after it the new file is whole. The database must not be
//! in use meanwhile: the source connection takes SQLite's exclusive lock (locking mode
//! EXCLUSIVE, which a running chatd's open connections prevent), so a running chatd makes the
//! command fail with [`ReencryptError::InUse`], and a chatd started meanwhile waits for the lock
//! until the new file is in place. Stop chatd first; the stop lasts as long as the copy.
//!
//! The original's pages are not overwritten, only unlinked: on a disk that may already have
//! been copied, encrypting is no substitute for starting encrypted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::cipher::{self, DatabaseKey, FileState, KeyError, OpenError};
use crate::store::StoreError;

/// Why a database could not be encrypted or given a new key.
#[derive(Debug, thiserror::Error)]
pub enum ReencryptError {
    /// The key and the database do not go together.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// There is no database to convert.
    #[error("there is no database at {0}")]
    NoDatabase(PathBuf),
    /// `encrypt` on a database that is encrypted already.
    #[error("the database {0} is already encrypted: change its key with chatd db rekey")]
    AlreadyEncrypted(PathBuf),
    /// `rekey` on a plain database.
    #[error("the database {0} is not encrypted: encrypt it with chatd db encrypt")]
    NotEncrypted(PathBuf),
    /// Another process (a running chatd) has the database open.
    #[error(
        "the database {0} is in use (is chatd running?): stop chatd first, then run this again"
    )]
    InUse(PathBuf),
    /// The copy does not hold what the original holds (nothing was replaced).
    #[error(
        "the new copy of table {table} has {copied} rows instead of {original}; the database was left as it was"
    )]
    Mismatch {
        /// The table.
        table: String,
        /// Its rows in the original.
        original: u64,
        /// Its rows in the copy.
        copied: u64,
    },
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for ReencryptError {
    fn from(e: rusqlite::Error) -> Self {
        ReencryptError::Store(e.into())
    }
}

impl From<OpenError> for ReencryptError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Key(e) => ReencryptError::Key(e),
            OpenError::Store(e) => ReencryptError::Store(e),
        }
    }
}

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reencrypted {
    /// Tables copied.
    pub tables: usize,
    /// Rows copied, all tables together.
    pub rows: u64,
}

/// How long to wait for the exclusive lock before deciding the database is in use.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Encrypts the plain database at `path` with `key`.
pub fn encrypt(path: &Path, key: &DatabaseKey) -> Result<Reencrypted, ReencryptError> {
    match cipher::file_state(path).map_err(|source| io_error("cannot read", path, source))? {
        FileState::New => Err(ReencryptError::NoDatabase(path.to_path_buf())),
        FileState::Encrypted => Err(ReencryptError::AlreadyEncrypted(path.to_path_buf())),
        FileState::Plain => convert(path, None, key),
    }
}

/// Gives the database at `path`, encrypted with `old`, the key `new`. `old` stops opening it.
pub fn rekey(
    path: &Path,
    old: &DatabaseKey,
    new: &DatabaseKey,
) -> Result<Reencrypted, ReencryptError> {
    match cipher::file_state(path).map_err(|source| io_error("cannot read", path, source))? {
        FileState::New => Err(ReencryptError::NoDatabase(path.to_path_buf())),
        FileState::Plain => Err(ReencryptError::NotEncrypted(path.to_path_buf())),
        FileState::Encrypted => convert(path, Some(old), new),
    }
}

fn io_error(what: &'static str, path: &Path, source: std::io::Error) -> ReencryptError {
    ReencryptError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Copies the database at `path` (opened with `from`) into a new file encrypted with `to` and
/// renames the copy over it.
fn convert(
    path: &Path,
    from: Option<&DatabaseKey>,
    to: &DatabaseKey,
) -> Result<Reencrypted, ReencryptError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let source = cipher::open(path, flags, from)?;
    lock(&source, path)?;
    // Everything in the write-ahead log goes into the database file, which the copy reads.
    source.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;

    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".reencrypt");
    let tmp = path.with_file_name(tmp_name);
    remove_if_present(&tmp)?;
    create_private(&tmp)?;
    let result = export(&source, &tmp, to).and_then(|done| {
        // Still holding the lock, so no chatd opens the original in between.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|source| io_error("cannot sync", &tmp, source))?;
        std::fs::rename(&tmp, path).map_err(|source| io_error("cannot rename", &tmp, source))?;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(|source| io_error("cannot sync", dir, source))?;
        }
        Ok(done)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(journal(&tmp));
    }
    drop(source);
    result
}

/// Takes SQLite's exclusive lock of the database for as long as `conn` is open. In WAL mode every
/// connection holds a shared lock while it is open, so this fails while another process (a
/// running chatd) has the database open.
fn lock(conn: &Connection, path: &Path) -> Result<(), ReencryptError> {
    conn.busy_timeout(LOCK_WAIT)?;
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
    match conn.execute_batch("BEGIN EXCLUSIVE; COMMIT") {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ) =>
        {
            Err(ReencryptError::InUse(path.to_path_buf()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Exports everything `source` holds into the (empty) database file `tmp`, encrypted with `key`,
/// and checks the copy's row counts.
fn export(
    source: &Connection,
    tmp: &Path,
    key: &DatabaseKey,
) -> Result<Reencrypted, ReencryptError> {
    let tmp_text = tmp.to_str().ok_or_else(|| {
        io_error(
            "not a utf-8 path:",
            tmp,
            std::io::ErrorKind::InvalidInput.into(),
        )
    })?;
    source.execute(
        "ATTACH DATABASE ?1 AS reencrypted KEY ?2",
        (tmp_text, key.sql_literal()),
    )?;
    let result = (|| {
        source.query_row("SELECT sqlcipher_export('reencrypted')", [], |_| Ok(()))?;
        // Not part of the export: the schema version of the migrations.
        let version: i64 = source.query_row("PRAGMA main.user_version", [], |r| r.get(0))?;
        source.pragma_update(Some("reencrypted"), "user_version", version)?;
        compare(source)
    })();
    source.execute_batch("DETACH DATABASE reencrypted")?;
    result
}

/// Checks that every table of the copy holds as many rows as the original's.
fn compare(source: &Connection) -> Result<Reencrypted, ReencryptError> {
    let tables: Vec<String> = source
        .prepare("SELECT name FROM main.sqlite_master WHERE type = 'table' AND rootpage > 0")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut rows = 0;
    for table in &tables {
        let quoted = table.replace('"', "\"\"");
        let count = |schema: &str| -> rusqlite::Result<u64> {
            source.query_row(
                &format!("SELECT count(*) FROM {schema}.\"{quoted}\""),
                [],
                |r| super::convert::get_u64(r, 0),
            )
        };
        let (original, copied) = (count("main")?, count("reencrypted")?);
        if original != copied {
            return Err(ReencryptError::Mismatch {
                table: table.clone(),
                original,
                copied,
            });
        }
        rows += original;
    }
    Ok(Reencrypted {
        tables: tables.len(),
        rows,
    })
}

fn journal(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push("-journal");
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> Result<(), ReencryptError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_error("cannot remove", path, source)),
    }
}

/// Creates the empty file the copy goes into, readable by its owner only, as the database.
fn create_private(path: &Path) -> Result<(), ReencryptError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|source| io_error("cannot create", path, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE.union(OpenFlags::SQLITE_OPEN_CREATE);

    fn plain_db(path: &Path) {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (x TEXT);
             CREATE VIRTUAL TABLE f USING fts5(x);
             CREATE TRIGGER t_f AFTER INSERT ON t BEGIN INSERT INTO f VALUES (new.x); END;
             INSERT INTO t VALUES ('alpha words'), ('beta words');
             PRAGMA user_version = 7;",
        )
        .expect("fill");
    }

    #[test]
    fn encrypt_then_rekey_keeps_rows_search_and_version() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db");
        plain_db(&path);
        let key = DatabaseKey::generate();
        let done = encrypt(&path, &key).expect("encrypt");
        assert!(done.rows >= 4, "{done:?}");
        assert_eq!(
            cipher::file_state(&path).expect("state"),
            FileState::Encrypted
        );
        assert!(matches!(
            encrypt(&path, &key),
            Err(ReencryptError::AlreadyEncrypted(_))
        ));

        let new = DatabaseKey::generate();
        assert!(matches!(
            rekey(&path, &new, &key),
            Err(ReencryptError::Key(KeyError::Wrong(_)))
        ));
        rekey(&path, &key, &new).expect("rekey");
        assert!(matches!(
            cipher::open(&path, RW, Some(&key)),
            Err(OpenError::Key(KeyError::Wrong(_)))
        ));
        let conn = cipher::open(&path, RW, Some(&new)).expect("open with the new key");
        let found: String = conn
            .query_row("SELECT x FROM f WHERE f MATCH 'beta'", [], |r| r.get(0))
            .expect("search");
        assert_eq!(found, "beta words");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, 7);
        conn.execute("INSERT INTO t VALUES ('gamma')", [])
            .expect("the trigger still feeds the index");
        let hits: i64 = conn
            .query_row("SELECT count(*) FROM f WHERE f MATCH 'gamma'", [], |r| {
                r.get(0)
            })
            .expect("search");
        assert_eq!(hits, 1);
    }

    #[test]
    fn a_database_in_use_is_left_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db");
        plain_db(&path);
        let other = Connection::open_with_flags(&path, RW).expect("another user");
        other
            .query_row("SELECT count(*) FROM t", [], |_| Ok(()))
            .expect("read");
        let key = DatabaseKey::generate();
        assert!(matches!(
            encrypt(&path, &key),
            Err(ReencryptError::InUse(p)) if p == path
        ));
        drop(other);
        assert_eq!(cipher::file_state(&path).expect("state"), FileState::Plain);
        encrypt(&path, &key).expect("encrypt once it is free");
    }
}
