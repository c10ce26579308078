//! Per-sender bookkeeping: each user's own message sequence and which of its messages are
//! resolved (acknowledged, or refused for certain), from which the `acked` header of the next
//! message is taken.

use std::sync::Mutex;

use super::seqset::SeqSet;

#[derive(Debug, Default)]
struct SenderState {
    next_seq: u64,
    resolved: SeqSet,
}

/// The sequence state of every sender.
#[derive(Debug)]
pub struct SenderBook {
    senders: Box<[Mutex<SenderState>]>,
}

/// What goes into the header of a message about to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextMessage {
    /// The sender's sequence number for it.
    pub seq: u64,
    /// Every message up to this seq is resolved.
    pub acked: u64,
}

impl SenderBook {
    /// Books for `senders` users.
    pub fn new(senders: u32) -> Self {
        Self {
            senders: (0..senders).map(|_| Mutex::default()).collect(),
        }
    }

    /// Allocates the next sequence number of `sender` (None for an unknown sender).
    pub fn next(&self, sender: u32) -> Option<NextMessage> {
        let mut state = self.senders.get(sender as usize)?.lock().ok()?;
        state.next_seq += 1;
        Some(NextMessage {
            seq: state.next_seq,
            acked: state.resolved.contiguous_prefix(),
        })
    }

    /// Message `seq` of `sender` is settled: acknowledged, or refused by the server so it can
    /// never arrive. (A timeout or lost connection is not: the message may still arrive.)
    pub fn resolved(&self, sender: u32, seq: u64) {
        if let Some(mut state) = self
            .senders
            .get(sender as usize)
            .and_then(|m| m.lock().ok())
        {
            state.resolved.insert(seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_acked_header_is_the_contiguous_resolved_prefix() {
        let book = SenderBook::new(2);
        assert_eq!(book.next(0), Some(NextMessage { seq: 1, acked: 0 }));
        assert_eq!(book.next(0), Some(NextMessage { seq: 2, acked: 0 }));
        book.resolved(0, 2);
        // 1 is still in flight: nothing may be promised yet.
        assert_eq!(book.next(0), Some(NextMessage { seq: 3, acked: 0 }));
        book.resolved(0, 1);
        assert_eq!(book.next(0), Some(NextMessage { seq: 4, acked: 2 }));
        // Senders are independent.
        assert_eq!(book.next(1), Some(NextMessage { seq: 1, acked: 0 }));
        assert_eq!(book.next(2), None);
    }
}
