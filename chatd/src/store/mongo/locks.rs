//! In-process queues for chat mutations.
//!
//! Mutations of one chat are serialized by the database anyway (each claims the chat's next seq;
//! see the module docs of [`super`]), but writers that lose a claim can only poll until the op in
//! flight is done. Writers of the same process therefore first queue on a per-chat async mutex, so
//! they take turns without polling and the database sees at most one claim per chat from each
//! chatd instance at a time. Correctness never depends on it: other instances still race through
//! the claims.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

/// The per-chat queues of one store; entries exist only while someone holds or awaits them.
#[derive(Debug, Default)]
pub(super) struct ChatLocks {
    queues: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

/// A turn in a chat's queue; the next writer of the chat goes when it is dropped.
pub(super) struct ChatTurn {
    guard: Option<OwnedMutexGuard<()>>,
    locks: Arc<ChatLocks>,
    chat_id: i64,
}

impl ChatLocks {
    /// Waits for this process's turn to mutate `chat_id`.
    pub async fn turn(self: &Arc<Self>, chat_id: i64) -> ChatTurn {
        let queue = {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(queues.entry(chat_id).or_default())
        };
        let guard = queue.lock_owned().await;
        ChatTurn {
            guard: Some(guard),
            locks: Arc::clone(self),
            chat_id,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for ChatTurn {
    fn drop(&mut self) {
        self.guard = None;
        let mut queues = self
            .locks
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only the map holds it: nobody holds or awaits this chat's queue any more.
        if queues
            .get(&self.chat_id)
            .is_some_and(|q| Arc::strong_count(q) == 1)
        {
            queues.remove(&self.chat_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_writer_per_chat_at_a_time_and_no_leftover_entries() {
        let locks = Arc::new(ChatLocks::default());
        let inside: Arc<[AtomicUsize; 2]> = Arc::new(Default::default());
        let most: Arc<[AtomicUsize; 2]> = Arc::new(Default::default());
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let (locks, inside, most) =
                    (Arc::clone(&locks), Arc::clone(&inside), Arc::clone(&most));
                tokio::spawn(async move {
                    let chat = n % 2;
                    let _turn = locks.turn(chat as i64).await;
                    let now = inside[chat].fetch_add(1, Ordering::SeqCst) + 1;
                    most[chat].fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside[chat].fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most[0].load(Ordering::SeqCst), 1);
        assert_eq!(most[1].load(Ordering::SeqCst), 1);
        assert_eq!(locks.len(), 0);
    }
}
