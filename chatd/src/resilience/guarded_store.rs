//! [`GuardedStore`]: every store call with a deadline, a circuit breaker and, for reads only,
//! retries with backoff.
//!
//! Why: a remote backend (MongoDB) that is down or partitioned makes calls hang until the
//! driver gives up. Requests must answer UNAVAILABLE quickly instead (the client retries with
//! backoff and keeps working from its cache), and a dead backend must not tie up every request
//! task for the full timeout. So:
//! - each call gets the store deadline (default 1.5 s); running out is `Unavailable`;
//! - `Unavailable` answers and deadlines count as failures of the store's circuit breaker
//!   (`Busy`, a call that lost to concurrent writers, does not: the store answered);
//!   while it is open, calls fail at once with `Unavailable`; a half-open probe closes it again
//!   when the backend is back, so the node recovers by itself;
//! - reads are retried within the same deadline after a short backoff with jitter; writes never
//!   are (a write that timed out may have committed, and only the client knows whether repeating
//!   it is safe: SendMessage is idempotent by `client_msg_id`, CreateGroup is not).
//!
//! Other errors (not found, conflict, internal) mean the backend answered: they count as
//! successes for the breaker and pass through unchanged. Every call's duration is recorded in the
//! `store_operation_duration` metric.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chatproto::pb;

use crate::ops::metrics::Metrics;
use crate::resilience::backoff::Backoff;
use crate::resilience::breaker::{BreakerConfig, CircuitBreaker};
use crate::store::delegate::delegate_store;
use crate::store::*;

/// A [`Store`] that guards another one; see the module documentation.
pub struct GuardedStore {
    inner: Arc<dyn Store>,
    breaker: CircuitBreaker,
    deadline: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for GuardedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStore")
            .field("backend", &self.inner.backend())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl GuardedStore {
    /// Guards `inner` with a per-call `deadline`.
    pub fn new(inner: Arc<dyn Store>, deadline: Duration, metrics: Arc<Metrics>) -> Self {
        GuardedStore {
            inner,
            breaker: CircuitBreaker::new("store", BreakerConfig::default()),
            deadline,
            metrics,
        }
    }

    /// Runs one attempt: breaker admission, deadline, outcome recording. An open circuit and a
    /// missed deadline are both `Unavailable`.
    async fn attempt<T>(
        &self,
        op: &'static str,
        deadline: Instant,
        fut: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let permit = self.breaker.admit(Instant::now()).map_err(|open| {
            StoreError::Unavailable(format!(
                "{op}: storage circuit open (retry in {:?})",
                open.retry_after
            ))
        })?;
        let result =
            match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), fut).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Unavailable(format!(
                    "{op} took longer than {} ms",
                    self.deadline.as_millis()
                ))),
            };
        let healthy = !counts_as_failure(&result);
        self.breaker.record(permit, healthy, Instant::now());
        self.metrics.circuit("store", self.breaker.is_open());
        result
    }

    /// A read: retried after `Unavailable` while the deadline allows.
    async fn read<T, F, Fut>(&self, op: &'static str, call: F) -> StoreResult<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let mut backoff = Backoff::new(Duration::from_millis(25), Duration::from_millis(250));
        let result = loop {
            match self.attempt(op, deadline, call()).await {
                Err(StoreError::Unavailable(msg)) => {
                    let delay = backoff.next_delay();
                    // Only retry when the backend said so quickly enough to leave time for
                    // another try; an open circuit is not retried (it will not close that fast).
                    if self.breaker.is_open() || Instant::now() + delay * 2 >= deadline {
                        break Err(StoreError::Unavailable(msg));
                    }
                    tokio::time::sleep(delay).await;
                }
                other => break other,
            }
        };
        self.metrics.store_operation(op, started.elapsed());
        result
    }

    /// A write: one attempt.
    async fn write<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let result = self.attempt(op, started + self.deadline, fut).await;
        self.metrics.store_operation(op, started.elapsed());
        result
    }
}

/// One guarded call: reads retried within the deadline (their arguments are cloned per
/// attempt: references and small queries), writes tried once.
macro_rules! guarded {
    (read $method:ident $s:ident ($($arg:ident),*)) => {{
        #[allow(clippy::clone_on_copy)]
        let call = || $s.inner.$method($($arg.clone()),*);
        $s.read(stringify!($method), call).await
    }};
    // No deadline around the whole: a broadcast takes as long as there are users (the MongoDB
    // backend puts the deadline on each batch); a deadline here would answer `Unavailable` for
    // a broadcast that goes on and is recorded, inviting a second one.
    (write broadcast_notification $s:ident ($($arg:ident),*)) => {{
        let started = Instant::now();
        let result = $s.inner.broadcast_notification($($arg),*).await;
        $s.metrics.store_operation("broadcast_notification", started.elapsed());
        result
    }};
    (write $method:ident $s:ident ($($arg:ident),*)) => {
        $s.write(stringify!($method), $s.inner.$method($($arg),*)).await
    };
}

delegate_store!(GuardedStore, guarded);

#[async_trait]
impl Store for GuardedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> StoreResult<()> {
        // Readiness probes go through the breaker too: while it is open the node is not ready.
        self.read("ping", || self.inner.ping()).await
    }
    async fn backup(&self, to: &std::path::Path) -> StoreResult<()> {
        // No deadline: a copy takes as long as the database is large (see `Store::backup`).
        self.inner.backup(to).await
    }
    // No deadline either: schema work takes as long as it takes (see `Store::schema_status`).
    async fn schema_status(&self) -> StoreResult<SchemaStatus> {
        self.inner.schema_status().await
    }
    async fn migrate(&self) -> StoreResult<SchemaStatus> {
        self.inner.migrate().await
    }
    async fn ensure_indexes(&self) -> StoreResult<SchemaStatus> {
        self.inner.ensure_indexes().await
    }
}

/// Whether an outcome says the store is unhealthy: it did not answer (`Unavailable`, which a
/// missed deadline and an open circuit also are). Every answer counts as healthy, refusals
/// included: `Busy` (the call lost to concurrent writers too often), `NotFound`, `Conflict`.
fn counts_as_failure<T>(result: &StoreResult<T>) -> bool {
    matches!(result, Err(StoreError::Unavailable(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_store_that_does_not_answer_counts_against_the_breaker() {
        assert!(counts_as_failure::<()>(&Err(StoreError::Unavailable(
            "timed out".into()
        ))));
        assert!(!counts_as_failure::<()>(&Err(StoreError::Busy(
            "sends kept losing their seq to other writers".into()
        ))));
        assert!(!counts_as_failure::<()>(&Err(StoreError::NotFound("chat"))));
        assert!(!counts_as_failure(&Ok(())));
    }
}
