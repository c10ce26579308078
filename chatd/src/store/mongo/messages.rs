//! Messages, the chat log, reactions, receipts and search: [`MessageStore`].
//!
//! A message is one `messages` document keyed by `(chat_id, seq)`, where `seq` is the seq of its
//! `message_created` event. Appends, edits, deletes and reactions are chat ops that claim the chat's
//! next seq (module docs of [`super`]); hiding and receipts touch one document and append nothing.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chatproto::pb;
use chatproto::pb::chat_event::Body;
use futures_util::TryStreamExt;
use mongodb::bson::doc;
use mongodb::options::ReturnDocument;

use super::appends::key_of;
use super::decision::KeyOwner;
use super::docs::{ChatDoc, EditDoc, EventDoc, MessageDoc, ReactionDoc, decode_event, i, u};
use super::pending::{ChatChanges, Effect, PendingOp, number_events};
use super::sealing::Purpose;
use super::tokens::index_tokens;
use super::{MongoStore, error, find_all};
use crate::store::{
    Actor, HistoryQuery, MessageStore, NewMessage, ReactionChange, SearchQuery, SendOutcome,
    StoreError, StoreResult, ensure_members_unchanged,
};
use crate::store::{ConflictKind, MAX_KEPT_EDITS};

impl MongoStore {
    async fn message_doc(&self, chat_id: i64, seq: i64) -> StoreResult<Option<MessageDoc>> {
        self.c
            .messages
            .find_one(doc! { "chat_id": chat_id, "seq": seq })
            .await
            .map_err(error::map)
    }

    /// The message, or `NotFound("message")`.
    async fn existing(&self, chat_id: u64, seq: u64) -> StoreResult<MessageDoc> {
        self.message_doc(i(chat_id), i(seq))
            .await?
            .ok_or(StoreError::NotFound("message"))
    }

    /// The message, or `NotFound("message")`, or `Conflict` when it was deleted for everyone.
    async fn existing_live(&self, chat_id: u64, seq: u64) -> StoreResult<MessageDoc> {
        let message = self.existing(chat_id, seq).await?;
        if message.deleted {
            return Err(StoreError::Conflict(ConflictKind::MessageDeleted));
        }
        Ok(message)
    }

    /// The message a send key was claimed for, once its op has finished.
    async fn claimed_message(&self, chat_id: i64, seq: i64) -> StoreResult<pb::Message> {
        if let Some(m) = self.message_doc(chat_id, seq).await? {
            return m.wire(&self.fields);
        }
        // Claimed by an op still in flight: let it finish (or finish it) first.
        self.settled_chat(chat_id).await?;
        self.message_doc(chat_id, seq)
            .await?
            .ok_or_else(|| {
                StoreError::Internal(format!(
                    "message {chat_id}/{seq} of a claimed send key is missing"
                ))
            })?
            .wire(&self.fields)
    }

    /// The original message of a send key, if the key was used. A key held by an op still in
    /// flight is waited for (or its op finished); one left behind by a cancelled op is removed.
    pub(super) async fn original(&self, key: &str) -> StoreResult<Option<pb::Message>> {
        for _ in 0..4 {
            let Some(claim) = self
                .c
                .send_keys
                .find_one(doc! { "_id": key })
                .await
                .map_err(error::map)?
            else {
                return Ok(None);
            };
            let owner = KeyOwner::of(&claim)?;
            let Some(op) = owner.op else {
                // Claimed before ops recorded themselves: the key's op committed.
                return self
                    .claimed_message(owner.chat_id, owner.seq)
                    .await
                    .map(Some);
            };
            if let Some(m) = self.message_doc(owner.chat_id, owner.seq).await?
                && key_of(u(m.sender_id), &m.client_msg_id) == key
            {
                return m.wire(&self.fields).map(Some);
            }
            match self.recorded_decision(&op).await? {
                // Cancelled: the key is a leftover of a caller that finished the op late.
                Some(_) => {
                    self.c
                        .send_keys
                        .delete_one(doc! { "_id": key, "op": op })
                        .await
                        .map_err(error::map)?;
                    return Ok(None);
                }
                // Undecided, or committed and not in place yet: let the op finish (or finish it).
                None => self.await_op(owner.chat_id, &op).await?,
            }
        }
        Err(StoreError::Unavailable(format!(
            "send key {key} is held by an op that does not finish"
        )))
    }

    /// Runs a message op planned against `chat` and returns the updated message with the event.
    async fn run_message_op(
        &self,
        chat: &ChatDoc,
        seq: u64,
        body: Body,
        actor: u64,
        now_ms: i64,
        effect: Effect,
    ) -> StoreResult<Option<(pb::Message, pb::ChatEvent)>> {
        let mut events = vec![pb::ChatEvent {
            chat_id: u(chat.id),
            seq: 0,
            at_ms: now_ms,
            actor_id: actor,
            body: Some(body),
        }];
        // Stored with the text of an edit sealed; answered with it as written.
        let stored = events.iter().map(|e| self.fields.event(e)).collect();
        let mut op = PendingOp::new(now_ms, stored, vec![effect], ChatChanges::default());
        let Some(first) = self.run_planned(chat, &mut op).await? else {
            return Ok(None);
        };
        number_events(&mut events, first);
        let message = self.existing(u(chat.id), seq).await?;
        Ok(Some((message.wire(&self.fields)?, events.remove(0))))
    }

    /// Fills in the current message of each `message_created` event.
    async fn with_messages(
        &self,
        chat_id: i64,
        stored: Vec<EventDoc>,
    ) -> StoreResult<Vec<pb::ChatEvent>> {
        let mut events = stored
            .iter()
            .map(|d| {
                let mut event = decode_event(&d.body)?;
                self.fields.open_event(&mut event)?;
                Ok(event)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let wanted: Vec<i64> = events
            .iter()
            .filter(|e| matches!(e.body, Some(Body::MessageCreated(_))))
            .map(|e| i(e.seq))
            .collect();
        if wanted.is_empty() {
            return Ok(events);
        }
        let docs: Vec<MessageDoc> = find_all(
            &self.c.messages,
            doc! { "chat_id": chat_id, "seq": { "$in": wanted } },
            None,
        )
        .await?;
        let mut messages: HashMap<i64, MessageDoc> = docs.into_iter().map(|m| (m.seq, m)).collect();
        for event in &mut events {
            if let Some(Body::MessageCreated(m)) = event.body.as_mut() {
                let current = messages.remove(&i(event.seq)).ok_or_else(|| {
                    StoreError::Internal(format!(
                        "message of event {chat_id}/{} is missing",
                        event.seq
                    ))
                })?;
                *m = current.wire(&self.fields)?;
            }
        }
        Ok(events)
    }
}

/// The op that appends `new` alone, with the message and the event as they will be (seq 0).
#[cfg(test)]
pub(super) fn message_op(new: &NewMessage) -> (PendingOp, pb::Message, pb::ChatEvent) {
    let op = super::appends::messages_op(&[new], &Default::default());
    let message = super::appends::message_doc(new, &Default::default())
        .wire(&Default::default())
        .expect("a plain message");
    let event = pb::ChatEvent {
        chat_id: new.chat_id,
        seq: 0,
        at_ms: new.now_ms,
        actor_id: new.sender_id,
        body: Some(Body::MessageCreated(message.clone())),
    };
    (op, message, event)
}

#[async_trait]
impl MessageStore for MongoStore {
    async fn append_message(&self, new: NewMessage) -> StoreResult<SendOutcome> {
        self.deadline(self.append_grouped(new)).await
    }

    async fn message(&self, chat_id: u64, seq: u64) -> StoreResult<Option<pb::Message>> {
        self.deadline(async {
            self.message_doc(i(chat_id), i(seq))
                .await?
                .map(|m| m.wire(&self.fields))
                .transpose()
        })
        .await
    }

    async fn sent_message(
        &self,
        sender_id: u64,
        client_msg_id: &str,
    ) -> StoreResult<Option<pb::Message>> {
        self.deadline(self.original(&key_of(sender_id, client_msg_id)))
            .await
    }

    async fn edit_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: Actor,
        text: &str,
        now_ms: i64,
    ) -> StoreResult<(pb::Message, pb::ChatEvent)> {
        self.deadline(async {
            let _turn = self.locks.turn(i(chat_id)).await;
            loop {
                let chat = self.live_chat(chat_id).await?;
                // The op claims the seq after this head, so it commits under this membership.
                ensure_members_unchanged(u(chat.members_seq), actor.members_seq)?;
                let before = self.existing_live(chat_id, seq).await?;
                // The history keeps each replaced text with the time it was written.
                let written_at = if before.edited {
                    before.edited_at_ms
                } else {
                    before.sent_at_ms
                };
                let mut history = before.edits.clone();
                history.push(EditDoc {
                    text: before.text.clone(),
                    at_ms: written_at,
                });
                let forgotten = history.len().saturating_sub(MAX_KEPT_EDITS);
                history.drain(..forgotten);
                // The earlier text moves to the history as stored (sealed or not).
                let effect = Effect::EditMessage {
                    seq: i(seq),
                    text: self.fields.text(Purpose::Text, i(chat_id), text),
                    tokens: if self.fields.sealed() {
                        Vec::new()
                    } else {
                        index_tokens(text)
                    },
                    history,
                };
                let body = Body::MessageEdited(pb::MessageEdited {
                    message_seq: seq,
                    text: text.to_string(),
                    edited_at_ms: now_ms,
                });
                if let Some(done) = self
                    .run_message_op(&chat, seq, body, actor.user_id, now_ms, effect)
                    .await?
                {
                    return Ok(done);
                }
            }
        })
        .await
    }

    async fn delete_message(
        &self,
        chat_id: u64,
        seq: u64,
        actor: Actor,
        now_ms: i64,
    ) -> StoreResult<pb::ChatEvent> {
        self.deadline(async {
            let _turn = self.locks.turn(i(chat_id)).await;
            loop {
                let chat = self.live_chat(chat_id).await?;
                ensure_members_unchanged(u(chat.members_seq), actor.members_seq)?;
                self.existing_live(chat_id, seq).await?;
                let body = Body::MessageDeleted(pb::MessageDeleted { message_seq: seq });
                let effect = Effect::DeleteMessage { seq: i(seq) };
                if let Some((_, event)) = self
                    .run_message_op(&chat, seq, body, actor.user_id, now_ms, effect)
                    .await?
                {
                    return Ok(event);
                }
            }
        })
        .await
    }

    async fn hide_message(&self, chat_id: u64, seq: u64, user_id: u64) -> StoreResult<()> {
        self.deadline(async {
            let result = self
                .c
                .messages
                .update_one(
                    doc! { "chat_id": i(chat_id), "seq": i(seq) },
                    doc! { "$addToSet": { "hidden_for": i(user_id) } },
                )
                .await
                .map_err(error::map)?;
            if result.matched_count == 0 {
                return Err(StoreError::NotFound("message"));
            }
            Ok(())
        })
        .await
    }

    async fn set_reaction(
        &self,
        chat_id: u64,
        seq: u64,
        actor: Actor,
        emoji: &str,
        change: ReactionChange,
        now_ms: i64,
    ) -> StoreResult<(pb::Message, Option<pb::ChatEvent>)> {
        let user_id = actor.user_id;
        self.deadline(async {
            let _turn = self.locks.turn(i(chat_id)).await;
            loop {
                let chat = self.live_chat(chat_id).await?;
                ensure_members_unchanged(u(chat.members_seq), actor.members_seq)?;
                let before = self.existing_live(chat_id, seq).await?;
                let mine = ReactionDoc {
                    emoji: emoji.to_string(),
                    user_id: i(user_id),
                };
                let present = before.reactions.contains(&mine);
                let add = matches!(change, ReactionChange::Add { .. });
                if let ReactionChange::Add { max_emoji } = change {
                    self.ensure_user(user_id).await?;
                    let shown: HashSet<&str> =
                        before.reactions.iter().map(|r| r.emoji.as_str()).collect();
                    if !shown.contains(emoji) && shown.len() >= max_emoji {
                        return Err(StoreError::Conflict(ConflictKind::TooManyEmoji {
                            max_emoji,
                        }));
                    }
                }
                if present == add {
                    return Ok((before.wire(&self.fields)?, None));
                }
                let mut reactions = before.reactions.clone();
                if add {
                    reactions.push(mine);
                } else {
                    reactions.retain(|r| *r != mine);
                }
                let body = Body::ReactionChanged(pb::ReactionChanged {
                    message_seq: seq,
                    emoji: emoji.to_string(),
                    user_id,
                    added: add,
                });
                let effect = Effect::SetReactions {
                    seq: i(seq),
                    reactions,
                };
                if let Some(done) = self
                    .run_message_op(&chat, seq, body, user_id, now_ms, effect)
                    .await?
                {
                    let (message, event) = done;
                    return Ok((message, Some(event)));
                }
            }
        })
        .await
    }

    async fn history(&self, q: HistoryQuery) -> StoreResult<Vec<pb::Message>> {
        self.deadline(async {
            if q.limit == 0 {
                return Ok(Vec::new());
            }
            // Inclusive upper bound: below before_seq and at most up_to_seq.
            let upper = match q.before_seq {
                0 => q.up_to_seq,
                before => q.up_to_seq.min(before - 1),
            };
            let newest_first = q.after_seq == 0;
            let filter = doc! {
                "chat_id": i(q.chat_id),
                "seq": { "$gt": i(q.after_seq), "$lte": i(upper) },
                "hidden_for": { "$ne": i(q.viewer) },
            };
            let docs: Vec<MessageDoc> = self
                .c
                .messages
                .find(filter)
                .sort(doc! { "seq": if newest_first { -1 } else { 1 } })
                .limit(i64::from(q.limit))
                .await
                .map_err(error::map)?
                .try_collect()
                .await
                .map_err(error::map)?;
            let mut messages: Vec<pb::Message> = docs
                .iter()
                .map(|m| m.wire(&self.fields))
                .collect::<StoreResult<_>>()?;
            if newest_first {
                messages.reverse();
            }
            Ok(messages)
        })
        .await
    }

    async fn events(
        &self,
        chat_id: u64,
        after_seq: u64,
        up_to_seq: u64,
        limit: u32,
    ) -> StoreResult<Vec<pb::ChatEvent>> {
        self.deadline(async {
            if limit == 0 {
                return Ok(Vec::new());
            }
            // Finish an abandoned op first, then read only what is committed.
            let Some(chat) = self.repaired_chat(i(chat_id)).await? else {
                return Ok(Vec::new());
            };
            let upper = i(up_to_seq).min(chat.last_seq);
            let stored: Vec<EventDoc> = self
                .c
                .events
                .find(doc! { "chat_id": chat.id, "seq": { "$gt": i(after_seq), "$lte": upper } })
                .sort(doc! { "seq": 1 })
                .limit(i64::from(limit))
                .await
                .map_err(error::map)?
                .try_collect()
                .await
                .map_err(error::map)?;
            self.with_messages(chat.id, stored).await
        })
        .await
    }

    async fn edits(&self, chat_id: u64, seq: u64) -> StoreResult<Vec<pb::MessageEdit>> {
        self.deadline(async {
            let message = self.existing(chat_id, seq).await?;
            message
                .edits
                .into_iter()
                .map(|e| {
                    Ok(pb::MessageEdit {
                        text: self.fields.open_text(Purpose::Text, i(chat_id), &e.text)?,
                        at_ms: e.at_ms,
                    })
                })
                .collect()
        })
        .await
    }

    async fn mark_receipt(
        &self,
        chat_id: u64,
        user_id: u64,
        kind: pb::ReceiptKind,
        up_to_seq: u64,
    ) -> StoreResult<Option<(u64, u64)>> {
        self.deadline(async {
            let member = self
                .c
                .members
                .find_one(
                    doc! { "chat_id": i(chat_id), "user_id": i(user_id), "left_at_seq": null },
                )
                .await
                .map_err(error::map)?
                .ok_or(StoreError::NotFound("member"))?;
            let chat = self
                .c
                .chats
                .find_one(doc! { "_id": i(chat_id) })
                .await
                .map_err(error::map)?
                .ok_or(StoreError::NotFound("member"))?;
            // A cursor never points past the log.
            let up_to = i(up_to_seq).min(chat.last_seq);
            let (delivered, read) = (member.delivered_seq, member.read_seq);
            let (new_delivered, new_read) = match kind {
                pb::ReceiptKind::Delivered => (delivered.max(up_to), read),
                pb::ReceiptKind::Read => (delivered.max(up_to), read.max(up_to)),
                pb::ReceiptKind::Unspecified => {
                    return Err(StoreError::Conflict(ConflictKind::ReceiptKindUnspecified));
                }
            };
            if (new_delivered, new_read) == (delivered, read) {
                return Ok(None);
            }
            // $max: a concurrent receipt that moved further is never moved back.
            let updated = self
                .c
                .members
                .find_one_and_update(
                    doc! { "chat_id": i(chat_id), "user_id": i(user_id) },
                    doc! { "$max": { "delivered_seq": new_delivered, "read_seq": new_read } },
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(error::map)?
                .ok_or(StoreError::NotFound("member"))?;
            Ok(Some((u(updated.delivered_seq), u(updated.read_seq))))
        })
        .await
    }

    async fn receipts(&self, chat_id: u64) -> StoreResult<Vec<pb::MemberReceipt>> {
        self.deadline(async {
            let members = self
                .member_docs(doc! { "chat_id": i(chat_id), "left_at_seq": null })
                .await?;
            Ok(members
                .iter()
                .map(|m| pb::MemberReceipt {
                    user_id: u(m.user_id),
                    delivered_seq: u(m.delivered_seq),
                    read_seq: u(m.read_seq),
                })
                .collect())
        })
        .await
    }

    async fn search(&self, query: SearchQuery) -> StoreResult<Vec<pb::Message>> {
        self.deadline(self.search_messages(&query)).await
    }
}
