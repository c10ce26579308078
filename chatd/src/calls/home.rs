//! Where the call book lives: in this node's memory when it serves alone, or in the cluster's
//! shared store (Redis, kept by `cluster::calls`) when several nodes serve the same users, so
//! that every node applies transitions to the same calls and a call outlives the node it was
//! started on (spec 14.8).
//!
//! The shared book is one versioned value: a transition loads it, runs the same pure function
//! of [`CallBook`] as one node does, and stores the result only if nobody stored another version
//! meanwhile (compare-and-set), trying again with the newer book otherwise. Transitions are
//! rare next to messages (a few per call), and the book holds only live calls and those ended
//! in the last minute, so one value is small and the simplest correct form of it.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::machine::CallBook;

/// How many times a transition is tried against a shared book that other nodes keep changing.
pub const MAX_ATTEMPTS: usize = 16;

/// Why the shared book could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// Its store did not answer.
    #[error("the shared call state is unreachable: {0}")]
    Unreachable(String),
    /// Other nodes changed it under every attempt.
    #[error("the shared call state changed under {MAX_ATTEMPTS} attempts")]
    Contended,
    /// What is stored cannot be read.
    #[error("the shared call state cannot be read: {0}")]
    Corrupt(String),
}

/// The shared copy of the book, in cluster mode, and the liveness of the nodes whose
/// connections take part in calls. `cluster::calls` keeps both in Redis.
#[async_trait]
pub trait SharedBook: Send + Sync + std::fmt::Debug {
    /// The stored book and its version (`None` at version 0 before the first one).
    async fn load(&self) -> Result<(Option<Vec<u8>>, u64), BookError>;

    /// Stores `book` as version `version + 1` if the stored one is still `version`; false when
    /// another node stored another version first.
    async fn replace(&self, version: u64, book: &[u8]) -> Result<bool, BookError>;

    /// Says that the node of connection tag `node` is alive, for a while.
    async fn heartbeat(&self, node: u32) -> Result<(), BookError>;

    /// The nodes among `nodes` that stopped saying so.
    async fn gone(&self, nodes: &[u32]) -> Result<Vec<u32>, BookError>;
}

/// The book of this node, or the cluster's.
#[derive(Debug)]
pub enum BookHome {
    /// One node: the book in memory.
    Local(Mutex<CallBook>),
    /// Several nodes: the book in the shared store.
    Shared(Arc<dyn SharedBook>),
}

impl BookHome {
    /// A book in memory.
    pub fn local() -> Self {
        BookHome::Local(Mutex::new(CallBook::default()))
    }

    /// True when the book is the cluster's.
    pub fn is_shared(&self) -> bool {
        matches!(self, BookHome::Shared(_))
    }

    /// Runs the transition `f` on the book and keeps what it changed. On a shared book `f` may
    /// run more than once (on a newer book each time): it must be a pure function of the book.
    pub async fn update<R>(&self, mut f: impl FnMut(&mut CallBook) -> R) -> Result<R, BookError> {
        let shared = match self {
            BookHome::Local(book) => {
                return Ok(f(&mut book.lock().unwrap_or_else(PoisonError::into_inner)));
            }
            BookHome::Shared(shared) => shared,
        };
        for _ in 0..MAX_ATTEMPTS {
            let (stored, version) = shared.load().await?;
            let mut book = decode(stored.as_deref())?;
            let out = f(&mut book);
            let after = book.to_bytes();
            // The book's maps are ordered: the same book always has the same bytes.
            if stored.as_deref() == Some(after.as_slice())
                || (stored.is_none() && book == CallBook::default())
            {
                return Ok(out);
            }
            if shared.replace(version, &after).await? {
                return Ok(out);
            }
        }
        Err(BookError::Contended)
    }

    /// Reads the book.
    pub async fn read<R>(&self, f: impl FnOnce(&CallBook) -> R) -> Result<R, BookError> {
        match self {
            BookHome::Local(book) => Ok(f(&book.lock().unwrap_or_else(PoisonError::into_inner))),
            BookHome::Shared(shared) => {
                let (stored, _) = shared.load().await?;
                Ok(f(&decode(stored.as_deref())?))
            }
        }
    }
}

fn decode(stored: Option<&[u8]>) -> Result<CallBook, BookError> {
    stored.map_or_else(
        || Ok(CallBook::default()),
        |bytes| CallBook::from_bytes(bytes).map_err(|e| BookError::Corrupt(e.to_string())),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::calls::machine::Device;

    /// A shared book in memory that another node changes before the first `races` stores.
    #[derive(Debug, Default)]
    struct Racy {
        stored: Mutex<(Option<Vec<u8>>, u64)>,
        races: AtomicUsize,
    }

    #[async_trait]
    impl SharedBook for Racy {
        async fn load(&self) -> Result<(Option<Vec<u8>>, u64), BookError> {
            Ok(self.stored.lock().expect("lock").clone())
        }

        async fn replace(&self, version: u64, book: &[u8]) -> Result<bool, BookError> {
            let mut stored = self.stored.lock().expect("lock");
            if self.races.load(Ordering::SeqCst) > 0 {
                self.races.fetch_sub(1, Ordering::SeqCst);
                // Another node starts a call of its own first.
                let mut theirs = decode(stored.0.as_deref())?;
                let caller = Device {
                    user_id: 90 + stored.1,
                    conn_id: 1,
                };
                theirs
                    .start(500 + stored.1, 1, caller, 80 + stored.1, false, 0, 1000)
                    .expect("their call");
                *stored = (Some(theirs.to_bytes()), stored.1 + 1);
            }
            if stored.1 != version {
                return Ok(false);
            }
            *stored = (Some(book.to_vec()), version + 1);
            Ok(true)
        }

        async fn heartbeat(&self, _node: u32) -> Result<(), BookError> {
            Ok(())
        }

        async fn gone(&self, _nodes: &[u32]) -> Result<Vec<u32>, BookError> {
            Ok(Vec::new())
        }
    }

    fn alice() -> Device {
        Device {
            user_id: 1,
            conn_id: 11,
        }
    }

    #[tokio::test]
    async fn a_transition_that_lost_a_race_runs_again_on_the_newer_book() {
        let racy = Arc::new(Racy {
            races: AtomicUsize::new(2),
            ..Racy::default()
        });
        let home = BookHome::Shared(racy.clone());
        let mut runs = 0;
        let started = home
            .update(|b| {
                runs += 1;
                b.start(7, 1, alice(), 2, true, 0, 1000)
            })
            .await
            .expect("stored");
        assert!(started.is_ok());
        assert_eq!(runs, 3, "twice beaten by another node");
        // Both of the other node's calls and this one are in the stored book.
        let calls = home
            .read(|b| [7, 500, 501].map(|id| b.get(id).is_some()))
            .await
            .expect("read");
        assert_eq!(calls, [true, true, true]);
        assert_eq!(racy.stored.lock().expect("lock").1, 3);
        // A transition that changes nothing stores nothing.
        let version = racy.stored.lock().expect("lock").1;
        let refused = home
            .update(|b| b.start(8, 1, alice(), 3, false, 0, 1000))
            .await
            .expect("ran");
        assert!(refused.is_err(), "alice is in a call");
        assert_eq!(racy.stored.lock().expect("lock").1, version);
    }

    #[tokio::test]
    async fn a_book_changed_under_every_attempt_is_contended() {
        let home = BookHome::Shared(Arc::new(Racy {
            races: AtomicUsize::new(MAX_ATTEMPTS),
            ..Racy::default()
        }));
        let out = home
            .update(|b| b.start(7, 1, alice(), 2, true, 0, 1000))
            .await;
        assert!(matches!(out, Err(BookError::Contended)), "{out:?}");
    }
}
