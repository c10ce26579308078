//! Correctness accounting: which messages were expected where, and which arrived, twice, late or
//! never.
//!
//! Layout:
//! - [`seqset`]: a bit set of per-sender sequence numbers.
//! - [`senders`]: each sender's sequence and acknowledged prefix (the `acked` header).
//! - [`tracker`]: one receiving connection's view: duplicates and reordering.
//! - [`ledger`]: one slot per scheduled message: recipients still expected, slowest latency,
//!   acknowledged or failed; losses are counted from it.

pub mod ledger;
pub mod senders;
pub mod seqset;
pub mod tracker;

pub use ledger::{Ledger, LedgerTotals, SlotUpdate};
pub use senders::{NextMessage, SenderBook};
pub use seqset::SeqSet;
pub use tracker::{Delivery, ReceiverTracker};
