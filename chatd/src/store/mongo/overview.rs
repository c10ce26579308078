//! Reads across the whole server for server admins: [`OverviewStore`]. Plain queries; a chat
//! counts once its creation committed (`last_seq > 0`), as everywhere in this backend.

use std::collections::HashSet;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};

use super::docs::{ChatDoc, MessageDoc, i, u};
use super::{MongoStore, error, find_all};
use crate::store::{AllChatsQuery, ChatRecord, OverviewStore, SentQuery, StoreCounts, StoreResult};

/// A pattern matching strings that contain `text`, ignoring the case of ASCII letters only
/// (`[aA]`, not the `i` option, which folds other letters too): the SQLite backend's rule.
/// Everything that is not a letter or digit is escaped, so the pattern is never malformed.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() * 4);
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            pattern.extend(['[', c.to_ascii_lowercase(), c.to_ascii_uppercase(), ']']);
        } else {
            if !c.is_alphanumeric() {
                pattern.push('\\');
            }
            pattern.push(c);
        }
    }
    pattern
}

/// The filter of chats that exist: created (head past 0) and not deleted.
fn live_chats() -> Document {
    doc! { "deleted": false, "last_seq": { "$gt": 0_i64 } }
}

impl MongoStore {
    async fn find_chats(&self, q: &AllChatsQuery) -> StoreResult<Vec<ChatRecord>> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = live_chats();
        let mut id = doc! { "$gt": i(q.after_id) };
        if let Some(member) = q.member_id {
            let chats: Vec<i64> = self
                .member_docs(doc! { "user_id": i(member), "left_at_seq": null })
                .await?
                .iter()
                .map(|m| m.chat_id)
                .collect();
            id.insert("$in", chats);
        }
        filter.insert("_id", id);
        if let Some(kind) = q.kind {
            filter.insert("kind", kind as i32);
        }
        if !q.title.is_empty() {
            filter.insert("title", doc! { "$regex": contains_pattern(&q.title) });
        }
        let docs: Vec<ChatDoc> = self
            .c
            .chats
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::from(q.limit))
            .await
            .map_err(error::map)?
            .try_collect()
            .await
            .map_err(error::map)?;
        Ok(docs.iter().map(ChatDoc::record).collect())
    }

    async fn find_sent(&self, q: &SentQuery) -> StoreResult<Vec<(u64, u64)>> {
        let (limit, mut after) = (q.limit, q.after);
        let mut found = Vec::new();
        // Messages of deleted chats are left out after the query, so a batch can come back
        // short: query on from the last candidate until the page is full or none are left.
        while found.len() < limit as usize {
            let mut filter = doc! {
                "sender_id": i(q.sender_id),
                "deleted": false,
                "$or": [
                    { "chat_id": { "$gt": i(after.0) } },
                    { "chat_id": i(after.0), "seq": { "$gt": i(after.1) } },
                ],
            };
            if let Some(chat) = q.chat_id {
                filter.insert("chat_id", i(chat));
            }
            if let Some(since) = q.since_ms {
                filter.insert("sent_at_ms", doc! { "$gte": since });
            }
            let batch: Vec<MessageDoc> = self
                .c
                .messages
                .find(filter)
                .sort(doc! { "chat_id": 1, "seq": 1 })
                .limit(i64::from(limit))
                .await
                .map_err(error::map)?
                .try_collect()
                .await
                .map_err(error::map)?;
            let Some(last) = batch.last() else {
                break;
            };
            after = (u(last.chat_id), u(last.seq));
            let mut chat_ids: Vec<i64> = batch.iter().map(|m| m.chat_id).collect();
            chat_ids.dedup();
            let mut live = live_chats();
            live.insert("_id", doc! { "$in": chat_ids });
            let live: HashSet<i64> = find_all(&self.c.chats, live, None)
                .await?
                .iter()
                .map(|c| c.id)
                .collect();
            found.extend(
                batch
                    .iter()
                    .filter(|m| live.contains(&m.chat_id))
                    .map(|m| (u(m.chat_id), u(m.seq))),
            );
        }
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn count_all(&self) -> StoreResult<StoreCounts> {
        let users = self.c.users.count_documents(doc! { "deleted": false });
        let chats = self.c.chats.count_documents(live_chats());
        let messages = self.c.messages.count_documents(doc! { "deleted": false });
        Ok(StoreCounts {
            users: users.await.map_err(error::map)?,
            chats: chats.await.map_err(error::map)?,
            messages: messages.await.map_err(error::map)?,
        })
    }
}

#[async_trait]
impl OverviewStore for MongoStore {
    async fn all_chats(&self, query: AllChatsQuery) -> StoreResult<Vec<ChatRecord>> {
        self.deadline(self.find_chats(&query)).await
    }

    async fn sent_messages(&self, query: SentQuery) -> StoreResult<Vec<(u64, u64)>> {
        self.deadline(self.find_sent(&query)).await
    }

    async fn counts(&self) -> StoreResult<StoreCounts> {
        self.deadline(self.count_all()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_patterns_fold_ascii_only_and_escape() {
        assert_eq!(contains_pattern("Ab1"), "[aA][bB]1");
        assert_eq!(contains_pattern("é.*"), "é\\.\\*");
    }
}
