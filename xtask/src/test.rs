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

/// Checks the architecture, unused dependencies (cargo-machete) and `deny.toml` (cargo-deny),
/// installs the tools, builds every binary, then runs `cargo test --workspace` with the tools'
/// paths in the environment.
pub fn run(args: Args) -> anyhow::Result<()> {
    super::lint_arch::run(&super::repo_root())?;
    super::deps::CARGO_MACHETE.ensure()?;
    let status = Command::new(super::deps::CARGO_MACHETE.name)
        .current_dir(super::repo_root())
        .status()
        .context("cannot run cargo machete")?;
    if !status.success() {
        bail!("cargo machete found unused dependencies ({status})");
    }
    super::deny::run()?;
    let tools = super::deps::ensure()?;
    // `cargo test` builds the binaries of packages with integration tests only; the suites also
    // run chatctl, chat-tui and loadgen, which must be this tree's, not an earlier build's.
    let status = super::cargo()
        .args(["build", "--workspace", "--bins", "--locked"])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build --workspace --bins failed ({status})");
    }
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
