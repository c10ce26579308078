//! Messages, reactions, edit history, hiding, history pages and receipts: most of the SQL behind
//! [`MessageStore`](crate::store::MessageStore) (the log is in `events`, search in `search`).
//!
//! A message is one `messages` row keyed by `(chat_id, seq)`, where `seq` is the seq of the
//! `message_created` event. Deleting for everyone purges the row in place (text, file, mentions)
//! and removes its reactions and edit history; the FTS triggers drop its terms from the index.

use chatproto::pb;
use chatproto::pb::chat_event::Body;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::chats::live_chat;
use super::convert::{
    decode_blob, encode_blob, get_opt_u64, get_u64, join_ids, split_ids, sql_u64,
};
use super::events;
use super::users::ensure_user;
use crate::store::{
    Actor, HistoryQuery, NewMessage, ReactionChange, SendOutcome, StoreError, StoreResult,
};
use crate::store::{ConflictKind, MAX_KEPT_EDITS};

/// The columns [`message_from_row`] reads, from `messages` aliased as `m` (19 columns).
pub(super) const MESSAGE_COLUMNS: &str = "m.chat_id, m.seq, m.sender_id, m.client_msg_id, m.kind, \
     m.text, m.file_id, m.reply_to_seq, m.fwd_chat_id, m.fwd_seq, m.fwd_sender_id, \
     m.fwd_sent_at_ms, m.sent_at_ms, m.edited, m.edited_at_ms, m.deleted, m.deleted_at_ms, \
     m.mention_ids, m.attachment";

/// Reads [`MESSAGE_COLUMNS`] starting at column `at`. Reactions are loaded separately.
pub(super) fn message_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<pb::Message> {
    let forwarded_from = match get_opt_u64(row, at + 8)? {
        Some(chat_id) => Some(pb::ForwardedFrom {
            chat_id,
            seq: get_opt_u64(row, at + 9)?.unwrap_or(0),
            sender_id: get_opt_u64(row, at + 10)?.unwrap_or(0),
            sent_at_ms: row.get::<_, Option<i64>>(at + 11)?.unwrap_or(0),
        }),
        None => None,
    };
    let mentions: String = row.get(at + 17)?;
    Ok(pb::Message {
        chat_id: get_u64(row, at)?,
        seq: get_u64(row, at + 1)?,
        sender_id: get_u64(row, at + 2)?,
        client_msg_id: row.get(at + 3)?,
        kind: row.get(at + 4)?,
        text: row.get(at + 5)?,
        file_id: row.get(at + 6)?,
        reply_to_seq: get_u64(row, at + 7)?,
        forwarded_from,
        sent_at_ms: row.get(at + 12)?,
        edited: row.get(at + 13)?,
        edited_at_ms: row.get(at + 14)?,
        deleted: row.get(at + 15)?,
        deleted_at_ms: row.get(at + 16)?,
        reactions: Vec::new(),
        mention_ids: split_ids(&mentions, at + 17)?,
        // A per-viewer mark, set by the handlers' views.
        from_blocked_user: false,
        attachment: decode_blob(row, at + 18)?.map(Box::new),
    })
}

/// Fills in a message's reactions: grouped by emoji in the order each emoji first appeared, the
/// users of one emoji in the order they reacted.
pub(super) fn load_reactions(c: &Connection, message: &mut pb::Message) -> StoreResult<()> {
    message.reactions.clear();
    if message.deleted {
        return Ok(());
    }
    let mut stmt = c.prepare_cached(
        "SELECT emoji, user_id FROM reactions WHERE chat_id = ?1 AND seq = ?2 ORDER BY id",
    )?;
    let mut rows = stmt.query(params![sql_u64(message.chat_id), sql_u64(message.seq)])?;
    while let Some(row) = rows.next()? {
        let emoji: String = row.get(0)?;
        let user_id = get_u64(row, 1)?;
        match message.reactions.iter_mut().find(|r| r.emoji == emoji) {
            Some(reaction) => {
                reaction.user_ids.push(user_id);
                reaction.count += 1;
            }
            None => message.reactions.push(pb::Reaction {
                emoji,
                user_ids: vec![user_id],
                count: 1,
            }),
        }
    }
    Ok(())
}

/// Runs a message query and loads every result's reactions.
pub(super) fn query_messages(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<pb::Message>> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |row| message_from_row(row, 0))?;
    let mut messages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    for message in &mut messages {
        load_reactions(c, message)?;
    }
    Ok(messages)
}

pub(super) fn message(c: &Connection, chat_id: u64, seq: u64) -> StoreResult<Option<pb::Message>> {
    let sql =
        format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.chat_id = ?1 AND m.seq = ?2");
    Ok(
        query_messages(c, &sql, params![sql_u64(chat_id), sql_u64(seq)])?
            .into_iter()
            .next(),
    )
}

/// The message, or `NotFound("message")`.
fn existing(c: &Connection, chat_id: u64, seq: u64) -> StoreResult<pb::Message> {
    message(c, chat_id, seq)?.ok_or(StoreError::NotFound("message"))
}

/// The message, or `NotFound("message")`, or `Conflict` when it was deleted for everyone.
fn existing_live(c: &Connection, chat_id: u64, seq: u64) -> StoreResult<pb::Message> {
    let message = existing(c, chat_id, seq)?;
    if message.deleted {
        return Err(StoreError::Conflict(ConflictKind::MessageDeleted));
    }
    Ok(message)
}

pub(super) fn sent_message(
    c: &Connection,
    sender_id: u64,
    client_msg_id: &str,
) -> StoreResult<Option<pb::Message>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.sender_id = ?1 AND m.client_msg_id = ?2"
    );
    let found = query_messages(c, &sql, params![sql_u64(sender_id), client_msg_id])?;
    Ok(found.into_iter().next())
}

pub(super) fn append_message(c: &Connection, new: &NewMessage) -> StoreResult<SendOutcome> {
    if let Some(message) = sent_message(c, new.sender_id, &new.client_msg_id)? {
        return Ok(SendOutcome {
            message,
            event: None,
        });
    }
    ensure_user(c, new.sender_id)?;
    events::ensure_members_unchanged(c, new.chat_id, new.members_seq)?;
    let seq = events::next_seq(c, new.chat_id, new.now_ms)?;
    let forward = new.forwarded_from.as_ref();
    c.prepare_cached(
        "INSERT INTO messages (chat_id, seq, sender_id, client_msg_id, kind, text, file_id, \
             reply_to_seq, fwd_chat_id, fwd_seq, fwd_sender_id, fwd_sent_at_ms, sent_at_ms, \
             mention_ids, attachment) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        sql_u64(new.chat_id),
        sql_u64(seq),
        sql_u64(new.sender_id),
        new.client_msg_id,
        new.kind as i32,
        new.text,
        new.file_id,
        sql_u64(new.reply_to_seq),
        forward.map(|f| sql_u64(f.chat_id)),
        forward.map(|f| sql_u64(f.seq)),
        forward.map(|f| sql_u64(f.sender_id)),
        forward.map(|f| f.sent_at_ms),
        new.now_ms,
        join_ids(&new.mention_ids),
        new.attachment.as_ref().map(encode_blob),
    ])?;
    let message = pb::Message {
        chat_id: new.chat_id,
        seq,
        sender_id: new.sender_id,
        kind: new.kind as i32,
        text: new.text.clone(),
        file_id: new.file_id.clone(),
        attachment: new.attachment.clone(),
        reply_to_seq: new.reply_to_seq,
        forwarded_from: new.forwarded_from,
        sent_at_ms: new.now_ms,
        mention_ids: new.mention_ids.clone(),
        client_msg_id: new.client_msg_id.clone(),
        ..Default::default()
    };
    let event = pb::ChatEvent {
        chat_id: new.chat_id,
        seq,
        at_ms: new.now_ms,
        actor_id: new.sender_id,
        body: Some(Body::MessageCreated(message.clone())),
    };
    events::insert(c, &event)?;
    Ok(SendOutcome {
        message,
        event: Some(event),
    })
}

pub(super) fn edit_message(
    c: &Connection,
    chat_id: u64,
    seq: u64,
    actor: Actor,
    text: &str,
    now_ms: i64,
) -> StoreResult<(pb::Message, pb::ChatEvent)> {
    live_chat(c, chat_id)?;
    events::ensure_members_unchanged(c, chat_id, actor.members_seq)?;
    let before = existing_live(c, chat_id, seq)?;
    // The history keeps each replaced text with the time it was written.
    let written_at = if before.edited {
        before.edited_at_ms
    } else {
        before.sent_at_ms
    };
    c.prepare_cached(
        "INSERT INTO message_edits (chat_id, seq, text, at_ms) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        sql_u64(chat_id),
        sql_u64(seq),
        before.text,
        written_at
    ])?;
    c.prepare_cached(
        "DELETE FROM message_edits WHERE chat_id = ?1 AND seq = ?2 AND id <= \
         (SELECT id FROM message_edits WHERE chat_id = ?1 AND seq = ?2 \
          ORDER BY id DESC LIMIT 1 OFFSET ?3)",
    )?
    .execute(params![
        sql_u64(chat_id),
        sql_u64(seq),
        MAX_KEPT_EDITS as i64
    ])?;
    c.prepare_cached(
        "UPDATE messages SET text = ?3, edited = 1, edited_at_ms = ?4 \
         WHERE chat_id = ?1 AND seq = ?2",
    )?
    .execute(params![sql_u64(chat_id), sql_u64(seq), text, now_ms])?;
    let event = events::append(
        c,
        chat_id,
        actor.user_id,
        now_ms,
        Body::MessageEdited(pb::MessageEdited {
            message_seq: seq,
            text: text.to_string(),
            edited_at_ms: now_ms,
        }),
    )?;
    Ok((existing(c, chat_id, seq)?, event))
}

pub(super) fn delete_message(
    c: &Connection,
    chat_id: u64,
    seq: u64,
    actor: Actor,
    now_ms: i64,
) -> StoreResult<pb::ChatEvent> {
    live_chat(c, chat_id)?;
    events::ensure_members_unchanged(c, chat_id, actor.members_seq)?;
    existing_live(c, chat_id, seq)?;
    let key = params![sql_u64(chat_id), sql_u64(seq)];
    c.prepare_cached(
        "UPDATE messages SET text = '', file_id = '', attachment = NULL, mention_ids = '', deleted = 1, \
             deleted_at_ms = ?3 \
         WHERE chat_id = ?1 AND seq = ?2",
    )?
    .execute(params![sql_u64(chat_id), sql_u64(seq), now_ms])?;
    c.prepare_cached("DELETE FROM reactions WHERE chat_id = ?1 AND seq = ?2")?
        .execute(key)?;
    c.prepare_cached("DELETE FROM message_edits WHERE chat_id = ?1 AND seq = ?2")?
        .execute(key)?;
    events::purge_edit_texts(c, chat_id, seq)?;
    events::append(
        c,
        chat_id,
        actor.user_id,
        now_ms,
        Body::MessageDeleted(pb::MessageDeleted { message_seq: seq }),
    )
}

pub(super) fn hide_message(
    c: &Connection,
    chat_id: u64,
    seq: u64,
    user_id: u64,
) -> StoreResult<()> {
    existing(c, chat_id, seq)?;
    c.prepare_cached("INSERT OR IGNORE INTO hidden (chat_id, user_id, seq) VALUES (?1, ?2, ?3)")?
        .execute(params![sql_u64(chat_id), sql_u64(user_id), sql_u64(seq)])?;
    Ok(())
}

pub(super) fn set_reaction(
    c: &Connection,
    chat_id: u64,
    seq: u64,
    actor: Actor,
    emoji: &str,
    change: ReactionChange,
    now_ms: i64,
) -> StoreResult<(pb::Message, Option<pb::ChatEvent>)> {
    live_chat(c, chat_id)?;
    events::ensure_members_unchanged(c, chat_id, actor.members_seq)?;
    let user_id = actor.user_id;
    let before = existing_live(c, chat_id, seq)?;
    let changed = match change {
        ReactionChange::Add { max_emoji } => {
            ensure_user(c, user_id)?;
            let new_emoji = !before.reactions.iter().any(|r| r.emoji == emoji);
            if new_emoji && before.reactions.len() >= max_emoji {
                return Err(StoreError::Conflict(ConflictKind::TooManyEmoji {
                    max_emoji,
                }));
            }
            c.prepare_cached(
                "INSERT OR IGNORE INTO reactions (chat_id, seq, emoji, user_id, at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                sql_u64(chat_id),
                sql_u64(seq),
                emoji,
                sql_u64(user_id),
                now_ms
            ])?
        }
        ReactionChange::Remove => c
            .prepare_cached(
                "DELETE FROM reactions \
                 WHERE chat_id = ?1 AND seq = ?2 AND emoji = ?3 AND user_id = ?4",
            )?
            .execute(params![
                sql_u64(chat_id),
                sql_u64(seq),
                emoji,
                sql_u64(user_id)
            ])?,
    };
    if changed == 0 {
        return Ok((before, None));
    }
    let event = events::append(
        c,
        chat_id,
        user_id,
        now_ms,
        Body::ReactionChanged(pb::ReactionChanged {
            message_seq: seq,
            emoji: emoji.to_string(),
            user_id,
            added: matches!(change, ReactionChange::Add { .. }),
        }),
    )?;
    Ok((existing(c, chat_id, seq)?, Some(event)))
}

pub(super) fn history(c: &Connection, q: &HistoryQuery) -> StoreResult<Vec<pb::Message>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    // Inclusive upper bound: below before_seq and at most up_to_seq.
    let upper = match q.before_seq {
        0 => q.up_to_seq,
        before => q.up_to_seq.min(before - 1),
    };
    let newest_first = q.after_seq == 0;
    let order = if newest_first { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m \
         WHERE m.chat_id = ?1 AND m.seq > ?2 AND m.seq <= ?3 \
           AND NOT EXISTS (SELECT 1 FROM hidden h \
                           WHERE h.chat_id = m.chat_id AND h.user_id = ?4 AND h.seq = m.seq) \
         ORDER BY m.seq {order} LIMIT ?5"
    );
    let mut messages = query_messages(
        c,
        &sql,
        params![
            sql_u64(q.chat_id),
            sql_u64(q.after_seq),
            sql_u64(upper),
            sql_u64(q.viewer),
            q.limit
        ],
    )?;
    if newest_first {
        messages.reverse();
    }
    Ok(messages)
}

pub(super) fn edits(c: &Connection, chat_id: u64, seq: u64) -> StoreResult<Vec<pb::MessageEdit>> {
    existing(c, chat_id, seq)?;
    let mut stmt = c.prepare_cached(
        "SELECT text, at_ms FROM message_edits WHERE chat_id = ?1 AND seq = ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![sql_u64(chat_id), sql_u64(seq)], |row| {
        Ok(pb::MessageEdit {
            text: row.get(0)?,
            at_ms: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn mark_receipt(
    c: &Connection,
    chat_id: u64,
    user_id: u64,
    kind: pb::ReceiptKind,
    up_to_seq: u64,
) -> StoreResult<Option<(u64, u64)>> {
    let cursors = c
        .prepare_cached(
            "SELECT s.delivered_seq, s.read_seq, c.last_seq \
             FROM members m \
             JOIN user_chat_state s ON s.chat_id = m.chat_id AND s.user_id = m.user_id \
             JOIN chats c ON c.id = m.chat_id \
             WHERE m.chat_id = ?1 AND m.user_id = ?2 AND m.left_at_seq IS NULL",
        )?
        .query_row(params![sql_u64(chat_id), sql_u64(user_id)], |row| {
            Ok((get_u64(row, 0)?, get_u64(row, 1)?, get_u64(row, 2)?))
        })
        .optional()?;
    let Some((delivered, read, last_seq)) = cursors else {
        return Err(StoreError::NotFound("member"));
    };
    // A cursor never points past the log.
    let up_to = up_to_seq.min(last_seq);
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
    c.prepare_cached(
        "UPDATE user_chat_state SET delivered_seq = ?3, read_seq = ?4 \
         WHERE chat_id = ?1 AND user_id = ?2",
    )?
    .execute(params![
        sql_u64(chat_id),
        sql_u64(user_id),
        sql_u64(new_delivered),
        sql_u64(new_read)
    ])?;
    Ok(Some((new_delivered, new_read)))
}

pub(super) fn receipts(c: &Connection, chat_id: u64) -> StoreResult<Vec<pb::MemberReceipt>> {
    let mut stmt = c.prepare_cached(
        "SELECT m.user_id, s.delivered_seq, s.read_seq \
         FROM members m \
         JOIN user_chat_state s ON s.chat_id = m.chat_id AND s.user_id = m.user_id \
         WHERE m.chat_id = ?1 AND m.left_at_seq IS NULL ORDER BY m.user_id",
    )?;
    let rows = stmt.query_map([sql_u64(chat_id)], |row| {
        Ok(pb::MemberReceipt {
            user_id: get_u64(row, 0)?,
            delivered_seq: get_u64(row, 1)?,
            read_seq: get_u64(row, 2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
