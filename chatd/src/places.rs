//! [`Places`]: how many of something each key holds at once (an HTTP server's connections per
//! client address, the unread upload headers of each user), with caps, and a guard per place
//! ([`Place`]) that gives it back when dropped, on every exit path.
//!
//! The counts sit behind one `std::sync::Mutex` held only to compare and change numbers (no
//! await, no call out). A key's entry is removed when it holds nothing, so the map is as large
//! as the keys holding places now.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// Most places held at once, in all and by one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// All keys together.
    pub total: usize,
    /// One key.
    pub per_key: usize,
}

/// The places held, by key; see the module documentation.
#[derive(Debug)]
pub struct Places<K> {
    counts: Mutex<Counts<K>>,
    /// Woken whenever a place is given back.
    freed: Notify,
}

#[derive(Debug)]
struct Counts<K> {
    total: usize,
    by_key: HashMap<K, usize>,
}

impl<K: Hash + Eq + Copy> Default for Places<K> {
    fn default() -> Self {
        Places {
            counts: Mutex::new(Counts {
                total: 0,
                by_key: HashMap::new(),
            }),
            freed: Notify::new(),
        }
    }
}

impl<K: Hash + Eq + Copy> Places<K> {
    fn counts(&self) -> MutexGuard<'_, Counts<K>> {
        // Each critical section only adds or subtracts: a poisoned lock holds sound numbers.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for `key`, however many are held.
    pub fn take(self: &Arc<Self>, key: K) -> Place<K> {
        let mut counts = self.counts();
        counts.total += 1;
        *counts.by_key.entry(key).or_default() += 1;
        Place {
            places: Arc::clone(self),
            key,
        }
    }

    /// A place for `key`, or `None` when all keys or `key` hold what `caps` allow.
    pub fn try_take(self: &Arc<Self>, key: K, caps: Caps) -> Option<Place<K>> {
        let mut counts = self.counts();
        let mine = counts.by_key.get(&key).copied().unwrap_or(0);
        if counts.total >= caps.total || mine >= caps.per_key {
            return None;
        }
        counts.total += 1;
        counts.by_key.insert(key, mine + 1);
        Some(Place {
            places: Arc::clone(self),
            key,
        })
    }

    /// How many places `key` holds now.
    pub fn held(&self, key: &K) -> usize {
        self.counts().by_key.get(key).copied().unwrap_or(0)
    }

    /// Completes once `key` holds no place.
    pub async fn none_held(&self, key: &K) {
        loop {
            // Registered before the count is read, so a place given back in between wakes it.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.held(key) == 0 {
                return;
            }
            freed.await;
        }
    }
}

/// One place of a key; given back when dropped.
#[derive(Debug)]
pub struct Place<K: Hash + Eq + Copy> {
    places: Arc<Places<K>>,
    key: K,
}

impl<K: Hash + Eq + Copy> Drop for Place<K> {
    fn drop(&mut self) {
        let mut counts = self.places.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_key.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_key.remove(&self.key);
            }
        }
        drop(counts);
        self.places.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const CAPS: Caps = Caps {
        total: 3,
        per_key: 2,
    };

    #[test]
    fn places_are_capped_per_key_and_in_all_and_given_back_when_dropped() {
        let places = Arc::new(Places::<u8>::default());
        let a1 = places.try_take(1, CAPS).expect("first of key 1");
        let a2 = places.try_take(1, CAPS).expect("second of key 1");
        assert!(places.try_take(1, CAPS).is_none(), "key 1 holds its two");
        let b1 = places.try_take(2, CAPS).expect("key 2");
        assert!(places.try_take(3, CAPS).is_none(), "three in all");
        assert_eq!(
            (places.held(&1), places.held(&2), places.counts().total),
            (2, 1, 3)
        );
        drop(a1);
        assert_eq!((places.held(&1), places.counts().total), (1, 2));
        let c1 = places.try_take(3, CAPS).expect("a place was given back");
        // Uncapped taking counts too.
        let a3 = places.take(1);
        assert_eq!((places.held(&1), places.counts().total), (2, 4));
        drop((a2, a3, b1, c1));
        assert_eq!(places.counts().total, 0);
        assert!(
            places.counts().by_key.is_empty(),
            "keys holding nothing are forgotten"
        );
    }

    #[tokio::test]
    async fn none_held_completes_when_the_last_place_of_its_key_is_given_back() {
        let places = Arc::new(Places::<u8>::default());
        places.none_held(&1).await;
        let a = places.take(1);
        let b = places.take(1);
        let other = places.take(2);
        let waiting = tokio::spawn({
            let places = places.clone();
            async move { places.none_held(&1).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        drop(other);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "key 1 still holds a place");
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("task");
    }
}
