//! Where Debian puts PostgreSQL's server programs. One file for the two crates that look for
//! them: `cargo xtask deps` (to install PostgreSQL when missing) and the test launchers (when
//! `CHAT_TEST_PG_BIN` is not set); xtask includes it with `#[path]`.

use std::path::PathBuf;

/// The newest `/usr/lib/postgresql/<version>/bin` that holds `initdb`, if any.
pub fn newest_postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}
