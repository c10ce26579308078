//! Who recently joined or left a chat, and at which seq: so that an event reaches exactly the
//! members of its chat at its seq, also when its audience was read before a change.
//!
//! A handler reads a chat's members (the audience), then commits its event. When a membership
//! change commits in between, the audience is off by that change: a member removed meanwhile is
//! still in it (a message sent after the removal would reach them), and a member added
//! meanwhile is not (they would miss a message sent after they joined until the chat's next
//! event shows them the gap). The sequencer releases a chat's events in seq order, so by the
//! time it releases an event it has released every membership change before it: it notes each
//! change here, and corrects an audience by the changes before the event's seq.
//!
//! A change is kept for [`KEEP`], longer than any request takes between reading the members
//! and committing (the stores answer within seconds or fail); after that no audience read
//! before it can still arrive. Changes of an event at seq 1 (a chat's creation) are not kept:
//! nothing was read before the chat existed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::members::{Audience, MembershipChange, sort_for_delivery};

/// How long a change is kept after it was released.
pub(super) const KEEP: Duration = Duration::from_secs(600);

/// One member's change of membership: joined (or left) with the event at `seq`.
#[derive(Debug, Clone, Copy)]
struct Change {
    seq: u64,
    joined: bool,
    since: Instant,
}

/// The recent membership changes of the chats of one sequencer shard.
#[derive(Debug, Default)]
pub(super) struct RecentMembers {
    /// By chat, by user: their changes in seq order.
    chats: HashMap<u64, HashMap<u64, Vec<Change>>>,
}

impl RecentMembers {
    /// Notes the change that the event at `seq` of `chat` made.
    pub fn changed(&mut self, chat: u64, seq: u64, change: &MembershipChange, now: Instant) {
        if change.deleted {
            // No event follows.
            self.chats.remove(&chat);
            return;
        }
        if seq <= 1 || (change.added.is_empty() && change.removed.is_empty()) {
            return;
        }
        let users = self.chats.entry(chat).or_default();
        let joined = change.added.iter().map(|&u| (u, true));
        let left = change.removed.iter().map(|&u| (u, false));
        for (user, joined) in joined.chain(left) {
            users.entry(user).or_default().push(Change {
                seq,
                joined,
                since: now,
            });
        }
    }

    /// Who gets the event at `seq` of `chat` instead of `audience` (read before the event
    /// committed): without those a change before `seq` took out, with those it brought in whom
    /// the audience lacks, in delivery order. `None` when that is the audience as it is (the
    /// common case). The event that makes a change reaches the members it adds and removes as
    /// its audience says: only changes before `seq` count.
    pub fn correct(&self, chat: u64, seq: u64, audience: &Audience) -> Option<Vec<u64>> {
        let users = self.chats.get(&chat)?;
        let mut gone = Vec::new();
        let mut joined = Vec::new();
        for (&user, changes) in users {
            let Some(last) = changes.iter().rev().find(|c| c.seq < seq) else {
                continue;
            };
            match (last.joined, audience.contains(user)) {
                (true, false) => joined.push(user),
                (false, true) => gone.push(user),
                _ => {}
            }
        }
        if gone.is_empty() && joined.is_empty() {
            return None;
        }
        let mut users: Vec<u64> = audience
            .parts()
            .into_iter()
            .flatten()
            .copied()
            .filter(|u| !gone.contains(u))
            .chain(joined)
            .collect();
        sort_for_delivery(&mut users);
        Some(users)
    }

    /// Forgets what is older than [`KEEP`].
    pub fn prune(&mut self, now: Instant) {
        self.chats.retain(|_, users| {
            users.retain(|_, changes| {
                changes.retain(|c| now.duration_since(c.since) < KEEP);
                !changes.is_empty()
            });
            !users.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chatproto::pb;

    use super::*;
    use crate::delivery::members::ChatMembers;

    fn audience(users: &[u64]) -> Audience {
        let members = users.iter().map(|&u| (u, pb::MemberRole::Member));
        Audience::members(Arc::new(ChatMembers::new(pb::ChatKind::Group, members)))
    }

    fn added(users: &[u64]) -> MembershipChange {
        MembershipChange {
            added: users.to_vec(),
            ..Default::default()
        }
    }

    fn removed(users: &[u64]) -> MembershipChange {
        MembershipChange {
            removed: users.to_vec(),
            ..Default::default()
        }
    }

    /// Who gets an event of chat 1 at `seq` whose audience was read as `users`, sorted.
    fn recipients(r: &RecentMembers, seq: u64, users: &[u64]) -> Vec<u64> {
        let mut got = r
            .correct(1, seq, &audience(users))
            .unwrap_or_else(|| users.to_vec());
        got.sort_unstable();
        got
    }

    #[test]
    fn a_removal_takes_the_member_out_of_later_events_only() {
        let now = Instant::now();
        let mut r = RecentMembers::default();
        assert_eq!(r.correct(1, 5, &audience(&[7, 8])), None);
        r.changed(1, 5, &removed(&[7]), now);
        assert_eq!(
            recipients(&r, 5, &[7, 8]),
            [7, 8],
            "the removal reaches them"
        );
        assert_eq!(recipients(&r, 6, &[7, 8]), [8]);
        assert_eq!(r.correct(1, 6, &audience(&[8, 9])), None, "others as read");
        assert_eq!(r.correct(2, 6, &audience(&[7])), None, "another chat");
        r.changed(1, 9, &added(&[7]), now);
        assert_eq!(recipients(&r, 8, &[7, 8]), [8]);
        assert_eq!(recipients(&r, 9, &[8]), [8], "the addition's own audience");
        assert_eq!(recipients(&r, 12, &[7, 8]), [7, 8]);
        r.changed(1, 14, &removed(&[7]), now);
        assert_eq!(recipients(&r, 8, &[7, 8]), [8]);
        assert_eq!(recipients(&r, 12, &[7, 8]), [7, 8]);
        assert_eq!(recipients(&r, 15, &[7, 8]), [8]);
    }

    #[test]
    fn an_addition_brings_the_member_into_later_events_read_before_it() {
        let now = Instant::now();
        let mut r = RecentMembers::default();
        r.changed(1, 4, &added(&[7, 9]), now);
        assert_eq!(recipients(&r, 4, &[8]), [8], "its own audience names them");
        assert_eq!(recipients(&r, 3, &[8]), [8], "not before they joined");
        assert_eq!(recipients(&r, 5, &[8]), [7, 8, 9]);
        assert_eq!(r.correct(1, 5, &audience(&[7, 8, 9])), None, "read after");
        r.changed(1, 6, &removed(&[9]), now);
        assert_eq!(recipients(&r, 7, &[8]), [7, 8]);
    }

    #[test]
    fn creation_and_deletion_keep_nothing() {
        let now = Instant::now();
        let mut r = RecentMembers::default();
        r.changed(1, 1, &added(&[7, 8]), now);
        assert!(r.chats.is_empty());
        r.changed(1, 2, &removed(&[7]), now);
        let deleted = MembershipChange {
            deleted: true,
            ..Default::default()
        };
        r.changed(1, 3, &deleted, now);
        assert!(r.chats.is_empty());
    }

    #[test]
    fn changes_are_kept_for_a_while_only() {
        let now = Instant::now();
        let mut r = RecentMembers::default();
        r.changed(1, 5, &removed(&[7]), now);
        r.prune(now + KEEP - Duration::from_millis(1));
        assert_eq!(recipients(&r, 6, &[7]), Vec::<u64>::new());
        r.prune(now + KEEP);
        assert_eq!(recipients(&r, 6, &[7]), [7]);
        assert!(r.chats.is_empty());
    }
}
