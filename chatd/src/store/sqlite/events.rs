//! The chat log: sequence allocation, appending events and reading them back.
//!
//! `events.body` holds the protobuf encoding of the whole [`pb::ChatEvent`], except for
//! `message_created`, whose body is NULL: the message is joined from `messages` at read time, so
//! the event always shows the message as it is now (edited text, tombstone, reactions).

use chatproto::pb;
use chatproto::pb::chat_event::Body;
use prost::Message as _;
use rusqlite::{Connection, OptionalExtension, params};

use super::convert::{get_u64, sql_u64};
use super::messages::{MESSAGE_COLUMNS, load_reactions, message_from_row};
use crate::store::{self, StoreError, StoreResult, changes_membership};

/// `events.kind` of `message_created` (the kinds are the field numbers of the body oneof).
const KIND_MESSAGE_CREATED: i64 = 11;
/// `events.kind` of `message_edited`.
const KIND_MESSAGE_EDITED: i64 = 12;

fn kind_of(body: &Body) -> i64 {
    match body {
        Body::ChatCreated(_) => 10,
        Body::MessageCreated(_) => KIND_MESSAGE_CREATED,
        Body::MessageEdited(_) => KIND_MESSAGE_EDITED,
        Body::MessageDeleted(_) => 13,
        Body::ReactionChanged(_) => 14,
        Body::MembersAdded(_) => 15,
        Body::MemberRemoved(_) => 16,
        Body::MemberRoleChanged(_) => 17,
        Body::ChatUpdated(_) => 18,
        Body::ChatDeleted(_) => 19,
        Body::CallEnded(_) => 20,
    }
}

/// The message an event is about, if any.
fn message_seq_of(seq: u64, body: &Body) -> Option<u64> {
    match body {
        Body::MessageCreated(_) => Some(seq),
        Body::MessageEdited(e) => Some(e.message_seq),
        Body::MessageDeleted(d) => Some(d.message_seq),
        Body::ReactionChanged(r) => Some(r.message_seq),
        _ => None,
    }
}

/// Takes the chat's next sequence number and advances its activity time.
/// `NotFound("chat")` when the chat does not exist or was deleted.
///
/// Runs only on the writer thread, inside the transaction that also inserts the event, so
/// numbers are strictly increasing, gap-free and never reused.
pub(super) fn next_seq(c: &Connection, chat_id: u64, now_ms: i64) -> StoreResult<u64> {
    c.prepare_cached(
        "UPDATE chats SET last_seq = last_seq + 1, last_activity_ms = max(last_activity_ms, ?2) \
         WHERE id = ?1 AND deleted = 0 RETURNING last_seq",
    )?
    .query_row(params![sql_u64(chat_id), now_ms], |row| get_u64(row, 0))
    .optional()?
    .ok_or(StoreError::NotFound("chat"))
}

/// `Conflict(MembersChanged)` unless the chat's `members_seq` is `judged` (when given); a
/// deleted or unknown chat passes (the write after this says so).
pub(super) fn ensure_members_unchanged(
    c: &Connection,
    chat_id: u64,
    judged: Option<u64>,
) -> StoreResult<()> {
    if judged.is_none() {
        return Ok(());
    }
    let now = c
        .prepare_cached("SELECT members_seq FROM chats WHERE id = ?1")?
        .query_row([sql_u64(chat_id)], |row| get_u64(row, 0))
        .optional()?;
    now.map_or(Ok(()), |now| store::ensure_members_unchanged(now, judged))
}

/// Stores an event whose seq was taken with [`next_seq`]; one that changes membership moves
/// the chat's `members_seq` to it.
pub(super) fn insert(c: &Connection, event: &pb::ChatEvent) -> StoreResult<()> {
    let body = event
        .body
        .as_ref()
        .ok_or_else(|| StoreError::Internal("chat event without a body".into()))?;
    if changes_membership(body) {
        c.prepare_cached("UPDATE chats SET members_seq = ?2 WHERE id = ?1")?
            .execute(params![sql_u64(event.chat_id), sql_u64(event.seq)])?;
    }
    let blob = match body {
        Body::MessageCreated(_) => None,
        _ => Some(event.encode_to_vec()),
    };
    c.prepare_cached(
        "INSERT INTO events (chat_id, seq, at_ms, actor_id, kind, message_seq, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        sql_u64(event.chat_id),
        sql_u64(event.seq),
        event.at_ms,
        sql_u64(event.actor_id),
        kind_of(body),
        message_seq_of(event.seq, body).map(sql_u64),
        blob
    ])?;
    Ok(())
}

/// Takes the next seq and appends an event with `body`.
pub(super) fn append(
    c: &Connection,
    chat_id: u64,
    actor_id: u64,
    now_ms: i64,
    body: Body,
) -> StoreResult<pb::ChatEvent> {
    let seq = next_seq(c, chat_id, now_ms)?;
    let event = pb::ChatEvent {
        chat_id,
        seq,
        at_ms: now_ms,
        actor_id,
        body: Some(body),
    };
    insert(c, &event)?;
    Ok(event)
}

/// Events with `after_seq < seq <= up_to_seq`, ascending, at most `limit`.
pub(super) fn read(
    c: &Connection,
    chat_id: u64,
    after_seq: u64,
    up_to_seq: u64,
    limit: u32,
) -> StoreResult<Vec<pb::ChatEvent>> {
    let sql = format!(
        "SELECT e.seq, e.at_ms, e.actor_id, e.kind, e.body, {MESSAGE_COLUMNS} \
         FROM events e \
         LEFT JOIN messages m ON e.kind = {KIND_MESSAGE_CREATED} \
             AND m.chat_id = e.chat_id AND m.seq = e.seq \
         WHERE e.chat_id = ?1 AND e.seq > ?2 AND e.seq <= ?3 \
         ORDER BY e.seq LIMIT ?4"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        sql_u64(chat_id),
        sql_u64(after_seq),
        sql_u64(up_to_seq),
        limit
    ])?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        let seq = get_u64(row, 0)?;
        let kind: i64 = row.get(3)?;
        let body = if kind == KIND_MESSAGE_CREATED {
            let present: Option<i64> = row.get(5)?;
            if present.is_none() {
                return Err(StoreError::Internal(format!(
                    "message of event {chat_id}/{seq} is missing"
                )));
            }
            let mut message = message_from_row(row, 5)?;
            load_reactions(c, &mut message)?;
            Body::MessageCreated(message)
        } else {
            let blob: Option<Vec<u8>> = row.get(4)?;
            let blob = blob.ok_or_else(|| {
                StoreError::Internal(format!("event {chat_id}/{seq} has no body"))
            })?;
            pb::ChatEvent::decode(blob.as_slice())?
                .body
                .ok_or_else(|| StoreError::Internal(format!("event {chat_id}/{seq} is empty")))?
        };
        events.push(pb::ChatEvent {
            chat_id,
            seq,
            at_ms: row.get(1)?,
            actor_id: get_u64(row, 2)?,
            body: Some(body),
        });
    }
    Ok(events)
}

/// Empties the text of every `message_edited` event of a message deleted for everyone.
pub(super) fn purge_edit_texts(c: &Connection, chat_id: u64, message_seq: u64) -> StoreResult<()> {
    let stored: Vec<(i64, Vec<u8>)> = {
        let mut stmt = c.prepare_cached(
            "SELECT seq, body FROM events WHERE chat_id = ?1 AND message_seq = ?2 AND kind = ?3",
        )?;
        let rows = stmt.query_map(
            params![sql_u64(chat_id), sql_u64(message_seq), KIND_MESSAGE_EDITED],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut update =
        c.prepare_cached("UPDATE events SET body = ?3 WHERE chat_id = ?1 AND seq = ?2")?;
    for (seq, blob) in stored {
        let mut event = pb::ChatEvent::decode(blob.as_slice())?;
        if let Some(Body::MessageEdited(edited)) = event.body.as_mut() {
            edited.text.clear();
        }
        update.execute(params![sql_u64(chat_id), seq, event.encode_to_vec()])?;
    }
    Ok(())
}
