//! A value split into independently locked shards by a `u64` key (a user id, a chat id), so that
//! work on different keys does not queue on one lock.

use std::sync::{Mutex, MutexGuard};

/// Shards per map (a power of two): a few per core is enough to make collisions rare.
const SHARDS: usize = 16;

/// `SHARDS` values of `T`, each behind its own mutex.
#[derive(Debug)]
pub(super) struct Sharded<T> {
    shards: Box<[Mutex<T>]>,
}

impl<T: Default> Default for Sharded<T> {
    fn default() -> Self {
        Sharded {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

/// The shard of `key`. Ids are dense, so they are mixed first.
pub(super) fn shard_of(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize & (SHARDS - 1)
}

impl<T> Sharded<T> {
    fn at(&self, index: usize) -> MutexGuard<'_, T> {
        // `index` comes from `shard_of` (masked to the shard count) or a loop over the shards.
        #[allow(clippy::indexing_slicing)]
        let shard = &self.shards[index];
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the shard of `key`.
    pub fn lock(&self, key: u64) -> MutexGuard<'_, T> {
        self.at(shard_of(key))
    }

    /// Runs `f` on every shard in turn.
    pub fn for_each(&self, mut f: impl FnMut(&mut T)) {
        for index in 0..self.shards.len() {
            f(&mut self.at(index));
        }
    }

    /// Runs `f(shard, key)` for every key of `keys`, locking each shard once.
    pub fn for_keys(&self, keys: &[u64], mut f: impl FnMut(&mut T, u64)) {
        let mut by_shard: Vec<(usize, u64)> = keys.iter().map(|&k| (shard_of(k), k)).collect();
        by_shard.sort_unstable();
        for group in by_shard.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(index, _)) = group.first() else {
                continue;
            };
            let mut shard = self.at(index);
            for &(_, key) in group {
                f(&mut shard, key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_over_the_shards_and_each_is_visited_once() {
        let used: std::collections::HashSet<usize> = (0..1000).map(shard_of).collect();
        assert_eq!(used.len(), SHARDS, "dense ids reach every shard");
        let sharded: Sharded<Vec<u64>> = Sharded::default();
        sharded.for_keys(&[5, 1, 9, 5], |shard, key| shard.push(key));
        let mut seen = Vec::new();
        sharded.for_each(|shard| seen.append(shard));
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 5, 5, 9]);
    }
}
