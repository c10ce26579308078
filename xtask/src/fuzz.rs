//! `cargo xtask fuzz`: runs the `frame_decoder` cargo-fuzz target for a bounded time.
//!
//! The fuzz project (`fuzz/`) is outside the workspace: it needs nightly Rust and cargo-fuzz
//! (`cargo install cargo-fuzz`). Its corpus and crash artifacts stay in `fuzz/corpus` and
//! `fuzz/artifacts`, which git ignores.

use std::process::Command;

use anyhow::{Context, bail};

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// How long to fuzz, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The fuzz target to run.
    #[arg(long, default_value = "frame_decoder")]
    target: String,
    /// The toolchain cargo-fuzz builds with (it needs nightly for the sanitizers).
    #[arg(long, default_value = "nightly")]
    toolchain: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let status = Command::new("cargo")
        .arg(format!("+{}", args.toolchain))
        .args(["fuzz", "run", &args.target, "--"])
        .arg(format!("-max_total_time={}", args.seconds))
        .arg("-print_final_stats=1")
        .current_dir(super::repo_root())
        .status()
        .context("running cargo fuzz (is cargo-fuzz installed? `cargo install cargo-fuzz`)")?;
    if !status.success() {
        bail!(
            "cargo fuzz run {} failed ({status}); crashes are in fuzz/artifacts/{}",
            args.target,
            args.target
        );
    }
    Ok(())
}
