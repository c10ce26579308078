//! [`FaultyStore`]: a store that fails chosen calls on cue, for tests of what a handler does
//! when the store fails part way through a request (the `testing` feature puts it under every
//! node's [`GuardedStore`](crate::resilience::guarded_store::GuardedStore)).
//!
//! Why a wrapper and not a broken backend: the interesting failures are single calls in the
//! middle of a request (the password is stored, the session revocation then fails), and the
//! worst of them is a write that committed but whose answer was lost ([`Fail::AfterCall`]),
//! which no real backend produces on demand.

use std::sync::{Arc, Mutex};

use chatproto::pb;

use crate::store::delegate::{delegate_store, forward_store};
use crate::store::*;

/// When a planned failure strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    /// The call is not made: nothing is written.
    BeforeCall,
    /// The call is made (a write commits), then its answer is replaced by the failure, as when
    /// the connection to the backend drops before the answer arrives.
    AfterCall,
}

/// The failures planned for a [`FaultyStore`]: shared with the test that plans them.
#[derive(Debug, Default)]
pub struct Faults {
    // A std mutex: held only to look up and count down, never across a call.
    planned: Mutex<Vec<Planned>>,
}

#[derive(Debug)]
struct Planned {
    method: &'static str,
    when: Fail,
    times: u32,
}

impl Faults {
    /// Makes the next `times` calls of the store method named `method` (as the traits name it:
    /// `revoke_user_sessions`) fail with `Unavailable`, `when` says how. Adds to what is planned
    /// for other methods; replaces what was planned for this one (`times` 0: nothing).
    pub fn fail(&self, method: &'static str, when: Fail, times: u32) {
        let mut planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
        planned.retain(|p| p.method != method);
        if times > 0 {
            planned.push(Planned {
                method,
                when,
                times,
            });
        }
    }

    /// How this call of `method` fails, if a failure is planned for it (and counts it).
    fn take(&self, method: &str) -> Option<Fail> {
        let mut planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
        let at = planned.iter().position(|p| p.method == method)?;
        let plan = planned.get_mut(at)?;
        let when = plan.when;
        plan.times = plan.times.saturating_sub(1);
        if plan.times == 0 {
            planned.swap_remove(at);
        }
        Some(when)
    }
}

/// A [`Store`] that forwards every call to another one, but for those [`Faults`] plans to fail.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Arc<Faults>,
}

impl FaultyStore {
    /// Wraps `inner`; the failures are planned through `faults`.
    pub fn new(inner: Arc<dyn Store>, faults: Arc<Faults>) -> Self {
        FaultyStore { inner, faults }
    }
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore")
            .field("backend", &self.inner.backend())
            .field("faults", &self.faults)
            .finish()
    }
}

/// The failure a planned fault answers.
fn failure(method: &str) -> StoreError {
    StoreError::Unavailable(format!("{method} failed on cue"))
}

/// One call: forwarded, unless a failure is planned for it.
macro_rules! faulty {
    ($class:ident $method:ident $s:ident ($($arg:ident),*)) => {{
        match $s.faults.take(stringify!($method)) {
            None => $s.inner.$method($($arg),*).await,
            Some(Fail::BeforeCall) => Err(failure(stringify!($method))),
            Some(Fail::AfterCall) => {
                let _ = $s.inner.$method($($arg),*).await;
                Err(failure(stringify!($method)))
            }
        }
    }};
}

delegate_store!(FaultyStore, faulty);
forward_store!(FaultyStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    fn new_user(name: &str) -> NewUser {
        NewUser {
            username: name.into(),
            email: format!("{name}@example.com"),
            password_hash: "hash".into(),
            role: pb::Role::User,
            now_ms: 1,
        }
    }

    #[tokio::test]
    async fn planned_failures_strike_the_named_method_as_often_as_planned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = SqliteStore::open(dir.path().join("chat.db")).expect("open store");
        let faults = Arc::new(Faults::default());
        let store = FaultyStore::new(Arc::new(sqlite), faults.clone());

        faults.fail("create_user", Fail::BeforeCall, 1);
        let refused = store.create_user(new_user("ann")).await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(store.user_by_username("ann").await.expect("read").is_none());
        // Counted down: the next call goes through.
        let ann = store
            .create_user(new_user("ann"))
            .await
            .expect("second call");

        faults.fail("create_user", Fail::AfterCall, 2);
        let lost = store.create_user(new_user("bob")).await;
        assert!(matches!(lost, Err(StoreError::Unavailable(_))), "{lost:?}");
        assert!(store.user_by_username("bob").await.expect("read").is_some());
        // Other methods are not touched.
        assert_eq!(
            store.user(ann.id).await.expect("read").map(|u| u.id),
            Some(ann.id)
        );
        assert!(store.create_user(new_user("cid")).await.is_err());
        store
            .create_user(new_user("dan"))
            .await
            .expect("plan spent");
        faults.fail("create_user", Fail::BeforeCall, 5);
        faults.fail("create_user", Fail::BeforeCall, 0);
        store
            .create_user(new_user("eve"))
            .await
            .expect("plan called off");
    }
}
