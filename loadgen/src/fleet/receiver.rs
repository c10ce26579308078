//! The receiving side of one connection: a task that takes every event the SDK delivers,
//! recognises this run's messages by their header, and accounts for each: latency from its due
//! time, duplicates, reordering, expected or not. Events are taken in batches so the recorder's
//! lock is taken once per batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use chatproto::client::{Client, ClientEvent};
use chatproto::pb;

use crate::accounting::{Delivery, ReceiverTracker, SlotUpdate};
use crate::measure::{Measure, RunShared};
use crate::payload::{Payload, PayloadError};
use crate::stats::DeliverySample;

/// Most events handled before the batch is recorded.
const BATCH: usize = 256;

/// What a connection's receiver reports outside the measurement: connection changes and
/// problems seen during the setup.
#[derive(Debug, Default)]
pub struct ConnProbe {
    /// `Connected` events: 1 after the first connection, more after reconnects.
    pub connects: AtomicU32,
    /// `Disconnected` events.
    pub disconnects: AtomicU32,
    /// Errors seen before the measurement started (revoked session, refused credentials).
    pub setup_errors: AtomicU64,
    /// The SDK finished catching up after the (latest) authentication.
    pub caught_up: AtomicBool,
}

impl ConnProbe {
    /// Reconnects so far.
    pub fn reconnects(&self) -> u32 {
        self.connects.load(Ordering::Relaxed).saturating_sub(1)
    }
}

/// Runs until the client is closed.
pub async fn receive(client: Arc<Client>, user: u32, probe: Arc<ConnProbe>, run: Arc<RunShared>) {
    let mut tracker = ReceiverTracker::new();
    let mut batch: Vec<DeliverySample> = Vec::with_capacity(BATCH);
    while let Some(first) = client.next_event().await {
        let measure = run.measure().cloned();
        let mut next = Some(first);
        let mut handled = 0;
        while let Some(event) = next {
            on_event(
                event,
                user,
                &probe,
                measure.as_deref(),
                &mut tracker,
                &mut batch,
            );
            handled += 1;
            next = if handled < BATCH {
                client.try_next_event()
            } else {
                None
            };
        }
        if let Some(m) = &measure {
            m.recorder.deliveries(&batch);
        }
        batch.clear();
    }
}

fn error(probe: &ConnProbe, measure: Option<&Measure>, kind: &str, n: u64) {
    match measure {
        Some(m) => m.recorder.errors(kind, n),
        None => {
            probe.setup_errors.fetch_add(n, Ordering::Relaxed);
        }
    }
}

fn on_event(
    event: ClientEvent,
    user: u32,
    probe: &ConnProbe,
    measure: Option<&Measure>,
    tracker: &mut ReceiverTracker,
    batch: &mut Vec<DeliverySample>,
) {
    match event {
        ClientEvent::Chat(ev) => {
            if let (Some(m), Some(pb::chat_event::Body::MessageCreated(msg))) = (measure, &ev.body)
            {
                on_message(m, user, ev.chat_id, &msg.text, tracker, batch);
            }
        }
        ClientEvent::Connected { .. } => {
            let before = probe.connects.fetch_add(1, Ordering::Relaxed);
            if before > 0
                && let Some(m) = measure
            {
                m.recorder
                    .counters
                    .reconnects
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        ClientEvent::Disconnected { .. } => {
            probe.disconnects.fetch_add(1, Ordering::Relaxed);
        }
        ClientEvent::AuthFailed { .. } => error(probe, measure, "auth_failed", 1),
        ClientEvent::SessionRevoked(_) => error(probe, measure, "session_revoked", 1),
        ClientEvent::Skipped {
            from_seq, to_seq, ..
        } => {
            // The SDK gave up on these events: whatever they were, they are not delivered.
            let n = to_seq.saturating_sub(from_seq).saturating_add(1);
            error(probe, measure, "skipped_events", n);
        }
        ClientEvent::CaughtUp => probe.caught_up.store(true, Ordering::Release),
        _ => {}
    }
}

fn on_message(
    m: &Measure,
    user: u32,
    chat_id: u64,
    text: &str,
    tracker: &mut ReceiverTracker,
    batch: &mut Vec<DeliverySample>,
) {
    let counters = &m.recorder.counters;
    let payload = match Payload::decode(text) {
        Ok(p) if p.run_id == m.run_id => p,
        Ok(_) | Err(PayloadError::Foreign) => {
            counters.foreign.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(PayloadError::Malformed(_)) => {
            m.recorder.error("corrupted_payload");
            return;
        }
    };
    if payload.sender == user {
        // The sender's own copy (every member's connections get the event, the sender's too).
        return;
    }
    if !m.topology.expects(user, payload.sender, chat_id) {
        counters.unexpected.fetch_add(1, Ordering::Relaxed);
        return;
    }
    match tracker.observe(payload.sender, payload.seq, payload.acked) {
        Delivery::Duplicate => {
            counters.duplicated.fetch_add(1, Ordering::Relaxed);
        }
        Delivery::New { reordered } => {
            if reordered {
                counters.reordered.fetch_add(1, Ordering::Relaxed);
            }
            let at_ns = m.recorder.now_ns();
            let latency = at_ns.saturating_sub(payload.due_ns);
            match m.ledger.delivered(payload.index, latency) {
                SlotUpdate::Counted => batch.push(DeliverySample {
                    due_ns: payload.due_ns,
                    at_ns,
                    completed_slowest_ns: None,
                }),
                SlotUpdate::Completed { slowest_ns } => batch.push(DeliverySample {
                    due_ns: payload.due_ns,
                    at_ns,
                    completed_slowest_ns: Some(slowest_ns),
                }),
                SlotUpdate::Unexpected => {
                    counters.unexpected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
