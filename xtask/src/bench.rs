//! `cargo xtask bench-compare`: this tree's chatd against a baseline commit's, side by side on
//! the same machine in the same session, so that the result is a ratio that holds across
//! machines (see `tests/src/bin/chat-bench/main.rs` for how the runs alternate and what is recorded).
//!
//! The baseline is checked out in its own git worktree (created on first use) and built there in
//! release mode; this tree's chatd, loadgen and chat-bench are built here. Both chatd builds are
//! driven by this tree's loadgen.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The commit BENCHMARKS.md compares against.
const DEFAULT_BASELINE: &str = "3119b50";

/// Options of `cargo xtask bench-compare`.
#[derive(clap::Args)]
pub struct Args {
    /// The baseline commit.
    #[arg(long, default_value = DEFAULT_BASELINE)]
    baseline: String,
    /// Where the baseline's worktree is (created when missing) [default:
    /// target/bench-baseline-<commit>].
    #[arg(long)]
    baseline_dir: Option<PathBuf>,
    /// Offered rates, comma-separated: messages per second (connect-storm: new connections).
    #[arg(long, default_value = "500")]
    rates: String,
    /// Runs per rate and build.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// 0: one chatd on its embedded store; N: N nodes on FerretDB (PostgreSQL) and Redis.
    #[arg(long, default_value_t = 0)]
    nodes: usize,
    /// Measure only while the 1-minute load average is below this (waits, polling).
    #[arg(long, default_value_t = 0.5)]
    max_load: f64,
    /// Seconds between two looks at the load average while waiting.
    #[arg(long, default_value_t = 600)]
    poll: u64,
    /// Where results go [default: target/bench-compare/<date-time>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// More chat-bench arguments (after `--`), e.g. `--users 1000 --room-size 100 --payload 128
    /// --duration 20s --warmup 5s`.
    #[arg(last = true)]
    bench_args: Vec<String>,
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// Creates the baseline's worktree when missing and builds its chatd in release mode.
fn build_baseline(root: &Path, rev: &str, dir: &Path, cargo: &str) -> anyhow::Result<PathBuf> {
    if !dir.join("Cargo.toml").is_file() {
        run(Command::new("git")
            .current_dir(root)
            .args(["worktree", "add", "--detach"])
            .arg(dir)
            .arg(rev))?;
    }
    run(Command::new(cargo)
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "chatd",
            "--bin",
            "chatd",
        ])
        .env("CARGO_TARGET_DIR", dir.join("target")))?;
    Ok(dir.join("target/release/chatd"))
}

/// Builds everything, then runs chat-bench with the baseline first and this tree second.
pub fn run_compare(args: Args) -> anyhow::Result<()> {
    let tools = super::deps::ensure()?;
    let root = super::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let baseline_dir = args
        .baseline_dir
        .clone()
        .unwrap_or_else(|| root.join(format!("target/bench-baseline-{}", args.baseline)));
    let baseline = build_baseline(&root, &args.baseline, &baseline_dir, &cargo)?;
    run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--release",
        "--locked",
        "-p",
        "chatd",
        "--bin",
        "chatd",
        "-p",
        "loadgen",
        "--bin",
        "loadgen",
        "-p",
        "tests",
        "--bin",
        "chat-bench",
    ]))?;
    let release = root.join("target/release");
    let out = args.out.unwrap_or_else(|| {
        let stamp = Command::new("date")
            .arg("+%Y%m%d-%H%M%S")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|_| "run".into());
        root.join("target/bench-compare").join(stamp)
    });
    let mut cmd = Command::new(release.join("chat-bench"));
    cmd.arg("--build")
        .arg(format!("baseline={}", baseline.display()))
        .arg("--build")
        .arg(format!("new={}", release.join("chatd").display()))
        .arg("--loadgen")
        .arg(release.join("loadgen"))
        .arg("--out")
        .arg(&out)
        .args(["--rates", &args.rates])
        .args(["--runs", &args.runs.to_string()])
        .args(["--nodes", &args.nodes.to_string()])
        .args(["--max-load", &args.max_load.to_string()])
        .args(["--poll", &args.poll.to_string()])
        .args(&args.bench_args);
    for (name, path) in tools.env() {
        cmd.env(name, path);
    }
    run(&mut cmd)?;
    eprintln!("xtask: results in {}", out.display());
    Ok(())
}
