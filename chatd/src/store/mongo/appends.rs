//! Group commit of message appends: the sends that reach this store while a round is in the
//! database wait, and the next round takes them all, in every chat, through the same handful of
//! commands. Under load that is well under one database round trip per message.
//!
//! A round, for all its sends at once:
//! 1. senders are checked against a cache of known accounts (accounts are never removed, only
//!    marked deleted), reading only those it has not seen (see [`accounts`]);
//! 2. one op per chat, holding that chat's messages, claims the seqs after the chat's head as this
//!    store last committed it: all claims and their events go in one ordered `insert`, so the
//!    sequence is allocated by the insert itself, with no read first. A claim that finds its seq
//!    taken (another writer moved the head) reads the chat again and goes into the next pass.
//!    The head remembered (see [`heads`]) carries the chat's `members_seq`, and a claim that
//!    succeeds proves that nothing came after that head: a send judged on another membership is
//!    refused before the claim (one judged on a later membership than remembered reads the chat
//!    first);
//! 3. every op's send keys and its decision go in one ordered `insert` (see
//!    [`MongoStore::decide`]); an op that finds a key taken is cancelled and its other messages
//!    go into the next pass, while the duplicate is answered with the original;
//! 4. the messages go in one `insert`, and the chats' heads move in `update` commands of a few
//!    statements each (see `update_statements`).
//!
//! Retries are not looked up before claiming: the key insert of step 3 finds them, at the price
//! of a cancelled op for the rare retry instead of a read of every send key in every round.
//!
//! Clearing each committed claim's copy of its op is deferred and done for many ops at once,
//! in the background (see [`cleanup`]). The other writes after the claim are inserts, and the
//! head moves, which name their chats by `_id`, one statement each (FerretDB reads the
//! collection for every statement, and evaluates `$in` by reading it whole; `chats` does not
//! grow with messages).
//!
//! Ops written here are ordinary ops of the claim protocol: if this process stops in the middle
//! of a round, the next writer or reader of a chat finishes or cancels its op as for any other.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard};

use chatproto::pb;
use chatproto::pb::chat_event::Body;
use mongodb::bson::{Bson, doc};
use prost::Message as _;
use tokio::sync::oneshot;

use self::cleanup::Cleanup;
use self::heads::Head;
use super::decision::{decision_id, first_duplicate, key_doc};
use super::docs::{ForwardDoc, MessageDoc, i, u};
use super::pending::{ChatChanges, Effect, PendingOp};
use super::sealing::{Fields, Purpose};
use super::tokens::index_tokens;
use super::{MongoStore, error, ids_matching, indexes};
use crate::store::{
    ConflictKind, NewMessage, SendOutcome, StoreError, StoreResult, ensure_members_unchanged,
};

pub(super) mod accounts;
mod cleanup;
mod heads;

/// Most sends taken into one round.
const MAX_ROUND: usize = 512;

/// Chats whose head is remembered, and accounts known to exist, at most (beyond, the cache
/// starts over).
const MAX_CACHED: usize = 200_000;

/// How many passes a round makes before giving up on the sends still unanswered (each pass
/// answers or re-plans every send; more than a few means the chats are being written
/// elsewhere as fast as this store can read them).
const MAX_PASSES: usize = 16;

/// The state group commit keeps in a store (shared by its clones).
#[derive(Default)]
pub(super) struct Appends {
    queue: Mutex<Queue>,
    /// The committed head of chats, as this store last saw it.
    heads: Mutex<HashMap<i64, Head>>,
    /// Accounts known to exist.
    known_users: Mutex<HashSet<i64>>,
    cleanup: Mutex<Cleanup>,
    /// A cleaning task runs.
    cleaning: AtomicBool,
}

impl std::fmt::Debug for Appends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appends").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    running: bool,
}

struct Waiting {
    new: NewMessage,
    reply: oneshot::Sender<StoreResult<SendOutcome>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A send's idempotency key.
pub(super) fn send_key(new: &NewMessage) -> String {
    key_of(new.sender_id, &new.client_msg_id)
}

/// The idempotency key of the sends of `sender_id` with `client_msg_id`.
pub(super) fn key_of(sender_id: u64, client_msg_id: &str) -> String {
    format!("{sender_id}:{client_msg_id}")
}

/// The message `new` creates, with seq 0, its text and attachment sealed by `fields`.
pub(super) fn message_doc(new: &NewMessage, fields: &Fields) -> MessageDoc {
    let chat_id = i(new.chat_id);
    MessageDoc {
        chat_id: i(new.chat_id),
        seq: 0,
        sender_id: i(new.sender_id),
        client_msg_id: new.client_msg_id.clone(),
        kind: new.kind as i32,
        text: fields.text(Purpose::Text, chat_id, &new.text),
        file_id: new.file_id.clone(),
        reply_to_seq: i(new.reply_to_seq),
        forwarded_from: new.forwarded_from.map(|f| ForwardDoc {
            chat_id: i(f.chat_id),
            seq: i(f.seq),
            sender_id: i(f.sender_id),
            sent_at_ms: f.sent_at_ms,
        }),
        sent_at_ms: new.now_ms,
        edited: false,
        edited_at_ms: 0,
        deleted: false,
        deleted_at_ms: 0,
        reactions: Vec::new(),
        mention_ids: new.mention_ids.iter().map(|&id| i(id)).collect(),
        edits: Vec::new(),
        hidden_for: Vec::new(),
        // Sealed texts are not searched: their words are not kept.
        tokens: if fields.sealed() {
            Vec::new()
        } else {
            index_tokens(&new.text)
        },
        rev: 0,
        attachment: new
            .attachment
            .as_ref()
            .map(|a| fields.bytes(Purpose::Attachment, chat_id, a.encode_to_vec())),
    }
}

/// The op that appends `news` (all to one chat) in order: for each, claim its send key, insert
/// the message, append `message_created`.
pub(super) fn messages_op(news: &[&NewMessage], fields: &Fields) -> PendingOp {
    let mut events = Vec::with_capacity(news.len());
    let mut effects = Vec::with_capacity(news.len() * 2);
    for (offset, new) in (0_i64..).zip(news) {
        events.push(pb::ChatEvent {
            chat_id: new.chat_id,
            seq: 0,
            at_ms: new.now_ms,
            actor_id: new.sender_id,
            // Stored events keep only the message's identity (see `docs::EventDoc`).
            body: Some(Body::MessageCreated(pb::Message::default())),
        });
        effects.push(Effect::ClaimSendKey {
            key: send_key(new),
            offset,
        });
        effects.push(Effect::InsertMessage {
            message: Box::new(message_doc(new, fields)),
            offset,
        });
    }
    let at_ms = news.iter().map(|n| n.now_ms).max().unwrap_or(0);
    PendingOp::new(at_ms, events, effects, ChatChanges::default())
}

/// One send of a round (with the identical sends of the round that wait for it).
struct Slot {
    new: NewMessage,
    key: String,
    reply: Option<oneshot::Sender<StoreResult<SendOutcome>>>,
    followers: Vec<oneshot::Sender<StoreResult<SendOutcome>>>,
}

impl Slot {
    fn pending(&self) -> bool {
        self.reply.is_some()
    }

    /// Answers the send and its followers (who get the message without an event).
    fn answer(&mut self, outcome: StoreResult<SendOutcome>) {
        for follower in self.followers.drain(..) {
            let copy = match &outcome {
                Ok(first) => Ok(SendOutcome {
                    message: first.message.clone(),
                    event: None,
                }),
                Err(e) => Err(e.clone()),
            };
            let _ = follower.send(copy);
        }
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(outcome);
        }
    }
}

/// An op of a round: one chat's sends.
struct Planned {
    chat_id: i64,
    first_seq: i64,
    op: PendingOp,
    /// The slots of its messages, in order.
    slots: Vec<usize>,
}

impl Planned {
    fn last_seq(&self) -> i64 {
        self.first_seq + self.op.event_count() - 1
    }
}

impl MongoStore {
    /// Appends `new` in the next round; waits for its outcome.
    pub(super) async fn append_grouped(&self, new: NewMessage) -> StoreResult<SendOutcome> {
        let (reply, outcome) = oneshot::channel();
        let lead = {
            let mut queue = lock(&self.appends.queue);
            queue.waiting.push(Waiting { new, reply });
            !std::mem::replace(&mut queue.running, true)
        };
        if lead {
            // On its own task, so that a caller giving up (its deadline) never abandons a
            // round half way for everyone else.
            let store = self.clone();
            tokio::spawn(async move { store.run_rounds().await });
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(StoreError::Internal("an append was dropped".into())))
    }

    async fn run_rounds(&self) {
        loop {
            let batch: Vec<Waiting> = {
                let mut queue = lock(&self.appends.queue);
                if queue.waiting.is_empty() {
                    queue.running = false;
                    return;
                }
                let n = queue.waiting.len().min(MAX_ROUND);
                queue.waiting.drain(..n).collect()
            };
            self.round(batch).await;
        }
    }

    /// One round: answers every send of `batch`, each as soon as it is settled.
    async fn round(&self, batch: Vec<Waiting>) {
        // Identical sends in one round: the first goes on, the others get its message.
        let mut slots: Vec<Slot> = Vec::with_capacity(batch.len());
        let mut by_key: HashMap<String, usize> = HashMap::new();
        for Waiting { new, reply } in batch {
            let key = send_key(&new);
            match by_key.get(&key).and_then(|&n| slots.get_mut(n)) {
                Some(primary) => primary.followers.push(reply),
                None => {
                    by_key.insert(key.clone(), slots.len());
                    slots.push(Slot {
                        new,
                        key,
                        reply: Some(reply),
                        followers: Vec::new(),
                    });
                }
            }
        }
        if let Err(e) = self.append_slots(&mut slots).await {
            tracing::debug!(error = %e, "append round failed");
            for slot in slots.iter_mut().filter(|s| s.pending()) {
                slot.answer(Err(e.clone()));
            }
        }
        if self.cleanup_due() {
            self.clean_up_soon();
        }
    }

    /// True when no send waits for the next round.
    fn idle(&self) -> bool {
        lock(&self.appends.queue).waiting.is_empty()
    }

    /// Answers every slot (or fails for those left). Each pass claims, decides and commits what
    /// it can; it waits for other writers' ops (on chats whose claim it lost) only once it holds
    /// no claim itself, so two stores never wait for each other.
    async fn append_slots(&self, slots: &mut [Slot]) -> StoreResult<()> {
        let senders: Vec<i64> = slots.iter().map(|s| i(s.new.sender_id)).collect();
        let missing = self.missing_users(&senders).await?;
        for slot in slots.iter_mut() {
            if missing.contains(&i(slot.new.sender_id)) {
                slot.answer(Err(StoreError::NotFound("user")));
            }
        }
        for _ in 0..MAX_PASSES {
            let pending: Vec<usize> = (0..slots.len())
                .filter(|&n| slots.get(n).is_some_and(Slot::pending))
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            let ops = self.plan(slots, &pending).await?;
            let (claimed, lost) = self.claim_all(ops).await?;
            let (committed, cancelled) = self.decide_all(claimed).await?;
            let mut retried = Vec::new();
            for op in cancelled {
                self.cancel(op.chat_id, &op.op, op.first_seq).await?;
                retried.extend(op.slots);
            }
            self.insert_messages(&committed).await?;
            self.commit_all(&committed).await?;
            for (n, outcome) in self.committed(committed) {
                if let Some(slot) = slots.get_mut(n) {
                    slot.answer(outcome);
                }
            }
            if self.idle() {
                // Nobody waits: clean up now rather than leave it to a later round.
                self.clean_up_soon();
            }
            // A cancelled op's duplicate is a retry now; its other sends go round again.
            self.answer_retries(slots, &retried).await?;
            // Holding nothing now: wait for the ops that took the seqs we wanted (not for the
            // chat to be quiet: another writer may never leave it so), and read the heads.
            for &(chat, seq) in &lost {
                self.wait_for(chat, seq).await?;
            }
            let chats: Vec<i64> = lost.iter().map(|&(chat, _)| chat).collect();
            self.heads_of(&chats).await?;
        }
        Err(StoreError::Busy(
            "sends kept losing their seq to other writers".into(),
        ))
    }

    /// Answers the slots among `which` whose send key was used before with the original.
    async fn answer_retries(&self, slots: &mut [Slot], which: &[usize]) -> StoreResult<()> {
        let keys: Vec<&str> = which
            .iter()
            .filter_map(|&n| slots.get(n))
            .filter(|s| s.pending())
            .map(|s| s.key.as_str())
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let used = ids_matching(&self.c.send_keys, doc! { "_id": { "$in": keys } }).await?;
        let used: HashSet<&str> = used.iter().filter_map(Bson::as_str).collect();
        for &n in which {
            let Some(slot) = slots.get_mut(n) else {
                continue;
            };
            if !slot.pending() || !used.contains(slot.key.as_str()) {
                continue;
            }
            if let Some(message) = self.original(&slot.key).await? {
                slot.answer(Ok(SendOutcome {
                    message,
                    event: None,
                }));
            }
        }
        Ok(())
    }

    /// One op per chat for the `pending` slots, each claiming the seqs after the chat's head as
    /// this store knows it (read for chats it does not know). Slots of chats that do not exist
    /// are answered, and so are sends judged on a membership the chat has moved past
    /// (`Conflict(MembersChanged)`): the head's `members_seq` is the membership the claim
    /// appends under if it succeeds. A send judged on a later membership than this store
    /// knows has its chat read again.
    async fn plan(&self, slots: &mut [Slot], pending: &[usize]) -> StoreResult<Vec<Planned>> {
        let mut by_chat: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for &n in pending {
            if let Some(slot) = slots.get(n) {
                by_chat.entry(i(slot.new.chat_id)).or_default().push(n);
            }
        }
        let chats: Vec<i64> = by_chat.keys().copied().collect();
        let mut heads = self.heads_of(&chats).await?;
        let judged_later = |n: &usize, head: &Head| {
            slots
                .get(*n)
                .and_then(|s| s.new.members_seq)
                .is_some_and(|judged| i(judged) > head.members_seq)
        };
        let stale: Vec<i64> = by_chat
            .iter()
            .filter(|(chat, members)| {
                heads
                    .get(chat)
                    .is_some_and(|head| members.iter().any(|n| judged_later(n, head)))
            })
            .map(|(&chat, _)| chat)
            .collect();
        if !stale.is_empty() {
            for &chat in &stale {
                self.forget_head(chat);
                heads.remove(&chat);
            }
            heads.extend(self.heads_of(&stale).await?);
        }
        let mut ops = Vec::with_capacity(by_chat.len());
        let mut refused = Vec::new();
        for (chat_id, members) in by_chat {
            let Some(&head) = heads.get(&chat_id) else {
                for n in members {
                    if let Some(slot) = slots.get_mut(n) {
                        slot.answer(Err(StoreError::NotFound("chat")));
                    }
                }
                continue;
            };
            let mut planned = Vec::with_capacity(members.len());
            for n in members {
                let Some(slot) = slots.get_mut(n) else {
                    continue;
                };
                if ensure_members_unchanged(u(head.members_seq), slot.new.members_seq).is_err() {
                    refused.push(n);
                } else {
                    planned.push(n);
                }
            }
            if planned.is_empty() {
                continue;
            }
            let news: Vec<&NewMessage> = planned
                .iter()
                .filter_map(|&n| slots.get(n).map(|s| &s.new))
                .collect();
            ops.push(Planned {
                chat_id,
                first_seq: head.seq + 1,
                op: messages_op(&news, &self.fields),
                slots: planned,
            });
        }
        if !refused.is_empty() {
            // A retry of a send that was appended is answered with it, whatever the
            // membership now (as the other backends answer it).
            self.answer_retries(slots, &refused).await?;
            for n in refused {
                if let Some(slot) = slots.get_mut(n).filter(|s| s.pending()) {
                    slot.answer(Err(StoreError::Conflict(ConflictKind::MembersChanged)));
                }
            }
        }
        Ok(ops)
    }

    /// Claims every op's seqs: each op's events, the first holding the op, in one ordered insert
    /// for all ops. Returns the ops that hold their claim, and the (chat, seq) of each claim that
    /// found its seq taken (to wait for and read again, once this pass holds nothing).
    async fn claim_all(&self, ops: Vec<Planned>) -> StoreResult<(Vec<Planned>, Vec<(i64, i64)>)> {
        let mut docs = Vec::new();
        let mut ranges = Vec::with_capacity(ops.len());
        for op in &ops {
            let begin = docs.len();
            docs.extend(op.op.stored_events(op.chat_id, op.first_seq)?);
            ranges.push(begin..docs.len());
        }
        let claims = insert_resuming(&self.c.events, &docs, &ranges, Claim::Held, |_, first| {
            std::future::ready(Ok(if first {
                Claim::Lost
            } else {
                // Its claim holds (no later seq can be taken before its first is committed);
                // whatever is there is its own event, written by a helper.
                Claim::Partial
            }))
        })
        .await?;
        let mut held = Vec::with_capacity(ops.len());
        let mut lost_chats = Vec::new();
        for (op, claim) in ops.into_iter().zip(claims) {
            match claim {
                Some(Claim::Held) => held.push(op),
                Some(Claim::Partial) => {
                    // Events after the first that the ordered insert did not reach.
                    self.insert_events(op.chat_id, &op.op, op.first_seq).await?;
                    held.push(op);
                }
                Some(Claim::Lost) => {
                    self.forget_head(op.chat_id);
                    lost_chats.push((op.chat_id, op.first_seq));
                }
                None => {}
            }
        }
        Ok((held, lost_chats))
    }

    /// Decides every claimed op: their keys and decisions in one ordered insert; an op that
    /// meets a key already there is decided the slow way. Returns (committed, cancelled).
    async fn decide_all(&self, ops: Vec<Planned>) -> StoreResult<(Vec<Planned>, Vec<Planned>)> {
        let mut docs = Vec::new();
        let mut ranges = Vec::with_capacity(ops.len());
        for op in &ops {
            let begin = docs.len();
            for (key, seq) in op.op.send_keys(op.first_seq) {
                docs.push(key_doc(&key, op.chat_id, seq, &op.op.op_id));
            }
            docs.push(doc! { "_id": decision_id(&op.op.op_id), "commit": true });
            ranges.push(begin..docs.len());
        }
        let planned = &ops;
        let verdicts =
            insert_resuming(&self.c.send_keys, &docs, &ranges, true, |n, _| async move {
                match planned.get(n) {
                    Some(op) => Ok(self
                        .decide(op.chat_id, &op.op, op.first_seq)
                        .await?
                        .is_none()),
                    None => Ok(true),
                }
            })
            .await?;
        let (mut committed, mut cancelled) = (Vec::new(), Vec::new());
        for (op, commit) in ops.into_iter().zip(verdicts) {
            if commit == Some(false) {
                cancelled.push(op);
            } else {
                committed.push(op);
            }
        }
        Ok((committed, cancelled))
    }

    /// Inserts the messages of committed ops, all at once (those a helper inserted stay).
    async fn insert_messages(&self, ops: &[Planned]) -> StoreResult<()> {
        let mut docs = Vec::new();
        for op in ops {
            for effect in &op.op.effects {
                if let Effect::InsertMessage { message, offset } = effect {
                    let mut message = MessageDoc::clone(message);
                    message.seq = op.first_seq + offset;
                    message.rev = message.seq;
                    docs.push(message);
                }
            }
        }
        if docs.is_empty() {
            return Ok(());
        }
        match self.c.messages.insert_many(docs).ordered(false).await {
            Ok(_) => Ok(()),
            Err(e) if only_duplicates(&e) => Ok(()),
            Err(e) => Err(error::map(e)),
        }
    }

    /// Moves the committed ops' chats' heads, one statement each (a few per command).
    async fn commit_all(&self, ops: &[Planned]) -> StoreResult<()> {
        let updates = ops
            .iter()
            .map(|op| {
                let last_seq = op.last_seq();
                doc! {
                    "q": { "_id": op.chat_id, "last_seq": { "$lt": last_seq } },
                    "u": {
                        "$set": { "last_seq": last_seq },
                        "$max": { "last_activity_ms": op.op.at_ms },
                    },
                }
            })
            .collect();
        self.update_statements(indexes::CHATS, updates).await
    }

    /// The outcomes of the slots of committed ops; remembers their chats' heads and queues
    /// their claims for cleaning.
    fn committed(&self, ops: Vec<Planned>) -> Vec<(usize, StoreResult<SendOutcome>)> {
        let mut done = Vec::new();
        for op in ops {
            self.note_commit(op.chat_id, op.first_seq..=op.last_seq(), None);
            lock(&self.appends.cleanup).claim(op.chat_id, op.first_seq, op.op.op_id);
            let messages = op.op.effects.into_iter().filter_map(|e| match e {
                Effect::InsertMessage { message, offset } => Some((message, offset)),
                _ => None,
            });
            for (n, (message, offset)) in op.slots.into_iter().zip(messages) {
                let seq = u(op.first_seq + offset);
                let mut message = match message.wire(&self.fields) {
                    Ok(message) => message,
                    Err(e) => {
                        done.push((n, Err(e)));
                        continue;
                    }
                };
                message.seq = seq;
                let event = pb::ChatEvent {
                    chat_id: message.chat_id,
                    seq,
                    at_ms: message.sent_at_ms,
                    actor_id: message.sender_id,
                    body: Some(Body::MessageCreated(message.clone())),
                };
                done.push((
                    n,
                    Ok(SendOutcome {
                        message,
                        event: Some(event),
                    }),
                ));
            }
        }
        done
    }
}

/// What became of an op's events in [`MongoStore::claim_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// All of them went in: the op holds its seqs.
    Held,
    /// The first went in and a later one was there already (a helper wrote it): the op holds
    /// its seqs, and the rest of its events are still to insert.
    Partial,
    /// The first seq was taken: another writer moved the chat's head.
    Lost,
}

/// One ordered insert of several ops' documents into `collection` (op `n` owns
/// `docs[ranges[n]]`), resumed after each duplicate: the op whose document met the duplicate
/// goes to `met(n, first)` (`first`: it was the op's first document), and the insert goes on
/// with the next op's documents. Returns, per op, `inserted` when all its documents went in,
/// what `met` made of it, or `None` when the insert never reached it.
async fn insert_resuming<D, T, F>(
    collection: &mongodb::Collection<D>,
    docs: &[D],
    ranges: &[std::ops::Range<usize>],
    inserted: T,
    mut met: impl FnMut(usize, bool) -> F,
) -> StoreResult<Vec<Option<T>>>
where
    D: serde::Serialize + Send + Sync,
    T: Clone,
    F: Future<Output = StoreResult<T>>,
{
    let mut outcome: Vec<Option<T>> = vec![None; ranges.len()];
    let mut start = 0;
    while start < docs.len() {
        let rest = docs.get(start..).unwrap_or_default();
        let at = match collection.insert_many(rest).ordered(true).await {
            Ok(_) => docs.len(),
            Err(e) => match first_duplicate(&e) {
                Some(j) => start + j,
                None => return Err(error::map(e)),
            },
        };
        for (done, range) in outcome.iter_mut().zip(ranges) {
            if range.start >= start && range.end <= at {
                *done = Some(inserted.clone());
            }
        }
        let Some(n) = ranges.iter().position(|r| r.contains(&at)) else {
            break;
        };
        let range = ranges.get(n).cloned().unwrap_or_default();
        let became = met(n, at == range.start).await?;
        if let Some(done) = outcome.get_mut(n) {
            *done = Some(became);
        }
        start = range.end;
    }
    Ok(outcome)
}

/// True when an unordered insert failed only on duplicate keys.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        mongodb::error::ErrorKind::InsertMany(m) => {
            m.write_concern_error.is_none()
                && m.write_errors
                    .as_ref()
                    .is_some_and(|w| w.iter().all(|w| error::is_duplicate_code(w.code)))
        }
        _ => false,
    }
}
