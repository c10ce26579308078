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
//! - [`procstat`], [`scrape`]: loadgen's own CPU, chatd's `/metrics`.
//! - [`error`]: [`LoadgenError`].

pub mod accounting;
pub mod config;
pub mod error;
pub mod payload;
pub mod procstat;
pub mod report;
pub mod schedule;
pub mod scrape;
pub mod stats;

pub use error::LoadgenError;
