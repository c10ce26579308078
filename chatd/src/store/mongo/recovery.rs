//! Email verification and password reset: [`RecoveryStore`]. A user's address and whether it
//! is verified live in `users`; each live emailed code in `account_codes`, one document per user
//! and purpose (`_id` `USER:PURPOSE`) with a random `nonce` that is new with every code.
//!
//! A code must be spent once, also when two redemptions reach two nodes at once. FerretDB may
//! let two concurrent conditional updates (or deletes) of one document both match (see the
//! store's module doc), so, as for two-factor codes, a unique `_id` insert into
//! `account_codes_spent` named after the code's nonce is the arbiter: the one insert that
//! succeeds spends the code, and the delete that follows only tidies up. Each attempt, right or
//! wrong, first claims its number the same way (`NONCE:N` for N up to the allowed attempts), so
//! guesses sent at once are judged no more often than attempts are allowed; the code's
//! `attempts` only tells later ones where to start.

use async_trait::async_trait;
use mongodb::bson::{Document, doc};
use serde::{Deserialize, Serialize};

use super::docs::i;
use super::{MongoStore, error};
use crate::store::{
    CodePurpose, NewAccountCode, RecoveryStore, Redemption, StoreResult, UserRecord,
};

/// `account_codes`: one user's live code of one purpose.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CodeDoc {
    #[serde(rename = "_id")]
    id: String,
    user_id: i64,
    /// New with every code: names the code's claim in `account_codes_spent`.
    nonce: i64,
    hash: String,
    email: String,
    attempts: i64,
    expires_at_ms: i64,
    created_at_ms: i64,
}

/// How long a spent code's claim is kept: longer than any code lives (the configured
/// lifetimes are at most a week).
const CLAIMS_KEPT_MS: i64 = 8 * 24 * 3_600_000;

fn code_id(user_id: u64, purpose: CodePurpose) -> String {
    format!("{user_id}:{}", purpose.number())
}

impl MongoStore {
    /// Removes the code `nonce` of `id` (not a newer one that replaced it).
    async fn drop_code(&self, id: &str, nonce: i64) -> StoreResult<()> {
        self.c
            .account_codes
            .delete_one(doc! { "_id": id, "nonce": nonce })
            .await
            .map_err(error::map)?;
        Ok(())
    }

    /// Claims the first attempt at `live` not claimed yet, up to `max`: a unique insert per
    /// attempt (`NONCE:N`, beside the spending claims), the one primitive FerretDB makes atomic.
    /// `None` when every attempt is taken.
    async fn claim_attempt(
        &self,
        user_id: u64,
        live: &CodeDoc,
        max: i64,
        now_ms: i64,
    ) -> StoreResult<Option<i64>> {
        for attempt in live.attempts.saturating_add(1)..=max {
            let mut claim = Document::new();
            claim.insert("_id", format!("{}:{attempt}", live.nonce));
            claim.insert("user_id", i(user_id));
            claim.insert("at_ms", now_ms);
            match self.c.account_codes_spent.insert_one(claim).await {
                Ok(_) => return Ok(Some(attempt)),
                Err(e) if error::is_duplicate(&e) => {}
                Err(e) => return Err(error::map(e)),
            }
        }
        Ok(None)
    }

    /// Inserts the claim on code `nonce`; false when it was claimed before.
    async fn claim_code(&self, user_id: u64, nonce: i64, now_ms: i64) -> StoreResult<bool> {
        let mut claim = Document::new();
        claim.insert("_id", nonce.to_string());
        claim.insert("user_id", i(user_id));
        claim.insert("at_ms", now_ms);
        match self.c.account_codes_spent.insert_one(claim).await {
            Ok(_) => Ok(true),
            Err(e) if error::is_duplicate(&e) => Ok(false),
            Err(e) => Err(error::map(e)),
        }
    }
}

#[async_trait]
impl RecoveryStore for MongoStore {
    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<UserRecord>> {
        if email.is_empty() {
            return Ok(Vec::new());
        }
        self.deadline(async {
            let filter = doc! {
                "email": { "$in": [email, email.to_lowercase()] },
                "disabled": false,
                "deleted": false,
            };
            self.users_by_id(filter).await
        })
        .await
    }

    async fn set_email(&self, user_id: u64, email: &str) -> StoreResult<()> {
        self.deadline(self.update_live_user(
            user_id,
            doc! { "$set": { "email": email, "email_verified": false } },
        ))
        .await
    }

    async fn mark_email_verified(&self, user_id: u64, email: &str) -> StoreResult<bool> {
        if email.is_empty() {
            return Ok(false);
        }
        self.deadline(async {
            let done = self
                .c
                .users
                .update_one(
                    doc! { "_id": i(user_id), "email": email, "deleted": false },
                    doc! { "$set": { "email_verified": true } },
                )
                .await
                .map_err(error::map)?;
            Ok(done.matched_count == 1)
        })
        .await
    }

    async fn put_account_code(&self, code: NewAccountCode) -> StoreResult<bool> {
        self.deadline(async {
            let id = code_id(code.user_id, code.purpose);
            let live = self
                .c
                .account_codes
                .find_one(doc! { "_id": &id })
                .await
                .map_err(error::map)?;
            if live.is_some_and(|d| {
                d.expires_at_ms > code.now_ms
                    && code.now_ms.saturating_sub(d.created_at_ms) < code.resend_gap_ms
            }) {
                return Ok(false);
            }
            // Claims outlive their codes (a claim removed while a redemption of its code is
            // still under way would let a second one through), but not the longest lifetime.
            self.c
                .account_codes_spent
                .delete_many(doc! {
                    "user_id": i(code.user_id),
                    "at_ms": { "$lt": code.now_ms.saturating_sub(CLAIMS_KEPT_MS) },
                })
                .await
                .map_err(error::map)?;
            let new = CodeDoc {
                id: id.clone(),
                user_id: i(code.user_id),
                nonce: (rand::random::<u64>() >> 1) as i64,
                hash: code.hash,
                email: code.email,
                attempts: 0,
                expires_at_ms: code.expires_at_ms,
                created_at_ms: code.now_ms,
            };
            self.c
                .account_codes
                .replace_one(doc! { "_id": &id }, new)
                .upsert(true)
                .await
                .map_err(error::map)?;
            Ok(true)
        })
        .await
    }

    async fn redeem_account_code(
        &self,
        user_id: u64,
        purpose: CodePurpose,
        hash: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> StoreResult<Redemption> {
        self.deadline(async {
            let id = code_id(user_id, purpose);
            let Some(live) = self
                .c
                .account_codes
                .find_one(doc! { "_id": &id })
                .await
                .map_err(error::map)?
            else {
                return Ok(Redemption::Missing);
            };
            let max = i64::from(max_attempts);
            if live.expires_at_ms <= now_ms || live.attempts >= max {
                self.drop_code(&id, live.nonce).await?;
                return Ok(Redemption::Missing);
            }
            // The attempt is claimed before the code is compared: of guesses sent at once, only
            // those that claimed one of the attempts left are judged.
            let Some(attempt) = self.claim_attempt(user_id, &live, max, now_ms).await? else {
                return Ok(Redemption::Missing);
            };
            if live.hash == hash {
                if !self.claim_code(user_id, live.nonce, now_ms).await? {
                    return Ok(Redemption::Missing);
                }
                self.drop_code(&id, live.nonce).await?;
                return Ok(Redemption::Redeemed { email: live.email });
            }
            if attempt >= max {
                self.drop_code(&id, live.nonce).await?;
            } else {
                // The count read first by later attempts; the claims are what bound them.
                self.c
                    .account_codes
                    .update_one(
                        doc! { "_id": &id, "nonce": live.nonce },
                        doc! { "$max": { "attempts": attempt } },
                    )
                    .await
                    .map_err(error::map)?;
            }
            Ok(Redemption::Wrong)
        })
        .await
    }
}
