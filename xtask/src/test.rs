//! `cargo xtask test`: the one command that runs the whole suite on a fresh machine.

use std::process::Command;

use anyhow::{Context as _, bail};

/// Options of `cargo xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

/// Checks the architecture and unused dependencies (cargo-machete), installs the tools, then
/// runs `cargo test --workspace` with their paths in the environment.
pub fn run(args: Args) -> anyhow::Result<()> {
    super::lint_arch::run(&super::repo_root())?;
    super::deps::ensure_cargo_machete()?;
    let status = Command::new("cargo-machete")
        .current_dir(super::repo_root())
        .status()
        .context("cannot run cargo machete")?;
    if !status.success() {
        bail!("cargo machete found unused dependencies ({status})");
    }
    let tools = super::deps::ensure()?;
    let mut cmd = super::cargo();
    cmd.args(["test", "--workspace", "--locked"])
        .args(&args.cargo_args);
    for (name, path) in tools.env() {
        cmd.env(name, path);
    }
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().context("cannot run cargo test")?;
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}
