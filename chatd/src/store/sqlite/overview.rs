//! Reads across the whole server for server admins: the SQL behind
//! [`OverviewStore`](crate::store::OverviewStore).

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::chats::{CHAT_COLUMNS, chat_from_row};
use super::convert::{get_u64, sql_u64};
use crate::store::{AllChatsQuery, ChatRecord, OverviewStore, SentQuery, StoreCounts, StoreResult};

fn all_chats(c: &Connection, q: &AllChatsQuery) -> StoreResult<Vec<ChatRecord>> {
    // SQLite's lower() folds ASCII letters only, as the query's to_ascii_lowercase does.
    let sql = format!(
        "SELECT {CHAT_COLUMNS} FROM chats c \
         WHERE c.deleted = 0 AND c.id > ?1 \
           AND (?2 = 0 OR c.kind = ?2) \
           AND (?3 = '' OR instr(lower(c.title), ?3) > 0) \
           AND (?4 = 0 OR EXISTS (SELECT 1 FROM members m \
                WHERE m.chat_id = c.id AND m.user_id = ?4 AND m.left_at_seq IS NULL)) \
         ORDER BY c.id LIMIT ?5"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            sql_u64(q.after_id),
            q.kind.map_or(0, |k| k as i32),
            q.title.to_ascii_lowercase(),
            sql_u64(q.member_id.unwrap_or(0)),
            q.limit
        ],
        |row| chat_from_row(row, 0),
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn sent_messages(c: &Connection, q: &SentQuery) -> StoreResult<Vec<(u64, u64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT m.chat_id, m.seq FROM messages m JOIN chats c ON c.id = m.chat_id \
         WHERE m.sender_id = ?1 AND m.deleted = 0 AND c.deleted = 0 \
           AND (?2 = 0 OR m.chat_id = ?2) AND (m.chat_id, m.seq) > (?3, ?4) \
           AND (?6 IS NULL OR m.sent_at_ms >= ?6) \
         ORDER BY m.chat_id, m.seq LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![
            sql_u64(q.sender_id),
            sql_u64(q.chat_id.unwrap_or(0)),
            sql_u64(q.after.0),
            sql_u64(q.after.1),
            q.limit,
            q.since_ms
        ],
        |row| Ok((get_u64(row, 0)?, get_u64(row, 1)?)),
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn counts(c: &Connection) -> StoreResult<StoreCounts> {
    let count = |sql: &str| -> StoreResult<u64> {
        let n: i64 = c.prepare_cached(sql)?.query_row([], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(StoreCounts {
        users: count("SELECT count(*) FROM users WHERE deleted = 0")?,
        chats: count("SELECT count(*) FROM chats WHERE deleted = 0")?,
        messages: count("SELECT count(*) FROM messages WHERE deleted = 0")?,
    })
}

#[async_trait]
impl OverviewStore for SqliteStore {
    async fn all_chats(&self, query: AllChatsQuery) -> StoreResult<Vec<ChatRecord>> {
        self.read(move |c| all_chats(c, &query)).await
    }

    async fn sent_messages(&self, query: SentQuery) -> StoreResult<Vec<(u64, u64)>> {
        self.read(move |c| sent_messages(c, &query)).await
    }

    async fn counts(&self) -> StoreResult<StoreCounts> {
        self.read(counts).await
    }
}
