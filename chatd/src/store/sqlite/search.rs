//! Full-text search over message text with FTS5.
//!
//! User input is never handed to FTS5 as query syntax: it is split into whitespace-separated
//! words, each word becomes a quoted FTS5 string (inner `"` doubled), and the strings are joined
//! with spaces (an implicit AND). The last one gets a `*` so it matches as a prefix. Inside a
//! quoted string operators (`AND`, `NEAR`, `*`, `^`, `:` and the like) are plain text, so no input
//! can cause a syntax error or change the meaning of the query. Words with no letter or digit
//! would become empty strings and are dropped; a query of only such words matches nothing.

use chatproto::pb;
use rusqlite::{Connection, params};

use super::convert::{json_ids, sql_u64};
use super::messages::{MESSAGE_COLUMNS, query_messages};
use crate::store::{SearchQuery, StoreResult};

/// The FTS5 query for `text`, or `None` when it has no searchable word.
pub(super) fn fts_query(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .collect();
    let last = words.len().checked_sub(1)?;
    let mut query = String::with_capacity(text.len() + 4 * words.len());
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            query.push(' ');
        }
        query.push('"');
        query.push_str(&word.replace('"', "\"\""));
        query.push('"');
        if i == last {
            query.push('*');
        }
    }
    Some(query)
}

/// The `(chat_id, max_seq)` pairs as a JSON array of pairs, the form `json_each` reads.
fn json_scopes(chats: &[(u64, u64)]) -> String {
    let pairs: Vec<String> = chats
        .iter()
        .map(|&(chat, max_seq)| format!("[{},{}]", sql_u64(chat), sql_u64(max_seq)))
        .collect();
    format!("[{}]", pairs.join(","))
}

pub(super) fn search(c: &Connection, q: &SearchQuery) -> StoreResult<Vec<pb::Message>> {
    let Some(fts) = fts_query(&q.text) else {
        return Ok(Vec::new());
    };
    if q.chats.is_empty() || q.limit == 0 {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH scope(chat_id, max_seq) AS ( \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') \
             FROM json_each(?2)) \
         SELECT {MESSAGE_COLUMNS} FROM messages_fts \
         JOIN messages m ON m.id = messages_fts.rowid \
         JOIN scope ON scope.chat_id = m.chat_id AND m.seq <= scope.max_seq \
         WHERE messages_fts MATCH ?1 AND m.deleted = 0 \
           AND NOT EXISTS (SELECT 1 FROM hidden h \
                           WHERE h.chat_id = m.chat_id AND h.user_id = ?3 AND h.seq = m.seq) \
           AND (NOT ?4 OR (m.sent_at_ms, m.chat_id, m.seq) < (?5, ?6, ?7)) \
           AND m.sender_id NOT IN (SELECT value FROM json_each(?9)) \
         ORDER BY m.sent_at_ms DESC, m.chat_id DESC, m.seq DESC LIMIT ?8"
    );
    let (after, sent_at, chat_id, seq) = match q.before {
        Some((sent_at, chat_id, seq)) => (true, sent_at, sql_u64(chat_id), sql_u64(seq)),
        None => (false, 0, 0, 0),
    };
    query_messages(
        c,
        &sql,
        params![
            fts,
            json_scopes(&q.chats),
            sql_u64(q.viewer),
            after,
            sent_at,
            chat_id,
            seq,
            q.limit,
            json_ids(&q.senders_blocked)
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_and_the_last_is_a_prefix() {
        assert_eq!(
            fts_query("hello wor").as_deref(),
            Some("\"hello\" \"wor\"*")
        );
        assert_eq!(
            fts_query("say \"hi\" NEAR(").as_deref(),
            Some("\"say\" \"\"\"hi\"\"\" \"NEAR(\"*")
        );
        assert_eq!(fts_query("  -- ** "), None);
        assert_eq!(fts_query(""), None);
    }

    #[test]
    fn scopes_encode_as_pairs() {
        assert_eq!(
            json_scopes(&[(1, 5), (2, u64::MAX)]),
            format!("[[1,5],[2,{}]]", i64::MAX)
        );
    }
}
