//! Cleaning up after committed appends: a committed claim's copy of its op, and the op's
//! commit decision, are only needed while the op is in flight (a claim at or below the chat's
//! head is committed whatever it holds; a helper that finds no decision reads "commit").
//!
//! Both are cleared for many ops at once, on a task of its own: a cleaning is a few commands,
//! which the next round must not wait behind (it did, and every sender saw a pause of up to a
//! second every few seconds). Claims are cleared by seq range, one statement per chat, and
//! decisions deleted by one `$in` statement: FerretDB's PostgreSQL handler reads the whole
//! collection for every statement of an `update` or `delete`, whatever the filter (its `_id`
//! index serves inserts only), and `events` and `send_keys` grow with every message, so a
//! statement per op made each message cost a read of both collections. Within that read
//! PostgreSQL keeps only the claims still holding ops (`holds_op: true`, an equality FerretDB
//! hands down); FerretDB decodes whatever PostgreSQL returns, and with the filter on `op` (not
//! handed down) that was the chat's whole log for every statement. On MongoDB the
//! `(chat_id, seq)` and `_id` indexes serve these filters; the range covers only the seqs the
//! store's own claims span.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Document, doc};

use super::lock;
use crate::store::StoreResult;
use crate::store::mongo::decision::decision_id;
use crate::store::mongo::pending::release_op;
use crate::store::mongo::{MongoStore, error, indexes};

/// Committed claims (and decisions) cleaned up at once at most; cleaning also happens whenever
/// no send waits.
pub(super) const CLEANUP_BATCH: usize = 256;

/// What committed appends left to clean.
#[derive(Default)]
pub(super) struct Cleanup {
    /// Committed claims still holding their op, by chat: the lowest and highest of their seqs.
    claims: HashMap<i64, (i64, i64)>,
    /// How many claims `claims` spans.
    held: usize,
    /// Ops whose claims were cleared and whose commit decisions are still stored.
    decided: Vec<ObjectId>,
}

impl Cleanup {
    /// Adds the claim of committed op `op_id`, at `seq` of `chat_id`.
    pub(super) fn claim(&mut self, chat_id: i64, seq: i64, op_id: ObjectId) {
        let range = self.claims.entry(chat_id).or_insert((seq, seq));
        *range = (range.0.min(seq), range.1.max(seq));
        self.held += 1;
        self.decided.push(op_id);
    }
}

impl MongoStore {
    /// True when enough claims are held, or some are and no send waits.
    pub(super) fn cleanup_due(&self) -> bool {
        let held = lock(&self.appends.cleanup).held;
        held >= CLEANUP_BATCH || (held > 0 && self.idle())
    }

    /// Cleans up on a task of its own, unless one runs already (that one goes round again
    /// while cleaning is due).
    pub(super) fn clean_up_soon(&self) {
        if self.appends.cleaning.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                let cleaned = store.clean_up().await;
                store.appends.cleaning.store(false, Ordering::Release);
                if let Err(e) = cleaned {
                    tracing::debug!(error = %e, "cleaning committed claims failed: left for later");
                    return;
                }
                // What was committed meanwhile, unless another caller started a cleaning.
                if !store.cleanup_due() || store.appends.cleaning.swap(true, Ordering::AcqRel) {
                    return;
                }
            }
        });
    }

    /// Clears the held claims' copies of their ops, and deletes the commit decisions of
    /// cleared ops once enough have accumulated.
    async fn clean_up(&self) -> StoreResult<()> {
        let (claims, held, cleared) = {
            let mut cleanup = lock(&self.appends.cleanup);
            let held = std::mem::take(&mut cleanup.held);
            let claims = std::mem::take(&mut cleanup.claims);
            // Decisions are deleted only for ops whose claims are cleared: the ones added so far.
            (claims, held, cleanup.decided.len())
        };
        if !claims.is_empty() {
            let clear = claims
                .iter()
                .map(|(&chat_id, &(first, last))| {
                    doc! {
                        "q": {
                            "chat_id": chat_id,
                            "seq": { "$gte": first, "$lte": last },
                            "holds_op": true,
                        },
                        "u": release_op(Document::new()),
                        "multi": true,
                    }
                })
                .collect();
            if let Err(e) = self.update_statements(indexes::EVENTS, clear).await {
                let mut cleanup = lock(&self.appends.cleanup);
                for (chat_id, (first, last)) in claims {
                    let range = cleanup.claims.entry(chat_id).or_insert((first, last));
                    *range = (range.0.min(first), range.1.max(last));
                }
                cleanup.held += held;
                return Err(e);
            }
        }
        let decided: Vec<String> = {
            let mut cleanup = lock(&self.appends.cleanup);
            if cleared < CLEANUP_BATCH {
                return Ok(());
            }
            cleanup
                .decided
                .drain(..cleared)
                .map(|op| decision_id(&op))
                .collect()
        };
        self.c
            .send_keys
            .delete_many(doc! { "_id": { "$in": decided } })
            .await
            .map(drop)
            .map_err(error::map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_of_a_chat_are_held_as_the_range_of_their_seqs() {
        let mut cleanup = Cleanup::default();
        for (chat, seq) in [(1, 7), (2, 3), (1, 4), (1, 9), (2, 3)] {
            cleanup.claim(chat, seq, ObjectId::new());
        }
        assert_eq!(cleanup.claims.get(&1), Some(&(4, 9)));
        assert_eq!(cleanup.claims.get(&2), Some(&(3, 3)));
        assert_eq!(cleanup.held, 5);
        assert_eq!(cleanup.decided.len(), 5);
    }
}
