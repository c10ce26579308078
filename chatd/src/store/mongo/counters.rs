//! Id allocation: one `counters` document per sequence, advanced with `findAndModify` + `$inc`
//! (upserted on first use). Ids are never reused; one lost to a failed insert is simply skipped.
//!
//! The insert of the new document (unique `_id`) decides: on MongoDB the counter never hands out an
//! id twice, but FerretDB applies `$inc` as a read and a write, so two concurrent callers can get
//! the same value. Callers therefore take another id when their insert finds the `_id` taken.

use mongodb::bson::doc;
use mongodb::options::ReturnDocument;

use super::{MongoStore, error};
use crate::store::{StoreError, StoreResult};

/// The id sequences.
#[derive(Debug, Clone, Copy)]
pub(super) enum Sequence {
    Users,
    Sessions,
    Chats,
    Audit,
    Notifications,
    Outbox,
}

impl Sequence {
    fn name(self) -> &'static str {
        match self {
            Sequence::Users => "users",
            Sequence::Sessions => "sessions",
            Sequence::Chats => "chats",
            Sequence::Audit => "audit",
            Sequence::Notifications => "notifications",
            Sequence::Outbox => "outbox",
        }
    }
}

impl MongoStore {
    /// The next id of `seq`, starting at 1.
    pub(super) async fn next_id(&self, seq: Sequence) -> StoreResult<i64> {
        self.next_ids(seq, 1).await
    }

    /// The first of the next `count` ids of `seq` (at least 1), in one round trip.
    pub(super) async fn next_ids(&self, seq: Sequence, count: u32) -> StoreResult<i64> {
        let count = i64::from(count.max(1));
        // Two first-ever upserts can race; the loser gets a duplicate key and simply tries again.
        for _ in 0..3 {
            let result = self
                .c
                .counters
                .find_one_and_update(
                    doc! { "_id": seq.name() },
                    doc! { "$inc": { "value": count } },
                )
                .upsert(true)
                .return_document(ReturnDocument::After)
                .await;
            match result {
                Ok(Some(counter)) => return Ok(counter.value - count + 1),
                Ok(None) => break,
                Err(e) if error::is_duplicate(&e) => continue,
                Err(e) => return Err(error::map(e)),
            }
        }
        Err(StoreError::Internal(format!(
            "counter {} could not be advanced",
            seq.name()
        )))
    }
}
