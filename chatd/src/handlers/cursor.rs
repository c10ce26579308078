//! Opaque paging cursors for ListChats, SearchMessages, GetMessageEdits and the admin lists
//! paged by id (chats, members, the audit log, the dead letters), and ListNotifications.
//!
//! A cursor is the position of the previous page's last entry, as URL-safe base64 (no padding) of
//! a small binary record: a tag byte naming the cursor kind, then fixed-width big-endian fields.
//! Clients must treat it as opaque; the tag keeps a cursor of one kind from being accepted by
//! another request. Anything that does not decode exactly (wrong length, unknown tag, bad
//! base64, a flag byte other than 0 or 1) is INVALID_ARGUMENT naming the request's cursor field.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, ApiResult};

/// The longest encoded cursor accepted; every valid cursor is shorter, so longer input is
/// rejected before decoding.
const MAX_ENCODED_LEN: usize = 64;

const TAG_CHAT_LIST: u8 = 1;
const TAG_SEARCH: u8 = 2;
const TAG_EDITS: u8 = 3;
const TAG_ADMIN_CHATS: u8 = 4;
const TAG_ADMIN_MEMBERS: u8 = 5;
const TAG_ADMIN_AUDIT: u8 = 6;
const TAG_NOTIFICATIONS: u8 = 7;
const TAG_DEAD_LETTERS: u8 = 8;

/// A list paged by id, continued from the previous page's last id (after it in the lists by
/// ascending id, before it in the audit log and the notifications, newest first); each list has a tag of its own, so
/// a cursor of one is not taken by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdList {
    /// `admin_list_chats`: chat ids.
    Chats,
    /// `admin_list_members`: user ids.
    Members,
    /// `admin_list_audit`: audit entry ids, descending.
    Audit,
    /// `list_notifications`: notification ids, descending.
    Notifications,
    /// `admin_list_dead_letters`: outbox entry ids.
    DeadLetters,
}

impl IdList {
    fn tag(self) -> u8 {
        match self {
            IdList::Chats => TAG_ADMIN_CHATS,
            IdList::Members => TAG_ADMIN_MEMBERS,
            IdList::Audit => TAG_ADMIN_AUDIT,
            IdList::Notifications => TAG_NOTIFICATIONS,
            IdList::DeadLetters => TAG_DEAD_LETTERS,
        }
    }

    /// The wire form of "after `id`".
    pub fn encode(self, id: u64) -> String {
        let mut raw = Vec::with_capacity(9);
        raw.push(self.tag());
        raw.extend_from_slice(&id.to_be_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The id a cursor continues after: 0 for an empty cursor (the first page); `field` names
    /// the request field in the error.
    pub fn decode(self, field: &str, cursor: &str) -> ApiResult<u64> {
        if cursor.is_empty() {
            return Ok(0);
        }
        let raw = decode_raw(field, cursor, self.tag(), 8)?;
        u64_at(field, &raw, 0)
    }
}

/// Position in the chat list: (pinned, last activity, chat id) of the last chat of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatListCursor {
    /// Whether the chat was pinned.
    pub pinned: bool,
    /// The chat's last activity time.
    pub last_activity_ms: i64,
    /// The chat.
    pub chat_id: u64,
}

impl ChatListCursor {
    /// The wire form.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(18);
        raw.push(TAG_CHAT_LIST);
        raw.push(u8::from(self.pinned));
        raw.extend_from_slice(&self.last_activity_ms.to_be_bytes());
        raw.extend_from_slice(&self.chat_id.to_be_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses a cursor; `field` names the request field in the error.
    pub fn decode(field: &str, cursor: &str) -> ApiResult<Self> {
        let raw = decode_raw(field, cursor, TAG_CHAT_LIST, 17)?;
        let pinned = match raw.first() {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(bad(field)),
        };
        Ok(Self {
            pinned,
            last_activity_ms: i64_at(field, &raw, 1)?,
            chat_id: u64_at(field, &raw, 9)?,
        })
    }
}

/// Position in search results: (sent time, chat id, seq) of the last hit of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchCursor {
    /// The hit's send time.
    pub sent_at_ms: i64,
    /// The hit's chat.
    pub chat_id: u64,
    /// The hit's seq.
    pub seq: u64,
}

impl SearchCursor {
    /// The position of `hit`: the next page starts below it.
    pub fn at(hit: &chatproto::pb::Message) -> Self {
        Self {
            sent_at_ms: hit.sent_at_ms,
            chat_id: hit.chat_id,
            seq: hit.seq,
        }
    }

    /// The wire form.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(25);
        raw.push(TAG_SEARCH);
        raw.extend_from_slice(&self.sent_at_ms.to_be_bytes());
        raw.extend_from_slice(&self.chat_id.to_be_bytes());
        raw.extend_from_slice(&self.seq.to_be_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses a cursor; `field` names the request field in the error.
    pub fn decode(field: &str, cursor: &str) -> ApiResult<Self> {
        let raw = decode_raw(field, cursor, TAG_SEARCH, 24)?;
        Ok(Self {
            sent_at_ms: i64_at(field, &raw, 0)?,
            chat_id: u64_at(field, &raw, 8)?,
            seq: u64_at(field, &raw, 16)?,
        })
    }
}

/// Position in an edit history: how many entries the previous pages held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EditsCursor {
    /// Entries already answered.
    pub skip: u64,
}

impl EditsCursor {
    /// The wire form.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(9);
        raw.push(TAG_EDITS);
        raw.extend_from_slice(&self.skip.to_be_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Parses a cursor; `field` names the request field in the error.
    pub fn decode(field: &str, cursor: &str) -> ApiResult<Self> {
        let raw = decode_raw(field, cursor, TAG_EDITS, 8)?;
        Ok(Self {
            skip: u64_at(field, &raw, 0)?,
        })
    }
}

fn bad(field: &str) -> ApiError {
    ApiError::invalid(field, "not a cursor returned by this server")
}

/// Decodes the base64, checks the tag and the exact payload length; returns the payload.
fn decode_raw(field: &str, cursor: &str, tag: u8, payload_len: usize) -> ApiResult<Vec<u8>> {
    if cursor.len() > MAX_ENCODED_LEN {
        return Err(bad(field));
    }
    let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad(field))?;
    match raw.split_first() {
        Some((&t, payload)) if t == tag && payload.len() == payload_len => Ok(payload.to_vec()),
        _ => Err(bad(field)),
    }
}

/// The 8 bytes at `at`; a cursor too short for them is not one of ours.
fn bytes_at(field: &str, raw: &[u8], at: usize) -> ApiResult<[u8; 8]> {
    raw.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad(field))
}

fn u64_at(field: &str, raw: &[u8], at: usize) -> ApiResult<u64> {
    bytes_at(field, raw, at).map(u64::from_be_bytes)
}

fn i64_at(field: &str, raw: &[u8], at: usize) -> ApiResult<i64> {
    bytes_at(field, raw, at).map(i64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use chatproto::pb;

    use super::*;

    #[test]
    fn id_cursors_round_trip_and_keep_to_their_list() {
        assert_eq!(IdList::Chats.decode("f", "").unwrap(), 0);
        for id in [1, 42, u64::MAX] {
            let c = IdList::Chats.encode(id);
            assert_eq!(IdList::Chats.decode("f", &c).unwrap(), id);
            let err = IdList::Members.decode("f", &c).unwrap_err();
            assert_eq!(err.code, pb::ErrorCode::InvalidArgument);
        }
    }

    #[test]
    fn chat_list_cursor_round_trips() {
        for c in [
            ChatListCursor {
                pinned: true,
                last_activity_ms: 1_700_000_000_123,
                chat_id: 42,
            },
            ChatListCursor {
                pinned: false,
                last_activity_ms: i64::MIN,
                chat_id: u64::MAX,
            },
            ChatListCursor {
                pinned: false,
                last_activity_ms: -1,
                chat_id: 0,
            },
        ] {
            assert_eq!(ChatListCursor::decode("f", &c.encode()).unwrap(), c);
        }
    }

    #[test]
    fn search_cursor_round_trips() {
        let c = SearchCursor {
            sent_at_ms: 5,
            chat_id: 7,
            seq: u64::MAX,
        };
        assert_eq!(SearchCursor::decode("f", &c.encode()).unwrap(), c);
        let e = EditsCursor { skip: 17 };
        assert_eq!(EditsCursor::decode("f", &e.encode()).unwrap(), e);
        assert!(EditsCursor::decode("f", &c.encode()).is_err());
    }

    #[test]
    fn garbage_is_invalid_argument_naming_the_field() {
        let valid = ChatListCursor {
            pinned: true,
            last_activity_ms: 1,
            chat_id: 2,
        }
        .encode();
        let truncated = &valid[..valid.len() - 2];
        let mut bad_flag = URL_SAFE_NO_PAD.decode(&valid).unwrap();
        bad_flag[1] = 2;
        let bad_flag = URL_SAFE_NO_PAD.encode(bad_flag);
        let long = "A".repeat(200);
        for input in [
            "",
            "!!!",
            "AAAA",
            truncated,
            bad_flag.as_str(),
            long.as_str(),
        ] {
            let err = ChatListCursor::decode("list_chats.cursor", input).unwrap_err();
            assert_eq!(err.code, pb::ErrorCode::InvalidArgument, "{input:?}");
            assert_eq!(err.field, "list_chats.cursor");
        }
    }

    #[test]
    fn a_cursor_of_one_kind_is_refused_by_the_other() {
        let search = SearchCursor {
            sent_at_ms: 1,
            chat_id: 2,
            seq: 3,
        }
        .encode();
        assert!(ChatListCursor::decode("list_chats.cursor", &search).is_err());
        let list = ChatListCursor {
            pinned: false,
            last_activity_ms: 1,
            chat_id: 2,
        }
        .encode();
        assert!(SearchCursor::decode("search_messages.cursor", &list).is_err());
    }
}
