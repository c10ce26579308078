//! The outbox: [`OutboxStore`]. Entries take ids from the `outbox` counter; `key` has a unique
//! index, so two nodes queueing one key queue one entry.
//!
//! Who attempts an entry is decided by a unique insert, the one write both MongoDB and FerretDB
//! make atomic (FerretDB's conditional updates are a read followed by a write, see the module
//! docs of [`super`]): a claim is the document `{_id: entry id, holder, expires_at_ms}` in
//! `outbox_claims`. The entry's own `lease_until_ms` only keeps claimed entries out of the next
//! claimers' candidates; the claim document decides. A claim whose expiry passed (its holder
//! died) is deleted by the next claimer, naming the old holder, and taken with a new insert:
//! of several claimers taking over at once, one insert wins. Every change a holder makes checks
//! its claim first and deletes it last.

use async_trait::async_trait;
use chatproto::pb;
use futures_util::TryStreamExt;
use mongodb::bson::{Binary, Document, doc};
use serde::{Deserialize, Serialize};

use super::counters::Sequence;
use super::docs::{binary, i, u};
use super::error::corrupt;
use super::{MongoStore, error, find_all};
use crate::store::{
    DeliveryOutcome, DeliveryRecord, DeliverySet, NewDelivery, OutboxStore, StoreError, StoreResult,
};

/// `outbox`: one entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OutboxDoc {
    #[serde(rename = "_id")]
    id: i64,
    kind: i32,
    key: String,
    user_id: i64,
    payload: Binary,
    attempts: i64,
    due_ms: i64,
    created_at_ms: i64,
    last_error: String,
    dead: bool,
    dead_at_ms: i64,
    lease_until_ms: i64,
}

impl OutboxDoc {
    fn record(self) -> StoreResult<DeliveryRecord> {
        let kind = pb::DeliveryKind::try_from(self.kind)
            .map_err(|_| corrupt("outbox", format!("unknown kind {}", self.kind)))?;
        Ok(DeliveryRecord {
            id: u(self.id),
            kind,
            key: self.key,
            user_id: u(self.user_id),
            payload: self.payload.bytes,
            attempts: u32::try_from(self.attempts.max(0)).unwrap_or(u32::MAX),
            due_ms: self.due_ms,
            created_at_ms: self.created_at_ms,
            last_error: self.last_error,
            dead: self.dead,
            dead_at_ms: self.dead_at_ms,
        })
    }
}

fn set_filter(which: &DeliverySet) -> Document {
    match which {
        DeliverySet::Ids(ids) => {
            let ids: Vec<i64> = ids.iter().copied().map(i).collect();
            doc! { "dead": true, "_id": { "$in": ids } }
        }
        DeliverySet::All => doc! { "dead": true },
    }
}

impl MongoStore {
    async fn outbox_by_key(&self, key: &str) -> StoreResult<Option<OutboxDoc>> {
        self.c
            .outbox
            .find_one(doc! { "key": key })
            .await
            .map_err(error::map)
    }

    async fn outbox_doc(&self, id: i64) -> StoreResult<Option<OutboxDoc>> {
        self.c
            .outbox
            .find_one(doc! { "_id": id })
            .await
            .map_err(error::map)
    }

    /// Takes the claim of entry `id` for `holder` until `expires_at_ms`; false when someone else
    /// holds an unexpired one (or won the takeover of an expired one).
    async fn take_claim(
        &self,
        id: i64,
        holder: i64,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> StoreResult<bool> {
        let claim = doc! { "_id": id, "holder": holder, "expires_at_ms": expires_at_ms };
        match self.c.outbox_claims.insert_one(claim.clone()).await {
            Ok(_) => return Ok(true),
            Err(e) if error::is_duplicate(&e) => {}
            Err(e) => return Err(error::map(e)),
        }
        let stale = self
            .c
            .outbox_claims
            .find_one(doc! { "_id": id, "expires_at_ms": { "$lte": now_ms } })
            .await
            .map_err(error::map)?;
        let Some(stale) = stale else {
            return Ok(false);
        };
        let old = stale.get_i64("holder").unwrap_or_default();
        self.c
            .outbox_claims
            .delete_one(doc! { "_id": id, "holder": old })
            .await
            .map_err(error::map)?;
        match self.c.outbox_claims.insert_one(claim).await {
            Ok(_) => {
                tracing::info!(
                    delivery = id,
                    "mongodb: took over an expired delivery claim"
                );
                Ok(true)
            }
            Err(e) if error::is_duplicate(&e) => Ok(false),
            Err(e) => Err(error::map(e)),
        }
    }

    /// `NotFound("delivery")` unless `holder` holds the claim of `id`.
    async fn check_claim(&self, id: i64, holder: i64) -> StoreResult<()> {
        let held = self
            .c
            .outbox_claims
            .find_one(doc! { "_id": id, "holder": holder })
            .await
            .map_err(error::map)?;
        held.map(|_| ()).ok_or(StoreError::NotFound("delivery"))
    }

    async fn drop_claim(&self, id: i64, holder: i64) -> StoreResult<()> {
        self.c
            .outbox_claims
            .delete_one(doc! { "_id": id, "holder": holder })
            .await
            .map_err(error::map)?;
        Ok(())
    }
}

#[async_trait]
impl OutboxStore for MongoStore {
    async fn enqueue_delivery(&self, new: NewDelivery) -> StoreResult<(DeliveryRecord, bool)> {
        self.deadline(async {
            if let Some(found) = self.outbox_by_key(&new.key).await? {
                return Ok((found.record()?, false));
            }
            let mut stored = OutboxDoc {
                id: 0,
                kind: new.kind as i32,
                key: new.key.clone(),
                user_id: i(new.user_id),
                payload: binary(new.payload),
                attempts: 0,
                due_ms: new.due_ms,
                created_at_ms: new.now_ms,
                last_error: String::new(),
                dead: false,
                dead_at_ms: 0,
                lease_until_ms: 0,
            };
            loop {
                stored.id = self.next_id(Sequence::Outbox).await?;
                match self.c.outbox.insert_one(&stored).await {
                    Ok(_) => return Ok((stored.record()?, true)),
                    Err(e) if error::is_duplicate(&e) => {
                        // The key is taken (someone queued it meanwhile), or the id was handed
                        // out twice (see `counters`): then take another.
                        if let Some(found) = self.outbox_by_key(&new.key).await? {
                            return Ok((found.record()?, false));
                        }
                    }
                    Err(e) => return Err(error::map(e)),
                }
            }
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        holder: u64,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.deadline(async {
            let holder = i(holder);
            let until = now_ms.saturating_add(lease_ms);
            // More candidates than wanted: claimers racing for the first ones each still find
            // some nobody took.
            let window = i64::from(limit).saturating_mul(4);
            let candidates: Vec<OutboxDoc> = self
                .c
                .outbox
                .find(doc! {
                    "dead": false,
                    "due_ms": { "$lte": now_ms },
                    "lease_until_ms": { "$lte": now_ms },
                })
                .sort(doc! { "due_ms": 1, "_id": 1 })
                .limit(window)
                .await
                .map_err(error::map)?
                .try_collect()
                .await
                .map_err(error::map)?;
            let mut claimed = Vec::new();
            for candidate in candidates {
                if claimed.len() >= limit as usize {
                    break;
                }
                if !self.take_claim(candidate.id, holder, now_ms, until).await? {
                    continue;
                }
                // Read again under the claim: between the candidates' read and the claim, the
                // entry may have been attempted by another holder (and be due later now),
                // finished or purged. Only a live, due entry gets the lease mark; another is let
                // go untouched.
                match self.outbox_doc(candidate.id).await? {
                    Some(current) if !current.dead && current.due_ms <= now_ms => {
                        self.c
                            .outbox
                            .update_one(
                                doc! { "_id": candidate.id },
                                doc! { "$set": { "lease_until_ms": until } },
                            )
                            .await
                            .map_err(error::map)?;
                        claimed.push(current.record()?);
                    }
                    _ => self.drop_claim(candidate.id, holder).await?,
                }
            }
            Ok(claimed)
        })
        .await
    }

    async fn finish_delivery(&self, id: u64, holder: u64) -> StoreResult<()> {
        self.deadline(async {
            let (id, holder) = (i(id), i(holder));
            self.check_claim(id, holder).await?;
            self.c
                .outbox
                .delete_one(doc! { "_id": id, "dead": false })
                .await
                .map_err(error::map)?;
            self.drop_claim(id, holder).await
        })
        .await
    }

    async fn release_delivery(
        &self,
        id: u64,
        holder: u64,
        outcome: DeliveryOutcome,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.deadline(async {
            let (id, holder) = (i(id), i(holder));
            self.check_claim(id, holder).await?;
            let update = match outcome {
                DeliveryOutcome::Retry { at_ms, error } => doc! {
                    "$inc": { "attempts": 1_i64 },
                    "$set": { "due_ms": at_ms, "last_error": error, "lease_until_ms": 0_i64 },
                },
                DeliveryOutcome::Postpone { at_ms } => doc! {
                    "$set": { "due_ms": at_ms, "lease_until_ms": 0_i64 },
                },
                DeliveryOutcome::Dead { error } => doc! {
                    "$inc": { "attempts": 1_i64 },
                    "$set": {
                        "dead": true, "dead_at_ms": now_ms, "last_error": error,
                        "key": format!("dead:{id}"), "lease_until_ms": 0_i64,
                    },
                },
            };
            let result = self
                .c
                .outbox
                .update_one(doc! { "_id": id, "dead": false }, update)
                .await
                .map_err(error::map)?;
            self.drop_claim(id, holder).await?;
            if result.matched_count == 0 {
                return Err(StoreError::NotFound("delivery"));
            }
            Ok(())
        })
        .await
    }

    async fn dead_letters(
        &self,
        after_id: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.deadline(async {
            let docs: Vec<OutboxDoc> = self
                .c
                .outbox
                .find(doc! { "dead": true, "_id": { "$gt": i(after_id.unwrap_or(0)) } })
                .sort(doc! { "_id": 1 })
                .limit(i64::from(limit))
                .await
                .map_err(error::map)?
                .try_collect()
                .await
                .map_err(error::map)?;
            docs.into_iter().map(OutboxDoc::record).collect()
        })
        .await
    }

    async fn retry_dead_letters(&self, which: DeliverySet, now_ms: i64) -> StoreResult<u64> {
        self.deadline(async {
            // Each entry gets a key naming its own id, which one update of many cannot write.
            let dead: Vec<OutboxDoc> = find_all(&self.c.outbox, set_filter(&which), None).await?;
            let mut count = 0;
            for entry in dead {
                let result = self
                    .c
                    .outbox
                    .update_one(
                        doc! { "_id": entry.id, "dead": true },
                        doc! { "$set": {
                            "dead": false, "dead_at_ms": 0_i64, "attempts": 0_i64,
                            "due_ms": now_ms, "key": format!("retry:{}", entry.id),
                            "lease_until_ms": 0_i64,
                        } },
                    )
                    .await
                    .map_err(error::map)?;
                count += result.modified_count;
            }
            Ok(count)
        })
        .await
    }

    async fn purge_dead_letters(&self, which: DeliverySet) -> StoreResult<u64> {
        self.deadline(async {
            let result = self
                .c
                .outbox
                .delete_many(set_filter(&which))
                .await
                .map_err(error::map)?;
            Ok(result.deleted_count)
        })
        .await
    }

    async fn digest_mark(&self, user_id: u64) -> StoreResult<u64> {
        self.deadline(async {
            let found = self
                .c
                .digest_marks
                .find_one(doc! { "_id": i(user_id) })
                .await
                .map_err(error::map)?;
            Ok(found.map_or(0, |d| u(d.get_i64("up_to").unwrap_or(0))))
        })
        .await
    }

    async fn set_digest_mark(&self, user_id: u64, up_to: u64) -> StoreResult<()> {
        // Only the holder of the user's digest entry moves the mark, so the read and the write
        // do not race.
        if self.digest_mark(user_id).await? >= up_to {
            return Ok(());
        }
        self.deadline(async {
            self.c
                .digest_marks
                .update_one(
                    doc! { "_id": i(user_id) },
                    doc! { "$set": { "up_to": i(up_to) } },
                )
                .upsert(true)
                .await
                .map_err(error::map)?;
            Ok(())
        })
        .await
    }
}
