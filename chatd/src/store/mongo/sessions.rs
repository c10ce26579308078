//! Sessions and refresh-token rotation: [`SessionStore`] on `sessions` and `used_refresh_tokens`.
//!
//! A session document holds its live refresh-token hash (`refresh_hash`, unique index); every token
//! that was rotated away is kept in `used_refresh_tokens` (`_id` = hash), so presenting an old one
//! is recognised as reuse rather than as an unknown token.
//!
//! Rotation without transactions: inserting the presented hash into `used_refresh_tokens` is the
//! claim that makes it used, atomically (a unique `_id` insert, atomic on FerretDB too); only the
//! caller whose insert succeeded swaps the session's live hash. So of two concurrent rotations of one
//! token exactly one rotates and the other finds the token used, which is reuse: the session is
//! revoked. A crash between the claim and the swap fails safe: the token is used but still live,
//! so presenting it again is taken as reuse and ends the session (the client logs in again).
//!
//! Dead sessions are deleted without transactions too ([`dead_filter`]): a batch's used tokens
//! first, then the sessions still dead, then the used tokens of those gone once more. A failure
//! midway leaves sessions still to delete, never a used token whose session is gone; the second
//! pass takes a claim a rotation of one of them made meanwhile, and a rotation that claims after
//! it finds no session to swap and takes its claim back. A session whose token is rotated
//! between the steps stays if that made it live again, without the used tokens it had: presenting
//! one of those then answers as an unknown token would, not as reuse.

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;

use super::counters::Sequence;
use super::docs::{SessionDoc, i, u};
use super::{MongoStore, error, find_all};
use crate::store::ConflictKind;
use crate::store::{
    DeadSessions, NewSession, RefreshOutcome, SessionRecord, SessionStore, StoreError, StoreResult,
    SweptSessions, UserRecord, UserStore,
};

fn token_in_use() -> StoreError {
    StoreError::Conflict(ConflictKind::RefreshTokenReused)
}

/// The sessions `dead` names, as a filter on `sessions` (what `DeadSessions::expired` says,
/// field by field; a live session's `revoked_at_ms` is null, which no bound matches).
fn dead_filter(dead: &DeadSessions) -> Document {
    doc! { "$or": [
        { "revoked_at_ms": { "$lte": dead.revoked_by_ms } },
        {
            "last_seen_at_ms": { "$lte": dead.last_used_by_ms },
            "created_at_ms": { "$lte": dead.last_used_by_ms },
        },
        { "created_at_ms": { "$lte": dead.created_by_ms } },
    ] }
}

impl MongoStore {
    /// When `presented` was claimed by a concurrent rotation that has not swapped it out of the
    /// session yet, waits (up to `repair_after`) for that swap: it is the winner's only write to
    /// the session, and revoking after it keeps a non-atomic server (FerretDB) from losing the
    /// revocation under it. A winner that never swaps (it crashed) is not waited for beyond that.
    async fn await_swap(&self, session_id: i64, presented: &str) -> StoreResult<()> {
        let started = std::time::Instant::now();
        while started.elapsed() < self.options.repair_after {
            let filter =
                doc! { "_id": session_id, "refresh_hash": presented, "revoked_at_ms": null };
            if self
                .c
                .sessions
                .find_one(filter)
                .await
                .map_err(error::map)?
                .is_none()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Takes back `session`, just inserted, when the password its sign-in was checked against
    /// is no longer the user's or the user was disabled or deleted: `Conflict(CredentialsChanged)`.
    /// Read after the insert: a change that came first is seen here, and one that comes later
    /// (the new hash or flag written, then every live session revoked) revokes this one too.
    async fn still_signed_in(&self, session: &SessionDoc, checked: &str) -> StoreResult<()> {
        let user = self.user(u(session.user_id)).await?;
        if user.is_some_and(|u| u.password_hash == checked && u.is_active()) {
            return Ok(());
        }
        self.revoke_if_live(session.id, session.created_at_ms)
            .await?;
        Err(StoreError::Conflict(ConflictKind::CredentialsChanged))
    }

    /// Revokes session `id` at `now_ms` unless it is revoked already; true when this call did.
    async fn revoke_if_live(&self, id: i64, now_ms: i64) -> StoreResult<bool> {
        let result = self
            .c
            .sessions
            .update_one(
                doc! { "_id": id, "revoked_at_ms": null },
                doc! { "$set": { "revoked_at_ms": now_ms } },
            )
            .await
            .map_err(error::map)?;
        Ok(result.modified_count == 1)
    }

    /// Deletes the claim of `presented` when its session `session_id` no longer exists (a
    /// sweep deleted it between the claim and the swap).
    async fn drop_claim_of_deleted(&self, session_id: i64, presented: &str) -> StoreResult<()> {
        let exists = self
            .c
            .sessions
            .find_one(doc! { "_id": session_id })
            .await
            .map_err(error::map)?
            .is_some();
        if !exists {
            self.c
                .used_refresh
                .delete_one(doc! { "_id": presented, "session_id": session_id })
                .await
                .map_err(error::map)?;
        }
        Ok(())
    }

    /// The ids of the sessions `filter` matches, at most `limit` of them.
    async fn session_ids(&self, filter: Document, limit: Option<u32>) -> StoreResult<Vec<i64>> {
        let sessions = self.c.sessions.clone_with_type::<Document>();
        let mut find = sessions.find(filter).projection(doc! { "_id": 1 });
        if let Some(limit) = limit {
            find = find.limit(i64::from(limit));
        }
        let found: Vec<Document> = find
            .await
            .map_err(error::map)?
            .try_collect()
            .await
            .map_err(error::map)?;
        found
            .iter()
            .map(|d| d.get_i64("_id").map_err(|e| error::corrupt("sessions", e)))
            .collect()
    }

    /// True when `hash` is or was a refresh token of any session.
    async fn refresh_hash_known(&self, hash: &str) -> StoreResult<bool> {
        let live = self
            .c
            .sessions
            .find_one(doc! { "refresh_hash": hash })
            .await
            .map_err(error::map)?;
        if live.is_some() {
            return Ok(true);
        }
        let used = self
            .c
            .used_refresh
            .find_one(doc! { "_id": hash })
            .await
            .map_err(error::map)?;
        Ok(used.is_some())
    }

    /// Fails with `NotFound("user")` unless the user exists (deleted users exist).
    pub(super) async fn ensure_user(&self, id: u64) -> StoreResult<()> {
        // Accounts are never removed, so one seen once exists for good.
        if self.user_known(i(id)) {
            return Ok(());
        }
        match self
            .c
            .users
            .find_one(doc! { "_id": i(id) })
            .await
            .map_err(error::map)?
        {
            Some(_) => {
                self.note_users([&i(id)]);
                Ok(())
            }
            None => Err(StoreError::NotFound("user")),
        }
    }
}

#[async_trait]
impl SessionStore for MongoStore {
    async fn create_session(&self, new: NewSession) -> StoreResult<SessionRecord> {
        self.deadline(async {
            self.ensure_user(new.user_id).await?;
            let checked = new.checked_hash.clone();
            if self.refresh_hash_known(&new.refresh_hash).await? {
                return Err(token_in_use());
            }
            let mut session = SessionDoc {
                id: 0,
                user_id: i(new.user_id),
                device_name: new.device_name,
                created_at_ms: new.now_ms,
                last_seen_at_ms: new.now_ms,
                address: new.address,
                revoked_at_ms: None,
                refresh_hash: new.refresh_hash,
            };
            loop {
                session.id = self.next_id(Sequence::Sessions).await?;
                match self.c.sessions.insert_one(&session).await {
                    Ok(_) => {
                        if let Some(checked) = &checked {
                            self.still_signed_in(&session, checked).await?;
                        }
                        return Ok(session.into());
                    }
                    Err(e) if error::is_duplicate(&e) => {
                        if self.refresh_hash_known(&session.refresh_hash).await? {
                            return Err(token_in_use());
                        }
                        // The id was handed out twice (see `counters`): take another.
                    }
                    Err(e) => return Err(error::map(e)),
                }
            }
        })
        .await
    }

    async fn session_and_user(
        &self,
        session_id: u64,
        user_id: u64,
    ) -> StoreResult<(Option<SessionRecord>, Option<UserRecord>)> {
        // Two collections: both queries at once, one round trip of waiting.
        tokio::try_join!(self.session(session_id), self.user(user_id))
    }

    async fn session(&self, id: u64) -> StoreResult<Option<SessionRecord>> {
        self.deadline(async {
            let found = self
                .c
                .sessions
                .find_one(doc! { "_id": i(id) })
                .await
                .map_err(error::map)?;
            Ok(found.map(SessionRecord::from))
        })
        .await
    }

    async fn refresh_owner(&self, presented_hash: &str) -> StoreResult<Option<u64>> {
        self.deadline(async {
            let live = self
                .c
                .sessions
                .find_one(doc! { "refresh_hash": presented_hash })
                .await
                .map_err(error::map)?;
            if let Some(session) = live {
                return Ok(Some(u(session.user_id)));
            }
            let used = self
                .c
                .used_refresh
                .find_one(doc! { "_id": presented_hash })
                .await
                .map_err(error::map)?;
            used.map(|used| {
                used.get_i64("user_id")
                    .map(u)
                    .map_err(|e| error::corrupt("used refresh token", e))
            })
            .transpose()
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        presented_hash: &str,
        new_hash: &str,
        now_ms: i64,
    ) -> StoreResult<RefreshOutcome> {
        self.deadline(async {
            let live = self.c.sessions.find_one(doc! { "refresh_hash": presented_hash }).await.map_err(error::map)?;
            if let Some(session) = live {
                if session.revoked_at_ms.is_some() {
                    return Ok(RefreshOutcome::Invalid);
                }
                if DeadSessions::at(now_ms).expired(session.created_at_ms, session.last_seen_at_ms) {
                    if !self.revoke_if_live(session.id, now_ms).await? {
                        return Ok(RefreshOutcome::Invalid);
                    }
                    return Ok(RefreshOutcome::Expired { session_id: u(session.id), user_id: u(session.user_id) });
                }
                if self.refresh_hash_known(new_hash).await? {
                    return Err(token_in_use());
                }
                let used = doc! { "_id": presented_hash, "session_id": session.id, "user_id": session.user_id };
                match self.c.used_refresh.insert_one(used).await {
                    Ok(_) => {
                        let swapped = self
                            .c
                            .sessions
                            .find_one_and_update(
                                doc! { "_id": session.id, "refresh_hash": presented_hash, "revoked_at_ms": null },
                                doc! { "$set": { "refresh_hash": new_hash }, "$max": { "last_seen_at_ms": now_ms } },
                            )
                            .return_document(ReturnDocument::After)
                            .await;
                        return match swapped {
                            Ok(Some(rotated)) => Ok(RefreshOutcome::Rotated(rotated.into())),
                            // Revoked in between, or deleted as dead: then the claim must not
                            // outlive it.
                            Ok(None) => {
                                self.drop_claim_of_deleted(session.id, presented_hash).await?;
                                Ok(RefreshOutcome::Invalid)
                            }
                            Err(e) if error::is_duplicate(&e) => Err(token_in_use()),
                            Err(e) => Err(error::map(e)),
                        };
                    }
                    // Used by a concurrent rotation: this presentation is a reuse.
                    Err(e) if error::is_duplicate(&e) => {}
                    Err(e) => return Err(error::map(e)),
                }
            }
            let Some(used) = self.c.used_refresh.find_one(doc! { "_id": presented_hash }).await.map_err(error::map)?
            else {
                return Ok(RefreshOutcome::Invalid);
            };
            let session_id = used.get_i64("session_id").map_err(|e| error::corrupt("used refresh token", e))?;
            let user_id = used.get_i64("user_id").map_err(|e| error::corrupt("used refresh token", e))?;
            self.await_swap(session_id, presented_hash).await?;
            // Someone holds an older token of this family: end the whole family.
            if !self.revoke_if_live(session_id, now_ms).await? {
                return Ok(RefreshOutcome::Invalid);
            }
            Ok(RefreshOutcome::Reused { session_id: u(session_id), user_id: u(user_id) })
        })
        .await
    }

    async fn touch_session(&self, id: u64, address: &str, now_ms: i64) -> StoreResult<()> {
        self.deadline(async {
            let result = self
                .c
                .sessions
                .update_one(
                    doc! { "_id": i(id) },
                    doc! { "$set": { "address": address }, "$max": { "last_seen_at_ms": now_ms } },
                )
                .await
                .map_err(error::map)?;
            if result.matched_count == 0 {
                return Err(StoreError::NotFound("session"));
            }
            Ok(())
        })
        .await
    }

    async fn list_sessions(&self, user_id: u64) -> StoreResult<Vec<SessionRecord>> {
        self.deadline(async {
            let docs: Vec<SessionDoc> = find_all(
                &self.c.sessions,
                doc! { "user_id": i(user_id), "revoked_at_ms": null },
                Some(doc! { "_id": -1 }),
            )
            .await?;
            Ok(docs.into_iter().map(SessionRecord::from).collect())
        })
        .await
    }

    async fn revoke_session(&self, user_id: u64, session_id: u64, now_ms: i64) -> StoreResult<()> {
        self.deadline(async {
            let result = self
                .c
                .sessions
                .update_one(
                    doc! { "_id": i(session_id), "user_id": i(user_id), "revoked_at_ms": null },
                    doc! { "$set": { "revoked_at_ms": now_ms } },
                )
                .await
                .map_err(error::map)?;
            if result.modified_count == 0 {
                return Err(StoreError::NotFound("session"));
            }
            Ok(())
        })
        .await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: u64,
        keep: Option<u64>,
        now_ms: i64,
    ) -> StoreResult<Vec<u64>> {
        self.deadline(async {
            // Session ids start at 1, so 0 keeps nothing.
            let keep = keep.map(i).unwrap_or(0);
            let live: Vec<SessionDoc> = find_all(
                &self.c.sessions,
                doc! { "user_id": i(user_id), "_id": { "$ne": keep }, "revoked_at_ms": null },
                None,
            )
            .await?;
            // One by one, so the answer lists exactly the sessions this call revoked.
            let mut revoked = Vec::new();
            for session in live {
                if self.revoke_if_live(session.id, now_ms).await? {
                    revoked.push(u(session.id));
                }
            }
            revoked.sort_unstable();
            Ok(revoked)
        })
        .await
    }

    async fn delete_dead_sessions(
        &self,
        dead: DeadSessions,
        limit: u32,
    ) -> StoreResult<SweptSessions> {
        self.deadline(async {
            let mut ids = self.session_ids(dead_filter(&dead), Some(limit)).await?;
            if ids.is_empty() {
                return Ok(SweptSessions::default());
            }
            let tokens = |ids: &[i64]| doc! { "session_id": { "$in": ids } };
            self.c
                .used_refresh
                .delete_many(tokens(&ids))
                .await
                .map_err(error::map)?;
            // Still dead: the filter again, so a session used meanwhile stays.
            let mut sessions = dead_filter(&dead);
            sessions.insert("_id", doc! { "$in": ids.as_slice() });
            let deleted = self
                .c
                .sessions
                .delete_many(sessions)
                .await
                .map_err(error::map)?;
            if deleted.deleted_count < ids.len() as u64 {
                let left = self
                    .session_ids(doc! { "_id": { "$in": ids.as_slice() } }, None)
                    .await?;
                ids.retain(|id| !left.contains(id));
            }
            self.c
                .used_refresh
                .delete_many(tokens(&ids))
                .await
                .map_err(error::map)?;
            ids.sort_unstable();
            Ok(SweptSessions {
                gone: ids.into_iter().map(u).collect(),
                deleted: deleted.deleted_count,
            })
        })
        .await
    }
}
