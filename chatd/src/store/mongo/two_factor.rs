//! Two-factor login: [`TwoFactorStore`]. One document per user in `two_factor`, `_id` the user
//! id, holding the sealed secret, whether it is enabled, the last step used and the hashes of
//! the unused recovery codes.
//!
//! Spending a step or a recovery code must succeed once, also when two requests with the same
//! code reach two nodes at once. A conditional update alone would do on MongoDB, but FerretDB
//! may let two concurrent updates of one document both match (see the store's module doc), so,
//! as for refresh tokens, a unique `_id` insert into `two_factor_spent` is the arbiter: the one
//! insert that succeeds spends the code, and the update that follows only records it. Spent
//! steps below the last one are pruned as later ones are spent; spent recovery codes go when
//! two-factor login is disabled.

use async_trait::async_trait;
use mongodb::bson::{Binary, Document, doc};
use serde::{Deserialize, Serialize};

use super::docs::{binary, i, u};
use super::{MongoStore, error};
use crate::store::{StoreResult, TwoFactorRecord, TwoFactorStore};

/// `two_factor`: one user's two-factor login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TwoFactorDoc {
    #[serde(rename = "_id")]
    user_id: i64,
    secret: Binary,
    enabled: bool,
    last_step: i64,
    recovery: Vec<String>,
}

/// The `_id` in `two_factor_spent` of one spent step or code of a user.
fn spent_id(user_id: u64, what: &str) -> String {
    format!("{user_id}:{what}")
}

impl MongoStore {
    /// Inserts the claim on `what` (`step:N` or `code:HASH`); false when it was claimed before.
    async fn claim_spent(&self, user_id: u64, what: &str, step: u64) -> StoreResult<bool> {
        self.deadline(async {
            let mut claim = Document::new();
            claim.insert("_id", spent_id(user_id, what));
            claim.insert("user_id", i(user_id));
            claim.insert("step", i(step));
            match self.c.two_factor_spent.insert_one(claim).await {
                Ok(_) => Ok(true),
                Err(e) if error::is_duplicate(&e) => Ok(false),
                Err(e) => Err(error::map(e)),
            }
        })
        .await
    }
}

#[async_trait]
impl TwoFactorStore for MongoStore {
    async fn two_factor(&self, user_id: u64) -> StoreResult<Option<TwoFactorRecord>> {
        self.deadline(async {
            let found = self
                .c
                .two_factor
                .find_one(doc! { "_id": i(user_id) })
                .await
                .map_err(error::map)?;
            Ok(found.map(|d| TwoFactorRecord {
                sealed_secret: d.secret.bytes,
                enabled: d.enabled,
                last_step: u(d.last_step),
                recovery_codes_left: u32::try_from(d.recovery.len()).unwrap_or(u32::MAX),
            }))
        })
        .await
    }

    async fn stage_two_factor(&self, user_id: u64, sealed_secret: Vec<u8>) -> StoreResult<bool> {
        self.deadline(async {
            // Replaces a pending document or inserts one; an enabled one does not match, so the
            // upsert's insert meets its `_id` and fails as a duplicate: nothing changed.
            let staged = self
                .c
                .two_factor
                .replace_one(
                    doc! { "_id": i(user_id), "enabled": false },
                    TwoFactorDoc {
                        user_id: i(user_id),
                        secret: binary(sealed_secret),
                        enabled: false,
                        last_step: 0,
                        recovery: Vec::new(),
                    },
                )
                .upsert(true)
                .await;
            match staged {
                Ok(_) => Ok(true),
                Err(e) if error::is_duplicate(&e) => Ok(false),
                Err(e) => Err(error::map(e)),
            }
        })
        .await
    }

    async fn enable_two_factor(
        &self,
        user_id: u64,
        sealed_secret: Vec<u8>,
        step: u64,
        recovery_hashes: Vec<String>,
    ) -> StoreResult<bool> {
        self.deadline(async {
            let done = self
                .c
                .two_factor
                .update_one(
                    doc! {
                        "_id": i(user_id),
                        "enabled": false,
                        "secret": binary(sealed_secret),
                    },
                    doc! { "$set": {
                        "enabled": true,
                        "last_step": i(step),
                        "recovery": recovery_hashes,
                    } },
                )
                .await
                .map_err(error::map)?;
            Ok(done.matched_count == 1)
        })
        .await
    }

    async fn spend_two_factor_step(&self, user_id: u64, step: u64) -> StoreResult<bool> {
        let usable = self
            .two_factor(user_id)
            .await?
            .is_some_and(|r| r.enabled && r.last_step < step);
        if !usable
            || !self
                .claim_spent(user_id, &format!("step:{step}"), step)
                .await?
        {
            return Ok(false);
        }
        self.deadline(async {
            self.c
                .two_factor
                .update_one(
                    doc! { "_id": i(user_id), "last_step": { "$lt": i(step) } },
                    doc! { "$set": { "last_step": i(step) } },
                )
                .await
                .map_err(error::map)?;
            self.c
                .two_factor_spent
                .delete_many(doc! { "user_id": i(user_id), "step": { "$gt": 0, "$lt": i(step) } })
                .await
                .map_err(error::map)?;
            Ok(true)
        })
        .await
    }

    async fn has_recovery_code(&self, user_id: u64, hash: &str) -> StoreResult<bool> {
        self.deadline(async {
            let listed = self
                .c
                .two_factor
                .find_one(doc! { "_id": i(user_id), "enabled": true, "recovery": hash })
                .await
                .map_err(error::map)?;
            if listed.is_none() {
                return Ok(false);
            }
            // Claimed already (its pull may not have followed): it cannot be spent again.
            let claimed = self
                .c
                .two_factor_spent
                .find_one(doc! { "_id": spent_id(user_id, &format!("code:{hash}")) })
                .await
                .map_err(error::map)?;
            Ok(claimed.is_none())
        })
        .await
    }

    async fn spend_recovery_code(&self, user_id: u64, hash: &str) -> StoreResult<bool> {
        let enabled = self.two_factor(user_id).await?.is_some_and(|r| r.enabled);
        if !enabled
            || !self
                .claim_spent(user_id, &format!("code:{hash}"), 0)
                .await?
        {
            return Ok(false);
        }
        self.deadline(async {
            let done = self
                .c
                .two_factor
                .update_one(
                    doc! { "_id": i(user_id), "enabled": true, "recovery": hash },
                    doc! { "$pull": { "recovery": hash } },
                )
                .await
                .map_err(error::map)?;
            if done.matched_count == 0 {
                // Never issued (or disabled meanwhile): give the claim back, so that guesses
                // leave nothing behind.
                self.c
                    .two_factor_spent
                    .delete_one(doc! { "_id": spent_id(user_id, &format!("code:{hash}")) })
                    .await
                    .map_err(error::map)?;
            }
            Ok(done.matched_count == 1)
        })
        .await
    }

    async fn replace_recovery_codes(
        &self,
        user_id: u64,
        recovery_hashes: Vec<String>,
    ) -> StoreResult<bool> {
        self.deadline(async {
            let done = self
                .c
                .two_factor
                .update_one(
                    doc! { "_id": i(user_id), "enabled": true },
                    doc! { "$set": { "recovery": recovery_hashes } },
                )
                .await
                .map_err(error::map)?;
            Ok(done.matched_count == 1)
        })
        .await
    }

    async fn disable_two_factor(&self, user_id: u64) -> StoreResult<bool> {
        self.deadline(async {
            let removed = self
                .c
                .two_factor
                .delete_one(doc! { "_id": i(user_id), "enabled": true })
                .await
                .map_err(error::map)?;
            if removed.deleted_count == 0 {
                return Ok(false);
            }
            self.c
                .two_factor_spent
                .delete_many(doc! { "user_id": i(user_id) })
                .await
                .map_err(error::map)?;
            Ok(true)
        })
        .await
    }
}
