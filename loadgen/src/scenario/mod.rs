//! The scenarios: what a run does between setting up and reporting. Each has its own file;
//! this one dispatches and holds what they share (the live progress line, server scrapes).
//!
//! - `messaging`: room-fanout, private, and the history and search mixes (open-loop sends, with
//!   reads mixed in by `mix`).
//! - `connect_storm`: open-loop connection establishment.
//! - `idle`: idle connections and the server's memory per connection.

mod connect_storm;
mod idle;
mod messaging;
mod mix;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::{RunConfig, Scenario};
use crate::error::LoadgenError;
use crate::measure::Measure;
use crate::progress::Progress;
use crate::report::Report;
use crate::stats::{LatencyHistogram, latency_histogram};

/// What a scenario hands back: the report and the delivery latencies for the plots.
#[derive(Debug)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Delivery latencies (µs) of the measured window.
    pub delivery: LatencyHistogram,
}

impl Outcome {
    fn without_deliveries(report: Report) -> Self {
        Self {
            report,
            delivery: latency_histogram(),
        }
    }
}

/// Runs `config`'s scenario.
pub async fn run(config: &RunConfig, progress: Progress) -> Result<Outcome, LoadgenError> {
    match config.scenario {
        Scenario::RoomFanout | Scenario::Private | Scenario::History | Scenario::Search => {
            messaging::run(config, progress).await
        }
        Scenario::ConnectStorm => connect_storm::run(config, progress).await,
        Scenario::Idle => idle::run(config, progress).await,
    }
}

/// Updates `bar` once a second with the live figures of `measure` until `seconds` have passed
/// since t0 (or the task is aborted).
fn spawn_ticker(
    measure: Arc<Measure>,
    bar: indicatif::ProgressBar,
    seconds: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let c = &measure.recorder.counters;
        let mut last = (0u64, 0u64);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let t = measure.recorder.now_ns() / 1_000_000_000;
            let acked = c.acked.load(Ordering::Relaxed);
            let delivered = c.delivered.load(Ordering::Relaxed);
            let p99 = t
                .checked_sub(1)
                .and_then(|prev| measure.recorder.second_latency(prev))
                .map_or_else(|| "-".to_owned(), |(_, p99)| format!("{p99:.1}"));
            bar.set_position(t.min(seconds));
            bar.set_message(format!(
                "acked {}/s, delivered {}/s, p99 {p99} ms, in flight {}, errors {}",
                acked - last.0,
                delivered - last.1,
                c.in_flight.load(Ordering::Relaxed),
                c.errors.load(Ordering::Relaxed),
            ));
            last = (acked, delivered);
        }
    })
}
