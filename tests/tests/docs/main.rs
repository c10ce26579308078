//! Every shell command in README.md and the crates' READMEs, run as written against a real chatd,
//! so that the documentation cannot drift from the binaries.
//!
//! # What runs, and the annotations
//!
//! Every fenced block whose language is `sh` runs, in order, with bash (`-e -o pipefail`), in a
//! copy of the repository (the files git knows); README.md goes first, and the other files share
//! what it installed. An HTML comment on the line before a block says how it runs:
//!
//! - no comment: the block runs to completion and must exit 0;
//! - `<!-- docs-test: daemon -->`: a server; it runs in the background until the end of its
//!   file (then SIGINT, and it must exit cleanly). The next block may be its output;
//! - `<!-- docs-test: until "TEXT" -->`: runs until a line of its output contains TEXT, then
//!   SIGINT; it must exit 0;
//! - `<!-- docs-test: output -->` on a non-shell block: what the previous block prints first,
//!   compared line by line; `<name>` matches a word and remembers it (the fingerprint);
//! - `<!-- docs-test: not-run "REASON" -->`: not run (the reason is printed), but checked: a
//!   single command must exist (`COMMAND --help` exits 0), several lines must be valid bash
//!   (`bash -n`). Nothing else is ever skipped.
//!
//! `<name>` in a command is replaced by the value an output block remembered. Where the test
//! departs from a user's machine, it says so here: chatd listens on free ports (the test sets
//! `CHATD_LISTEN` / `CHATD_ADMIN_LISTEN` and replaces `127.0.0.1:4433` / `127.0.0.1:9464` in
//! commands and outputs); `cargo xtask install` installs into a temporary `CARGO_INSTALL_ROOT`
//! that is put first on PATH; `XDG_CONFIG_HOME` and `XDG_STATE_HOME` are temporary directories
//! (where `chatctl login` keeps its profile); cargo builds into `target/docs-test` (cargo test holds the lock of
//! `target/`), and release builds are not optimised (`CARGO_PROFILE_RELEASE_OPT_LEVEL=0`, ...),
//! which changes how fast the programs run, not what they do.
//!
//! One build: the release artifacts the first server's build wrote must not be written again by
//! any later command (`cargo xtask install`, the example); the test fails naming them.

mod markdown;
mod one_build;
mod run;

use std::path::PathBuf;

/// The documents, README.md first.
fn documents(root: &std::path::Path) -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "*README.md",
        ])
        .current_dir(root)
        .output()
        .expect("git ls-files");
    let mut docs: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("target/") && !l.starts_with("fuzz/"))
        // The published crates copied under third_party/ keep their own READMEs, whose
        // commands are theirs (third_party/README.md itself is ours).
        .filter(|l| !l.starts_with("third_party/") || *l == "third_party/README.md")
        .map(PathBuf::from)
        .collect();
    docs.sort_by_key(|d| (d != &PathBuf::from("README.md"), d.clone()));
    assert_eq!(docs.first(), Some(&PathBuf::from("README.md")), "{docs:?}");
    docs
}

#[test]
fn every_readme_command_works_as_written() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().expect("repository root");
    let mut world = run::World::new(&root);
    for doc in documents(&root) {
        let text = std::fs::read_to_string(root.join(&doc)).expect("read document");
        let blocks = markdown::blocks(&doc, &text);
        world.run_document(&doc, &blocks);
    }
    world.check_one_build();
}
