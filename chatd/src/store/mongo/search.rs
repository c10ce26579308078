//! Full-text search over messages.
//!
//! Each message stores its distinct folded tokens (`tokens`, multikey index; see `tokens` for the
//! folding, which matches the SQLite backend's FTS5 index). A search:
//! 1. preselects in the database: every whole query token with `$all`, the last (prefix) token with
//!    an anchored `$regex` on the same array, within the given chats and seq limits, not deleted,
//!    not hidden for the viewer, not from a sender the viewer blocked, before the page cursor — newest first. Where the server has a
//!    text index on `tokens` (MongoDB), a `$text` clause over the whole tokens narrows the scan
//!    through that index; FerretDB has none and relies on the multikey index alone.
//! 2. checks each candidate exactly in memory (each query word is a phrase: its tokens adjacent
//!    and in order), stopping once the page is full.
//!
//! Deleted messages have no tokens and an empty text, so deleted content is never found.

use chatproto::pb;
use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};

use super::docs::i;
use super::tokens::Query;
use super::{MongoStore, error};
use crate::store::{SearchQuery, StoreError, StoreResult};

/// Candidates fetched per round trip while filtering.
const BATCH: u32 = 200;

/// Why search is refused when message texts are sealed (`FAILED_PRECONDITION`).
pub(super) const SEALED_SEARCH: &str = "search is not available on this server: message texts are \
     encrypted before they are stored in mongodb (--encryption-key-file), so the database cannot \
     search them";

/// An anchored pattern matching strings that start with `prefix`, with every character that is
/// not a letter or digit escaped (tokens have none, but the pattern must never be malformed).
fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    pattern.push('^');
    for c in prefix.chars() {
        if !c.is_alphanumeric() {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

/// The database filter that preselects candidates for `q` (see the module docs).
fn candidate_filter(q: &SearchQuery, query: &Query, text_index: bool) -> Document {
    let scopes: Vec<Document> = q
        .chats
        .iter()
        .map(|&(chat, max_seq)| doc! { "chat_id": i(chat), "seq": { "$lte": i(max_seq) } })
        .collect();
    let mut and = vec![
        doc! { "$or": scopes },
        doc! { "tokens": { "$regex": prefix_pattern(query.prefix()) } },
    ];
    if let Some((sent_at, chat_id, seq)) = q.before {
        let (chat_id, seq) = (i(chat_id), i(seq));
        and.push(doc! { "$or": [
            { "sent_at_ms": { "$lt": sent_at } },
            { "sent_at_ms": sent_at, "chat_id": { "$lt": chat_id } },
            { "sent_at_ms": sent_at, "chat_id": chat_id, "seq": { "$lt": seq } },
        ] });
    }
    let whole = query.whole_tokens();
    let mut filter = doc! { "deleted": false, "hidden_for": { "$ne": i(q.viewer) }, "$and": and };
    if !q.senders_blocked.is_empty() {
        let blocked: Vec<i64> = q.senders_blocked.iter().map(|&id| i(id)).collect();
        filter.insert("sender_id", doc! { "$nin": blocked });
    }
    if !whole.is_empty() {
        if text_index {
            // Any of the whole tokens: a superset of the matches, served by the text index.
            filter.insert("$text", doc! { "$search": whole.join(" ") });
        }
        filter.insert("tokens", doc! { "$all": whole });
    }
    filter
}

impl MongoStore {
    pub(super) async fn search_messages(&self, q: &SearchQuery) -> StoreResult<Vec<pb::Message>> {
        // Refused whatever the query and the chats: never answered with nothing found.
        if self.fields.sealed() {
            return Err(StoreError::Unsupported(SEALED_SEARCH));
        }
        let Some(query) = Query::parse(&q.text) else {
            return Ok(Vec::new());
        };
        if q.chats.is_empty() || q.limit == 0 {
            return Ok(Vec::new());
        }
        let mut cursor = self
            .c
            .messages
            .find(candidate_filter(q, &query, self.text_index))
            .sort(doc! { "sent_at_ms": -1, "chat_id": -1, "seq": -1 })
            .batch_size(BATCH.min(q.limit.saturating_mul(2)).max(1))
            .await
            .map_err(error::map)?;
        let want = usize::try_from(q.limit).unwrap_or(usize::MAX);
        let mut found = Vec::new();
        while let Some(candidate) = cursor.try_next().await.map_err(error::map)? {
            if query.matches(&candidate.text) {
                found.push(candidate.wire(&self.fields)?);
                if found.len() == want {
                    break;
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_patterns_are_anchored_and_escaped() {
        assert_eq!(prefix_pattern("wor"), "^wor");
        assert_eq!(prefix_pattern("ça"), "^ça");
        assert_eq!(prefix_pattern("a.b"), "^a\\.b");
    }

    #[test]
    fn the_filter_has_scopes_cursor_and_tokens() {
        let q = SearchQuery {
            viewer: 7,
            text: "hello wor".into(),
            chats: vec![(1, 5)],
            before: Some((10, 1, 3)),
            limit: 5,
            senders_blocked: Vec::new(),
        };
        let query = Query::parse(&q.text).unwrap();
        let filter = candidate_filter(&q, &query, false);
        assert_eq!(
            filter.get_document("tokens").unwrap(),
            &doc! { "$all": ["hello"] }
        );
        assert!(!filter.contains_key("$text"));
        assert_eq!(filter.get_array("$and").unwrap().len(), 3);
        let with_index = candidate_filter(&q, &query, true);
        assert_eq!(
            with_index.get_document("$text").unwrap(),
            &doc! { "$search": "hello" }
        );
    }
}
