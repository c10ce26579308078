//! Development tasks: `cargo xtask <task>`.
//!
//! # Layout
//! - `test`: check the architecture (`lint-arch`), unused dependencies (cargo-machete) and
//!   `deny`, install the real servers the suites need (Redis, nginx, FerretDB), then run every
//!   test.
//! - `deny`: licenses, security advisories, duplicate versions and sources (`deny.toml`).
//! - `lint-arch`: the boundaries of ARCHITECTURE.md, checked by machine.
//! - `deps`: only the install step.
//! - `cluster`: a local multi-node chat service (FerretDB + Redis Cluster) for benchmarks.
//! - `bench`: `bench-compare`, this tree's chatd against a baseline commit's, side by side.
//! - `vectors`: write (or check) the golden vectors in `spec/vectors/`.
//! - `fuzz`: run the cargo-fuzz targets in `fuzz/`.
//! - `install`: chatd, loadgen (and the other programs) on PATH with man pages and completions.
//! - `image`: the chatd container image (podman), from a host-built binary.
//! - `hack`: keep `workspace-hack` current, so one build serves every member.

mod bench;
mod cluster;
mod deny;
mod deps;
mod fuzz;
mod hack;
mod image;
mod install;
mod lint_arch;
// Also the test launchers' lookup: said once, in the tests crate.
#[path = "../../tests/src/postgres_dir.rs"]
mod postgres_dir;
mod test;
mod vectors;

use std::path::PathBuf;
use std::process::Command;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "development tasks for the chat workspace")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the test suites need, then run the whole suite (`cargo test --workspace`).
    Test(test::Args),
    /// Install Redis, nginx, PostgreSQL and FerretDB if missing, and print where they are.
    Deps,
    /// Check licenses, security advisories, duplicate versions and sources (deny.toml).
    Deny,
    /// Check the architecture's boundaries (dependencies, sans-IO core, handlers, module cycles).
    LintArch,
    /// Run N chatd nodes on FerretDB and a Redis Cluster (release build) until Ctrl-C.
    Cluster(cluster::Args),
    /// Compare this tree's chatd with a baseline commit's under loadgen, side by side (release).
    BenchCompare(bench::Args),
    /// Regenerate the golden vectors in spec/vectors/ from chatproto (or check they are current).
    Vectors(vectors::Args),
    /// Build the programs (release) and put them on PATH with man pages and completions.
    Install(install::Args),
    /// Build the chatd container image with podman (deploy/container/Containerfile).
    Image(image::Args),
    /// Regenerate workspace-hack (one build for every member), or check it with --check.
    Hack(hack::Args),
    /// Run the cargo-fuzz targets of `fuzz/` (needs a nightly toolchain and cargo-fuzz).
    Fuzz(fuzz::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Test(args) => test::run(args),
        Task::Deps => deps::ensure().map(|tools| tools.print()),
        Task::Deny => deny::run(),
        Task::LintArch => lint_arch::run(&repo_root()),
        Task::Cluster(args) => cluster::run(args),
        Task::BenchCompare(args) => bench::run_compare(args),
        Task::Vectors(args) => vectors::run(args),
        Task::Fuzz(args) => fuzz::run(args),
        Task::Hack(args) => hack::run(args),
        Task::Image(args) => image::run(args),
        Task::Install(args) => install::run(args),
    }
}

/// Variables `cargo run` gives the program it runs (here: xtask itself), besides the
/// `CARGO_PKG_*` ones.
const CARGO_RUN_VARS: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "OUT_DIR",
];

/// `cargo`, in the environment a developer's shell gives it. `cargo run -p xtask` hands this
/// process `CARGO_PKG_NAME=xtask`, `CARGO_MANIFEST_DIR` and the like; build scripts that declare
/// them with `rerun-if-env-changed` (ring's does) would see another environment than in a
/// shell, run again, and everything above them would be compiled a second time.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str()
            && (name.starts_with("CARGO_PKG_") || CARGO_RUN_VARS.contains(&name))
        {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The repository root (xtask lives one level below it).
fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
