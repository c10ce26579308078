//! The session sweep: deletes login sessions a while after they died, with their refresh tokens.
//!
//! A session dies when it is revoked (logout, signed out by its owner or an admin, a reused
//! refresh token, a login over `--max-sessions-per-user`) or when its refresh token expires
//! ([`refresh_expired`](super::refresh::refresh_expired)). Listing and the session cap ignore dead
//! sessions, but their rows would pile up with every login; so every node, every
//! [`INTERVAL`], deletes the sessions that have been dead for [`RETENTION_MS`], in batches of
//! [`BATCH`] (one store call each: the store serves other calls between them). Nodes sweeping at
//! once delete each session once.
//!
//! A deleted session answers as a revoked one: its access tokens are refused by `authenticate`
//! (`session revoked`), its refresh tokens by `refresh` (`invalid or revoked refresh token`),
//! and a touch of it waiting in [`touches`](super::touches) is dropped.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio_util::sync::CancellationToken;

use crate::store::{DeadSessions, Store, StoreResult};

/// How long a dead session is kept: 7 days after it was revoked or its refresh token expired.
/// Meanwhile its owner still gets the precise answer (`session expired: log in again` for an
/// expired token, reuse detection and its warning for an old token of it), and a request that
/// is ending the session as the sweep runs (the revocation that follows an expired refresh)
/// never finds it gone.
pub const RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// How often each node sweeps.
pub const INTERVAL: Duration = Duration::from_secs(60 * 60);

/// The first sweep after start, out of the way of the reconnections a restart brings.
const FIRST_AFTER: Duration = Duration::from_secs(60);

/// Sessions deleted per store call.
pub const BATCH: u32 = 500;

/// Runs [`sweep`] after [`FIRST_AFTER`], then every [`INTERVAL`], until `stop` is cancelled;
/// `swept` counts the deleted sessions.
pub async fn run(store: Arc<dyn Store>, swept: Counter, stop: CancellationToken) {
    let start = tokio::time::Instant::now() + FIRST_AFTER;
    let mut tick = tokio::time::interval_at(start, INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match sweep(&*store, &swept, BATCH, crate::clock::now_ms()).await {
            Ok(0) => {}
            Ok(sessions) => tracing::info!(sessions, "session sweep deleted dead sessions"),
            Err(e) => tracing::warn!(error = %e, "session sweep failed"),
        }
    }
}

/// Deletes, `batch` at a time, every session that was dead [`RETENTION_MS`] before `now_ms`;
/// returns how many, each also counted in `swept` as its batch is deleted.
pub async fn sweep(
    store: &dyn Store,
    swept: &Counter,
    batch: u32,
    now_ms: i64,
) -> StoreResult<u64> {
    let dead = DeadSessions::at(now_ms.saturating_sub(RETENTION_MS));
    let mut total = 0;
    loop {
        let batch_swept = store.delete_dead_sessions(dead, batch).await?;
        swept.inc_by(batch_swept.deleted);
        total += batch_swept.deleted;
        if batch_swept.gone.len() < batch as usize {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{
        NewSession, NewUser, REFRESH_ABSOLUTE_TTL_MS, REFRESH_IDLE_TTL_MS, SessionStore as _,
        UserStore as _,
    };

    const DAY: i64 = 24 * 60 * 60 * 1000;

    /// Sessions die by revocation or expiry and are deleted [`RETENTION_MS`] later, however
    /// many batches that takes.
    #[tokio::test]
    async fn sessions_are_deleted_once_dead_for_the_retention() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("chat.db")).expect("open");
        let user = store
            .create_user(NewUser::sample("alice"))
            .await
            .expect("user")
            .id;
        let now = 1_000 * DAY;
        let store_ref = &store;
        let session = move |hash: &'static str, created: i64| async move {
            store_ref
                .create_session(NewSession::sample(user, hash, created))
                .await
                .expect("session")
                .id
        };
        let revoked_long_ago = session("a", now - RETENTION_MS - DAY).await;
        store
            .revoke_session(user, revoked_long_ago, now - RETENTION_MS)
            .await
            .expect("revoke");
        let revoked_lately = session("b", now - RETENTION_MS - DAY).await;
        store
            .revoke_session(user, revoked_lately, now - RETENTION_MS + 1)
            .await
            .expect("revoke");
        let idle_long_ago = session("c", now - RETENTION_MS - REFRESH_IDLE_TTL_MS).await;
        let idle_lately = session("d", now - RETENTION_MS - REFRESH_IDLE_TTL_MS + 1).await;
        let aged_long_ago = session("e", now - RETENTION_MS - REFRESH_ABSOLUTE_TTL_MS).await;
        store
            .touch_session(aged_long_ago, "192.0.2.1:1", now - DAY)
            .await
            .expect("touch");
        let live = session("f", now - DAY).await;

        let swept = Counter::default();
        assert_eq!(sweep(&store, &swept, 2, now).await.expect("sweep"), 3);
        assert_eq!(swept.get(), 3);
        for gone in [revoked_long_ago, idle_long_ago, aged_long_ago] {
            assert_eq!(store.session(gone).await.expect("read"), None);
        }
        for kept in [revoked_lately, idle_lately, live] {
            assert!(store.session(kept).await.expect("read").is_some());
        }
        assert_eq!(sweep(&store, &swept, 2, now).await.expect("sweep"), 0);
        assert_eq!(swept.get(), 3);
    }
}
