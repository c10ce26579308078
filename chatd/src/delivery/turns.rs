//! [`Turns`]: one at a time per user, for the work a user's first connection on a node does
//! (subscriptions, presence up) and the work their last one's end does (presence down).
//!
//! Why: both await Redis, and a connection can end (a kick, a logout) while its sign-in is
//! still in that work. Unordered, the end's "offline" could land before the sign-in's
//! "online", leaving the user online on this node for good. Under one turn, the end runs after
//! the sign-in's work and sees what is registered then (see `Delivery::attach`, `detach`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

/// The users whose turn is taken or waited for; an entry goes when its last holder does.
#[derive(Debug, Default)]
pub(super) struct Turns {
    users: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

/// A user's turn; the next one waiting gets it when this drops.
#[derive(Debug)]
pub(super) struct Turn<'a> {
    turns: &'a Turns,
    user_id: u64,
    lock: Arc<tokio::sync::Mutex<()>>,
    held: Option<OwnedMutexGuard<()>>,
}

impl Turns {
    /// Waits for `user_id`'s turn.
    pub(super) async fn take(&self, user_id: u64) -> Turn<'_> {
        let lock = Arc::clone(
            self.users
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(user_id)
                .or_default(),
        );
        let held = Arc::clone(&lock).lock_owned().await;
        Turn {
            turns: self,
            user_id,
            lock,
            held: Some(held),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut users = self
            .turns
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map's and this one: nobody else holds or waits (they clone under this lock).
        if Arc::strong_count(&self.lock) == 2 {
            users.remove(&self.user_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_turn_at_a_time_per_user_and_entries_go_with_their_holders() {
        let turns = Arc::new(Turns::default());
        let first = turns.take(7).await;
        let other_user = turns.take(8).await;
        let waiting = tokio::spawn({
            let turns = Arc::clone(&turns);
            async move {
                let _turn = turns.take(7).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "user 7's turn is taken");
        drop(other_user);
        assert_eq!(turns.len(), 1, "user 8's entry went with its turn");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting turn came")
            .expect("task");
        assert_eq!(turns.len(), 0);
    }
}
