//! idle: open every connection (authenticated, event stream open, caught up), then hold them
//! without traffic for `duration` and measure what they cost the server: RSS growth per
//! connection from `--metrics-url`. Keep-alives run; reconnects and errors during the hold are
//! reported.
//!
//! The logins come first (one connection per user). Password hashing leaves memory in the
//! server's allocator that has nothing to do with connections, so with several connections per
//! user the figure comes from the connections opened after the logins, which authenticate with
//! a token: they are opened in six steps, the server is sampled once its RSS is steady after
//! each, and the figure is the median slope of RSS over open connections between samples
//! (see [`rss_slope`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Outcome;
use crate::accounting::{Ledger, SenderBook};
use crate::config::RunConfig;
use crate::error::LoadgenError;
use crate::fleet::Fleet;
use crate::measure::{Measure, RunShared};
use crate::procstat::{CpuMeter, resident_bytes};
use crate::progress::Progress;
use crate::report::{Report, RssStep, ServerReport, rss_slope};
use crate::scrape::{ServerSample, scrape_all};
use crate::stats::{Counters, Recorder};
use crate::topology::Topology;

/// Runs the idle scenario.
pub async fn run(config: &RunConfig, progress: Progress) -> Result<Outcome, LoadgenError> {
    let run_id: u64 = rand::random();
    let shared = Arc::new(RunShared::bind(config)?);
    let before = scrape_all(&config.metrics_urls).await?;
    let mut fleet = Fleet::open_sessions(config, &shared, progress).await?;
    let result = connect_and_hold(config, &mut fleet, &shared, run_id, progress, before).await;
    let loadgen_rss = resident_bytes();
    fleet.close().await;
    let mut outcome = result?;
    outcome.report.loadgen.rss_bytes = loadgen_rss;
    if let Ok(stats) = fleet.stats.lock() {
        outcome.report.connections = stats.report(config.connections(), fleet.reconnects(), false);
    }
    outcome.report.judge();
    Ok(outcome)
}

/// Steps in which the extra connections are opened, with a server sample after each.
const STEPS: usize = 6;
/// Longest wait for the server's memory to settle after the logins.
const SETTLE: Duration = Duration::from_secs(15);

/// Waits until the summed server RSS stays the same over a second (password hashing leaves
/// the allocator busy for a moment), at most [`SETTLE`]; returns the last sample.
async fn settled(urls: &[String]) -> Result<Option<ServerSample>, LoadgenError> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut last = scrape_all(urls).await?;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = scrape_all(urls).await?;
        let stable = match (&last, &now) {
            (Some(a), Some(b)) => a.rss_bytes == b.rss_bytes,
            _ => true,
        };
        last = now;
        if stable || tokio::time::Instant::now() >= deadline {
            return Ok(last);
        }
    }
}

fn step(sample: Option<ServerSample>) -> Option<RssStep> {
    let s = sample?;
    Some(RssStep {
        connections: s.connections_open?,
        rss_bytes: s.rss_bytes?,
    })
}

async fn connect_and_hold(
    config: &RunConfig,
    fleet: &mut Fleet,
    shared: &Arc<RunShared>,
    run_id: u64,
    progress: Progress,
    before: Option<ServerSample>,
) -> Result<Outcome, LoadgenError> {
    let urls = &config.metrics_urls;
    // With extra connections: sample after the logins settled and after each step, and fit
    // the memory per connection to those samples.
    let mut steps: Vec<RssStep> = Vec::new();
    if config.connections_per_user > 1 {
        steps.extend(step(settled(urls).await?));
        for part in 0..STEPS {
            fleet
                .open_extra_part(config, shared, progress, part, STEPS)
                .await?;
            fleet.wait_caught_up(progress).await?;
            steps.extend(step(settled(urls).await?));
        }
    }
    fleet.wait_caught_up(progress).await?;
    let connected = scrape_all(urls).await?;

    // Errors and reconnects during the hold are counted by the receivers into this recorder.
    let measure = Arc::new(Measure {
        run_id,
        recorder: Recorder::new(Instant::now(), Duration::ZERO, config.duration),
        ledger: Ledger::new(0),
        senders: SenderBook::new(0),
        topology: Topology::new(config.users, 1, config.connections_per_user),
    });
    shared.start(measure.clone());
    let cpu = CpuMeter::start();
    let bar = progress.timed(config.duration.as_secs(), "idle");
    let end = tokio::time::Instant::now() + config.duration;
    while tokio::time::Instant::now() < end {
        let left = end - tokio::time::Instant::now();
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        let up = fleet
            .conns
            .iter()
            .filter(|c| {
                c.probe.connects.load(Ordering::Relaxed)
                    > c.probe.disconnects.load(Ordering::Relaxed)
            })
            .count();
        bar.set_position(measure.recorder.now_ns() / 1_000_000_000);
        bar.set_message(format!("{up} connections up"));
    }
    let cpu = cpu.read();
    bar.finish_and_clear();
    let after = scrape_all(&config.metrics_urls).await?;

    let mut report = Report::empty(config, run_id, 0);
    let c = &measure.recorder.counters;
    report.errors = Counters::get(&c.errors);
    report.errors_by_code = measure.recorder.errors_by_kind();
    report.timeline = measure.recorder.timeline();
    report.loadgen.cpu = cpu;
    if let (Some(before), Some(connected), Some(after)) = (before, connected, after) {
        let mut server = ServerReport::new(before, connected, after, config.connections());
        if let Some(slope) = rss_slope(&steps) {
            let extra = config.connections() - u64::from(config.users);
            server.rss_per_connection_bytes = Some(slope);
            server.rss_per_connection_basis = format!(
                "median slope over {} samples while {extra} token-authenticated connections \
                 were added after the {} logins",
                steps.len(),
                config.users
            );
        }
        server.rss_steps = steps;
        report.server = Some(server);
    }
    Ok(Outcome::without_deliveries(report))
}
