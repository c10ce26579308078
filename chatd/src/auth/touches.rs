//! When and from where each session was last used, written behind the answer.
//!
//! Why: every `authenticate` used to write the session's last-seen time and address before it
//! answered. A reconnect wave is thousands of authentications a second, each then waiting for
//! a store write (the one SQLite writer, or a MongoDB round trip that in cluster mode also
//! invalidated the cached session, so the next authentication read it from MongoDB again).
//! The answer needs none of it: last-seen is for people reading their device list. So an
//! authentication records the touch here, in memory, and [`SessionTouches::run`] writes what
//! accumulated every [`FLUSH_INTERVAL`], one write per session however often it was used.
//! A drained node writes the rest before it stops; a node that crashes loses at most the last
//! interval's touches, which only makes a device list a few seconds older.
//!
//! The map is behind a `std::sync::Mutex` held only to insert, look up or swap it: never
//! across an await or a call out.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{SessionRecord, Store};

/// How often the accumulated touches are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// One session's latest use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    /// The client address, "ip:port".
    pub address: String,
    /// When, in milliseconds since the epoch.
    pub at_ms: i64,
}

/// The touches not written yet, by session id.
#[derive(Debug, Default)]
pub struct SessionTouches {
    pending: Mutex<HashMap<u64, Touch>>,
}

impl SessionTouches {
    /// Notes that `session_id` was used from `address` at `at_ms` (a later touch of the same
    /// session replaces an earlier one; an older one is ignored).
    pub fn record(&self, session_id: u64, address: String, at_ms: i64) {
        let mut pending = self.lock();
        match pending.get_mut(&session_id) {
            Some(t) if t.at_ms > at_ms => {}
            Some(t) => *t = Touch { address, at_ms },
            None => {
                pending.insert(session_id, Touch { address, at_ms });
            }
        }
    }

    /// `session` with its touch not written yet, if it has one: what a device list shows.
    pub fn apply(&self, mut session: SessionRecord) -> SessionRecord {
        if let Some(t) = self.lock().get(&session.id)
            && t.at_ms >= session.last_seen_at_ms
        {
            session.last_seen_at_ms = t.at_ms;
            session.address = t.address.clone();
        }
        session
    }

    /// Writes every waiting touch to `store`; returns how many were written. A touch whose
    /// write fails is kept for the next flush unless the session was touched again meanwhile;
    /// a session that no longer exists is dropped.
    pub async fn flush(&self, store: &dyn Store) -> usize {
        let batch = std::mem::take(&mut *self.lock());
        let mut written = 0;
        for (id, touch) in batch {
            match store.touch_session(id, &touch.address, touch.at_ms).await {
                Ok(()) => written += 1,
                Err(crate::store::StoreError::NotFound(_)) => {}
                Err(e) => {
                    tracing::debug!(session = id, error = %e, "session touch not written; kept");
                    let mut pending = self.lock();
                    pending.entry(id).or_insert(touch);
                }
            }
        }
        written
    }

    /// Flushes every [`FLUSH_INTERVAL`] until `stop`. The last touches are written by the
    /// caller's final [`flush`](Self::flush), once no connection can add more.
    pub async fn run(
        self: std::sync::Arc<Self>,
        store: std::sync::Arc<dyn Store>,
        stop: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    self.flush(&*store).await;
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Touch>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: u64, last_seen_at_ms: i64) -> SessionRecord {
        SessionRecord::sample(id, last_seen_at_ms)
    }

    #[test]
    fn the_latest_touch_of_a_session_wins() {
        let touches = SessionTouches::default();
        touches.record(7, "192.0.2.2:2".into(), 200);
        touches.record(7, "192.0.2.3:3".into(), 100);
        touches.record(8, "192.0.2.4:4".into(), 50);
        assert_eq!(touches.lock().len(), 2);
        let seen = touches.apply(session(7, 150));
        assert_eq!(
            (seen.last_seen_at_ms, seen.address.as_str()),
            (200, "192.0.2.2:2")
        );
        touches.record(7, "192.0.2.5:5".into(), 300);
        assert_eq!(touches.apply(session(7, 150)).address, "192.0.2.5:5");
    }

    #[tokio::test]
    async fn a_flush_writes_each_session_once_and_drops_the_ones_that_are_gone() {
        use crate::store::sqlite::SqliteStore;
        use crate::store::{NewSession, NewUser, SessionStore as _, UserStore as _};
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("chat.db")).expect("open");
        let user = store
            .create_user(NewUser::sample("alice"))
            .await
            .expect("user");
        let created = store
            .create_session(NewSession::sample(user.id, &"h".repeat(64), 1))
            .await
            .expect("session");
        let touches = SessionTouches::default();
        touches.record(created.id, "192.0.2.9:9".into(), 100);
        touches.record(created.id, "192.0.2.8:8".into(), 200);
        touches.record(created.id + 1000, "192.0.2.7:7".into(), 300);
        assert_eq!(touches.flush(&store).await, 1);
        assert!(touches.lock().is_empty(), "the missing session is not kept");
        let stored = store
            .session(created.id)
            .await
            .expect("read")
            .expect("session");
        assert_eq!(
            (stored.last_seen_at_ms, stored.address.as_str()),
            (200, "192.0.2.8:8")
        );
    }

    #[test]
    fn a_record_newer_than_the_touch_is_left_as_it_is() {
        let touches = SessionTouches::default();
        touches.record(7, "192.0.2.2:2".into(), 100);
        let seen = touches.apply(session(7, 150));
        assert_eq!(
            (seen.last_seen_at_ms, seen.address.as_str()),
            (150, "192.0.2.1:1")
        );
        assert_eq!(touches.apply(session(9, 1)).last_seen_at_ms, 1);
    }
}
