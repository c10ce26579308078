//! Request id allocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Hands out request ids: 1, 2, 3, ... (0 is never used, so it can mean "none" in logs).
///
/// Clones share the counter, so the session core and every task sending requests on the same
/// connection draw from one sequence and ids stay unique per client.
#[derive(Debug, Clone, Default)]
pub struct RequestIds {
    last: Arc<AtomicU64>,
}

impl RequestIds {
    /// A fresh allocator whose first id is 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id.
    pub fn next_id(&self) -> u64 {
        // Relaxed is enough: ids only need to be distinct, not ordered with other memory.
        let id = self.last.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if id == 0 {
            // After 2^64 requests the counter wraps; skip the reserved 0.
            self.last.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
        } else {
            id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_one_and_are_shared_by_clones() {
        let ids = RequestIds::new();
        let other = ids.clone();
        assert_eq!(ids.next_id(), 1);
        assert_eq!(other.next_id(), 2);
        assert_eq!(ids.next_id(), 3);
    }

    #[test]
    fn zero_is_skipped_on_wrap() {
        let ids = RequestIds {
            last: Arc::new(AtomicU64::new(u64::MAX - 1)),
        };
        assert_eq!(ids.next_id(), u64::MAX);
        assert_eq!(ids.next_id(), 1);
    }
}
