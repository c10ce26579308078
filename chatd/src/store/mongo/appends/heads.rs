//! The heads group commit remembers: each chat's committed head with its `members_seq`, as
//! this store last read or committed it. A head is kept only while it is known exactly (read
//! from the chat document, which holds both together, or moved by a commit that follows it
//! directly); otherwise it is forgotten and read again when next needed.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use mongodb::bson::doc;

use super::{MAX_CACHED, lock};
use crate::store::mongo::docs::{ChatDoc, u};
use crate::store::mongo::{MongoStore, error};
use crate::store::{StoreError, StoreResult};

/// A chat's committed head as this store last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    /// The seq of its last event.
    pub seq: i64,
    /// Its `members_seq` at that event. A claim of `seq + 1` that succeeds proves that no
    /// event came since, so this is the membership the claimed messages are appended under.
    pub members_seq: i64,
}

impl MongoStore {
    /// Remembers `chat`'s head as read: the chat document holds its head and `members_seq`
    /// together (a head this store knows to be later stays).
    pub(in crate::store::mongo) fn note_read(&self, chat: &ChatDoc) {
        let mut heads = lock(&self.appends.heads);
        if heads.get(&chat.id).is_some_and(|h| h.seq >= chat.last_seq) {
            return;
        }
        if heads.len() >= MAX_CACHED {
            heads.clear();
        }
        let head = Head {
            seq: chat.last_seq,
            members_seq: chat.members_seq,
        };
        heads.insert(chat.id, head);
    }

    /// Remembers that an op holding `seqs` of `chat` committed, moving `members_seq` to
    /// `members_seq` if it changed membership. The head known before must be the seq just
    /// before the op's, or the op must set `members_seq` itself: otherwise what came between
    /// is unknown, and the head is forgotten (read again when next needed).
    pub(in crate::store::mongo) fn note_commit(
        &self,
        chat: i64,
        seqs: std::ops::RangeInclusive<i64>,
        members_seq: Option<i64>,
    ) {
        let mut heads = lock(&self.appends.heads);
        let before = heads.get(&chat).copied();
        let after = match (before, members_seq) {
            (Some(head), _) if head.seq >= *seqs.end() => return,
            (Some(head), members) if head.seq + 1 == *seqs.start() => Head {
                seq: *seqs.end(),
                members_seq: members.unwrap_or(head.members_seq),
            },
            (_, Some(members_seq)) => Head {
                seq: *seqs.end(),
                members_seq,
            },
            (_, None) => {
                heads.remove(&chat);
                return;
            }
        };
        if heads.len() >= MAX_CACHED {
            heads.clear();
        }
        heads.insert(chat, after);
    }

    /// Forgets `chat`'s head (it was deleted, or this store's idea of it is stale).
    pub(in crate::store::mongo) fn forget_head(&self, chat: i64) {
        lock(&self.appends.heads).remove(&chat);
    }

    /// The committed head of each chat that exists and is not deleted: from the cache, else read
    /// (all at once).
    pub(super) async fn heads_of(&self, chats: &[i64]) -> StoreResult<HashMap<i64, Head>> {
        let mut heads = HashMap::with_capacity(chats.len());
        let mut unknown = Vec::new();
        {
            let cached = lock(&self.appends.heads);
            for &chat in chats {
                match cached.get(&chat) {
                    Some(&head) => {
                        heads.insert(chat, head);
                    }
                    None => unknown.push(chat),
                }
            }
        }
        if unknown.is_empty() {
            return Ok(heads);
        }
        let docs: Vec<ChatDoc> = self
            .c
            .chats
            .find(doc! { "_id": { "$in": &unknown } })
            .await
            .map_err(error::map)?
            .try_collect()
            .await
            .map_err(error::map)?;
        for chat in docs {
            // Being created right now: wait for (or finish) the creation.
            let chat = if chat.last_seq == 0 {
                match self.live_chat(u(chat.id)).await {
                    Ok(chat) => chat,
                    Err(StoreError::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                }
            } else {
                chat
            };
            if !chat.deleted {
                self.note_read(&chat);
                heads.insert(
                    chat.id,
                    Head {
                        seq: chat.last_seq,
                        members_seq: chat.members_seq,
                    },
                );
            }
        }
        Ok(heads)
    }
}
