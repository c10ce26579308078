//! Send keys and the decision of an op that claims them: whether it commits (every key is its
//! own) or is cancelled (a key belongs to another message), recorded once so that everyone
//! finishing the op follows the same outcome. Part of the claim protocol of [`super::pending`].

use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Document, doc};

use super::pending::{Finished, PendingOp};
use super::{MongoStore, error};
use crate::store::StoreResult;

/// The `_id`, in `send_keys`, of the document that records how an op with send keys was
/// decided: `{commit: true}`, or `{commit: false, chat_id, seq}` naming the message that owns the
/// key the op could not have.
pub(super) fn decision_id(op_id: &ObjectId) -> String {
    format!("op:{}", op_id.to_hex())
}

/// A send key as stored: the message it is for, and the op that claimed it.
pub(super) fn key_doc(key: &str, chat_id: i64, seq: i64, op_id: &ObjectId) -> Document {
    doc! { "_id": key, "chat_id": chat_id, "seq": seq, "op": op_id }
}

/// Who holds a send key: the message's place and, for keys claimed by ops that record
/// themselves, the op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyOwner {
    pub chat_id: i64,
    pub seq: i64,
    pub op: Option<ObjectId>,
}

impl KeyOwner {
    /// Reads a stored key.
    pub fn of(doc: &Document) -> StoreResult<KeyOwner> {
        Ok(KeyOwner {
            chat_id: doc
                .get_i64("chat_id")
                .map_err(|e| error::corrupt("send key", e))?,
            seq: doc
                .get_i64("seq")
                .map_err(|e| error::corrupt("send key", e))?,
            op: doc.get_object_id("op").ok(),
        })
    }

    /// True when the key is the one `op` claims for (chat, seq).
    fn is(&self, chat_id: i64, seq: i64, op: &ObjectId) -> bool {
        (self.chat_id, self.seq) == (chat_id, seq) && self.op.is_none_or(|o| o == *op)
    }
}

/// The first index an `insert_many` could not insert because of a duplicate key, if that is why
/// it failed.
pub(super) fn first_duplicate(e: &mongodb::error::Error) -> Option<usize> {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()?
            .iter()
            .filter(|w| error::is_duplicate_code(w.code))
            .map(|w| w.index)
            .min(),
        _ => None,
    }
}

impl MongoStore {
    /// Decides an op that claims send keys: it commits when every key is its own, and is
    /// cancelled when one belongs to another message (a retry, or an identical send that got
    /// there first). `None`: commit (also for ops without keys).
    ///
    /// The decision is made once, by whoever records it first: the keys and then a "commit"
    /// record go in one ordered insert, so "commit" is only ever recorded once every key is the
    /// op's; a caller that finds a key taken records "cancel" instead. Both records have one
    /// `_id` per op, so exactly one of them exists, and every caller follows it: an owner and a
    /// helper finishing the same op at once can never reach different outcomes, even if a key
    /// they raced for was given back in between.
    pub(super) async fn decide(
        &self,
        chat_id: i64,
        op: &PendingOp,
        first_seq: i64,
    ) -> StoreResult<Option<Finished>> {
        let keys = op.send_keys(first_seq);
        if keys.is_empty() {
            return Ok(None);
        }
        let mut docs: Vec<Document> = keys
            .iter()
            .map(|(key, seq)| key_doc(key, chat_id, *seq, &op.op_id))
            .collect();
        docs.push(doc! { "_id": decision_id(&op.op_id), "commit": true });
        let mut start = 0;
        loop {
            let rest = docs.get(start..).unwrap_or_default();
            let at = match self.c.send_keys.insert_many(rest).ordered(true).await {
                Ok(_) => return Ok(None),
                Err(e) => match first_duplicate(&e) {
                    Some(j) => start + j,
                    None => return Err(error::map(e)),
                },
            };
            let Some((key, seq)) = keys.get(at) else {
                // The decision is recorded already.
                return self.recorded_decision(&op.op_id).await;
            };
            let owner = self
                .c
                .send_keys
                .find_one(doc! { "_id": key })
                .await
                .map_err(error::map)?;
            let Some(owner) = owner.as_ref().map(KeyOwner::of).transpose()? else {
                // Given back by a cancelled op meanwhile: try again.
                continue;
            };
            if owner.is(chat_id, *seq, &op.op_id) {
                start = at + 1;
                continue;
            }
            let cancel = doc! {
                "_id": decision_id(&op.op_id), "commit": false,
                "chat_id": owner.chat_id, "seq": owner.seq,
            };
            return match self.c.send_keys.insert_one(cancel).await {
                Ok(_) => Ok(Some(Finished::Cancelled {
                    chat_id: owner.chat_id,
                    seq: owner.seq,
                })),
                Err(e) if error::is_duplicate(&e) => self.recorded_decision(&op.op_id).await,
                Err(e) => Err(error::map(e)),
            };
        }
    }

    /// The recorded decision of an op (see [`decide`](Self::decide)); `None` to commit. A
    /// missing record is a commit: only commits are ever cleaned up.
    pub(super) async fn recorded_decision(
        &self,
        op_id: &ObjectId,
    ) -> StoreResult<Option<Finished>> {
        let Some(decision) = self
            .c
            .send_keys
            .find_one(doc! { "_id": decision_id(op_id) })
            .await
            .map_err(error::map)?
        else {
            return Ok(None);
        };
        if decision.get_bool("commit").unwrap_or(false) {
            return Ok(None);
        }
        let owner = KeyOwner::of(&decision)?;
        Ok(Some(Finished::Cancelled {
            chat_id: owner.chat_id,
            seq: owner.seq,
        }))
    }
}
