//! coturn's SQLite user database as the way TURN servers follow the `turn` key ring (spec 14.5,
//! protocol.md 9.6). coturn started with `use-auth-secret` and no `static-auth-secret` checks
//! TURN REST API credentials against every `turn_secret` row of its realm, which it reads on
//! each allocation. chatd writes there the TURN secrets that verify (`auth::keys` publishes the
//! ring after every change and when a key retires), so coturn accepts a new secret before chatd
//! signs with it, including the ones the schedule makes, and refuses a secret once it retired.
//!
//! chatd owns the rows of its realm; rows of other realms are left alone. The file is opened for
//! each write: writes are rare, and a database the operator replaced is followed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;

use crate::auth::keys::SecretSink;

/// coturn's table of shared secrets, as its schema creates it (`turndb/schema.sql`).
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS turn_secret (realm varchar(127) default '', \
                      value varchar(256), primary key (realm,value))";
/// How long a write waits for coturn (or another node) to let go of the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The `turn_secret` rows of one realm in one coturn database.
#[derive(Debug, Clone)]
pub struct TurnSecretDb {
    path: PathBuf,
    realm: String,
}

impl TurnSecretDb {
    /// The rows of `realm` (coturn's `--realm`) in the database at `path` (coturn's
    /// `--userdb`); nothing is opened yet.
    pub fn new(path: PathBuf, realm: String) -> TurnSecretDb {
        TurnSecretDb { path, realm }
    }

    /// Where the database is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes `secrets` the realm's secrets, in one transaction, so coturn sees the old set or
    /// the new one. The table is created when missing (a database coturn has not opened yet).
    pub fn write(&self, secrets: &[Vec<u8>]) -> Result<(), rusqlite::Error> {
        let mut db = rusqlite::Connection::open(&self.path)?;
        db.busy_timeout(BUSY_TIMEOUT)?;
        db.execute_batch(SCHEMA)?;
        let tx = db.transaction()?;
        tx.execute("DELETE FROM turn_secret WHERE realm = ?1", [&self.realm])?;
        for secret in secrets {
            tx.execute(
                "INSERT OR IGNORE INTO turn_secret (realm, value) VALUES (?1, ?2)",
                rusqlite::params![self.realm, as_value(secret)],
            )?;
        }
        tx.commit()
    }

    /// The realm's secrets as the database holds them, sorted.
    pub fn read(&self) -> Result<Vec<Vec<u8>>, rusqlite::Error> {
        let db = rusqlite::Connection::open(&self.path)?;
        db.busy_timeout(BUSY_TIMEOUT)?;
        let mut statement = db.prepare("SELECT value FROM turn_secret WHERE realm = ?1")?;
        let mut secrets = statement
            .query_map([&self.realm], |row| {
                Ok(match row.get::<_, Value>(0)? {
                    Value::Text(text) => text.into_bytes(),
                    Value::Blob(bytes) => bytes,
                    _ => Vec::new(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        secrets.sort();
        Ok(secrets)
    }
}

impl SecretSink for TurnSecretDb {
    fn publish(&self, secrets: &[Vec<u8>]) -> Result<(), String> {
        self.write(secrets).map_err(|e| e.to_string())
    }

    fn place(&self) -> String {
        self.path.display().to_string()
    }
}

/// A secret as coturn reads it (`sqlite3_column_text`): text when it is UTF-8 (the secrets
/// chatd makes and those operators write in files), else its bytes.
fn as_value(secret: &[u8]) -> Value {
    match std::str::from_utf8(secret) {
        Ok(text) => Value::Text(text.to_owned()),
        Err(_) => Value::Blob(secret.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_realm_s_rows_and_leaves_other_realms_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("turndb");
        let ours = TurnSecretDb::new(path.clone(), "chat.test".into());
        let theirs = TurnSecretDb::new(path, "other.test".into());
        theirs.write(&[b"kept".to_vec()]).expect("write");
        ours.write(&[b"one".to_vec(), b"two".to_vec()])
            .expect("write");
        assert_eq!(
            ours.read().expect("read"),
            [b"one".to_vec(), b"two".to_vec()]
        );
        ours.write(&[b"two".to_vec(), vec![0xff, 0x00]])
            .expect("write");
        assert_eq!(
            ours.read().expect("read"),
            [b"two".to_vec(), vec![0xff, 0x00]]
        );
        assert_eq!(theirs.read().expect("read"), [b"kept".to_vec()]);
    }

    #[test]
    fn a_database_that_cannot_be_written_is_an_error() {
        let dir = tempfile::tempdir().expect("dir");
        let db = TurnSecretDb::new(dir.path().join("missing").join("turndb"), String::new());
        assert!(db.write(&[b"one".to_vec()]).is_err());
    }
}
