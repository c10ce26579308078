//! Which senders and members exist: accounts are never removed (only marked deleted), so one
//! that was seen once is remembered, and only the others are read.
//!
//! The reads name each account by `_id` equality while there are few of them. A `$in` filter
//! is one round trip on MongoDB, but FerretDB 1.24 pushes down only equality, so on it a `$in`
//! over `users` decodes every account: a node reading the senders of its peer's chats paid a
//! scan of `users` per round, which doubled FerretDB's CPU per message. FerretDB hands an
//! equality on `_id` down to PostgreSQL, which returns just that account (MongoDB serves it by
//! the `_id` index). Beyond [`POINT_READS`] unknown accounts at once
//! (a large group created by a node that has not seen its members), one `$in` read costs less
//! than that many round trips.

use std::collections::HashSet;

use futures_util::future;
use mongodb::bson::{Bson, Document, doc};

use super::{MAX_CACHED, lock};
use crate::store::mongo::docs::i;
use crate::store::mongo::{MongoStore, error, ids_matching};
use crate::store::{StoreError, StoreResult};

/// Unknown accounts read one by one (concurrently) at most; more are read with one `$in`.
pub(in crate::store::mongo) const POINT_READS: usize = 16;

impl MongoStore {
    /// The accounts among `users` that do not exist.
    pub(super) async fn missing_users(&self, users: &[i64]) -> StoreResult<HashSet<i64>> {
        let unknown: Vec<i64> = {
            let known = lock(&self.appends.known_users);
            let mut unknown: Vec<i64> = users
                .iter()
                .copied()
                .filter(|u| !known.contains(u))
                .collect();
            unknown.sort_unstable();
            unknown.dedup();
            unknown
        };
        if unknown.is_empty() {
            return Ok(HashSet::new());
        }
        let found = if unknown.len() <= POINT_READS {
            self.existing_one_by_one(&unknown).await?
        } else {
            self.existing_at_once(&unknown).await?
        };
        self.note_users(&found);
        Ok(unknown.into_iter().filter(|u| !found.contains(u)).collect())
    }

    /// The accounts among `ids` that exist, read by `_id` equality, all at once.
    async fn existing_one_by_one(&self, ids: &[i64]) -> StoreResult<HashSet<i64>> {
        // Ids by value and a collection handle (an `Arc`) per read: a closure over `&i64` makes
        // futures that are not `Send` for every lifetime, which a spawned round needs.
        let users = self.c.users.clone_with_type::<Document>();
        let reads = ids.iter().copied().map(move |id| {
            let users = users.clone();
            async move {
                let found = users
                    .find_one(doc! { "_id": id })
                    .projection(doc! { "_id": 1 })
                    .await
                    .map_err(error::map)?;
                StoreResult::Ok(found.map(|_| id))
            }
        });
        let found = future::try_join_all(reads).await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// The accounts among `ids` that exist, read with one `$in`.
    async fn existing_at_once(&self, ids: &[i64]) -> StoreResult<HashSet<i64>> {
        let found = ids_matching(&self.c.users, doc! { "_id": { "$in": ids } }).await?;
        Ok(found.iter().filter_map(Bson::as_i64).collect())
    }

    /// `NotFound("user")` unless every account among `users` exists (reading only those not
    /// known yet).
    pub(in crate::store::mongo) async fn ensure_users(&self, users: &[u64]) -> StoreResult<()> {
        let ids: Vec<i64> = users.iter().map(|&u| i(u)).collect();
        if self.missing_users(&ids).await?.is_empty() {
            Ok(())
        } else {
            Err(StoreError::NotFound("user"))
        }
    }

    /// Remembers accounts that exist.
    pub(in crate::store::mongo) fn note_users<'a>(&self, users: impl IntoIterator<Item = &'a i64>) {
        let mut known = lock(&self.appends.known_users);
        if known.len() >= MAX_CACHED {
            known.clear();
        }
        known.extend(users);
    }

    /// True when the account is known to exist.
    pub(in crate::store::mongo) fn user_known(&self, user: i64) -> bool {
        lock(&self.appends.known_users).contains(&user)
    }
}
