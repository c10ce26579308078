//! `cargo xtask deny`: `cargo deny check` over `deny.toml` — licenses, duplicate versions and
//! sources always, and security advisories against the RustSec database.
//!
//! The advisory database is a git repository that cargo-deny clones from GitHub. Where GitHub
//! cannot be reached (some CI machines), the copy already on the machine is used and its date
//! printed; where there is none, the advisories are reported as not checked, loudly, and the
//! other checks still decide. Nothing else is ever passed over.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::deps::CARGO_DENY;

/// Runs the checks; fails on any finding.
pub fn run() -> anyhow::Result<()> {
    CARGO_DENY.ensure()?;
    check(&["bans", "licenses", "sources"], false)?;
    let fetched = deny()
        .args(["fetch", "db"])
        .output()
        .context("cannot run cargo deny fetch")?;
    if fetched.status.success() {
        return check(&["advisories"], false);
    }
    let reason = String::from_utf8_lossy(&fetched.stderr);
    let reason = reason
        .lines()
        .find(|l| l.contains("fatal:"))
        .unwrap_or("fetch failed");
    match local_database() {
        Some((path, date)) => {
            eprintln!(
                "xtask: deny: the advisory database could not be fetched ({}); checking against \
                 the copy in {} (last advisory commit {date})",
                reason.trim(),
                path.display()
            );
            check(&["advisories"], true)
        }
        None => {
            eprintln!(
                "xtask: deny: ADVISORIES NOT CHECKED: the RustSec database could not be fetched \
                 ({}) and this machine has no copy (clone \
                 https://github.com/rustsec/advisory-db into ~/.cargo/advisory-dbs/ to check \
                 offline)",
                reason.trim()
            );
            Ok(())
        }
    }
}

fn deny() -> Command {
    let mut cmd = Command::new(CARGO_DENY.name);
    cmd.current_dir(crate::repo_root());
    cmd
}

fn check(kinds: &[&str], offline: bool) -> anyhow::Result<()> {
    let mut cmd = deny();
    if offline {
        cmd.arg("--offline");
    }
    cmd.args(["--locked", "check"]).args(kinds);
    let status = cmd.status().context("cannot run cargo deny")?;
    if !status.success() {
        bail!("cargo deny check {} failed ({status})", kinds.join(" "));
    }
    Ok(())
}

/// A clone of the advisory database where cargo-deny keeps it, and its last commit's date.
fn local_database() -> Option<(PathBuf, String)> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let dbs = std::fs::read_dir(home.join("advisory-dbs")).ok()?;
    dbs.filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("crates").is_dir())
        .find_map(|path| {
            let out = Command::new("git")
                .args(["log", "-1", "--format=%cs"])
                .current_dir(&path)
                .output()
                .ok()?;
            let date = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            out.status.success().then_some((path, date))
        })
}
