//! Who recently stopped being a member of a chat, and from which seq to which: so that an event
//! committed after a member left does not reach them through an audience read before.
//!
//! A handler reads a chat's members (the audience), then commits its event. When a removal
//! commits in between, the audience still holds the removed user, and the event's seq is past
//! the removal's: delivered as is, a message sent after the removal would reach the user it
//! removed. The sequencer releases a chat's events in seq order, so by the time it releases an
//! event it has released every membership change before it: it notes each departure here (and
//! each return), and leaves out of an audience those absent at the event's seq.
//!
//! An absence is kept for [`KEEP`], longer than any request takes between reading the members
//! and committing (the stores answer within seconds or fail); after that no audience read
//! before it can still arrive.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long an absence is kept after it began.
pub(super) const KEEP: Duration = Duration::from_secs(600);

/// One member's absence from a chat: gone after seq `left`, back at `returned`.
#[derive(Debug, Clone, Copy)]
struct Absence {
    user: u64,
    left: u64,
    returned: Option<u64>,
    since: Instant,
}

impl Absence {
    fn covers(&self, user: u64, seq: u64) -> bool {
        self.user == user && seq > self.left && self.returned.is_none_or(|r| seq < r)
    }
}

/// The recent absences of the chats of one sequencer shard.
#[derive(Debug, Default)]
pub(super) struct Absences {
    chats: HashMap<u64, Vec<Absence>>,
}

impl Absences {
    /// `users` stopped being members of `chat` with the event at `seq`.
    pub fn left(&mut self, chat: u64, seq: u64, users: &[u64], now: Instant) {
        if users.is_empty() {
            return;
        }
        let absences = self.chats.entry(chat).or_default();
        absences.retain(|a| now.duration_since(a.since) < KEEP);
        absences.extend(users.iter().map(|&user| Absence {
            user,
            left: seq,
            returned: None,
            since: now,
        }));
    }

    /// `users` are members of `chat` again from the event at `seq` on.
    pub fn returned(&mut self, chat: u64, seq: u64, users: &[u64]) {
        let Some(absences) = self.chats.get_mut(&chat) else {
            return;
        };
        for absence in absences.iter_mut() {
            if absence.returned.is_none() && absence.left < seq && users.contains(&absence.user) {
                absence.returned = Some(seq);
            }
        }
    }

    /// `users` without those who are not members of `chat` at `seq` (as far as this shard saw
    /// them leave); `None` when nobody among them is absent (the common case: deliver to
    /// `users` as they are).
    pub fn present_among(&self, chat: u64, seq: u64, users: &[u64]) -> Option<Vec<u64>> {
        let absences = self.chats.get(&chat)?;
        let absent = |user: u64| absences.iter().any(|a| a.covers(user, seq));
        if !users.iter().any(|&user| absent(user)) {
            return None;
        }
        Some(
            users
                .iter()
                .copied()
                .filter(|&user| !absent(user))
                .collect(),
        )
    }

    /// Forgets what is older than [`KEEP`].
    pub fn prune(&mut self, now: Instant) {
        self.chats.retain(|_, absences| {
            absences.retain(|a| now.duration_since(a.since) < KEEP);
            !absences.is_empty()
        });
    }

    /// Forgets `chat` (it is deleted: no event follows).
    pub fn forget(&mut self, chat: u64) {
        self.chats.remove(&chat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `user` is left out of an audience of `chat` at `seq`.
    fn absent(a: &Absences, chat: u64, seq: u64, user: u64) -> bool {
        a.present_among(chat, seq, &[user, 99]) == Some(vec![99])
    }

    #[test]
    fn an_absence_covers_the_seqs_between_leaving_and_returning() {
        let now = Instant::now();
        let mut a = Absences::default();
        assert_eq!(a.present_among(1, 5, &[7, 8]), None);
        a.left(1, 5, &[7], now);
        assert!(!absent(&a, 1, 5, 7), "the removal itself reaches them");
        assert!(absent(&a, 1, 6, 7));
        assert_eq!(
            a.present_among(1, 6, &[8, 9]),
            None,
            "others are not filtered"
        );
        assert!(!absent(&a, 2, 6, 7), "another chat");
        a.returned(1, 9, &[7]);
        assert!(absent(&a, 1, 8, 7));
        assert!(!absent(&a, 1, 9, 7), "the addition reaches them");
        assert!(!absent(&a, 1, 12, 7));
        // Gone again: both absences count, each for its own seqs.
        a.left(1, 14, &[7], now);
        assert!(absent(&a, 1, 8, 7));
        assert!(!absent(&a, 1, 12, 7));
        assert!(absent(&a, 1, 15, 7));
    }

    #[test]
    fn absences_are_kept_for_a_while_only() {
        let now = Instant::now();
        let mut a = Absences::default();
        a.left(1, 5, &[7], now);
        a.prune(now + KEEP - Duration::from_millis(1));
        assert!(absent(&a, 1, 6, 7));
        a.prune(now + KEEP);
        assert!(!absent(&a, 1, 6, 7));
        assert!(a.chats.is_empty());
    }
}
