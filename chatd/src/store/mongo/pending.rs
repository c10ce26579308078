//! The claim protocol that makes chat mutations atomic and gap-free without transactions
//! (described in the module docs of [`super`]): the [`PendingOp`] record, claiming a seq,
//! finishing an op (effects, events, commit) or cancelling it, and waiting for or repairing the
//! op another caller left in a chat. Deciding an op with send keys is in [`super::decision`].

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chatproto::pb;
use chatproto::pb::chat_event::Body;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Binary, Bson, Document, doc, to_bson};
use prost::Message as _;
use serde::{Deserialize, Serialize};

use super::docs::{
    ChatDoc, EditDoc, EventDoc, MessageDoc, ReactionDoc, decode_event, encode, i, u,
};
use super::{MongoStore, error, find_all};
use crate::store::{StoreError, StoreResult, changes_membership};

/// One chat mutation in flight, stored in the event document that claimed its first seq. It holds
/// everything needed to finish it, so whoever finds it can.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PendingOp {
    /// Identifies this op (a cancelled op's seqs may be claimed again by another).
    pub op_id: ObjectId,
    /// The owner's wall clock when it claimed; others finish the op once it is this old.
    pub started_at_ms: i64,
    /// The events' time, which becomes the chat's activity time.
    pub at_ms: i64,
    /// The events in order, encoded as stored (see [`super::docs::EventDoc`]) but with seq 0:
    /// their seqs run from the claimed one.
    pub events: Vec<Binary>,
    /// Document changes, applied in order before the commit.
    pub effects: Vec<Effect>,
    /// Chat fields set by the commit.
    pub commit: ChatChanges,
    /// The index among `events` of the last one that changes membership (see
    /// [`changes_membership`]): the commit moves the chat's `members_seq` to its seq.
    #[serde(default)]
    pub members_changed_at: Option<i64>,
}

/// Chat fields an op changes; `None` leaves a field alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ChatChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub avatar_file_id: Option<String>,
    pub owner_id: Option<i64>,
    pub member_count: Option<i64>,
    pub deleted: Option<bool>,
}

/// One idempotent document change. "first seq" is the seq of the op's first event; "rev" its last
/// seq, stored in changed documents so a late re-application cannot undo a later op.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Effect {
    /// Makes the user a current member (new, or returning with their old chat state), joined at
    /// the op's time and first seq.
    Join { user_id: i64, role: i32 },
    /// Changes a member's role.
    SetRole { user_id: i64, role: i32 },
    /// Ends a membership at the first seq.
    Leave { user_id: i64 },
    /// Ends every current membership at the first seq (the chat is deleted).
    EndMemberships,
    /// Frees a deleted private chat's pair, so the two users may open a new one.
    ReleasePair { key: String },
    /// Claims a send idempotency key for (chat, first seq + offset). The op's keys decide it:
    /// see [`MongoStore::decide`].
    ClaimSendKey {
        key: String,
        #[serde(default)]
        offset: i64,
    },
    /// Inserts the message created at the first seq + offset.
    InsertMessage {
        message: Box<MessageDoc>,
        #[serde(default)]
        offset: i64,
    },
    /// Replaces a message's text and edit history.
    EditMessage {
        seq: i64,
        text: String,
        tokens: Vec<String>,
        history: Vec<EditDoc>,
    },
    /// Purges a message for everyone, including the texts its events and their ops still hold.
    DeleteMessage { seq: i64 },
    /// Replaces a message's reactions.
    SetReactions {
        seq: i64,
        reactions: Vec<ReactionDoc>,
    },
}

/// How an op ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finished {
    /// Every effect and event is in place; the chat's head is the op's last seq.
    Committed { first_seq: i64 },
    /// The send key belongs to the message at (chat, seq): the op was undone, nothing was written.
    Cancelled { chat_id: i64, seq: i64 },
}

/// The wall clock in milliseconds.
pub(super) fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl PendingOp {
    /// An op with `events` (their seqs are given when claimed).
    pub fn new(
        at_ms: i64,
        events: Vec<pb::ChatEvent>,
        effects: Vec<Effect>,
        commit: ChatChanges,
    ) -> Self {
        let members_changed_at = (0_i64..)
            .zip(&events)
            .filter(|(_, e)| e.body.as_ref().is_some_and(changes_membership))
            .map(|(index, _)| index)
            .last();
        Self {
            op_id: ObjectId::new(),
            started_at_ms: wall_ms(),
            at_ms,
            events: events.iter().map(|e| encode(&stored_form(e))).collect(),
            effects,
            commit,
            members_changed_at,
        }
    }

    /// The chat's `members_seq` once the op, claimed at `first_seq`, is committed; `None` when
    /// it changes no membership.
    pub fn members_seq(&self, first_seq: i64) -> Option<i64> {
        self.members_changed_at.map(|index| first_seq + index)
    }

    /// How many events (and seqs) the op has.
    pub fn event_count(&self) -> i64 {
        i64::try_from(self.events.len()).unwrap_or(i64::MAX)
    }

    /// The op's event number `index` as stored at `seq`.
    fn stored_event(&self, chat_id: i64, index: usize, seq: i64) -> StoreResult<EventDoc> {
        let body = self
            .events
            .get(index)
            .ok_or_else(|| StoreError::Internal("an op without its event".into()))?;
        let mut event = decode_event(body)?;
        event.seq = u(seq);
        if let Some(Body::MessageCreated(m)) = event.body.as_mut() {
            m.seq = event.seq;
        }
        Ok(EventDoc {
            id: (index == 0).then_some(self.op_id),
            chat_id,
            seq,
            message_seq: message_seq_of(seq, event.body.as_ref()),
            body: encode(&event),
            op: None,
            holds_op: None,
            op_id: (index > 0).then_some(self.op_id),
        })
    }

    /// The event documents of the op claimed at `first_seq`: the first holds the op.
    pub fn stored_events(&self, chat_id: i64, first_seq: i64) -> StoreResult<Vec<EventDoc>> {
        let mut docs = Vec::with_capacity(self.events.len());
        for (index, seq) in (0..self.events.len()).zip(first_seq..) {
            docs.push(self.stored_event(chat_id, index, seq)?);
        }
        if let Some(claim) = docs.first_mut() {
            claim.hold(self.clone());
        }
        Ok(docs)
    }

    /// The send keys the op claims, each with the seq of its message.
    pub fn send_keys(&self, first_seq: i64) -> Vec<(String, i64)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::ClaimSendKey { key, offset } => Some((key.clone(), first_seq + offset)),
                _ => None,
            })
            .collect()
    }
}

impl EventDoc {
    /// Makes this claim hold `op` (see [`EventDoc::holds_op`]).
    fn hold(&mut self, op: PendingOp) {
        self.op = Some(op);
        self.holds_op = Some(true);
    }
}

/// The update that clears a claim's op, and sets `set` besides.
pub(super) fn release_op(mut set: Document) -> Document {
    set.insert("op", Bson::Null);
    doc! { "$set": set, "$unset": { "holds_op": "" } }
}

/// An event as stored: a `message_created` body keeps only the message's identity.
fn stored_form(event: &pb::ChatEvent) -> pb::ChatEvent {
    let mut stored = event.clone();
    if let Some(Body::MessageCreated(m)) = stored.body.as_mut() {
        *m = pb::Message {
            chat_id: m.chat_id,
            seq: m.seq,
            ..Default::default()
        };
    }
    stored
}

/// The message an event is about, if any.
fn message_seq_of(seq: i64, body: Option<&Body>) -> Option<i64> {
    match body {
        Some(Body::MessageCreated(_)) => Some(seq),
        Some(Body::MessageEdited(e)) => Some(i(e.message_seq)),
        Some(Body::MessageDeleted(d)) => Some(i(d.message_seq)),
        Some(Body::ReactionChanged(r)) => Some(i(r.message_seq)),
        _ => None,
    }
}

/// Gives `events` their seqs starting at `first_seq` (and their messages, for `message_created`).
pub(super) fn number_events(events: &mut [pb::ChatEvent], first_seq: i64) {
    for (offset, event) in (0_u64..).zip(events.iter_mut()) {
        event.seq = u(first_seq) + offset;
        if let Some(Body::MessageCreated(m)) = event.body.as_mut() {
            m.seq = event.seq;
        }
    }
}

/// An insert (or upsert) whose duplicate key means "already there".
fn insert_if_absent<T>(result: mongodb::error::Result<T>) -> StoreResult<()> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if error::is_duplicate(&e) => Ok(()),
        Err(e) => Err(error::map(e)),
    }
}

impl MongoStore {
    /// Runs `op`, planned against `chat` as read: claims the seq after its head and finishes the
    /// op. `None` when that seq was taken (by an op now finished, waited for or repaired): read
    /// the chat and plan again.
    pub(super) async fn run_op(
        &self,
        chat: &ChatDoc,
        op: &mut PendingOp,
    ) -> StoreResult<Option<Finished>> {
        match self.claim(chat, op).await? {
            Some(first_seq) => self.finish(chat.id, op, first_seq).await.map(Some),
            None => Ok(None),
        }
    }

    /// Claims the seq after `chat`'s head for `op` (step 2). `None` when it was taken; the op
    /// there is finished (waited for or repaired) when this returns.
    pub(super) async fn claim(
        &self,
        chat: &ChatDoc,
        op: &mut PendingOp,
    ) -> StoreResult<Option<i64>> {
        let first_seq = chat.last_seq + 1;
        op.started_at_ms = wall_ms();
        let mut claim = op.stored_event(chat.id, 0, first_seq)?;
        claim.hold(op.clone());
        match self.c.events.insert_one(&claim).await {
            Ok(_) => Ok(Some(first_seq)),
            Err(e) if error::is_duplicate(&e) => {
                self.wait_for(chat.id, first_seq).await?;
                Ok(None)
            }
            Err(e) => Err(error::map(e)),
        }
    }

    /// Finishes `op`, which claimed `first_seq`: decides it (see [`decide`](Self::decide)), then
    /// applies its effects, inserts its other events and commits it, or cancels it. Idempotent:
    /// any number of callers may run it, one after the other or at once, with the same outcome.
    pub(super) async fn finish(
        &self,
        chat_id: i64,
        op: &PendingOp,
        first_seq: i64,
    ) -> StoreResult<Finished> {
        let last_seq = first_seq + op.event_count() - 1;
        if let Some(cancelled) = self.decide(chat_id, op, first_seq).await? {
            self.cancel(chat_id, op, first_seq).await?;
            return Ok(cancelled);
        }
        self.apply_all(chat_id, op, first_seq, last_seq).await?;
        self.insert_events(chat_id, op, first_seq).await?;
        self.commit(chat_id, op, last_seq).await?;
        // The op is done; its copy of the data is no longer needed.
        self.c
            .events
            .update_one(
                doc! { "chat_id": chat_id, "seq": first_seq, "op.op_id": op.op_id },
                release_op(Document::new()),
            )
            .await
            .map_err(error::map)?;
        Ok(Finished::Committed { first_seq })
    }

    /// Undoes a cancelled op. Nothing of it is visible (readers see the committed head, and its
    /// messages are only inserted after a commit decision): its other events go, then its claim,
    /// then the keys it holds, all by op id, so those of an op claiming the same seqs next are
    /// never touched.
    pub(super) async fn cancel(
        &self,
        chat_id: i64,
        op: &PendingOp,
        first_seq: i64,
    ) -> StoreResult<()> {
        let last_seq = first_seq + op.event_count() - 1;
        let events = &self.c.events;
        events
            .delete_many(doc! {
                "chat_id": chat_id, "seq": { "$gt": first_seq, "$lte": last_seq },
                "op_id": op.op_id,
            })
            .await
            .map_err(error::map)?;
        events
            .delete_one(doc! { "chat_id": chat_id, "seq": first_seq, "op.op_id": op.op_id })
            .await
            .map_err(error::map)?;
        let keys: Vec<String> = op
            .send_keys(first_seq)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        self.c
            .send_keys
            .delete_many(doc! { "_id": { "$in": keys }, "op": op.op_id })
            .await
            .map_err(error::map)?;
        Ok(())
    }

    /// Applies the op's effects in order (its send keys are claimed by the decision); runs of
    /// joins go to the database as one command.
    async fn apply_all(
        &self,
        chat_id: i64,
        op: &PendingOp,
        first_seq: i64,
        rev: i64,
    ) -> StoreResult<()> {
        let mut joins: Vec<(i64, i32)> = Vec::new();
        for effect in &op.effects {
            if let Effect::Join { user_id, role } = effect {
                joins.push((*user_id, *role));
                continue;
            }
            self.join_members(chat_id, op, first_seq, rev, &joins)
                .await?;
            joins.clear();
            self.apply(chat_id, op, first_seq, rev, effect).await?;
        }
        self.join_members(chat_id, op, first_seq, rev, &joins).await
    }

    /// Makes each of `joins` (user, role) a current member (new, or returning with their old
    /// chat state), joined at the op's time and first seq: one upsert each, in one command.
    async fn join_members(
        &self,
        chat_id: i64,
        op: &PendingOp,
        first_seq: i64,
        rev: i64,
        joins: &[(i64, i32)],
    ) -> StoreResult<()> {
        if joins.is_empty() {
            return Ok(());
        }
        let updates = joins
            .iter()
            .map(|(user_id, role)| {
                doc! {
                    "q": { "chat_id": chat_id, "user_id": user_id, "rev": { "$lt": rev } },
                    "u": {
                        "$set": {
                            "role": role, "joined_at_ms": op.at_ms, "joined_at_seq": first_seq,
                            "left_at_seq": null, "rev": rev,
                        },
                        "$setOnInsert": {
                            "pinned": false, "muted_until_ms": 0_i64, "archived": false,
                            "delivered_seq": 0_i64, "read_seq": 0_i64,
                        },
                    },
                    // Already applied (a later rev) makes the upsert try an insert: a
                    // duplicate, which means "done".
                    "upsert": true,
                }
            })
            .collect();
        self.update_statements(super::indexes::MEMBERS, updates)
            .await
    }

    /// Inserts the op's events after the first (the claim); those already there stay.
    pub(super) async fn insert_events(
        &self,
        chat_id: i64,
        op: &PendingOp,
        first_seq: i64,
    ) -> StoreResult<()> {
        for (index, seq) in (1..op.events.len()).zip(first_seq + 1..) {
            let stored = op.stored_event(chat_id, index, seq)?;
            insert_if_absent(self.c.events.insert_one(&stored).await)?;
        }
        Ok(())
    }

    /// Moves the chat's committed head to `last_seq` and sets the op's chat fields (never moving
    /// the head back).
    pub(super) async fn commit(
        &self,
        chat_id: i64,
        op: &PendingOp,
        last_seq: i64,
    ) -> StoreResult<()> {
        let first_seq = last_seq - op.event_count() + 1;
        let mut set = doc! { "last_seq": last_seq };
        let members_seq = op.members_seq(first_seq);
        if let Some(members_seq) = members_seq {
            set.insert("members_seq", members_seq);
        }
        let changes = &op.commit;
        if let Some(title) = &changes.title {
            set.insert("title", title);
        }
        if let Some(description) = &changes.description {
            set.insert("description", description);
        }
        if let Some(avatar) = &changes.avatar_file_id {
            set.insert("avatar_file_id", avatar);
        }
        if let Some(owner) = changes.owner_id {
            set.insert("owner_id", owner);
        }
        if let Some(count) = changes.member_count {
            set.insert("member_count", count);
        }
        if let Some(deleted) = changes.deleted {
            set.insert("deleted", deleted);
        }
        self.c
            .chats
            .update_one(
                doc! { "_id": chat_id, "last_seq": { "$lt": last_seq } },
                doc! { "$set": set, "$max": { "last_activity_ms": op.at_ms } },
            )
            .await
            .map_err(error::map)?;
        if op.commit.deleted == Some(true) {
            // Appends read a deleted chat afresh (and find it deleted).
            self.forget_head(chat_id);
        } else {
            self.note_commit(chat_id, first_seq..=last_seq, members_seq);
        }
        Ok(())
    }

    /// Applies one effect (send keys are claimed by [`decide`](Self::decide), not here).
    pub(super) async fn apply(
        &self,
        chat_id: i64,
        op: &PendingOp,
        first_seq: i64,
        rev: i64,
        effect: &Effect,
    ) -> StoreResult<()> {
        let members = &self.c.members;
        let member =
            |user_id: i64| doc! { "chat_id": chat_id, "user_id": user_id, "rev": { "$lt": rev } };
        let message = |seq: i64| doc! { "chat_id": chat_id, "seq": seq, "rev": { "$lt": rev } };
        match effect {
            Effect::Join { user_id, role } => {
                let update = doc! {
                    "$set": {
                        "role": role, "joined_at_ms": op.at_ms, "joined_at_seq": first_seq,
                        "left_at_seq": null, "rev": rev,
                    },
                    "$setOnInsert": {
                        "pinned": false, "muted_until_ms": 0_i64, "archived": false,
                        "delivered_seq": 0_i64, "read_seq": 0_i64,
                    },
                };
                // Already applied (a later rev) makes the upsert try an insert: a duplicate.
                insert_if_absent(
                    members
                        .update_one(member(*user_id), update)
                        .upsert(true)
                        .await,
                )?;
            }
            Effect::SetRole { user_id, role } => {
                let update = doc! { "$set": { "role": role, "rev": rev } };
                members
                    .update_one(member(*user_id), update)
                    .await
                    .map_err(error::map)?;
            }
            Effect::Leave { user_id } => {
                let update = doc! { "$set": { "left_at_seq": first_seq, "rev": rev } };
                members
                    .update_one(member(*user_id), update)
                    .await
                    .map_err(error::map)?;
            }
            Effect::EndMemberships => {
                let filter =
                    doc! { "chat_id": chat_id, "left_at_seq": null, "rev": { "$lt": rev } };
                let update = doc! { "$set": { "left_at_seq": first_seq, "rev": rev } };
                members
                    .update_many(filter, update)
                    .await
                    .map_err(error::map)?;
            }
            Effect::ReleasePair { key } => {
                self.c
                    .private_pairs
                    .delete_one(doc! { "_id": key, "chat_id": chat_id })
                    .await
                    .map_err(error::map)?;
            }
            Effect::ClaimSendKey { .. } => {}
            Effect::InsertMessage { message, offset } => {
                let mut message = MessageDoc::clone(message);
                message.seq = first_seq + offset;
                message.rev = message.seq;
                insert_if_absent(self.c.messages.insert_one(&message).await)?;
            }
            Effect::EditMessage {
                seq,
                text,
                tokens,
                history,
            } => {
                let history = to_bson(history)
                    .map_err(|e| StoreError::Internal(format!("cannot encode edits: {e}")))?;
                let update = doc! {
                    "$set": {
                        "text": text, "tokens": tokens, "edits": history, "edited": true,
                        "edited_at_ms": op.at_ms, "rev": rev,
                    },
                };
                self.c
                    .messages
                    .update_one(message(*seq), update)
                    .await
                    .map_err(error::map)?;
            }
            Effect::DeleteMessage { seq } => {
                let update = doc! {
                    "$set": {
                        "text": "", "file_id": "", "attachment": null, "mention_ids": [], "reactions": [], "edits": [],
                        "tokens": [], "deleted": true, "deleted_at_ms": op.at_ms, "rev": rev,
                    },
                };
                self.c
                    .messages
                    .update_one(message(*seq), update)
                    .await
                    .map_err(error::map)?;
                self.purge_events(chat_id, *seq).await?;
            }
            Effect::SetReactions { seq, reactions } => {
                let reactions = to_bson(reactions)
                    .map_err(|e| StoreError::Internal(format!("cannot encode reactions: {e}")))?;
                let update = doc! { "$set": { "reactions": reactions, "rev": rev } };
                self.c
                    .messages
                    .update_one(message(*seq), update)
                    .await
                    .map_err(error::map)?;
            }
        }
        Ok(())
    }

    /// Removes the text of a message deleted for everyone from its events: the text of its
    /// `message_edited` events, and any op copy still held by them (only done ops: their data is
    /// in place already).
    async fn purge_events(&self, chat_id: i64, message_seq: i64) -> StoreResult<()> {
        let stored: Vec<EventDoc> = find_all(
            &self.c.events,
            doc! { "chat_id": chat_id, "message_seq": message_seq },
            None,
        )
        .await?;
        let chat = self
            .c
            .chats
            .find_one(doc! { "_id": chat_id })
            .await
            .map_err(error::map)?;
        let head = chat.map(|c| c.last_seq).unwrap_or(0);
        for stored in stored {
            let mut event = decode_event(&stored.body)?;
            let edited = match event.body.as_mut() {
                Some(Body::MessageEdited(edited)) if !edited.text.is_empty() => {
                    edited.text.clear();
                    true
                }
                _ => false,
            };
            let leftover_op = stored.op.is_some() && stored.seq <= head;
            if !edited && !leftover_op {
                continue;
            }
            let mut set = Document::new();
            if edited {
                set.insert(
                    "body",
                    Binary {
                        subtype: stored.body.subtype,
                        bytes: event.encode_to_vec(),
                    },
                );
            }
            let filter = doc! { "chat_id": chat_id, "seq": stored.seq };
            self.c
                .events
                .update_one(filter, release_op(set))
                .await
                .map_err(error::map)?;
        }
        Ok(())
    }

    /// Waits until the op that claimed `seq` is finished or cancelled, finishing it itself when
    /// its owner takes longer than [`MongoOptions::repair_after`](super::MongoOptions) (or the op
    /// is that old already: its owner is presumed gone).
    pub(super) async fn wait_for(&self, chat_id: i64, seq: i64) -> StoreResult<()> {
        let mut watching: Option<(ObjectId, Instant)> = None;
        let mut delay = Duration::from_millis(1);
        loop {
            let Some(claim) = self.in_flight(chat_id, seq).await? else {
                return Ok(());
            };
            let Some(op) = &claim.op else { return Ok(()) };
            let waited_long = match watching {
                Some((id, since)) if id == op.op_id => since.elapsed() >= self.options.repair_after,
                _ => {
                    watching = Some((op.op_id, Instant::now()));
                    false
                }
            };
            if waited_long || self.is_stale(op) {
                self.finish(chat_id, op, seq).await?;
                return Ok(());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(20));
        }
    }

    /// Waits until the op `op_id` of `chat_id` is finished or cancelled (finishing it itself
    /// when its owner takes too long, as [`Self::wait_for`]).
    pub(super) async fn await_op(&self, chat_id: i64, op_id: &ObjectId) -> StoreResult<()> {
        let claim = self
            .c
            .events
            .find_one(doc! { "chat_id": chat_id, "op.op_id": op_id })
            .await
            .map_err(error::map)?;
        match claim {
            Some(claim) => self.wait_for(chat_id, claim.seq).await,
            None => Ok(()),
        }
    }

    /// The claim at `seq` if its op is still in flight (claimed and not committed).
    async fn in_flight(&self, chat_id: i64, seq: i64) -> StoreResult<Option<EventDoc>> {
        let claim = self
            .c
            .events
            .find_one(doc! { "chat_id": chat_id, "seq": seq })
            .await
            .map_err(error::map)?;
        let Some(claim) = claim.filter(|c| c.op.is_some()) else {
            return Ok(None);
        };
        let chat = self
            .c
            .chats
            .find_one(doc! { "_id": chat_id })
            .await
            .map_err(error::map)?;
        match chat {
            Some(chat) if chat.last_seq >= seq => {
                // Committed, only its clean-up is outstanding. The head just read saves a
                // writer that lost this seq a second read before it claims again (group commit
                // reads only the heads it does not know).
                if !chat.deleted {
                    self.note_read(&chat);
                }
                Ok(None)
            }
            _ => Ok(Some(claim)),
        }
    }

    /// The chat once no op is in flight after its head (waiting for it, or finishing it, as
    /// [`Self::wait_for`]). `None` when the chat does not exist; deleted chats are returned.
    pub(super) async fn settled_chat(&self, chat_id: i64) -> StoreResult<Option<ChatDoc>> {
        loop {
            let Some(chat) = self
                .c
                .chats
                .find_one(doc! { "_id": chat_id })
                .await
                .map_err(error::map)?
            else {
                return Ok(None);
            };
            if self.in_flight(chat_id, chat.last_seq + 1).await?.is_none() {
                return Ok(Some(chat));
            }
            self.wait_for(chat_id, chat.last_seq + 1).await?;
        }
    }

    /// The chat as it is, after finishing an op its owner seems to have abandoned. `None` when
    /// the chat does not exist.
    pub(super) async fn repaired_chat(&self, chat_id: i64) -> StoreResult<Option<ChatDoc>> {
        let Some(chat) = self
            .c
            .chats
            .find_one(doc! { "_id": chat_id })
            .await
            .map_err(error::map)?
        else {
            return Ok(None);
        };
        let seq = chat.last_seq + 1;
        match self.in_flight(chat_id, seq).await? {
            Some(EventDoc { op: Some(op), .. }) if self.is_stale(&op) => {
                self.finish(chat_id, &op, seq).await?;
                self.c
                    .chats
                    .find_one(doc! { "_id": chat_id })
                    .await
                    .map_err(error::map)
            }
            _ => Ok(Some(chat)),
        }
    }

    /// True when `op` has been in flight for longer than its owner should need.
    fn is_stale(&self, op: &PendingOp) -> bool {
        let age = wall_ms().saturating_sub(op.started_at_ms);
        age >= i64::try_from(self.options.repair_after.as_millis()).unwrap_or(i64::MAX)
    }
}
