//! The state of the measurement phase, shared by the scheduler, the send tasks and every
//! receiver: the run's id and clock, the recorder, the ledger of expected deliveries, the
//! per-sender sequences and the rooms.

use std::sync::{Arc, OnceLock};

use crate::accounting::{Ledger, SenderBook};
use crate::error::LoadgenError;
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

/// What every connection shares from the start: the UDP endpoints the connections are opened
/// on, and the measurement, which appears once the setup is done (receivers pick it up from then
/// on).
#[derive(Debug, Default)]
pub struct RunShared {
    measure: OnceLock<Arc<Measure>>,
    endpoints: Vec<chatproto::udp::Endpoint>,
}

impl RunShared {
    /// Nothing measured yet; `config.endpoints` sockets bound for the connections (inside a
    /// runtime).
    pub fn bind(config: &crate::config::RunConfig) -> Result<Self, LoadgenError> {
        let any = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        let endpoints = (0..config.endpoints.max(1))
            .map(|_| {
                chatproto::udp::client_endpoint(any)
                    .map_err(|e| LoadgenError::Client(format!("cannot bind a UDP socket: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            measure: OnceLock::new(),
            endpoints,
        })
    }

    /// The endpoint connection number `index` uses (they take turns).
    pub fn endpoint(&self, index: usize) -> Option<chatproto::udp::Endpoint> {
        let n = self.endpoints.len();
        (n > 0).then(|| self.endpoints.get(index % n).cloned())?
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
