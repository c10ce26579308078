//! Development tasks: `cargo xtask <task>`.
//!
//! # Layout
//! - `test`: install the real servers the suites need (Redis, nginx, FerretDB), then run every test.
//! - `deps`: only the install step.
//! - `cluster`: a local multi-node chat service (FerretDB + Redis Cluster) for benchmarks.
//! - `bench`: `bench-compare`, this tree's chatd against a baseline commit's, side by side.
//! - `vectors`: write (or check) the golden vectors in `spec/vectors/`.
//! - `fuzz`: run the cargo-fuzz targets in `fuzz/`.

mod bench;
mod cluster;
mod deps;
mod fuzz;
mod test;
mod vectors;

use std::path::PathBuf;

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
    /// Run N chatd nodes on FerretDB and a Redis Cluster (release build) until Ctrl-C.
    Cluster(cluster::Args),
    /// Compare this tree's chatd with a baseline commit's under loadgen, side by side (release).
    BenchCompare(bench::Args),
    /// Regenerate the golden vectors in spec/vectors/ from chatproto (or check they are current).
    Vectors(vectors::Args),
    /// Fuzz the frame decoder with cargo-fuzz (needs a nightly toolchain and cargo-fuzz).
    Fuzz(fuzz::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Test(args) => test::run(args),
        Task::Deps => deps::ensure().map(|tools| tools.print()),
        Task::Cluster(args) => cluster::run(args),
        Task::BenchCompare(args) => bench::run_compare(args),
        Task::Vectors(args) => vectors::run(args),
        Task::Fuzz(args) => fuzz::run(args),
    }
}

/// The repository root (xtask lives one level below it).
fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}
