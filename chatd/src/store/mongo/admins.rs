//! Keeping the last admin: changes that can take admin rights away run one at a time.
//!
//! "Not the last admin" depends on other users' documents, so no single-document update can
//! encode it, and a count followed by a write lets two concurrent demotions of the only two
//! admins both pass. FerretDB has no transactions, and its conditional updates are a read
//! followed by an unconditional write (see the module docs of [`super`]), so a guard counter
//! updated with a filter would race the same way. What both servers make atomic is a unique
//! insert: a change that could take admin rights away (demote, disable, delete) first inserts
//! the lease document `{_id: "admins"}` in `leases`, then counts and writes, then deletes the
//! lease. Only one such change holds the lease at a time, so each count sees every earlier
//! change. The same holds for the acting admin's role, read under the lease: of two admins
//! removing each other at once, the second finds its author removed. Changes that only add
//! admins take the lease too when an admin makes them, for that read.
//!
//! A lease carries an expiry of [`MongoOptions::operation_timeout`](super::MongoOptions): the
//! holder's call is cut off by then, so a lease outliving it was left by a crashed process and
//! the next change takes it over.

use std::time::Duration;

use mongodb::bson::{Document, doc};

use super::docs::i;
use super::pending::wall_ms;
use super::{MongoStore, error};
use crate::store::{ConflictKind, StoreError, StoreResult};

/// The lease document's `_id`.
const LEASE: &str = "admins";

/// How long a waiter sleeps between tries while another change holds the lease.
const RETRY: Duration = Duration::from_millis(10);

/// A held lease; deletes itself when dropped (also when the call is cut off by its deadline).
pub(super) struct AdminLease {
    leases: mongodb::Collection<Document>,
    holder: i64,
}

impl Drop for AdminLease {
    fn drop(&mut self) {
        let leases = self.leases.clone();
        let filter = doc! { "_id": LEASE, "holder": self.holder };
        // Dropped inside the store call's future on the runtime; if the runtime is gone, the
        // expiry frees the lease.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = leases.delete_one(filter).await {
                    tracing::debug!(error = %e, "admin lease not released: it expires");
                }
            });
        }
    }
}

impl MongoStore {
    /// Waits for the admin lease (within the caller's deadline).
    async fn admin_lease(&self) -> StoreResult<AdminLease> {
        let holder = i64::from_ne_bytes(rand::random::<[u8; 8]>());
        let ttl_ms = i64::try_from(self.options.operation_timeout.as_millis()).unwrap_or(i64::MAX);
        loop {
            let now = wall_ms();
            let lease = doc! { "_id": LEASE, "holder": holder, "expires_at_ms": now.saturating_add(ttl_ms) };
            match self.c.leases.insert_one(lease).await {
                Ok(_) => {
                    return Ok(AdminLease {
                        leases: self.c.leases.clone(),
                        holder,
                    });
                }
                Err(e) if error::is_duplicate(&e) => {
                    // Taken over only when expired, and only that holder's lease: a waiter that
                    // read it late never deletes a newer one.
                    let stale = self
                        .c
                        .leases
                        .find_one(doc! { "_id": LEASE, "expires_at_ms": { "$lt": now } })
                        .await
                        .map_err(error::map)?;
                    if let Some(stale) = stale {
                        let old = stale.get_i64("holder").unwrap_or_default();
                        self.c
                            .leases
                            .delete_one(doc! { "_id": LEASE, "holder": old })
                            .await
                            .map_err(error::map)?;
                        tracing::warn!("mongodb: took over an expired admin lease");
                    } else {
                        tokio::time::sleep(RETRY).await;
                    }
                }
                Err(e) => return Err(error::map(e)),
            }
        }
    }

    /// Runs `change` on user `id` under the admin lease, unless `by` (when given) is not an
    /// active admin (`Conflict(NotAdmin)`) or, for a change that `removes` admin rights, `id`
    /// is the last active admin (`Conflict(LastAdmin)`).
    pub(super) async fn guarded_admin_change<T>(
        &self,
        id: u64,
        by: Option<u64>,
        removes: bool,
        change: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let _lease = self.admin_lease().await?;
        let active_admin =
            doc! { "role": chatproto::pb::Role::Admin as i32, "disabled": false, "deleted": false };
        let is_active_admin = |user: u64| {
            let mut filter = active_admin.clone();
            filter.insert("_id", i(user));
            async move {
                let found = self.c.users.find_one(filter).await.map_err(error::map)?;
                StoreResult::Ok(found.is_some())
            }
        };
        if let Some(by) = by
            && !is_active_admin(by).await?
        {
            return Err(StoreError::Conflict(ConflictKind::NotAdmin));
        }
        if removes
            && is_active_admin(id).await?
            && self
                .c
                .users
                .count_documents(active_admin.clone())
                .await
                .map_err(error::map)?
                <= 1
        {
            return Err(StoreError::Conflict(ConflictKind::LastAdmin));
        }
        change.await
    }
}
