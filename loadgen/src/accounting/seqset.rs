//! A growable bit set of sequence numbers (from 1): which messages of one sender a receiver got,
//! or which a sender saw acknowledged. Per-sender sequences are dense, so a bit per number is the
//! smallest exact record.

/// A set of positive integers, one bit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    words: Vec<u64>,
    len: u64,
    /// Every number in `1..=prefix` is in the set.
    prefix: u64,
}

impl SeqSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `seq`; false when it was already there. 0 is never a member (returns false).
    pub fn insert(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        let (word, bit) = Self::slot(seq);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        if self.words[word] & mask != 0 {
            return false;
        }
        self.words[word] |= mask;
        self.len += 1;
        while self.contains(self.prefix + 1) {
            self.prefix += 1;
        }
        true
    }

    /// True when `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        let (word, bit) = Self::slot(seq);
        self.words.get(word).is_some_and(|w| w & (1u64 << bit) != 0)
    }

    /// How many numbers the set holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The largest `n` such that every number in `1..=n` is in the set (0 if 1 is missing).
    pub fn contiguous_prefix(&self) -> u64 {
        self.prefix
    }

    /// How many members of `self` are missing from `other`.
    pub fn count_missing_from(&self, other: &SeqSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let theirs = other.words.get(i).copied().unwrap_or(0);
                u64::from((w & !theirs).count_ones())
            })
            .sum()
    }

    fn slot(seq: u64) -> (usize, u32) {
        let n = seq - 1;
        ((n / 64) as usize, (n % 64) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_report_duplicates_and_track_the_prefix() {
        let mut s = SeqSet::new();
        assert!(s.is_empty());
        assert!(s.insert(2));
        assert_eq!(s.contiguous_prefix(), 0);
        assert!(s.insert(1));
        assert_eq!(s.contiguous_prefix(), 2);
        assert!(!s.insert(1), "duplicate");
        assert!(s.insert(200));
        assert!(s.insert(3));
        assert_eq!(s.contiguous_prefix(), 3);
        assert_eq!(s.len(), 4);
        assert!(s.contains(200) && !s.contains(199) && !s.contains(100_000));
        assert!(!s.insert(0) && !s.contains(0));
    }

    #[test]
    fn missing_members_are_counted_across_words() {
        let mut acked = SeqSet::new();
        let mut received = SeqSet::new();
        for seq in 1..=130 {
            acked.insert(seq);
            if seq % 10 != 0 {
                received.insert(seq);
            }
        }
        received.insert(500); // received but never acknowledged: not "missing"
        assert_eq!(acked.count_missing_from(&received), 13);
        assert_eq!(received.count_missing_from(&acked), 1);
        assert_eq!(acked.count_missing_from(&SeqSet::new()), 130);
    }
}
