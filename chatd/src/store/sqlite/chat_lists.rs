//! Per-user views of chats: the chat list, one chat with the user's state, sync heads and the
//! peers a user shares chats with (the reading half of [`ChatStore`](crate::store::ChatStore)).

use chatproto::pb;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::chats::{
    CHAT_COLUMNS, CHAT_WIDTH, MEMBER_COLUMNS, MEMBER_WIDTH, STATE_COLUMNS, chat_from_row,
    member_from_row, state_from_row,
};
use super::convert::{count_u32, get_u64, json_ids, sql_u64};
use super::messages::{MESSAGE_COLUMNS, query_messages};
use crate::store::{StoreResult, UserChat, UserChatsQuery};

/// `chats c JOIN members m JOIN user_chat_state s` for one user, with the columns
/// [`entry_from_row`] reads.
const ENTRY_SELECT: &str = "FROM members m \
     JOIN chats c ON c.id = m.chat_id \
     JOIN user_chat_state s ON s.chat_id = m.chat_id AND s.user_id = m.user_id";

fn entry_sql(filter: &str) -> String {
    format!("SELECT {CHAT_COLUMNS}, {MEMBER_COLUMNS}, {STATE_COLUMNS} {ENTRY_SELECT} {filter}")
}

/// Reads an entry without its unread count and last message.
fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<UserChat> {
    Ok(UserChat {
        chat: chat_from_row(row, 0)?,
        member: member_from_row(row, CHAT_WIDTH)?,
        state: state_from_row(row, CHAT_WIDTH + MEMBER_WIDTH)?,
        unread_count: 0,
        last_message: None,
    })
}

/// Fills in what the user can see of the chat's messages: up to the event that ended their
/// membership for a former member.
fn complete(c: &Connection, entry: &mut UserChat) -> StoreResult<()> {
    let user = sql_u64(entry.member.user_id);
    let chat = sql_u64(entry.chat.id);
    let up_to = sql_u64(entry.member.left_at_seq.unwrap_or(u64::MAX));
    let unread: i64 = c
        .prepare_cached(
            "SELECT count(*) FROM messages m \
             WHERE m.chat_id = ?1 AND m.seq > ?2 AND m.seq <= ?3 AND m.sender_id != ?4 \
               AND m.deleted = 0 \
               AND NOT EXISTS (SELECT 1 FROM hidden h \
                               WHERE h.chat_id = m.chat_id AND h.user_id = ?4 AND h.seq = m.seq)",
        )?
        .query_row(
            // History from before the user joined is not "unread" for them.
            params![
                chat,
                sql_u64(entry.state.read_seq.max(entry.member.joined_at_seq)),
                up_to,
                user
            ],
            |row| row.get(0),
        )?;
    entry.unread_count = count_u32(unread);
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m \
         WHERE m.chat_id = ?1 AND m.seq <= ?2 AND m.deleted = 0 \
           AND NOT EXISTS (SELECT 1 FROM hidden h \
                           WHERE h.chat_id = m.chat_id AND h.user_id = ?3 AND h.seq = m.seq) \
         ORDER BY m.seq DESC LIMIT 1"
    );
    entry.last_message = query_messages(c, &sql, params![chat, up_to, user])?
        .into_iter()
        .next();
    Ok(())
}

pub(super) fn user_chats(
    c: &Connection,
    user_id: u64,
    query: &UserChatsQuery,
) -> StoreResult<Vec<UserChat>> {
    // Descending on all three keys, so "strictly after" is a plain row-value comparison.
    let sql = entry_sql(
        "WHERE m.user_id = ?1 AND m.left_at_seq IS NULL AND c.deleted = 0 \
           AND (?2 OR s.archived = 0) \
           AND (NOT ?3 OR (s.pinned, c.last_activity_ms, c.id) < (?4, ?5, ?6)) \
         ORDER BY s.pinned DESC, c.last_activity_ms DESC, c.id DESC LIMIT ?7",
    );
    let (after, pinned, activity, chat_id) = match query.after {
        Some((pinned, activity, chat_id)) => (true, pinned, activity, sql_u64(chat_id)),
        None => (false, false, 0, 0),
    };
    let mut entries = {
        let mut stmt = c.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                sql_u64(user_id),
                query.include_archived,
                after,
                pinned,
                activity,
                chat_id,
                query.limit
            ],
            entry_from_row,
        )?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    for entry in &mut entries {
        complete(c, entry)?;
    }
    Ok(entries)
}

pub(super) fn user_chat(
    c: &Connection,
    chat_id: u64,
    user_id: u64,
) -> StoreResult<Option<UserChat>> {
    let sql = entry_sql("WHERE m.chat_id = ?1 AND m.user_id = ?2");
    let entry = c
        .prepare_cached(&sql)?
        .query_row(params![sql_u64(chat_id), sql_u64(user_id)], entry_from_row)
        .optional()?;
    match entry {
        Some(mut entry) => {
            complete(c, &mut entry)?;
            Ok(Some(entry))
        }
        None => Ok(None),
    }
}

pub(super) fn heads(c: &Connection, user_id: u64, known: &[u64]) -> StoreResult<Vec<pb::ChatHead>> {
    let mut stmt = c.prepare_cached(
        "SELECT c.id, c.last_seq, 1 FROM members m JOIN chats c ON c.id = m.chat_id \
         WHERE m.user_id = ?1 AND m.left_at_seq IS NULL AND c.deleted = 0 \
         UNION ALL \
         SELECT m.chat_id, m.left_at_seq, 0 FROM members m \
         WHERE m.user_id = ?1 AND m.left_at_seq IS NOT NULL \
           AND m.chat_id IN (SELECT value FROM json_each(?2)) \
         ORDER BY 1",
    )?;
    let rows = stmt.query_map(params![sql_u64(user_id), json_ids(known)], |row| {
        Ok(pb::ChatHead {
            chat_id: get_u64(row, 0)?,
            last_seq: get_u64(row, 1)?,
            member: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn shared_chat_peers(c: &Connection, user_id: u64) -> StoreResult<Vec<u64>> {
    let mut stmt = c.prepare_cached(
        "SELECT DISTINCT other.user_id FROM members mine \
         JOIN members other ON other.chat_id = mine.chat_id \
         WHERE mine.user_id = ?1 AND mine.left_at_seq IS NULL \
           AND other.left_at_seq IS NULL AND other.user_id != ?1 \
         ORDER BY other.user_id",
    )?;
    let rows = stmt.query_map([sql_u64(user_id)], |row| get_u64(row, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
