//! `cargo xtask cluster`: a local multi-node chat service for benchmarks (see
//! `tests/src/bin/chat-cluster.rs`), in release mode, with the servers it needs installed:
//! FerretDB on a private PostgreSQL (far faster than its SQLite handler) and a Redis Cluster by
//! default.

use std::process::Command;

use anyhow::{Context as _, bail};

/// Options of `cargo xtask cluster`.
#[derive(clap::Args)]
pub struct Args {
    /// Number of chatd nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Where FerretDB stores: `postgres` (its PostgreSQL handler) or `sqlite`.
    #[arg(long, default_value = "postgres", value_parser = ["postgres", "sqlite"])]
    store: String,
    /// `cluster` (a 3-master Redis Cluster) or `standalone` (one Redis).
    #[arg(long, default_value = "cluster", value_parser = ["cluster", "standalone"])]
    redis: String,
    /// Extra chatd arguments for every node (after `--`), e.g. `--log=warn`.
    #[arg(last = true)]
    chatd_args: Vec<String>,
}

/// Installs the tools, builds chatd, loadgen and the launcher in release mode, and runs the
/// launcher until Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<()> {
    let tools = super::deps::ensure()?;
    let build = super::cargo()
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "chatd",
            "-p",
            "loadgen",
        ])
        .args([
            "-p",
            "tests",
            "--bin",
            "chat-cluster",
            "--bin",
            "chatd",
            "--bin",
            "loadgen",
        ])
        .status()
        .context("cannot run cargo build")?;
    if !build.success() {
        bail!("release build failed ({build})");
    }
    let launcher = super::repo_root().join("target/release/chat-cluster");
    let mut cmd = Command::new(&launcher);
    cmd.args(["--nodes", &args.nodes.to_string()])
        .args(["--store", &args.store, "--redis", &args.redis, "--"])
        .args(&args.chatd_args);
    for (name, path) in tools.env() {
        cmd.env(name, path);
    }

    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", launcher.display()))?;
    if !status.success() {
        bail!("chat-cluster failed ({status})");
    }
    Ok(())
}
