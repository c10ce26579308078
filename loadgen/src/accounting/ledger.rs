//! The per-message ledger shared by senders and receivers: which operations were issued,
//! acknowledged or failed, how many recipients each message still waits for, and the latency of
//! its slowest recipient so far. Losses are what acknowledged messages still wait for at the end.
//!
//! Every field is atomic: receivers on any thread update a message's slot without a lock.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

const UNUSED: u8 = 0;
const ISSUED: u8 = 1;
const ACKED: u8 = 2;
const FAILED: u8 = 3;

#[derive(Debug, Default)]
struct Slot {
    state: AtomicU8,
    remaining: AtomicU32,
    slowest_ns: AtomicU64,
}

/// What a delivery did to its message's slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotUpdate {
    /// Counted; other recipients are still waiting.
    Counted,
    /// Counted, and it was the last expected recipient: the latency of the slowest recipient.
    Completed {
        /// Latency of the last (slowest) recipient, ns.
        slowest_ns: u64,
    },
    /// The message expected no (more) deliveries: a recipient that should not have got it, or an
    /// index outside the schedule.
    Unexpected,
}

/// Totals over the acknowledged messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    /// Messages acknowledged by the server.
    pub acked: u64,
    /// Messages whose send failed (error answer, timeout, lost connection).
    pub failed: u64,
    /// Messages still without an answer.
    pub unanswered: u64,
    /// Expected deliveries of acknowledged messages that never arrived.
    pub lost: u64,
}

/// One slot per scheduled operation.
#[derive(Debug)]
pub struct Ledger {
    slots: Box<[Slot]>,
}

impl Ledger {
    /// A ledger for `count` operations.
    pub fn new(count: u64) -> Self {
        let slots = (0..count).map(|_| Slot::default()).collect();
        Self { slots }
    }

    /// Operation `index` is a message to `recipients` connections, about to be sent. Call before
    /// sending: deliveries can overtake the acknowledgement.
    pub fn issue(&self, index: u64, recipients: u32) {
        if let Some(slot) = self.slot(index) {
            slot.remaining.store(recipients, Ordering::Relaxed);
            slot.state.store(ISSUED, Ordering::Release);
        }
    }

    /// The server acknowledged message `index`.
    pub fn acked(&self, index: u64) {
        if let Some(slot) = self.slot(index) {
            slot.state.store(ACKED, Ordering::Release);
        }
    }

    /// Sending message `index` failed.
    pub fn failed(&self, index: u64) {
        if let Some(slot) = self.slot(index) {
            slot.state.store(FAILED, Ordering::Release);
        }
    }

    /// A new (not duplicate) delivery of message `index` to an expected recipient, `latency_ns`
    /// after it was due.
    pub fn delivered(&self, index: u64, latency_ns: u64) -> SlotUpdate {
        let Some(slot) = self.slot(index) else {
            return SlotUpdate::Unexpected;
        };
        if slot.state.load(Ordering::Acquire) == UNUSED {
            return SlotUpdate::Unexpected;
        }
        // The max goes first: whoever takes `remaining` to zero then sees every recipient's
        // latency (the decrements form one release sequence).
        slot.slowest_ns.fetch_max(latency_ns, Ordering::Relaxed);
        let before = slot
            .remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| r.checked_sub(1));
        match before {
            Ok(1) => SlotUpdate::Completed {
                slowest_ns: slot.slowest_ns.load(Ordering::Relaxed),
            },
            Ok(_) => SlotUpdate::Counted,
            Err(_) => SlotUpdate::Unexpected,
        }
    }

    /// True when every acknowledged message reached all its recipients and no send is
    /// unanswered.
    pub fn settled(&self) -> bool {
        self.slots
            .iter()
            .all(|s| match s.state.load(Ordering::Acquire) {
                ISSUED => false,
                ACKED => s.remaining.load(Ordering::Acquire) == 0,
                _ => true,
            })
    }

    /// Totals as they stand.
    pub fn totals(&self) -> LedgerTotals {
        let mut t = LedgerTotals::default();
        for s in self.slots.iter() {
            match s.state.load(Ordering::Acquire) {
                ISSUED => t.unanswered += 1,
                ACKED => {
                    t.acked += 1;
                    t.lost += u64::from(s.remaining.load(Ordering::Acquire));
                }
                FAILED => t.failed += 1,
                _ => {}
            }
        }
        t
    }

    fn slot(&self, index: u64) -> Option<&Slot> {
        usize::try_from(index).ok().and_then(|i| self.slots.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_recipient_reports_the_slowest_latency() {
        let ledger = Ledger::new(4);
        ledger.issue(1, 3);
        assert_eq!(ledger.delivered(1, 500), SlotUpdate::Counted);
        assert_eq!(ledger.delivered(1, 900), SlotUpdate::Counted);
        assert!(!ledger.settled(), "unanswered");
        ledger.acked(1);
        assert!(!ledger.settled(), "one recipient missing");
        assert_eq!(ledger.totals().lost, 1);
        assert_eq!(
            ledger.delivered(1, 700),
            SlotUpdate::Completed { slowest_ns: 900 }
        );
        assert!(ledger.settled());
        assert_eq!(
            ledger.delivered(1, 10),
            SlotUpdate::Unexpected,
            "one too many"
        );
    }

    #[test]
    fn losses_count_only_acknowledged_messages() {
        let ledger = Ledger::new(5);
        ledger.issue(0, 2);
        ledger.acked(0);
        ledger.issue(1, 2);
        ledger.failed(1);
        ledger.issue(2, 4);
        ledger.acked(2);
        ledger.delivered(2, 1);
        ledger.issue(3, 1);
        let t = ledger.totals();
        assert_eq!(
            t,
            LedgerTotals {
                acked: 2,
                failed: 1,
                unanswered: 1,
                lost: 2 + 3
            }
        );
    }

    #[test]
    fn deliveries_of_unknown_operations_are_unexpected() {
        let ledger = Ledger::new(2);
        assert_eq!(
            ledger.delivered(0, 1),
            SlotUpdate::Unexpected,
            "never issued"
        );
        assert_eq!(
            ledger.delivered(99, 1),
            SlotUpdate::Unexpected,
            "out of range"
        );
        assert!(ledger.settled());
    }

    #[test]
    fn concurrent_recipients_complete_exactly_once() {
        let ledger = std::sync::Arc::new(Ledger::new(1));
        ledger.issue(0, 8000);
        ledger.acked(0);
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let ledger = ledger.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .filter_map(|i| match ledger.delivered(0, t * 1000 + i) {
                            SlotUpdate::Completed { slowest_ns } => Some(slowest_ns),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let completions: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        assert_eq!(completions, vec![7999]);
        assert_eq!(ledger.totals().lost, 0);
    }
}
