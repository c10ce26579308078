//! [`Turns`]: one at a time per user, for what a user's connections on a node hold together
//! (their channel subscriptions, the chats heard for them, their presence here): taken by a
//! first connection's sign-in, given back when the last one ends.
//!
//! Why: both await Redis, and a connection can end (a kick, a logout) while its sign-in is
//! still taking them, or a new one can sign in while the last one's end gives them back.
//! Unordered, an "offline" could land before the "online" it follows (the user online on this
//! node for good), or the same subscription be taken twice and given back once. Under one
//! turn, each looks at what is registered when its turn comes and at whether the user's
//! holdings here are taken ([`Turn::taken`]): a sign-in takes them when they are not, an end
//! gives them back when nobody is registered any more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

/// Per user, whether their holdings here are taken, behind the lock that orders the turns. An
/// entry stays while they are taken or a turn is held or waited for.
#[derive(Debug, Default)]
pub(super) struct Turns {
    users: Mutex<HashMap<u64, Entry>>,
}

#[derive(Debug, Default)]
struct Entry {
    /// Turns held or waited for (counted under the map's lock).
    holders: usize,
    /// Ordering the turns; holds whether the user's holdings are taken.
    lock: Arc<tokio::sync::Mutex<bool>>,
}

/// A user's turn; the next one waiting gets it when this drops.
#[derive(Debug)]
pub(super) struct Turn<'a> {
    turns: &'a Turns,
    user_id: u64,
    held: Option<OwnedMutexGuard<bool>>,
}

impl Turns {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for `user_id`'s turn. Given up while waiting (dropped), it leaves nothing behind.
    pub(super) async fn take(&self, user_id: u64) -> Turn<'_> {
        let lock = {
            let mut users = self.users();
            let entry = users.entry(user_id).or_default();
            entry.holders += 1;
            Arc::clone(&entry.lock)
        };
        // Counted before it waits: dropped from here on, it uncounts itself.
        let mut turn = Turn {
            turns: self,
            user_id,
            held: None,
        };
        turn.held = Some(lock.lock_owned().await);
        turn
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.users().len()
    }
}

impl Turn<'_> {
    /// Whether the user's holdings on this node are taken.
    pub(super) fn taken(&self) -> bool {
        self.held.as_deref().copied().unwrap_or(false)
    }

    /// Records whether they are.
    pub(super) fn set_taken(&mut self, taken: bool) {
        if let Some(held) = self.held.as_mut() {
            **held = taken;
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut users = self.turns.users();
        let Some(entry) = users.get_mut(&self.user_id) else {
            return;
        };
        entry.holders = entry.holders.saturating_sub(1);
        // Nobody holds or waits (they count themselves under this lock): the lock is free.
        let taken = entry.lock.try_lock().map_or(true, |taken| *taken);
        if entry.holders == 0 && !taken {
            users.remove(&self.user_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_turn_at_a_time_per_user_and_entries_go_when_nothing_is_taken() {
        let turns = Arc::new(Turns::default());
        let mut first = turns.take(7).await;
        let other_user = turns.take(8).await;
        let waiting = tokio::spawn({
            let turns = Arc::clone(&turns);
            async move { turns.take(7).await.taken() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "user 7's turn is held");
        drop(other_user);
        assert_eq!(turns.len(), 1, "user 8's entry went with its turn");
        assert!(!first.taken());
        first.set_taken(true);
        drop(first);
        let seen = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting turn came")
            .expect("task");
        assert!(seen, "the next turn sees what the last one recorded");
        assert_eq!(turns.len(), 1, "kept while taken");
        turns.take(7).await.set_taken(false);
        assert_eq!(turns.len(), 0);
    }

    #[tokio::test]
    async fn a_turn_given_up_while_waiting_leaves_nothing_behind() {
        let turns = Turns::default();
        let held = turns.take(7).await;
        let gave_up = tokio::time::timeout(Duration::from_millis(20), turns.take(7)).await;
        assert!(gave_up.is_err());
        drop(held);
        assert_eq!(turns.len(), 0);
    }
}
