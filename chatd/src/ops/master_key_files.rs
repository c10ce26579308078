//! The master key files of a node (`--encryption-key-file`, `--previous-encryption-key-file`)
//! as a rotation while chatd runs rewrites them (`auth::master_key`).

use std::path::{Path, PathBuf};

use crate::atrest::KeyId;
use crate::auth::master_key::MasterKeyFiles;
use crate::ops::datadir::write_atomic;

/// The two key files; both in directories chatd may write to.
#[derive(Debug, Clone)]
pub struct KeyFilePair {
    /// `--encryption-key-file`.
    pub current: PathBuf,
    /// `--previous-encryption-key-file`.
    pub previous: PathBuf,
}

/// The form chatd writes a key in: 64 hexadecimal characters and a newline.
fn text(key: &[u8; 32]) -> Vec<u8> {
    format!("{}\n", hex::encode(key)).into_bytes()
}

impl MasterKeyFiles for KeyFilePair {
    fn install(&self, current: &[u8; 32], previous: &[u8; 32]) -> Result<(), String> {
        // The previous first: until the new key is in place, both files hold keys the
        // database opens with.
        write_atomic(&self.previous, &text(previous), 0o600).map_err(|e| e.to_string())?;
        write_atomic(&self.current, &text(current), 0o600).map_err(|e| e.to_string())
    }

    /// Checks that chatd can write both files' directories (a rotation writes them while it
    /// runs), by creating and removing a file in each. Blocking.
    fn check_writable(&self) -> Result<(), String> {
        for path in [&self.current, &self.previous] {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let probe = dir.join(format!(".chatd-write-probe-{:016x}", rand::random::<u64>()));
            std::fs::write(&probe, b"")
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|e| {
                    format!(
                        "rotating the master key writes {}, but its directory {} is not \
                         writable: {e}",
                        path.display(),
                        dir.display()
                    )
                })?;
        }
        Ok(())
    }

    fn retire_previous(&self, id: KeyId) -> Result<String, String> {
        let mut name = self.previous.as_os_str().to_owned();
        name.push(format!(".retired-{id}"));
        let to = PathBuf::from(name);
        std::fs::rename(&self.previous, &to)
            .and_then(|()| {
                let dir = to.parent().filter(|p| !p.as_os_str().is_empty());
                dir.map_or(Ok(()), |d| std::fs::File::open(d)?.sync_all())
            })
            .map_err(|e| format!("cannot move {} aside: {e}", self.previous.display()))?;
        Ok(to.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_writes_both_keys_private_and_retire_moves_the_previous_aside() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("dir");
        let files = KeyFilePair {
            current: dir.path().join("master.key"),
            previous: dir.path().join("master.key.previous"),
        };
        files.check_writable().expect("writable");
        files.install(&[2; 32], &[1; 32]).expect("install");
        let read = |p: &Path| crate::ops::datadir::load_database_key(p).expect("key");
        assert_eq!(read(&files.current).bytes(), &[2; 32]);
        assert_eq!(read(&files.previous).bytes(), &[1; 32]);
        let mode = std::fs::metadata(&files.current)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let id = KeyId::of(&[1; 32]);
        let place = files.retire_previous(id).expect("retire");
        assert!(place.ends_with(&format!("master.key.previous.retired-{id}")));
        assert!(!files.previous.exists());
        assert_eq!(read(Path::new(&place)).bytes(), &[1; 32]);
        assert!(files.retire_previous(id).is_err(), "nothing left to move");
    }
}
