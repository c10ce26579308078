//! loadgen: the open-loop load generator for chatd.
//!
//! A run creates (or reuses) users, opens their connections at a fixed rate, puts them into rooms
//! and then drives an open-loop schedule: operation `i` is due at `t0 + i / rate` and is issued
//! then, whether or not earlier ones completed; every latency is measured from the due time, so a
//! stalled server cannot hide behind a slowed-down client (no coordinated omission). Receivers
//! decode the message header (see [`payload`]) and account for every expected delivery: latency,
//! losses, duplicates and reordering.
//!
//! # Layout
//! - [`config`]: flags, TOML file, validation into [`config::RunConfig`].
//! - [`schedule`]: open-loop due times.
//! - [`payload`]: the header each message carries.
//! - [`accounting`]: expected deliveries, losses, duplicates, reordering.
//! - [`stats`]: counters, HdrHistograms, the per-second timeline.
//! - [`report`]: the result, as a table, JSON and SVG plots.
//! - [`topology`]: rooms and who expects whose messages.
//! - [`fleet`]: opening, authenticating and closing connections; the receivers; rooms.
//! - [`measure`]: the state the load phase shares.
//! - [`scenario`]: one file per scenario.
//! - [`procstat`], [`scrape`]: loadgen's own CPU, chatd's `/metrics`.
//! - [`progress`]: the progress bars.
//! - [`error`]: the error type, [`LoadgenError`].
//! - [`transfer`]: `loadgen transfer`, file transfer throughput.

pub mod accounting;
pub mod config;
pub mod error;
pub mod fleet;
pub mod measure;
pub mod payload;
pub mod procstat;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod schedule;
pub mod scrape;
pub mod stats;
pub mod topology;
pub mod transfer;

use std::path::PathBuf;

pub use config::RunConfig;
pub use error::LoadgenError;
pub use report::Report;

/// What a run produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The measurements.
    pub report: Report,
    /// The SVG files written for `--plot`.
    pub plots: Vec<PathBuf>,
}

/// Runs `config`'s scenario from setup to report, writing plots when `config.plot_dir` is
/// set. `progress` shows bars on standard error (when it is a terminal).
pub async fn run(config: &RunConfig, progress: bool) -> Result<RunOutput, LoadgenError> {
    let outcome = scenario::run(config, progress::Progress::new(progress)).await?;
    let plots = match &config.plot_dir {
        Some(dir) => report::plot::write_plots(dir, &outcome.report, &outcome.delivery)?,
        None => Vec::new(),
    };
    Ok(RunOutput {
        report: outcome.report,
        plots,
    })
}
