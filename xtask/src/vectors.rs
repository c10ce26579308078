//! `cargo xtask vectors`: writes `spec/vectors/*.txt` from `chatproto::vectors::generate`.
//!
//! The generator is deterministic, so running it twice gives identical files; `--check` only
//! compares and fails when a file is missing, stale or unexpected (the same comparison
//! `chatproto/tests/vectors.rs` makes).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use anyhow::{Context, bail};
use chatproto::vectors;

/// Options of `cargo xtask vectors`.
#[derive(clap::Args)]
pub struct Args {
    /// Compare the files with the generator's output instead of writing them.
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = super::repo_root().join("spec/vectors");
    let files = vectors::generate().context("generating the vectors")?;
    if args.check {
        return check(&dir, &files);
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut count = 0;
    for file in &files {
        let path = dir.join(file.file_name);
        fs::write(&path, vectors::render_file(file))
            .with_context(|| format!("writing {}", path.display()))?;
        count += file.vectors.len();
    }
    remove_stale(&dir, &files)?;
    println!(
        "wrote {count} vectors in {} files to {}",
        files.len(),
        dir.display()
    );
    Ok(())
}

fn check(dir: &Path, files: &[vectors::VectorFile]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for file in files {
        let path = dir.join(file.file_name);
        match fs::read_to_string(&path) {
            Ok(text) if text == vectors::render_file(file) => {}
            Ok(_) => problems.push(format!("{} is stale", path.display())),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    for name in vector_files(dir)?.difference(&expected_names(files)) {
        problems.push(format!("{name} is not produced by the generator"));
    }
    if !problems.is_empty() {
        bail!(
            "spec/vectors does not match the generator (run `cargo xtask vectors`):\n{}",
            problems.join("\n")
        );
    }
    println!("spec/vectors is up to date");
    Ok(())
}

/// Deletes `.txt` files the generator no longer produces (a renamed or dropped file).
fn remove_stale(dir: &Path, files: &[vectors::VectorFile]) -> anyhow::Result<()> {
    for name in vector_files(dir)?.difference(&expected_names(files)) {
        let path = dir.join(name);
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        println!("removed stale {}", path.display());
    }
    Ok(())
}

fn expected_names(files: &[vectors::VectorFile]) -> BTreeSet<String> {
    files.iter().map(|f| f.file_name.to_owned()).collect()
}

/// The `.txt` files in `dir`.
fn vector_files(dir: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".txt") {
            names.insert(name);
        }
    }
    Ok(names)
}
