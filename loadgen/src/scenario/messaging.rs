//! room-fanout, private, and the history and search mixes: users in rooms, an open-loop
//! schedule of operations at `rate`, senders taking turns, every delivery accounted for.
//!
//! Operation `i` is due at `t0 + i / rate`. When it comes due (or as soon after as the
//! scheduler wakes), it is issued on its own task, whatever the earlier ones are doing; its
//! header carries the due time, and every latency runs from it. After the schedule, the drain
//! waits until every acknowledged message reached every expected connection, or the drain time
//! passes; what is still missing then is lost.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chatproto::client::ClientError;
use chatproto::pb;

use super::mix::{self, Op};
use super::{Outcome, spawn_ticker};
use crate::accounting::{Ledger, SenderBook};
use crate::config::{RunConfig, Scenario};
use crate::error::LoadgenError;
use crate::fleet::connect::error_kind;
use crate::fleet::rooms::{create_rooms, wait_for_rooms};
use crate::fleet::{Fleet, FleetConn};
use crate::measure::{Measure, RunShared};
use crate::payload::Payload;
use crate::procstat::{CpuMeter, resident_bytes};
use crate::progress::Progress;
use crate::report::{Report, ServerReport};
use crate::schedule::{Schedule, pace, round_robin};
use crate::scrape::{ServerSample, scrape_all};
use crate::stats::{Counters, LatencySummary, Recorder};
use crate::topology::Topology;

/// Runs a messaging scenario from setup to report.
pub async fn run(config: &RunConfig, progress: Progress) -> Result<Outcome, LoadgenError> {
    let run_id: u64 = rand::random();
    let shared = Arc::new(RunShared::bind(config)?);
    let before = scrape_all(&config.metrics_urls).await?;
    let mut fleet = Fleet::open(config, &shared, progress).await?;
    let result = drive(config, &fleet, &shared, run_id, progress, before).await;
    fleet.close().await;
    let mut outcome = result?;
    outcome.report.connections.reconnects = fleet.reconnects();
    Ok(outcome)
}

async fn drive(
    config: &RunConfig,
    fleet: &Fleet,
    shared: &Arc<RunShared>,
    run_id: u64,
    progress: Progress,
    before: Option<ServerSample>,
) -> Result<Outcome, LoadgenError> {
    let mut topology = Topology::new(config.users, config.room_size, config.connections_per_user);
    let private = config.scenario == Scenario::Private;
    let chat_ids = create_rooms(fleet, &topology, private, run_id, progress).await?;
    topology.set_chat_ids(chat_ids);
    wait_for_rooms(fleet, &topology, progress).await?;
    let connected = scrape_all(&config.metrics_urls).await?;

    let schedule = Schedule::new(config.rate, config.warmup + config.duration);
    let t0 = Instant::now();
    let measure = Arc::new(Measure {
        run_id,
        recorder: Recorder::new(t0, config.warmup, config.duration),
        ledger: Ledger::new(schedule.count()),
        senders: SenderBook::new(config.users),
        topology,
    });
    shared.start(measure.clone());
    let cpu = CpuMeter::start();
    let seconds = (config.warmup + config.duration).as_secs();
    let bar = progress.timed(seconds, config.scenario.name());
    let ticker = spawn_ticker(measure.clone(), bar.clone(), seconds);

    let mut due = pace(schedule, t0)?;
    while let Some(range) = due.recv().await {
        for i in range {
            issue(config, fleet, &measure, &schedule, i);
        }
    }

    // Drain: every acknowledged message at every recipient, every operation answered.
    bar.set_prefix("draining");
    let deadline = tokio::time::Instant::now() + config.drain;
    loop {
        let idle = measure.recorder.counters.in_flight.load(Ordering::Relaxed) == 0;
        if idle && measure.ledger.settled() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = cpu.read();
    ticker.abort();
    bar.finish_and_clear();
    let after = scrape_all(&config.metrics_urls).await?;

    let mut report = Report::empty(config, run_id, measure.topology.rooms());
    let delivery = fill(&mut report, config, &measure, fleet);
    report.loadgen.cpu = cpu;
    report.loadgen.rss_bytes = resident_bytes();
    if let (Some(before), Some(connected), Some(after)) = (before, connected, after) {
        report.server = Some(ServerReport::new(
            before,
            connected,
            after,
            config.connections(),
        ));
    }
    report.judge();
    Ok(Outcome { report, delivery })
}

/// Issues operation `i` on its own task.
fn issue(config: &RunConfig, fleet: &Fleet, measure: &Arc<Measure>, schedule: &Schedule, i: u64) {
    let sender = round_robin(i, config.users);
    let due_ns = schedule.due_ns(i);
    let Some(conn) = fleet.conn_for(sender, i) else {
        measure.recorder.error("no_connection");
        return;
    };
    let chat_id = measure.topology.chat_id(measure.topology.room_of(sender));
    let op = mix::op_for(config.scenario, config.read_percent, i);
    measure.recorder.offered(due_ns);
    if op != Op::Send {
        let client = conn.client.clone();
        let measure = measure.clone();
        tokio::spawn(async move {
            match mix::read(&client, op, chat_id, i).await {
                Ok(()) => measure.recorder.request_done(op.name(), due_ns),
                Err(e) => measure.recorder.operation_failed(&error_kind(&e)),
            }
        });
        return;
    }
    send(conn, measure, sender, chat_id, i, due_ns, config.payload);
}

fn send(
    conn: &FleetConn,
    measure: &Arc<Measure>,
    sender: u32,
    chat_id: u64,
    i: u64,
    due_ns: u64,
    size: usize,
) {
    let Some(next) = measure.senders.next(sender) else {
        measure.recorder.operation_failed("no_sender");
        return;
    };
    let text = Payload {
        run_id: measure.run_id,
        index: i,
        sender,
        seq: next.seq,
        due_ns,
        acked: next.acked,
    }
    .encode(size);
    // Registered before sending: deliveries may overtake the acknowledgement.
    measure.ledger.issue(i, measure.topology.recipients());
    let client = conn.client.clone();
    let measure = measure.clone();
    tokio::spawn(async move {
        let result = client
            .send_message(pb::SendMessage {
                chat_id,
                client_msg_id: format!("lg{:016x}-{i:x}", measure.run_id),
                kind: pb::MessageKind::Text as i32,
                text,
                ..Default::default()
            })
            .await;
        match result {
            Ok(_) => {
                measure.ledger.acked(i);
                measure.senders.resolved(sender, next.seq);
                measure.recorder.acked(due_ns);
            }
            Err(e) => {
                measure.ledger.failed(i);
                if refused(&e) {
                    measure.senders.resolved(sender, next.seq);
                }
                measure.recorder.operation_failed(&error_kind(&e));
            }
        }
    });
}

/// True when the server definitely did not store the message (an error answer other than
/// INTERNAL): it can never arrive. After a timeout or a lost connection it still might.
fn refused(e: &ClientError) -> bool {
    matches!(e.code(), Some(code) if code != pb::ErrorCode::Internal && code != pb::ErrorCode::Unspecified)
}

/// Fills the measured figures in; returns the delivery histogram for the plots.
fn fill(
    report: &mut Report,
    config: &RunConfig,
    measure: &Measure,
    fleet: &Fleet,
) -> crate::stats::LatencyHistogram {
    let r = &measure.recorder;
    let c = &r.counters;
    let totals = measure.ledger.totals();
    let window = r.window_counts();
    let secs = config.duration.as_secs_f64();
    let histograms = r.histograms();
    report.offered = Counters::get(&c.offered);
    report.offered_per_sec = window.offered as f64 / secs;
    report.acked = totals.acked;
    report.acked_per_sec = window.acked as f64 / secs;
    report.expected = totals.acked * u64::from(measure.topology.recipients());
    report.lost = totals.lost;
    report.delivered = report.expected.saturating_sub(totals.lost);
    report.delivered_per_sec = window.delivered as f64 / secs;
    report.delivered_unacked = Counters::get(&c.delivered).saturating_sub(report.delivered);
    report.duplicated = Counters::get(&c.duplicated);
    report.reordered = Counters::get(&c.reordered);
    report.unexpected = Counters::get(&c.unexpected);
    report.foreign = Counters::get(&c.foreign);
    report.failed_sends = totals.failed;
    report.unanswered = totals.unanswered;
    report.errors = Counters::get(&c.errors);
    report.errors_by_code = r.errors_by_kind();
    report.latency_ms = LatencySummary::of(&histograms.delivery);
    report.last_recipient_latency_ms = LatencySummary::of(&histograms.last_recipient);
    report.ack_latency_ms = LatencySummary::of(&histograms.ack);
    report.requests = histograms
        .requests
        .iter()
        .map(|(op, h)| ((*op).to_owned(), LatencySummary::of(h)))
        .collect();
    report.timeline = r.timeline();
    if let Ok(stats) = fleet.stats.lock() {
        report.connections = stats.report(config.connections(), 0, false);
    }
    histograms.delivery
}
