//! Development tasks: `cargo xtask <task>`.
//!
//! # Layout
//! - `test`: install the real servers the suites need (Redis, nginx, FerretDB), then run every test.
//! - `deps`: only the install step.

mod deps;
mod test;

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
    /// Install Redis, nginx and FerretDB if missing, and print where they are.
    Deps,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Test(args) => test::run(args),
        Task::Deps => deps::ensure().map(|tools| tools.print()),
    }
}
