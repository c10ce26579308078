//! The state of the measurement phase, shared by the scheduler, the send tasks and every
//! receiver: the run's id and clock, the recorder, the ledger of expected deliveries, the
//! per-sender sequences and the rooms.

use std::sync::{Arc, OnceLock};

use crate::accounting::{Ledger, SenderBook};
use crate::stats::Recorder;
use crate::topology::Topology;

/// Everything the load phase shares.
#[derive(Debug)]
pub struct Measure {
    /// Random per run; in every message header.
    pub run_id: u64,
    /// Counters, histograms, timeline (owns t0).
    pub recorder: Recorder,
    /// One slot per scheduled operation.
    pub ledger: Ledger,
    /// Each sender's sequence.
    pub senders: SenderBook,
    /// Rooms and their chats.
    pub topology: Topology,
}

/// What receivers can reach from the first connection on: the measurement appears once the
/// setup is done, and receivers pick it up from then on.
#[derive(Debug, Default)]
pub struct RunShared {
    measure: OnceLock<Arc<Measure>>,
}

impl RunShared {
    /// Nothing measured yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the measurement phase (once; later calls are ignored).
    pub fn start(&self, measure: Arc<Measure>) {
        let _ = self.measure.set(measure);
    }

    /// The measurement, once started.
    pub fn measure(&self) -> Option<&Arc<Measure>> {
        self.measure.get()
    }
}
