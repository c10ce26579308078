//! Where the call book lives: in this node's memory when it serves alone, or in the cluster's
//! shared store (Redis, kept by `cluster::calls`) when several nodes serve the same users, so
//! that every node applies transitions to the same calls and a call outlives the node it was
//! started on (spec 14.8).
//!
//! The shared book is one versioned value: a transition loads it, runs the same pure function
//! of [`CallBook`] as one node does, and stores the result only if nobody stored another version
//! meanwhile (compare-and-set), trying again with the newer book otherwise. Transitions are
//! rare next to messages (a few per call), and the book holds only live calls and those ended
//! in the last minute, so one value is the simplest correct form of it (it grows with the calls
//! live at once: about 300 KB for a thousand).
//!
//! A store that fails (a timeout) may still have happened, later: the store is settled by
//! reading the book again until a read succeeds, which, on the same connection, comes after the
//! store; each store names its writer, so the read tells whether it was this one.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use super::machine::CallBook;

/// How many times a transition is tried against a shared book that other nodes keep changing.
pub const MAX_ATTEMPTS: usize = 16;

/// How many reads settle a store whose outcome is unknown, and the pause before each.
const SETTLE_READS: usize = 20;
const SETTLE_PAUSE: Duration = Duration::from_millis(200);

/// The shared book as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// The book's encoding (`None` before the first store).
    pub book: Option<Vec<u8>>,
    /// Its version (0 before the first store).
    pub version: u64,
    /// Who stored it: a random number each store draws.
    pub writer: u64,
}

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
    /// The stored book.
    async fn load(&self) -> Result<Stored, BookError>;

    /// Stores `book` as version `version + 1` by `writer` if the stored one is still `version`;
    /// false when another node stored another version first. An error leaves the outcome
    /// unknown; a later successful [`load`](Self::load) on the same connection tells it.
    async fn replace(&self, version: u64, book: &[u8], writer: u64) -> Result<bool, BookError>;

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
            let stored = shared.load().await?;
            let mut book = decode(stored.book.as_deref())?;
            let out = f(&mut book);
            let after = book.to_bytes();
            // The book's maps are ordered: the same book always has the same bytes.
            if stored.book.as_deref() == Some(after.as_slice())
                || (stored.book.is_none() && book == CallBook::default())
            {
                return Ok(out);
            }
            let writer = rand::random::<u64>();
            match shared.replace(stored.version, &after, writer).await {
                Ok(true) => return Ok(out),
                Ok(false) => {}
                Err(e) => match settle(shared.as_ref(), stored.version, writer).await {
                    Some(true) => return Ok(out),
                    Some(false) => {}
                    None => return Err(e),
                },
            }
        }
        Err(BookError::Contended)
    }

    /// Reads the book.
    pub async fn read<R>(&self, f: impl FnOnce(&CallBook) -> R) -> Result<R, BookError> {
        match self {
            BookHome::Local(book) => Ok(f(&book.lock().unwrap_or_else(PoisonError::into_inner))),
            BookHome::Shared(shared) => {
                let stored = shared.load().await?;
                Ok(f(&decode(stored.book.as_deref())?))
            }
        }
    }
}

/// Whether the store of `writer` over `version`, whose outcome is unknown, happened: `None`
/// when the book could not be read again.
async fn settle(shared: &dyn SharedBook, version: u64, writer: u64) -> Option<bool> {
    for _ in 0..SETTLE_READS {
        if let Ok(stored) = shared.load().await {
            return Some(stored.version == version + 1 && stored.writer == writer);
        }
        tokio::time::sleep(SETTLE_PAUSE).await;
    }
    None
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

    /// A shared book in memory that another node changes before the first `races` stores, and
    /// whose next `lost` stores are made but answered with an error (a timeout).
    #[derive(Debug, Default)]
    struct Racy {
        stored: Mutex<Stored>,
        races: AtomicUsize,
        lost: AtomicUsize,
    }

    impl Racy {
        fn version(&self) -> u64 {
            self.stored.lock().expect("lock").version
        }
    }

    #[async_trait]
    impl SharedBook for Racy {
        async fn load(&self) -> Result<Stored, BookError> {
            Ok(self.stored.lock().expect("lock").clone())
        }

        async fn replace(&self, version: u64, book: &[u8], writer: u64) -> Result<bool, BookError> {
            let mut stored = self.stored.lock().expect("lock");
            if self.races.load(Ordering::SeqCst) > 0 {
                self.races.fetch_sub(1, Ordering::SeqCst);
                // Another node starts a call of its own first.
                let mut theirs = decode(stored.book.as_deref())?;
                let v = stored.version;
                let caller = Device {
                    user_id: 90 + v,
                    conn_id: 1,
                };
                theirs
                    .start(500 + v, 1, caller, 80 + v, false, 0, 1000)
                    .expect("their call");
                *stored = Stored {
                    book: Some(theirs.to_bytes()),
                    version: v + 1,
                    writer: 7,
                };
            }
            if stored.version != version {
                return Ok(false);
            }
            *stored = Stored {
                book: Some(book.to_vec()),
                version: version + 1,
                writer,
            };
            if self.lost.load(Ordering::SeqCst) > 0 {
                self.lost.fetch_sub(1, Ordering::SeqCst);
                return Err(BookError::Unreachable("timed out".into()));
            }
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
        assert_eq!(racy.version(), 3);
        // A transition that changes nothing stores nothing.
        let refused = home
            .update(|b| b.start(8, 1, alice(), 3, false, 0, 1000))
            .await
            .expect("ran");
        assert!(refused.is_err(), "alice is in a call");
        assert_eq!(racy.version(), 3);
    }

    #[tokio::test]
    async fn a_store_that_timed_out_but_happened_counts_once() {
        let racy = Arc::new(Racy {
            lost: AtomicUsize::new(1),
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
            .expect("settled as stored");
        assert!(started.is_ok(), "the transition's outcome is kept");
        assert_eq!((runs, racy.version()), (1, 1), "not applied twice");
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
