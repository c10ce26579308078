//! Called from the build script of every package with a binary, so that `--version` names the
//! commit it was built from (see `chat_cli::version!`):
//!
//! ```text
//! // build.rs
//! fn main() {
//!     chat_cli_build::emit_commit();
//! }
//! ```
//!
//! Release builds record the commit of `HEAD` and are rebuilt when it moves. Debug builds record
//! none: watching `HEAD` would recompile the whole package (a library included) after every
//! commit, and a development binary is always run next to its checkout anyway.

use std::path::PathBuf;
use std::process::Command;

/// The variable `chat_cli::version!` reads.
pub const COMMIT_VAR: &str = "CHAT_BUILD_COMMIT";

/// Prints the `cargo:` lines that set [`COMMIT_VAR`] for the package being built.
pub fn emit_commit() {
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = if release {
        for path in watched_git_files(&manifest_dir) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        git(&manifest_dir, &["rev-parse", "--short=12", "HEAD"])
            .map_or_else(|| "commit unknown".to_owned(), |c| format!("commit {c}"))
    } else {
        "debug build".to_owned()
    };
    // Without this line cargo would rerun the script after every change in the package.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env={COMMIT_VAR}={commit}");
}

/// `HEAD`, the branch it points to and `packed-refs`: the files whose change means a new
/// commit. `git rev-parse --git-path` resolves them for worktrees too. Only existing files:
/// cargo reruns a script on every build while a watched file is missing.
fn watched_git_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut names = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        names.push(branch);
    }
    names
        .iter()
        .filter_map(|name| {
            git(
                dir,
                &["rev-parse", "--path-format=absolute", "--git-path", name],
            )
        })
        .map(PathBuf::from)
        .filter(|path| path.exists())
        .collect()
}

/// The trimmed standard output of a successful `git` run in `dir`.
fn git(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_head_and_the_branch_of_this_checkout() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let files = watched_git_files(&dir);
        assert!(files.iter().any(|f| f.ends_with("HEAD")), "{files:?}");
        assert!(files.iter().all(|f| f.is_absolute()), "{files:?}");
        let commit = git(&dir, &["rev-parse", "--short=12", "HEAD"]).expect("a git checkout");
        assert_eq!(commit.len(), 12);
    }
}
