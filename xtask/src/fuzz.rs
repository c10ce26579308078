//! `cargo xtask fuzz`: runs cargo-fuzz targets for a bounded time, one at a time.
//!
//! The fuzz project (`fuzz/`, see `fuzz/README.md`) is outside the workspace: it needs nightly
//! Rust and cargo-fuzz (`cargo install cargo-fuzz`). Each target starts from its committed
//! corpus in `fuzz/corpus/TARGET` and adds what it finds there; crashes go to
//! `fuzz/artifacts/TARGET`, which git ignores.

use std::process::Command;

use anyhow::{Context, bail};

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct Args {
    /// How long to fuzz each target, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The fuzz target to run (`cargo +nightly fuzz list` names them).
    #[arg(long, default_value = "frame_decoder", conflicts_with = "all")]
    target: String,
    /// Run every target in turn, each for `--seconds`.
    #[arg(long)]
    all: bool,
    /// The toolchain cargo-fuzz builds with (it needs nightly for the sanitizers).
    #[arg(long, default_value = "nightly")]
    toolchain: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let targets = if args.all {
        list(&args.toolchain)?
    } else {
        vec![args.target.clone()]
    };
    for target in &targets {
        fuzz(&args, target)?;
    }
    Ok(())
}

/// The targets of the fuzz project, as cargo-fuzz lists them.
fn list(toolchain: &str) -> anyhow::Result<Vec<String>> {
    let output = Command::new("cargo")
        .arg(format!("+{toolchain}"))
        .args(["fuzz", "list"])
        .current_dir(super::repo_root())
        .output()
        .context("running cargo fuzz list (is cargo-fuzz installed? `cargo install cargo-fuzz`)")?;
    if !output.status.success() {
        bail!("cargo fuzz list failed ({})", output.status);
    }
    let targets: Vec<String> = String::from_utf8(output.stdout)
        .context("cargo fuzz list printed non-UTF-8")?
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect();
    if targets.is_empty() {
        bail!("cargo fuzz list named no targets");
    }
    Ok(targets)
}

fn fuzz(args: &Args, target: &str) -> anyhow::Result<()> {
    eprintln!("fuzzing {target} for {}s", args.seconds);
    let status = Command::new("cargo")
        .arg(format!("+{}", args.toolchain))
        .args(["fuzz", "run", target, "--"])
        .arg(format!("-max_total_time={}", args.seconds))
        .arg("-print_final_stats=1")
        .current_dir(super::repo_root())
        .status()
        .context("running cargo fuzz (is cargo-fuzz installed? `cargo install cargo-fuzz`)")?;
    if !status.success() {
        bail!("cargo fuzz run {target} failed ({status}); crashes are in fuzz/artifacts/{target}");
    }
    Ok(())
}
