//! Per-user views of chats: the chat list, one chat with the user's state, sync heads and the
//! peers a user shares chats with (the reading half of [`ChatStore`](crate::store::ChatStore)).
//!
//! Without joins, a user's list reads their memberships, then their chats by id, and orders them
//! in memory (pinned first, then last activity, then id, all descending). That is one pass over the
//! user's own chats per page, which stays small for a person; the per-entry counts are then one
//! query each for the page only.

use std::collections::HashMap;

use chatproto::pb;
use mongodb::bson::doc;

use super::docs::{ChatDoc, MemberDoc, MessageDoc, i, u};
use super::{MongoStore, error, find_all};
use crate::store::{StoreResult, UserChat, UserChatsQuery};

impl MongoStore {
    /// Chats by id (any state).
    async fn chats_by_id(&self, ids: Vec<i64>) -> StoreResult<HashMap<i64, ChatDoc>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let docs: Vec<ChatDoc> =
            find_all(&self.c.chats, doc! { "_id": { "$in": ids } }, None).await?;
        Ok(docs.into_iter().map(|c| (c.id, c)).collect())
    }

    /// The entry of `member` in `chat`, with what the user can see of the chat's messages: up to
    /// the event that ended their membership for a former member, and only committed messages.
    async fn entry(&self, chat: &ChatDoc, member: &MemberDoc) -> StoreResult<UserChat> {
        let up_to = member.left_at_seq.unwrap_or(i64::MAX).min(chat.last_seq);
        let user = member.user_id;
        let unread = self
            .c
            .messages
            .count_documents(doc! {
                "chat_id": chat.id,
                // History from before the user joined is not "unread" for them.
                "seq": { "$gt": member.read_seq.max(member.joined_at_seq), "$lte": up_to },
                "sender_id": { "$ne": user },
                "deleted": false,
                "hidden_for": { "$ne": user },
            })
            .await
            .map_err(error::map)?;
        let last: Option<MessageDoc> = self
            .c
            .messages
            .find_one(doc! {
                "chat_id": chat.id,
                "seq": { "$lte": up_to },
                "deleted": false,
                "hidden_for": { "$ne": user },
            })
            .sort(doc! { "seq": -1 })
            .await
            .map_err(error::map)?;
        Ok(UserChat {
            chat: chat.record(),
            member: member.record(),
            state: member.state(),
            unread_count: u32::try_from(unread).unwrap_or(u32::MAX),
            last_message: last.map(|m| m.wire(&self.fields)).transpose()?,
        })
    }

    pub(super) async fn list_user_chats(
        &self,
        user_id: u64,
        query: &UserChatsQuery,
    ) -> StoreResult<Vec<UserChat>> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = doc! { "user_id": i(user_id), "left_at_seq": null };
        if !query.include_archived {
            filter.insert("archived", false);
        }
        let members = self.member_docs(filter).await?;
        let chats = self
            .chats_by_id(members.iter().map(|m| m.chat_id).collect())
            .await?;
        // Chats still being created (seq 0) are not listed yet.
        let mut rows: Vec<(&MemberDoc, &ChatDoc)> = members
            .iter()
            .filter_map(|m| chats.get(&m.chat_id).map(|c| (m, c)))
            .filter(|(_, c)| !c.deleted && c.last_seq > 0)
            .collect();
        let key = |(m, c): &(&MemberDoc, &ChatDoc)| (m.pinned, c.last_activity_ms, u(c.id));
        rows.sort_by_key(|row| std::cmp::Reverse(key(row)));
        if let Some(after) = query.after {
            rows.retain(|row| key(row) < after);
        }
        rows.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
        let mut entries = Vec::with_capacity(rows.len());
        for (member, chat) in rows {
            entries.push(self.entry(chat, member).await?);
        }
        Ok(entries)
    }

    pub(super) async fn one_user_chat(
        &self,
        chat_id: u64,
        user_id: u64,
    ) -> StoreResult<Option<UserChat>> {
        let Some(member) = self.member_doc(chat_id, user_id).await? else {
            return Ok(None);
        };
        let mut chat = self
            .c
            .chats
            .find_one(doc! { "_id": i(chat_id) })
            .await
            .map_err(error::map)?;
        if chat.as_ref().is_some_and(|c| c.last_seq == 0) {
            chat = self.settled_chat(i(chat_id)).await?;
        }
        match chat {
            Some(chat) => Ok(Some(self.entry(&chat, &member).await?)),
            None => Ok(None),
        }
    }

    pub(super) async fn sync_heads(
        &self,
        user_id: u64,
        known: &[u64],
    ) -> StoreResult<Vec<pb::ChatHead>> {
        let current = self
            .member_docs(doc! { "user_id": i(user_id), "left_at_seq": null })
            .await?;
        let chats = self
            .chats_by_id(current.iter().map(|m| m.chat_id).collect())
            .await?;
        let mut heads: Vec<pb::ChatHead> = chats
            .values()
            .filter(|c| !c.deleted && c.last_seq > 0)
            .map(|c| pb::ChatHead {
                chat_id: u(c.id),
                last_seq: u(c.last_seq),
                member: true,
            })
            .collect();
        if !known.is_empty() {
            let known: Vec<i64> = known.iter().map(|&id| i(id)).collect();
            let former = self
                .member_docs(doc! { "user_id": i(user_id), "chat_id": { "$in": known }, "left_at_seq": { "$ne": null } })
                .await?;
            heads.extend(former.iter().map(|m| pb::ChatHead {
                chat_id: u(m.chat_id),
                last_seq: m.left_at_seq.map(u).unwrap_or(0),
                member: false,
            }));
        }
        heads.sort_by_key(|h| h.chat_id);
        Ok(heads)
    }

    pub(super) async fn peers(&self, user_id: u64) -> StoreResult<Vec<u64>> {
        let mine = self
            .member_docs(doc! { "user_id": i(user_id), "left_at_seq": null })
            .await?;
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let chat_ids: Vec<i64> = mine.iter().map(|m| m.chat_id).collect();
        let others = self
            .member_docs(doc! { "chat_id": { "$in": chat_ids }, "left_at_seq": null, "user_id": { "$ne": i(user_id) } })
            .await?;
        let mut peers: Vec<u64> = others.iter().map(|m| u(m.user_id)).collect();
        peers.sort_unstable();
        peers.dedup();
        Ok(peers)
    }
}
