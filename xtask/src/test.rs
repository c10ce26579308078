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

/// Installs the tools, then runs `cargo test --workspace` with their paths in the environment.
pub fn run(args: Args) -> anyhow::Result<()> {
    let tools = super::deps::ensure()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
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
