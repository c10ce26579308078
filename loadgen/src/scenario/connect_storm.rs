//! connect-storm: how fast chatd takes new connections. The users are logged in first (one
//! connection each, closed again); then `users x connections_per_user` connections are opened
//! on an open-loop schedule at `connect_rate`, each resuming its user's session the way a
//! returning SDK client does (what a reconnect wave after a restart does): the QUIC + TLS
//! handshake, resumed when the process holds a session ticket of the server, and `hello`,
//! `authenticate` and `sync`, sent in 0-RTT data with the ticket unless `--no-zero-rtt`. No
//! bound on attempts in flight. Latency runs from each connection's due time.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::Outcome;
use crate::config::RunConfig;
use crate::error::LoadgenError;
use crate::fleet::connect::{Auth, client_config};
use crate::fleet::{ConnectStats, Fleet, Job, open_many};
use crate::measure::RunShared;
use crate::procstat::{CpuMeter, resident_bytes};
use crate::progress::Progress;
use crate::report::{Report, ServerReport};
use crate::scrape::scrape_all;

/// Runs the storm.
pub async fn run(config: &RunConfig, progress: Progress) -> Result<Outcome, LoadgenError> {
    let run_id: u64 = rand::random();
    let shared = Arc::new(RunShared::bind(config)?);
    // Sessions first: one login per user, then those connections go away.
    let mut login = config.clone();
    login.connections_per_user = 1;
    let mut sessions = Fleet::open(&login, &shared, progress).await?;
    let users = sessions.users.clone();
    sessions.close().await;
    let before = scrape_all(&config.metrics_urls).await?;

    let mut jobs = Vec::with_capacity(config.connections() as usize);
    for k in 0..config.connections_per_user {
        for (u, user) in users.iter().enumerate() {
            let index = k as usize * users.len() + u;
            jobs.push(Job {
                index,
                user: u as u32,
                config: client_config(config, index, &shared),
                auth: Auth::Resume(user.tokens.clone()),
            });
        }
    }
    let stats = Arc::new(Mutex::new(ConnectStats::default()));
    let bar = progress.counter(jobs.len() as u64, "storm");
    let cpu = CpuMeter::start();
    let started = Instant::now();
    let outcomes = open_many(jobs, config.connect_rate, None, stats.clone(), &bar).await;
    let storm_time = started.elapsed();
    let cpu = cpu.read();
    bar.finish_and_clear();

    let mut fleet = Fleet::with_users(users, stats.clone());
    for (job, result) in outcomes {
        if let Ok(opened) = result {
            fleet.adopt(job.user, opened.client, &shared);
        }
    }
    let connected = scrape_all(&config.metrics_urls).await?;
    let reconnects = fleet.reconnects();
    fleet.close().await;
    let after = scrape_all(&config.metrics_urls).await?;

    let mut report = Report::empty(config, run_id, 0);
    report.duration_s = storm_time.as_secs_f64();
    if let Ok(s) = stats.lock() {
        report.connections = s.report(config.connections(), reconnects, true);
        report.errors = s.errors().values().sum();
        report.errors_by_code = s.errors().clone();
    }
    report.loadgen.cpu = cpu;
    report.loadgen.rss_bytes = resident_bytes();
    if let (Some(before), Some(connected), Some(after)) = (before, connected, after) {
        report.server = Some(ServerReport::new(
            before,
            connected,
            after,
            report.connections.established,
        ));
    }
    report.judge();
    Ok(Outcome::without_deliveries(report))
}
