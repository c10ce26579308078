//! Fuzzes the paging cursors chatd decodes from requests (`list_chats.cursor`,
//! `search_messages.cursor`, `get_message_edits.cursor`, and the username cursors of
//! `search_users`, `list_contacts` and `list_blocked`).
//!
//! Besides "never panics", it checks:
//! - a refused cursor is INVALID_ARGUMENT naming the request's cursor field;
//! - an accepted binary cursor is the exact encoding of what it decoded to (one wire form per
//!   position), and no cursor of one kind is accepted by another;
//! - an accepted username cursor is the username itself, and the empty cursor is "from the
//!   start".
#![no_main]

use chatd::testing::{ApiError, ChatListCursor, EditsCursor, SearchCursor, cursor_username};
use chatproto::pb;
use libfuzzer_sys::fuzz_target;

const FIELD: &str = "request.cursor";

/// The cursor a decoder accepted, or checks the refusal's code and field.
fn accepted<T>(outcome: Result<T, ApiError>) -> Option<T> {
    match outcome {
        Ok(cursor) => Some(cursor),
        Err(error) => {
            assert_eq!(error.code, pb::ErrorCode::InvalidArgument);
            assert_eq!(error.field, FIELD);
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Request fields are protobuf strings: prost refuses invalid UTF-8 before any handler runs.
    let Ok(cursor) = std::str::from_utf8(data) else {
        return;
    };
    let list = accepted(ChatListCursor::decode(FIELD, cursor));
    let search = accepted(SearchCursor::decode(FIELD, cursor));
    let edits = accepted(EditsCursor::decode(FIELD, cursor));
    let kinds = [list.is_some(), search.is_some(), edits.is_some()];
    assert!(kinds.iter().filter(|&&k| k).count() <= 1, "{kinds:?}");
    if let Some(c) = list {
        assert_eq!(c.encode(), cursor);
    }
    if let Some(c) = search {
        assert_eq!(c.encode(), cursor);
    }
    if let Some(c) = edits {
        assert_eq!(c.encode(), cursor);
    }
    match accepted(cursor_username(cursor, FIELD)) {
        Some(Some(username)) => assert_eq!(username, cursor.to_ascii_lowercase()),
        Some(None) => assert!(cursor.is_empty()),
        None => {}
    }
});
