//! What one receiving connection has seen of each sender: duplicates and reordering are
//! detected here, by the receiver alone, from the payload headers.

use std::collections::HashMap;

use super::seqset::SeqSet;

/// The verdict on one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// First time this connection got the message. `reordered` is set when a message that was
    /// sent only after this one had been acknowledged already arrived: chat/1 promises per-chat
    /// order, so this one came too late.
    New {
        /// Out of order with respect to its sender.
        reordered: bool,
    },
    /// This connection already got the message.
    Duplicate,
}

#[derive(Debug, Default)]
struct SenderTrack {
    received: SeqSet,
    /// The highest `acked` header among the messages received from this sender: every seq up
    /// to it was acknowledged before something already received was sent.
    acked_seen: u64,
}

/// Per-sender records of one receiving connection.
#[derive(Debug, Default)]
pub struct ReceiverTracker {
    senders: HashMap<u32, SenderTrack>,
}

impl ReceiverTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the delivery of message `seq` of `sender`, whose header says every message up to
    /// `acked` had been acknowledged when it was sent.
    pub fn observe(&mut self, sender: u32, seq: u64, acked: u64) -> Delivery {
        let track = self.senders.entry(sender).or_default();
        if !track.received.insert(seq) {
            return Delivery::Duplicate;
        }
        let reordered = seq <= track.acked_seen;
        track.acked_seen = track.acked_seen.max(acked);
        Delivery::New { reordered }
    }

    /// The messages of `sender` this connection got.
    pub fn received_from(&self, sender: u32) -> Option<&SeqSet> {
        self.senders.get(&sender).map(|t| &t.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_deliveries_are_new_and_not_reordered() {
        let mut t = ReceiverTracker::new();
        for seq in 1..=5 {
            assert_eq!(
                t.observe(7, seq, seq - 1),
                Delivery::New { reordered: false }
            );
        }
        assert_eq!(t.received_from(7).map(|s| s.len()), Some(5));
        assert!(t.received_from(8).is_none());
    }

    #[test]
    fn a_second_copy_is_a_duplicate() {
        let mut t = ReceiverTracker::new();
        assert_eq!(t.observe(1, 1, 0), Delivery::New { reordered: false });
        assert_eq!(t.observe(1, 1, 0), Delivery::Duplicate);
        // The same seq from another sender is another message.
        assert_eq!(t.observe(2, 1, 0), Delivery::New { reordered: false });
    }

    #[test]
    fn overtaking_an_acknowledged_message_is_reordering() {
        let mut t = ReceiverTracker::new();
        // Message 2 was sent after message 1 was acknowledged, yet arrives first.
        assert_eq!(t.observe(3, 2, 1), Delivery::New { reordered: false });
        assert_eq!(t.observe(3, 1, 0), Delivery::New { reordered: true });
    }

    #[test]
    fn concurrent_sends_may_arrive_in_either_order() {
        // Messages 1 and 2 were in flight together (neither acknowledged when the other was
        // sent): the server may order them either way.
        let mut t = ReceiverTracker::new();
        assert_eq!(t.observe(4, 2, 0), Delivery::New { reordered: false });
        assert_eq!(t.observe(4, 1, 0), Delivery::New { reordered: false });
        // 3 was sent after both were acknowledged; 4 after 3. Fine in order...
        assert_eq!(t.observe(4, 3, 2), Delivery::New { reordered: false });
        assert_eq!(t.observe(4, 5, 4), Delivery::New { reordered: false });
        // ...but 4 turning up after 5 is late.
        assert_eq!(t.observe(4, 4, 3), Delivery::New { reordered: true });
    }
}
