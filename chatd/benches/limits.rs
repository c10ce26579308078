//! The local rate limiter (`limits::keyed`) against `governor`, the well-kept crate that does
//! the same GCRA (`cargo bench -p chatd --bench limits`). Both behind what the server shares
//! them with: ours in a `std::sync::Mutex` (as `RateLimits` holds it), governor's keyed limiter
//! as it comes (a DashMap).
//! - `one_key`: the same key over and over (one busy user);
//! - `distinct_keys`: a new key every check (a flood of addresses), where ours holds at most
//!   its `max_keys` and governor grows until `retain_recent` is called; the keys each holds
//!   afterwards are printed.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chatd::testing::{KeyedLimiter, Rate};
use criterion::{Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};

/// Generous enough that every check passes: the cost measured is the bookkeeping.
const PER_SECOND: u32 = 1_000_000;
/// Ours: the server's default cap on keys per limiter.
const MAX_KEYS: usize = 262_144;

fn ours() -> Mutex<KeyedLimiter<u64>> {
    let rate = Rate::new(PER_SECOND, PER_SECOND, Duration::from_secs(1)).expect("rate");
    Mutex::new(KeyedLimiter::new(rate, MAX_KEYS))
}

fn governor() -> governor::DefaultKeyedRateLimiter<u64> {
    let n = NonZeroU32::new(PER_SECOND).expect("non-zero");
    RateLimiter::keyed(Quota::per_second(n).allow_burst(n))
}

fn one_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_key");
    let limiter = ours();
    group.bench_function("keyed", |b| {
        b.iter(|| {
            let mut guard = limiter.lock().unwrap_or_else(|e| e.into_inner());
            guard.check(&7, Instant::now())
        });
    });
    let limiter = governor();
    group.bench_function("governor", |b| b.iter(|| limiter.check_key(&7)));
    group.finish();
}

fn distinct_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("distinct_keys");
    let limiter = ours();
    let mut key = 0u64;
    group.bench_function("keyed", |b| {
        b.iter(|| {
            key += 1;
            let mut guard = limiter.lock().unwrap_or_else(|e| e.into_inner());
            guard.check(&key, Instant::now())
        });
    });
    let held_ours = limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys_held();
    let ours_checks = key;
    let limiter = governor();
    let mut key = 0u64;
    group.bench_function("governor", |b| {
        b.iter(|| {
            key += 1;
            limiter.check_key(&key)
        });
    });
    group.finish();
    println!(
        "distinct_keys: keyed holds {held_ours} keys after {ours_checks} checks (cap {MAX_KEYS}); \
         governor holds {} after {key}",
        limiter.len()
    );
}

// The macros define undocumented functions.
#[allow(missing_docs)]
mod entry {
    use super::*;
    criterion_group!(benches, one_key, distinct_keys);
}
criterion_main!(entry::benches);
