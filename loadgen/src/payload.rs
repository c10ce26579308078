//! The text of every message loadgen sends. A header identifies the message and carries what a
//! receiver needs to measure it on its own; filler words bring it to the configured size (and
//! give the search mix something to find):
//!
//! ```text
//! lg1 <run id> <index> <sender> <seq> <due ns> <acked> | words words words....
//! ```
//!
//! All numbers are lowercase hex. `index` is the operation's place in the open-loop schedule,
//! `sender` the sending user's index, `seq` the sender's own sequence number (from 1),
//! `due ns` the due time in nanoseconds after the run's t0, and `acked` the highest `seq` of
//! the same sender up to which every message had been acknowledged when this one was sent:
//! those must reach every receiver before this one (protocol.md 4.5), which is how receivers
//! detect reordering without mistaking concurrently sent messages for it.

/// The tag that starts every loadgen message (format version 1).
pub const TAG: &str = "lg1";

/// Words of the filler; search queries pick from them.
pub const VOCABULARY: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa",
];

/// The identifying header of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    /// Random per run: messages of other runs in reused rooms are recognised and ignored.
    pub run_id: u64,
    /// Index of the operation in the schedule.
    pub index: u64,
    /// Index of the sending user.
    pub sender: u32,
    /// The sender's sequence number, from 1.
    pub seq: u64,
    /// Due time, nanoseconds after t0.
    pub due_ns: u64,
    /// Every message of this sender up to this seq was acknowledged before this one was sent.
    pub acked: u64,
}

/// Why a text is not a loadgen message of the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The text does not start with the loadgen tag: not ours at all.
    #[error("not a loadgen message")]
    Foreign,
    /// The text starts with the tag but the header is damaged.
    #[error("malformed loadgen header: {0}")]
    Malformed(&'static str),
}

impl Payload {
    /// The message text, exactly `size` bytes of ASCII when `size` is at least the header's
    /// length (at most 99 bytes); otherwise the header alone.
    pub fn encode(&self, size: usize) -> String {
        let mut text = format!(
            "{TAG} {:x} {:x} {:x} {:x} {:x} {:x} |",
            self.run_id, self.index, self.sender, self.seq, self.due_ns, self.acked
        );
        let mut word = self.index as usize;
        while text.len() < size {
            let next = VOCABULARY[word % VOCABULARY.len()];
            word = word.wrapping_mul(7).wrapping_add(3);
            if text.len() + 1 + next.len() <= size {
                text.push(' ');
                text.push_str(next);
            } else {
                let pad = size - text.len();
                text.extend(std::iter::repeat_n('.', pad));
            }
        }
        text
    }

    /// Reads the header of `text`.
    pub fn decode(text: &str) -> Result<Payload, PayloadError> {
        let rest = text
            .strip_prefix(TAG)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(PayloadError::Foreign)?;
        let header = rest
            .split_once(" |")
            .map(|(h, _)| h)
            .ok_or(PayloadError::Malformed("no end of header"))?;
        let mut fields = header.split(' ');
        let mut next = |name: &'static str| -> Result<u64, PayloadError> {
            let field = fields.next().ok_or(PayloadError::Malformed(name))?;
            if field.is_empty() || field.len() > 16 {
                return Err(PayloadError::Malformed(name));
            }
            u64::from_str_radix(field, 16).map_err(|_| PayloadError::Malformed(name))
        };
        let payload = Payload {
            run_id: next("run id")?,
            index: next("index")?,
            sender: u32::try_from(next("sender")?)
                .map_err(|_| PayloadError::Malformed("sender"))?,
            seq: next("seq")?,
            due_ns: next("due time")?,
            acked: next("acked")?,
        };
        if fields.next().is_some() {
            return Err(PayloadError::Malformed("extra header field"));
        }
        if payload.seq == 0 || payload.acked >= payload.seq {
            return Err(PayloadError::Malformed("acked must be below seq"));
        }
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Payload {
        Payload {
            run_id: 0x0123_4567_89ab_cdef,
            index: 1_000_000,
            sender: 999,
            seq: 1001,
            due_ns: 3_600_000_000_000,
            acked: 1000,
        }
    }

    #[test]
    fn round_trips_at_every_size() {
        let p = sample();
        for size in [100, 101, 128, 555, 4096] {
            let text = p.encode(size);
            assert_eq!(text.len(), size, "size {size}");
            assert!(text.is_ascii());
            assert!(!text.chars().any(|c| c.is_control()));
            assert_eq!(Payload::decode(&text), Ok(p), "size {size}");
        }
    }

    #[test]
    fn the_largest_header_fits_the_smallest_payload() {
        let p = Payload {
            run_id: u64::MAX,
            index: u64::MAX,
            sender: u32::MAX,
            seq: u64::MAX,
            due_ns: u64::MAX,
            acked: u64::MAX - 1,
        };
        let header = p.encode(0);
        assert!(
            header.len() <= crate::config::MIN_PAYLOAD,
            "{}",
            header.len()
        );
        assert_eq!(Payload::decode(&header), Ok(p));
    }

    #[test]
    fn filler_contains_searchable_words() {
        let text = sample().encode(300);
        let words = VOCABULARY.iter().filter(|w| text.contains(*w)).count();
        assert!(words >= 3, "{text}");
    }

    #[test]
    fn foreign_and_damaged_texts_are_told_apart() {
        assert_eq!(Payload::decode("hello there"), Err(PayloadError::Foreign));
        assert_eq!(
            Payload::decode("lg2 1 2 3 4 5 0 |"),
            Err(PayloadError::Foreign)
        );
        assert_eq!(Payload::decode(""), Err(PayloadError::Foreign));
        let damaged = [
            "lg1 1 2 3 4 5 0",                   // no end of header
            "lg1 1 2 3 4 5 |",                   // a field missing
            "lg1 1 2 3 4 5 0 9 |",               // a field too many
            "lg1 1 2 3 4 zz 0 |",                // not hex
            "lg1 1 2 100000000 4 5 0 |",         // sender beyond u32
            "lg1 1 2 3 0 5 0 |",                 // seq 0
            "lg1 1 2 3 4 5 4 |",                 // acked not below seq
            "lg1 11111111111111111 2 3 4 5 0 |", // 17 hex digits
        ];
        for text in damaged {
            assert!(
                matches!(Payload::decode(text), Err(PayloadError::Malformed(_))),
                "{text}"
            );
        }
    }
}
