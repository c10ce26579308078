//! [`CachedStore`]: a read cache in Redis in front of the store, shared by every node, with
//! invalidation on write. Redis is never the system of record: every cached value can be
//! dropped at any time, and every failure falls back to the store.
//!
//! What is cached, and what invalidates it (the write methods of the same store):
//! - user records by id (`user`, `users`), 1 h: profile, password, role, disabled, deleted,
//!   last-seen changes, address changes and verification;
//! - chat records by id (`chat`), 1 h: every chat mutation (each appends an event and moves
//!   `last_seq`); `fresh_chat` reads past the cache, for a write judged again;
//! - sessions by id (`session`), 7 days: revocation, rotation, touch, deletion as dead;
//! - user search pages (`search_users`), 5 min: account creation, profile changes, disabling
//!   and deletion drop every cached page. Pages may show a last-seen time up to 5 min old.
//!
//! # Consistency
//! A write invalidates after the store committed, by replacing the value with a short-lived
//! tombstone (twice the store deadline, at least [`MIN_TOMBSTONE`]). A read that misses loads from
//! the store and then caches with a script that refuses to overwrite a tombstone: a reader that
//! loaded the old value before a concurrent write cannot put it back, because its read ended
//! within the store deadline, before the tombstone expires.
//!
//! When an invalidation cannot reach Redis, its key is kept in a local pending set: this node
//! reads those keys from the store, and a background task retries the invalidation until it
//! succeeds. If more than [`MAX_PENDING`] keys pile up, the node stops tracking them one by one
//! and instead moves the whole cluster to a fresh cache generation once Redis is back (every key
//! carries the generation; nodes pick up a new one at their next heartbeat). Cached user records
//! carry password hashes like the store does: Redis must be as private as the database.
//!
//! # Layout
//! - [`codec`]: the cached value format.
//! - `store_impl`: the `Store` traits, delegating and caching.

pub mod codec;
mod store_impl;

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cluster::redis::{LuaScript, Redis};
use crate::store::{Store, StoreResult};

/// The shortest tombstone lifetime.
pub const MIN_TOMBSTONE: Duration = Duration::from_secs(3);

/// Invalidations kept for retry at most before switching generation.
pub const MAX_PENDING: usize = 10_000;

/// The generation counter's key.
pub const GENERATION_KEY: &str = "chatd:cache:generation";

/// How long each kind of entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTtls {
    /// User profiles.
    pub user: Duration,
    /// Chat metadata.
    pub chat: Duration,
    /// Sessions.
    pub session: Duration,
    /// User search pages.
    pub search: Duration,
    /// How long an invalidation keeps a key from being cached again: longer than any store
    /// read may take.
    pub tombstone: Duration,
}

impl Default for CacheTtls {
    fn default() -> Self {
        CacheTtls {
            user: Duration::from_secs(3600),
            chat: Duration::from_secs(3600),
            session: Duration::from_secs(7 * 24 * 3600),
            search: Duration::from_secs(300),
            tombstone: MIN_TOMBSTONE,
        }
    }
}

/// Sets KEYS[1] to ARGV[1] for ARGV[2] seconds unless it holds the tombstone ARGV[3].
const POPULATE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
";

/// Search pages: KEYS[1] the hash, KEYS[2] its tombstone. ARGV: field, value, max fields, ttl.
const POPULATE_SEARCH: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return 1
";

/// Drops every search page: KEYS[1] the hash, KEYS[2] its tombstone; ARGV[1] tombstone ms.
const INVALIDATE_SEARCH: &str = r"
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
redis.call('DEL', KEYS[1])
return 1
";

/// Search pages cached at most (the hash is dropped on every invalidation anyway).
const MAX_SEARCH_PAGES: usize = 10_000;

/// What a write invalidates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Entry {
    User(u64),
    Chat(u64),
    Session(u64),
    Search,
}

struct Pending {
    keys: HashSet<Entry>,
    overflowed: bool,
}

/// The caching store; see the module documentation.
pub struct CachedStore {
    inner: Arc<dyn Store>,
    redis: Redis,
    ttls: CacheTtls,
    generation: AtomicU64,
    pending: Mutex<Pending>,
    bypass_all: AtomicBool,
    populate: LuaScript,
    populate_search: LuaScript,
    invalidate_search: LuaScript,
}

impl std::fmt::Debug for CachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStore")
            .field("backend", &self.inner.backend())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CachedStore {
    /// Caches `inner`'s reads in `redis`. Call [`run_maintenance`](Self::run_maintenance) to
    /// retry failed invalidations and follow generation changes.
    pub fn new(inner: Arc<dyn Store>, redis: Redis, ttls: CacheTtls) -> Self {
        CachedStore {
            inner,
            redis,
            ttls,
            generation: AtomicU64::new(0),
            pending: Mutex::new(Pending {
                keys: HashSet::new(),
                overflowed: false,
            }),
            bypass_all: AtomicBool::new(false),
            populate: LuaScript::new(POPULATE),
            populate_search: LuaScript::new(POPULATE_SEARCH),
            invalidate_search: LuaScript::new(INVALIDATE_SEARCH),
        }
    }

    fn key(&self, entry: &Entry) -> String {
        let generation = self.generation.load(Ordering::SeqCst);
        match entry {
            Entry::User(id) => format!("chatd:cache:{generation}:user:{id}"),
            Entry::Chat(id) => format!("chatd:cache:{generation}:chat:{id}"),
            Entry::Session(id) => format!("chatd:cache:{generation}:session:{id}"),
            // One hash tag: the pages and their tombstone share a slot (the scripts touch both).
            Entry::Search => format!("chatd:cache:{generation}:{{usearch}}"),
        }
    }

    fn tombstone_ms(&self) -> u64 {
        u64::try_from(self.ttls.tombstone.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn search_tombstone_key(&self) -> String {
        format!("{}:inv", self.key(&Entry::Search))
    }

    /// Whether this node must not trust Redis for `entry` (an invalidation of it is pending).
    fn bypass(&self, entry: &Entry) -> bool {
        self.bypass_all.load(Ordering::SeqCst) || lock(&self.pending).keys.contains(entry)
    }

    /// A cached point read: Redis, else the store (then cached unless tombstoned).
    async fn cached<T, Fut>(
        &self,
        entry: Entry,
        ttl: Duration,
        decode: fn(&[u8]) -> Option<T>,
        encode: fn(&T) -> Vec<u8>,
        load: impl FnOnce() -> Fut,
    ) -> StoreResult<Option<T>>
    where
        Fut: Future<Output = StoreResult<Option<T>>>,
    {
        if self.bypass(&entry) {
            return load().await;
        }
        let key = self.key(&entry);
        let cacheable = match self
            .redis
            .query::<Option<Vec<u8>>>(redis::cmd("GET").arg(&key))
            .await
        {
            Ok(Some(bytes)) if bytes == codec::TOMBSTONE => false,
            Ok(Some(bytes)) => match decode(&bytes) {
                Some(value) => return Ok(Some(value)),
                None => true,
            },
            Ok(None) => true,
            Err(_) => false,
        };
        let value = load().await?;
        if cacheable && let Some(v) = &value {
            self.spawn_populate(key, encode(v), ttl);
        }
        Ok(value)
    }

    fn spawn_populate(&self, key: String, value: Vec<u8>, ttl: Duration) {
        let redis = self.redis.clone();
        let script = self.populate.clone();
        tokio::spawn(async move {
            let ttl = ttl.as_secs().max(1).to_string();
            let result = redis
                .eval::<i64>(
                    &script,
                    &[key.as_str()],
                    &[value.as_slice(), ttl.as_bytes(), codec::TOMBSTONE],
                )
                .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, "cache populate failed");
            }
        });
    }

    /// Users by id: one MGET for all, the store for the misses.
    async fn cached_users(&self, ids: &[u64]) -> StoreResult<Vec<crate::store::UserRecord>> {
        if ids.is_empty() {
            return self.inner.users(ids).await;
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(&Entry::User(*id))).collect();
        let values: Vec<Option<Vec<u8>>> =
            match self.redis.query(redis::cmd("MGET").arg(&keys)).await {
                Ok(values) => values,
                Err(_) => return self.inner.users(ids).await,
            };
        let mut found = Vec::with_capacity(ids.len());
        let mut misses = Vec::new();
        let mut cacheable = HashSet::new();
        for ((id, key), value) in ids.iter().zip(&keys).zip(values) {
            let entry = Entry::User(*id);
            match value {
                _ if self.bypass(&entry) => misses.push(*id),
                Some(bytes) if bytes == codec::TOMBSTONE => misses.push(*id),
                Some(bytes) => match codec::decode_user(&bytes) {
                    Some(user) => found.push(user),
                    None => {
                        misses.push(*id);
                        cacheable.insert(key.clone());
                    }
                },
                None => {
                    misses.push(*id);
                    cacheable.insert(key.clone());
                }
            }
        }
        if !misses.is_empty() {
            for user in self.inner.users(&misses).await? {
                let key = self.key(&Entry::User(user.id));
                if cacheable.contains(&key) {
                    self.spawn_populate(key, codec::encode_user(&user), self.ttls.user);
                }
                found.push(user);
            }
        }
        Ok(found)
    }

    /// A cached search page.
    async fn cached_search(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<crate::store::UserRecord>> {
        if self.bypass(&Entry::Search) {
            return self.inner.search_users(prefix, after, limit).await;
        }
        // Usernames and prefixes never contain NUL, so the field is unambiguous.
        let field = format!("{prefix}\0{}\0{limit}", after.unwrap_or(""));
        let key = self.key(&Entry::Search);
        let cacheable = match self
            .redis
            .query::<Option<Vec<u8>>>(redis::cmd("HGET").arg(&key).arg(&field))
            .await
        {
            Ok(Some(bytes)) => match codec::decode_users(&bytes) {
                Some(users) => return Ok(users),
                None => true,
            },
            Ok(None) => true,
            Err(_) => false,
        };
        let users = self.inner.search_users(prefix, after, limit).await?;
        if cacheable {
            let redis = self.redis.clone();
            let script = self.populate_search.clone();
            let tombstone = self.search_tombstone_key();
            let value = codec::encode_users(&users);
            let ttl = self.ttls.search.as_secs().max(1).to_string();
            tokio::spawn(async move {
                let max = MAX_SEARCH_PAGES.to_string();
                let args: [&[u8]; 4] = [
                    field.as_bytes(),
                    value.as_slice(),
                    max.as_bytes(),
                    ttl.as_bytes(),
                ];
                if let Err(e) = redis
                    .eval::<i64>(&script, &[key.as_str(), tombstone.as_str()], &args)
                    .await
                {
                    tracing::debug!(error = %e, "search cache populate failed");
                }
            });
        }
        Ok(users)
    }

    /// Tries one invalidation in Redis.
    async fn try_invalidate(&self, entry: &Entry) -> bool {
        let result = match entry {
            Entry::Search => {
                let ms = self.tombstone_ms().to_string();
                self.redis
                    .eval::<i64>(
                        &self.invalidate_search,
                        &[
                            self.key(entry).as_str(),
                            self.search_tombstone_key().as_str(),
                        ],
                        &[ms.as_bytes()],
                    )
                    .await
                    .map(|_| ())
            }
            _ => {
                self.redis
                    .query::<()>(
                        redis::cmd("SET")
                            .arg(self.key(entry))
                            .arg(codec::TOMBSTONE)
                            .arg("PX")
                            .arg(self.tombstone_ms()),
                    )
                    .await
            }
        };
        result.is_ok()
    }

    /// Invalidates after a committed write; what cannot reach Redis is kept for retry.
    async fn invalidate(&self, entries: impl IntoIterator<Item = Entry>) {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let results =
            futures_util::future::join_all(entries.iter().map(|e| self.try_invalidate(e))).await;
        let failed: Vec<Entry> = entries
            .into_iter()
            .zip(results)
            .filter_map(|(e, ok)| (!ok).then_some(e))
            .collect();
        if failed.is_empty() {
            return;
        }
        let mut pending = lock(&self.pending);
        for entry in failed {
            if pending.keys.len() >= MAX_PENDING {
                if !pending.overflowed {
                    tracing::error!(
                        "too many cache invalidations pending: the cache generation will change"
                    );
                }
                pending.overflowed = true;
                self.bypass_all.store(true, Ordering::SeqCst);
                break;
            }
            pending.keys.insert(entry);
        }
    }

    /// Reads the cache generation from Redis (every node follows the same one).
    pub async fn refresh_generation(&self) {
        if let Ok(Some(generation)) = self
            .redis
            .query::<Option<u64>>(redis::cmd("GET").arg(GENERATION_KEY))
            .await
        {
            self.generation.store(generation, Ordering::SeqCst);
        }
    }

    /// Retries pending invalidations (or moves to a new generation after an overflow), then
    /// follows the cluster's generation. Called periodically.
    pub async fn maintain(&self) {
        let (entries, overflowed) = {
            let pending = lock(&self.pending);
            (
                pending.keys.iter().cloned().collect::<Vec<_>>(),
                pending.overflowed,
            )
        };
        if overflowed {
            match self
                .redis
                .query::<u64>(redis::cmd("INCR").arg(GENERATION_KEY))
                .await
            {
                Ok(generation) => {
                    self.generation.store(generation, Ordering::SeqCst);
                    let mut pending = lock(&self.pending);
                    pending.keys.clear();
                    pending.overflowed = false;
                    self.bypass_all.store(false, Ordering::SeqCst);
                    tracing::warn!(
                        generation,
                        "cache generation changed after lost invalidations"
                    );
                }
                Err(e) => tracing::debug!(error = %e, "cache generation change failed"),
            }
            return;
        }
        for entry in entries {
            if self.try_invalidate(&entry).await {
                lock(&self.pending).keys.remove(&entry);
            } else {
                break;
            }
        }
        self.refresh_generation().await;
    }

    /// Calls [`maintain`](Self::maintain) every `every` until `cancel`.
    pub async fn run_maintenance(self: Arc<Self>, every: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => self.maintain().await,
            }
        }
    }
}
