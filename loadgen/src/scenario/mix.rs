//! The history and search mixes: which operations of the schedule are reads instead of sends,
//! and the reads themselves.

use chatproto::client::{Client, ClientError};
use chatproto::pb;

use crate::config::Scenario;
use crate::payload::VOCABULARY;

/// One operation of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Send a message into the sender's room.
    Send,
    /// `get_history` of the room, the latest page.
    History,
    /// `search_messages` in the room for a filler word.
    Search,
}

impl Op {
    /// The request name, as reported.
    pub fn name(self) -> &'static str {
        match self {
            Op::Send => "send_message",
            Op::History => "get_history",
            Op::Search => "search_messages",
        }
    }
}

/// SplitMix64: spreads consecutive indexes evenly, so reads do not line up with the
/// round-robin choice of senders.
fn spread(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What operation `i` is: `read_percent` of the operations of the mixes are reads.
pub fn op_for(scenario: Scenario, read_percent: u8, i: u64) -> Op {
    let read = match scenario {
        Scenario::History => Op::History,
        Scenario::Search => Op::Search,
        _ => return Op::Send,
    };
    if spread(i) % 100 < u64::from(read_percent) {
        read
    } else {
        Op::Send
    }
}

/// Performs read `op` in `chat_id`.
pub async fn read(client: &Client, op: Op, chat_id: u64, i: u64) -> Result<(), ClientError> {
    match op {
        Op::History => client
            .get_history(pb::GetHistory {
                chat_id,
                limit: 50,
                ..Default::default()
            })
            .await
            .map(drop),
        Op::Search => client
            .search_messages(pb::SearchMessages {
                query: VOCABULARY[(i % VOCABULARY.len() as u64) as usize].into(),
                chat_id,
                limit: 20,
                cursor: String::new(),
            })
            .await
            .map(drop),
        Op::Send => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_read_the_configured_share() {
        let n = 100_000u64;
        let reads = (0..n)
            .filter(|&i| op_for(Scenario::Search, 20, i) == Op::Search)
            .count() as f64;
        assert!((reads / n as f64 - 0.20).abs() < 0.01, "{reads}");
        assert!((0..1000).all(|i| op_for(Scenario::History, 0, i) == Op::Send));
        assert!((0..1000).all(|i| op_for(Scenario::History, 100, i) == Op::History));
        assert!((0..1000).all(|i| op_for(Scenario::RoomFanout, 100, i) == Op::Send));
    }

    #[test]
    fn reads_are_spread_over_senders() {
        // With 10 senders taking turns, every sender must get some reads.
        let mut per_sender = [0u32; 10];
        for i in 0..10_000u64 {
            if op_for(Scenario::History, 20, i) == Op::History {
                per_sender[(i % 10) as usize] += 1;
            }
        }
        assert!(per_sender.iter().all(|&n| n > 100), "{per_sender:?}");
    }
}
