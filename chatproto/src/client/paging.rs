//! Reads that span several requests: every page of a list, a window of a chat's history, the
//! calls a chat recorded, and profiles (with presence) for more ids than one request may carry.

use super::{Client, ClientError};
use crate::pb;

/// At most this many pages are read by [`Client::list_all_chats`]: a server whose cursor never
/// ends must not keep the client busy forever.
const MAX_PAGES: usize = 1000;

/// Which messages of a chat [`Client::history`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRange {
    /// The latest messages.
    Latest,
    /// The messages just below this seq.
    Before(u64),
    /// The messages just above this seq.
    After(u64),
}

/// One page of a chat's messages.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Ascending by seq.
    pub messages: Vec<pb::Message>,
    /// Nothing lies beyond this page in the direction asked: for [`HistoryRange::Before`] and
    /// [`HistoryRange::Latest`], no older message; for [`HistoryRange::After`], no newer one.
    pub end: bool,
}

impl Client {
    /// Up to `limit` messages of a chat (0: the server's default page size) in `range`. A page
    /// shorter than `limit` costs one more request (of one message) to tell the end from a page
    /// the server cut by size.
    pub async fn history(
        &self,
        chat_id: u64,
        range: HistoryRange,
        limit: u32,
    ) -> Result<HistoryPage, ClientError> {
        let limit = if limit == 0 { self.page_size() } else { limit };
        let (before_seq, after_seq) = match range {
            HistoryRange::Latest => (0, 0),
            HistoryRange::Before(seq) => (seq, 0),
            HistoryRange::After(seq) => (0, seq),
        };
        let page = self
            .get_history(pb::GetHistory {
                chat_id,
                before_seq,
                after_seq,
                limit,
            })
            .await?;
        let beyond = match (range, page.messages.first(), page.messages.last()) {
            (_, None, _) | (_, _, None) => None,
            (HistoryRange::After(_), _, Some(last)) => Some((0, last.seq)),
            (_, Some(first), _) => Some((first.seq, 0)),
        };
        let end = match beyond {
            None => true,
            Some(_) if page.messages.len() >= limit as usize => false,
            // A short page is the end, or one the server cut at 256 KiB (spec 9.8): only an
            // empty page beyond it says which.
            Some((before_seq, after_seq)) => self
                .get_history(pb::GetHistory {
                    chat_id,
                    before_seq,
                    after_seq,
                    limit: 1,
                })
                .await?
                .messages
                .is_empty(),
        };
        Ok(HistoryPage {
            messages: page.messages,
            end,
        })
    }

    /// The calls a chat's history records (`call_ended` events, spec 14.4) with seqs in
    /// `after_seq < seq <= up_to_seq`, oldest first. `get_history` answers messages only, so a
    /// client that shows calls between messages reads them here: the chat's events over the same
    /// seqs (GetChatEvents, page after page), keeping the calls.
    pub async fn call_records(
        &self,
        chat_id: u64,
        after_seq: u64,
        up_to_seq: u64,
    ) -> Result<Vec<pb::ChatEvent>, ClientError> {
        let mut calls = Vec::new();
        let mut after = after_seq;
        for _ in 0..MAX_PAGES {
            if after >= up_to_seq {
                return Ok(calls);
            }
            let limit = (up_to_seq - after).min(u64::from(self.page_size())) as u32;
            let page = self
                .get_chat_events(pb::GetChatEvents {
                    chat_id,
                    after_seq: after,
                    limit,
                })
                .await?;
            let Some(last) = page.events.last().map(|e| e.seq) else {
                return Ok(calls);
            };
            if last <= after {
                return Err(ClientError::Protocol(
                    "GetChatEvents answered events at or before after_seq".into(),
                ));
            }
            after = last;
            calls.extend(page.events.into_iter().filter(|e| {
                e.seq <= up_to_seq && matches!(e.body, Some(pb::chat_event::Body::CallEnded(_)))
            }));
            if !page.more {
                return Ok(calls);
            }
        }
        Err(ClientError::Protocol(format!(
            "GetChatEvents did not end after {MAX_PAGES} pages"
        )))
    }

    /// Every chat of the caller (all pages of ListChats): pinned first, then by last activity.
    pub async fn list_all_chats(
        &self,
        include_archived: bool,
    ) -> Result<Vec<pb::Chat>, ClientError> {
        let mut chats = Vec::new();
        let mut cursor = String::new();
        for _ in 0..MAX_PAGES {
            let page = self
                .list_chats(pb::ListChats {
                    limit: self.page_size(),
                    cursor: cursor.clone(),
                    include_archived,
                })
                .await?;
            chats.extend(page.chats);
            if page.next_cursor.is_empty() {
                return Ok(chats);
            }
            if page.next_cursor == cursor {
                return Err(ClientError::Protocol(
                    "ListChats returned the same cursor twice".into(),
                ));
            }
            cursor = page.next_cursor;
        }
        Err(ClientError::Protocol(format!(
            "ListChats did not end after {MAX_PAGES} pages"
        )))
    }

    /// The profiles of `user_ids` (with their presence: `status`, `last_seen_at_ms`), in as many
    /// GetUsers requests as the server's page size and frame size need (an answer that does not
    /// hold every user asked for is continued from the id after its last user, spec 9.8).
    /// Unknown ids are left out.
    pub async fn users_by_id(&self, user_ids: &[u64]) -> Result<Vec<pb::User>, ClientError> {
        let mut users = Vec::with_capacity(user_ids.len());
        for chunk in user_ids.chunks(self.page_size() as usize) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let page = self
                    .get_users(pb::GetUsers {
                        user_ids: rest.to_vec(),
                    })
                    .await?;
                if page.next_cursor.is_empty() {
                    users.extend(page.users);
                    break;
                }
                let last = page.users.last().map(|u| u.id).ok_or_else(|| {
                    ClientError::Protocol("GetUsers answered no user but a next_cursor".into())
                })?;
                let at = rest.iter().position(|&id| id == last).ok_or_else(|| {
                    ClientError::Protocol(format!("GetUsers answered user {last}, not asked for"))
                })?;
                users.extend(page.users);
                rest = &rest[at + 1..];
            }
        }
        Ok(users)
    }

    /// The server's `max_page_size`, as announced on the first connection (100 when it
    /// announced none).
    fn page_size(&self) -> u32 {
        self.page_size
    }
}
