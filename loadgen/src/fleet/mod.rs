//! The fleet: every user's connections, opened at a fixed rate, authenticated and caught up,
//! each with a receiver task, and closed at the end.
//!
//! A user's first connection registers (or logs in, when the name exists); its other
//! connections authenticate with the first one's access token, so that a run with many
//! connections per user does not pay a password hash per connection.
//!
//! Layout: `connect` opens one connection, `receiver` is the per-connection event task,
//! `rooms` creates the rooms and waits until every member knows them.

pub mod connect;
pub mod receiver;
pub mod rooms;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatproto::client::{Client, ClientConfig, Tokens};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::RunConfig;
use crate::error::LoadgenError;
use crate::measure::RunShared;
use crate::progress::Progress;
use crate::report::ConnectionReport;
use crate::stats::{LatencyHistogram, LatencySummary, latency_histogram};
use connect::{Auth, OpenError, Opened, client_config, open};
use receiver::{ConnProbe, receive};

/// Connection attempts in flight at once during the setup (the connect-storm measures
/// without this bound).
const SETUP_IN_FLIGHT: usize = 64;
/// How long the setup waits for every connection to catch up or learn its room.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(60);

/// One connection of the fleet.
#[derive(Debug)]
pub struct FleetConn {
    /// The user's index.
    pub user: u32,
    /// The SDK client.
    pub client: Arc<Client>,
    /// What its receiver saw.
    pub probe: Arc<ConnProbe>,
}

/// One user of the fleet.
#[derive(Debug, Clone)]
pub struct FleetUser {
    /// Server-assigned user id.
    pub user_id: u64,
    /// Tokens of its session.
    pub tokens: Tokens,
    /// Its connections (indexes into [`Fleet::conns`]).
    pub conns: Vec<usize>,
}

/// Timing and outcome of connection attempts.
#[derive(Debug)]
pub struct ConnectStats {
    handshake: LatencyHistogram,
    auth: LatencyHistogram,
    connect: LatencyHistogram,
    established: u64,
    zero_rtt: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    first_due: Option<Instant>,
    last_ready: Option<Instant>,
}

impl Default for ConnectStats {
    fn default() -> Self {
        Self {
            handshake: latency_histogram(),
            auth: latency_histogram(),
            connect: latency_histogram(),
            established: 0,
            zero_rtt: 0,
            failed: 0,
            errors: BTreeMap::new(),
            first_due: None,
            last_ready: None,
        }
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

impl ConnectStats {
    fn record(&mut self, due: Instant, result: &Result<Opened, OpenError>) {
        self.first_due = Some(self.first_due.map_or(due, |f| f.min(due)));
        match result {
            Ok(opened) => {
                let now = Instant::now();
                self.established += 1;
                self.zero_rtt += u64::from(opened.client.zero_rtt());
                self.handshake.saturating_record(micros(opened.handshake));
                self.auth.saturating_record(micros(opened.auth));
                self.connect
                    .saturating_record(micros(now.saturating_duration_since(due)));
                self.last_ready = Some(self.last_ready.map_or(now, |l| l.max(now)));
            }
            Err(e) => {
                self.failed += 1;
                *self.errors.entry(e.kind()).or_insert(0) += 1;
            }
        }
    }

    /// Errors of the attempts, by kind.
    pub fn errors(&self) -> &BTreeMap<String, u64> {
        &self.errors
    }

    /// The report section; `connect_ms` only when the schedule was open-loop (connect-storm).
    pub fn report(&self, target: u64, reconnects: u64, open_loop: bool) -> ConnectionReport {
        let per_sec = match (self.first_due, self.last_ready) {
            (Some(first), Some(last)) if last > first => {
                self.established as f64 / (last - first).as_secs_f64()
            }
            _ => 0.0,
        };
        ConnectionReport {
            target,
            established: self.established,
            zero_rtt: self.zero_rtt,
            failed: self.failed,
            reconnects,
            per_sec,
            handshake_ms: LatencySummary::of(&self.handshake),
            auth_ms: LatencySummary::of(&self.auth),
            connect_ms: if open_loop {
                LatencySummary::of(&self.connect)
            } else {
                LatencySummary::default()
            },
        }
    }
}

/// One connection to open.
#[derive(Debug, Clone)]
pub struct Job {
    /// Index of the connection in the fleet.
    pub index: usize,
    /// The user it belongs to.
    pub user: u32,
    /// Its client configuration.
    pub config: ClientConfig,
    /// How it authenticates.
    pub auth: Auth,
}

type Outcome = (usize, Job, Result<Opened, OpenError>);

/// Opens `jobs` on an open-loop schedule of `rate` per second (job `j` is due at
/// `start + j / rate`), with at most `in_flight` attempts at once when given. Returns every
/// outcome in job order.
pub async fn open_many(
    jobs: Vec<Job>,
    rate: f64,
    in_flight: Option<usize>,
    stats: Arc<Mutex<ConnectStats>>,
    progress: &indicatif::ProgressBar,
) -> Vec<(Job, Result<Opened, OpenError>)> {
    let start = tokio::time::Instant::now();
    let limit = in_flight.map(|n| Arc::new(Semaphore::new(n.max(1))));
    let mut set: JoinSet<Outcome> = JoinSet::new();
    let mut done: Vec<Outcome> = Vec::with_capacity(jobs.len());
    for (j, job) in jobs.into_iter().enumerate() {
        let due = start + Duration::from_secs_f64(j as f64 / rate);
        tokio::time::sleep_until(due).await;
        let permit = match &limit {
            Some(sem) => sem.clone().acquire_owned().await.ok(),
            None => None,
        };
        let stats = stats.clone();
        set.spawn(async move {
            let result = open(job.config.clone(), job.auth.clone()).await;
            drop(permit);
            if let Ok(mut s) = stats.lock() {
                s.record(due.into_std(), &result);
            }
            (j, job, result)
        });
        // Reap finished attempts as we go so the bar moves during the schedule.
        while let Some(Ok(outcome)) = set.try_join_next() {
            progress.inc(1);
            done.push(outcome);
        }
    }
    while let Some(joined) = set.join_next().await {
        if let Ok(outcome) = joined {
            progress.inc(1);
            done.push(outcome);
        }
    }
    done.sort_by_key(|(j, _, _)| *j);
    done.into_iter().map(|(_, job, r)| (job, r)).collect()
}

/// Every connection of a run.
#[derive(Debug)]
pub struct Fleet {
    /// Users by index.
    pub users: Vec<FleetUser>,
    /// Connections by index.
    pub conns: Vec<FleetConn>,
    /// How the connections were opened.
    pub stats: Arc<Mutex<ConnectStats>>,
    receivers: Vec<JoinHandle<()>>,
}

/// Turns failed setup attempts into one error naming how many failed, the first reason and,
/// for rate limits, the chatd setting to raise.
fn setup_failure(what: &str, failures: &[(u32, OpenError)], total: usize) -> LoadgenError {
    let Some((user, first)) = failures.first() else {
        return LoadgenError::Setup(format!("{what}: no connection"));
    };
    let hint = if first.client_error().code() == Some(chatproto::pb::ErrorCode::RateLimited) {
        " (chatd refused with RATE_LIMITED: raise its login and request limits, see \
         `loadgen run --help`)"
    } else {
        ""
    };
    LoadgenError::Setup(format!(
        "{what}: {} of {total} connections failed; the first (user {user}): {first}{hint}",
        failures.len()
    ))
}

impl Fleet {
    /// A fleet of existing users without connections yet (connections are [`adopt`]ed).
    ///
    /// [`adopt`]: Fleet::adopt
    pub fn with_users(users: Vec<FleetUser>, stats: Arc<Mutex<ConnectStats>>) -> Fleet {
        Fleet {
            users: users
                .into_iter()
                .map(|u| FleetUser {
                    conns: Vec::new(),
                    ..u
                })
                .collect(),
            conns: Vec::new(),
            stats,
            receivers: Vec::new(),
        }
    }

    /// Opens every connection of the run at `config.connect_rate`, registering or logging in
    /// each user, and waits until every connection has caught up. Any failure fails the setup.
    pub async fn open(
        config: &RunConfig,
        run: &Arc<RunShared>,
        progress: Progress,
    ) -> Result<Fleet, LoadgenError> {
        let mut fleet = Fleet::open_sessions(config, run, progress).await?;
        if let Err(e) = fleet.open_extra(config, run, progress).await {
            fleet.close().await;
            return Err(e);
        }
        if let Err(e) = fleet.wait_caught_up(progress).await {
            fleet.close().await;
            return Err(e);
        }
        Ok(fleet)
    }

    /// Opens the first connection of every user, which registers it (or logs in when the name
    /// exists) and so creates its session.
    pub async fn open_sessions(
        config: &RunConfig,
        run: &Arc<RunShared>,
        progress: Progress,
    ) -> Result<Fleet, LoadgenError> {
        let stats = Arc::new(Mutex::new(ConnectStats::default()));
        let mut fleet = Fleet {
            users: Vec::with_capacity(config.users as usize),
            conns: Vec::with_capacity(config.connections() as usize),
            stats: stats.clone(),
            receivers: Vec::with_capacity(config.connections() as usize),
        };
        let bar = progress.counter(u64::from(config.users), "logging in");
        let jobs: Vec<Job> = (0..config.users)
            .map(|u| Job {
                index: u as usize,
                user: u,
                config: client_config(config, u as usize, run),
                auth: Auth::RegisterOrLogin {
                    username: config.username(u),
                    password: config.password.clone(),
                },
            })
            .collect();
        let outcomes = open_many(
            jobs,
            config.connect_rate,
            Some(SETUP_IN_FLIGHT),
            stats,
            &bar,
        )
        .await;
        bar.finish_and_clear();
        let total = outcomes.len();
        let mut failures = Vec::new();
        for (job, result) in outcomes {
            match result {
                Ok(opened) => {
                    fleet.users.push(FleetUser {
                        user_id: opened.tokens.user_id,
                        tokens: opened.tokens.clone(),
                        conns: Vec::new(),
                    });
                    fleet.adopt(job.user, opened.client, run);
                }
                Err(e) => failures.push((job.user, e)),
            }
        }
        if !failures.is_empty() {
            fleet.close().await;
            return Err(setup_failure("logging in users", &failures, total));
        }
        Ok(fleet)
    }

    /// Opens the further `connections_per_user - 1` connections of every user; they
    /// authenticate with the access token of the user's session.
    pub async fn open_extra(
        &mut self,
        config: &RunConfig,
        run: &Arc<RunShared>,
        progress: Progress,
    ) -> Result<(), LoadgenError> {
        self.open_extra_part(config, run, progress, 0, 1).await
    }

    /// Opens part `part` of `parts` equal parts of the extra connections (see
    /// [`Fleet::open_extra`]); opening parts `0..parts` in turn opens them all.
    pub async fn open_extra_part(
        &mut self,
        config: &RunConfig,
        run: &Arc<RunShared>,
        progress: Progress,
        part: usize,
        parts: usize,
    ) -> Result<(), LoadgenError> {
        let mut jobs = Vec::new();
        for k in 1..config.connections_per_user {
            for u in 0..config.users {
                let Some(user) = self.users.get(u as usize) else {
                    continue;
                };
                let index = (k * config.users + u) as usize;
                jobs.push(Job {
                    index,
                    user: u,
                    config: client_config(config, index, run),
                    auth: Auth::Token(user.tokens.access_token.clone()),
                });
            }
        }
        let parts = parts.max(1);
        let (from, to) = (
            jobs.len() * part / parts,
            jobs.len() * (part + 1).min(parts) / parts,
        );
        let jobs: Vec<Job> = jobs.drain(from..to).collect();
        if jobs.is_empty() {
            return Ok(());
        }
        let bar = progress.counter(jobs.len() as u64, "connecting");
        let outcomes = open_many(
            jobs,
            config.connect_rate,
            Some(SETUP_IN_FLIGHT),
            self.stats.clone(),
            &bar,
        )
        .await;
        bar.finish_and_clear();
        let total = outcomes.len();
        let mut failures = Vec::new();
        for (job, result) in outcomes {
            match result {
                Ok(opened) => self.adopt(job.user, opened.client, run),
                Err(e) => failures.push((job.user, e)),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(setup_failure("opening extra connections", &failures, total))
        }
    }

    /// Waits until every connection's SDK session finished its initial sync.
    pub async fn wait_caught_up(&self, progress: Progress) -> Result<(), LoadgenError> {
        let spinner = progress.spinner("syncing");
        let caught_up =
            |c: &FleetConn| c.probe.caught_up.load(std::sync::atomic::Ordering::Acquire);
        let all = wait_for(BARRIER_TIMEOUT, || {
            let all = self.conns.iter().all(caught_up);
            async move { all }
        })
        .await;
        spinner.finish_and_clear();
        if all {
            return Ok(());
        }
        let behind = self.conns.iter().filter(|c| !caught_up(c)).count();
        Err(LoadgenError::Setup(format!(
            "{behind} connections did not finish their initial sync within {BARRIER_TIMEOUT:?}"
        )))
    }

    /// Adds an opened connection of `user` and starts its receiver.
    pub fn adopt(&mut self, user: u32, client: Client, run: &Arc<RunShared>) {
        let client = Arc::new(client);
        let probe = Arc::new(ConnProbe::default());
        let index = self.conns.len();
        if let Some(u) = self.users.get_mut(user as usize) {
            u.conns.push(index);
        }
        self.receivers.push(tokio::spawn(receive(
            client.clone(),
            user,
            probe.clone(),
            run.clone(),
        )));
        self.conns.push(FleetConn {
            user,
            client,
            probe,
        });
    }

    /// Reconnects across the fleet so far.
    pub fn reconnects(&self) -> u64 {
        self.conns
            .iter()
            .map(|c| u64::from(c.probe.reconnects()))
            .sum()
    }

    /// The connection of `user` that carries operation `i` (its connections take turns).
    pub fn conn_for(&self, user: u32, i: u64) -> Option<&FleetConn> {
        let u = self.users.get(user as usize)?;
        let n = u.conns.len().max(1) as u64;
        let which = (i / u64::from(self.users.len().max(1) as u32)) % n;
        self.conns.get(*u.conns.get(which as usize)?)
    }

    /// Closes every connection and waits for the receivers to end.
    pub async fn close(&mut self) {
        let mut set = JoinSet::new();
        for conn in &self.conns {
            let client = conn.client.clone();
            set.spawn(async move { client.close().await });
        }
        while set.join_next().await.is_some() {}
        for receiver in self.receivers.drain(..) {
            let _ = receiver.await;
        }
    }
}

/// Polls `check` every 50 ms until it holds or `timeout` passes; true if it held.
pub async fn wait_for<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
