//! Encryption key files as an operator makes them: 32 random bytes, raw or as hex, owner-only.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// A new key file `name` in `dir`: 32 bytes from `/dev/urandom`, as 64 hex characters and a
/// newline when `hex`, raw otherwise; mode 0600, as chatd requires.
///
/// # Panics
/// When the file exists already or cannot be written.
pub fn key_file(dir: &Path, name: &str, hex: bool) -> PathBuf {
    let path = dir.join(name);
    let mut key = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").expect("urandom"),
        &mut key,
    )
    .expect("random key");
    let contents = if hex {
        format!("{}\n", hex::encode(key)).into_bytes()
    } else {
        key.to_vec()
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("create key file");
    std::io::Write::write_all(&mut file, &contents).expect("write key");
    path
}
