//! Paged answers bounded by encoded bytes as well as by count (spec 9.8).
//!
//! Every list answer is built with a [`Page`]: items are offered in answer order and taken while
//! both the page size and the frame budget allow, so an answer never exceeds
//! `Limits.max_frame_bytes`, and the first item left out is where the client continues (`more`,
//! `next_cursor`, `before_seq`/`after_seq`). That one item always fits is proven below from the
//! field limits ([`max`]), so a page is never empty while items remain: a client paging through
//! a range always moves forward.

use chatproto::frame::MAX_FRAME_BYTES;
use prost::Message;

use crate::error::{ApiError, ApiResult};

/// Bytes of a Response payload that are not list items: `request_id`, the result's key and
/// length, and the list's other fields (a `next_cursor` of at most 64 bytes or `more`).
pub const ENVELOPE_BYTES: usize = 128;

/// Bytes the items of one page may take, keys and lengths included.
pub const ITEMS_BUDGET: usize = MAX_FRAME_BYTES - ENVELOPE_BYTES;

/// The items of one answer, taken while they fit by count and by encoded size.
#[derive(Debug)]
pub struct Page<T> {
    items: Vec<T>,
    bytes: usize,
    limit: usize,
    budget: usize,
    more: bool,
}

impl<T: Message> Page<T> {
    /// An empty page of at most `limit` items within the frame budget.
    pub fn new(limit: u32) -> Self {
        Self::with_budget(limit, ITEMS_BUDGET)
    }

    fn with_budget(limit: u32, budget: usize) -> Self {
        Self {
            items: Vec::new(),
            bytes: 0,
            limit: limit as usize,
            budget,
            more: false,
        }
    }

    /// A page of the first items of `items` that fit; [`Page::more`] tells whether any was left
    /// out. Callers fetch one item more than `limit` so that `more` is exact at the end.
    pub fn fill(limit: u32, items: impl IntoIterator<Item = T>) -> ApiResult<Self> {
        let mut page = Self::new(limit);
        for item in items {
            if !page.offer(item)? {
                break;
            }
        }
        Ok(page)
    }

    /// Takes `item` if the page has room for it by count and by size; otherwise marks the page
    /// as having more and returns false (the item is dropped: the client asks for it again).
    /// An item that does not fit even into an empty page is a server bug (the field limits
    /// bound every item, see [`max`]): INTERNAL, never an answer the client cannot read.
    pub fn offer(&mut self, item: T) -> ApiResult<bool> {
        if self.more {
            return Ok(false);
        }
        let cost = prost::encoding::message::encoded_len(1, &item);
        if self.items.len() == self.limit || self.bytes + cost > self.budget {
            if self.items.is_empty() && self.limit > 0 {
                tracing::error!(
                    cost,
                    budget = self.budget,
                    "a list item larger than a frame"
                );
                return Err(ApiError::internal());
            }
            self.more = true;
            return Ok(false);
        }
        self.bytes += cost;
        self.items.push(item);
        Ok(true)
    }

    /// Whether items were left out: by count or by size.
    pub fn more(&self) -> bool {
        self.more
    }

    /// The items taken, in the order offered.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// The items taken, in the order offered.
    pub fn into_items(self) -> Vec<T> {
        self.items
    }
}

/// The largest encoded size of each kind of list item, derived from the field limits, and the
/// proof (compile-time assertions) that each fits a page. Sizes count the item's own key and
/// length as a repeated field of a list (field numbers below 16: one key byte).
pub mod max {
    use crate::delivery::redact::{MAX_REACTION_EMOJI, MAX_REACTION_USERS_SHOWN};
    use crate::handlers::mentions::MAX_MENTIONS;
    use crate::validate::{
        EMAIL_BYTES, MAX_BIO_CHARS, MAX_CLIENT_MSG_ID_BYTES, MAX_DESCRIPTION_CHARS,
        MAX_DISPLAY_NAME_CHARS, MAX_EMOJI_BYTES, MAX_FILE_ID_BYTES, MAX_TEXT_CHARS,
        MAX_TITLE_CHARS, USERNAME_CHARS,
    };

    use super::ITEMS_BUDGET;
    use crate::files::detect::MAX_MIME_BYTES;
    use crate::files::thumbs::THUMBNAIL_SIDES;
    use crate::handlers::admin_access::MAX_CIDR_BYTES;
    use crate::validate::{MAX_ACCESS_REASON_CHARS, MAX_BROADCAST_CHARS, MAX_FILE_NAME_BYTES};

    /// Bytes of a varint holding `v`.
    const fn varint(v: usize) -> usize {
        let mut n = 1;
        let mut v = v >> 7;
        while v > 0 {
            n += 1;
            v >>= 7;
        }
        n
    }

    /// A length-delimited field (string, bytes, message, packed list) of `len` bytes.
    const fn field(len: usize) -> usize {
        1 + varint(len) + len
    }

    /// A string field of at most `chars` characters (four UTF-8 bytes each at most).
    const fn text(chars: usize) -> usize {
        field(chars * 4)
    }

    /// Any varint field (ids, times, enums, counts): key and ten bytes at most.
    const NUM: usize = 11;
    /// A bool field.
    const BOOL: usize = 2;

    /// `Reaction`, with the user ids a view shows.
    pub const REACTION: usize =
        field(field(MAX_EMOJI_BYTES) + field((MAX_REACTION_USERS_SHOWN + 1) * 10) + NUM);

    /// `Thumbnail`.
    const THUMBNAIL: usize =
        field(field(MAX_FILE_ID_BYTES) + 2 * NUM + field(MAX_MIME_BYTES) + NUM);

    /// `FileInfo`: server-made ids, a sanitized name, a detected type, one thumbnail per side.
    pub const FILE_INFO: usize = field(
        field(MAX_FILE_ID_BYTES)
            + field(MAX_FILE_NAME_BYTES)
            + field(MAX_MIME_BYTES)
            + NUM // size
            + field(32) // sha256
            + NUM // kind
            + 2 * NUM // width, height
            + THUMBNAIL_SIDES.len() * THUMBNAIL
            + NUM, // created_at_ms
    );

    /// `Message` as a view shows it (reactions capped by
    /// [`cap_reactions`](crate::delivery::redact::cap_reactions)).
    pub const MESSAGE: usize = field(
        3 * NUM // chat_id, seq, sender_id
            + NUM // kind
            + text(MAX_TEXT_CHARS)
            + field(MAX_FILE_ID_BYTES)
            + NUM // reply_to_seq
            + field(4 * NUM) // forwarded_from
            + 3 * NUM // sent_at_ms, edited_at_ms, deleted_at_ms
            + 2 * BOOL // edited, deleted
            + MAX_REACTION_EMOJI * REACTION
            + field(MAX_MENTIONS * 10)
            + field(MAX_CLIENT_MSG_ID_BYTES)
            + BOOL + 1 // from_blocked_user (field 18: a two-byte key)
            + FILE_INFO, // attachment
    );

    /// `Chat` in a list: no member list, the last message and the caller's state.
    pub const CHAT: usize = field(
        2 * NUM // id, kind
            + text(MAX_TITLE_CHARS)
            + text(MAX_DESCRIPTION_CHARS)
            + field(MAX_FILE_ID_BYTES)
            + 5 * NUM // owner_id, created_at_ms, last_seq, last_activity_ms, member_count
            + MESSAGE
            + field(5 * NUM + 2 * BOOL), // state
    );

    /// `ChatEvent` of every body but those carrying member lists (`chat_created`,
    /// `members_added`): the largest is `message_created`.
    pub const EVENT: usize = field(4 * NUM + MESSAGE);

    /// `MessageEdit`.
    pub const EDIT: usize = field(text(MAX_TEXT_CHARS) + NUM);

    /// `User` with every field, as oneself or a server admin sees it.
    pub const USER: usize = field(
        NUM // id
            + field(*USERNAME_CHARS.end())
            + text(MAX_DISPLAY_NAME_CHARS)
            + text(MAX_BIO_CHARS)
            + field(MAX_FILE_ID_BYTES)
            + 4 * NUM // status, last_seen_at_ms, created_at_ms, role
            + field(*EMAIL_BYTES.end())
            + BOOL, // disabled
    );

    /// `Member`.
    pub const MEMBER: usize = field(3 * NUM);

    /// `Notification`: a broadcast's whole text is its longest preview.
    pub const NOTIFICATION: usize = field(6 * NUM + 2 * BOOL + text(MAX_BROADCAST_CHARS));

    /// `AccessRule`.
    pub const ACCESS_RULE: usize =
        field(field(MAX_CIDR_BYTES) + text(MAX_ACCESS_REASON_CHARS) + 4 * NUM);

    // One item of every paged kind always fits an empty page.
    const _: () = assert!(MESSAGE <= ITEMS_BUDGET);
    const _: () = assert!(CHAT <= ITEMS_BUDGET);
    const _: () = assert!(EVENT <= ITEMS_BUDGET);
    const _: () = assert!(EDIT <= ITEMS_BUDGET);
    const _: () = assert!(USER <= ITEMS_BUDGET);
    const _: () = assert!(MEMBER <= ITEMS_BUDGET);
    const _: () = assert!(NOTIFICATION <= ITEMS_BUDGET);
    const _: () = assert!(ACCESS_RULE <= ITEMS_BUDGET);
}

#[cfg(test)]
mod tests {
    use chatproto::pb;

    use super::*;

    fn item(text_bytes: usize) -> pb::MessageEdit {
        pb::MessageEdit {
            text: "a".repeat(text_bytes),
            at_ms: 1,
        }
    }

    #[test]
    fn a_page_stops_by_count_and_by_bytes_and_says_more() {
        let by_count = Page::fill(2, (0..5).map(|_| item(10))).unwrap();
        assert_eq!((by_count.items().len(), by_count.more()), (2, true));
        let all = Page::fill(5, (0..5).map(|_| item(10))).unwrap();
        assert_eq!((all.items().len(), all.more()), (5, false));
        // Each item costs 1 (key) + 1 (length) + 2 + 100 + 2 = 106 bytes.
        let cost = prost::encoding::message::encoded_len(1, &item(100));
        let mut by_bytes = Page::with_budget(100, 3 * cost);
        for _ in 0..5 {
            by_bytes.offer(item(100)).unwrap();
        }
        assert_eq!((by_bytes.items().len(), by_bytes.more()), (3, true));
        // Once full, a smaller item that would fit is not taken: pages stay contiguous.
        assert!(!by_bytes.offer(item(0)).unwrap());
    }

    #[test]
    fn an_item_larger_than_an_empty_page_is_internal_not_an_empty_page() {
        let mut page = Page::with_budget(10, 50);
        let err = page.offer(item(100)).unwrap_err();
        assert_eq!(err.code, pb::ErrorCode::Internal);
    }

    fn largest_file_info() -> pb::FileInfo {
        let id = "i".repeat(crate::validate::MAX_FILE_ID_BYTES);
        let mime = "m".repeat(crate::files::detect::MAX_MIME_BYTES);
        pb::FileInfo {
            id: id.clone(),
            name: "n".repeat(crate::validate::MAX_FILE_NAME_BYTES),
            mime: mime.clone(),
            size: u64::MAX,
            sha256: vec![0xff; 32],
            kind: i32::MAX,
            width: u32::MAX,
            height: u32::MAX,
            thumbnails: crate::files::thumbs::THUMBNAIL_SIDES
                .iter()
                .map(|_| pb::Thumbnail {
                    file_id: id.clone(),
                    width: u32::MAX,
                    height: u32::MAX,
                    mime: mime.clone(),
                    size: u64::MAX,
                })
                .collect(),
            created_at_ms: i64::MIN,
        }
    }

    #[test]
    fn the_largest_file_info_fits_its_bound() {
        let len = prost::encoding::message::encoded_len(1, &largest_file_info());
        assert!(len <= max::FILE_INFO, "{len} > {}", max::FILE_INFO);
    }

    #[test]
    fn the_largest_items_fit_an_empty_page() {
        let four = "\u{10000}";
        let message = pb::Message {
            chat_id: u64::MAX,
            seq: u64::MAX,
            sender_id: u64::MAX,
            kind: i32::MAX,
            text: four.repeat(crate::validate::MAX_TEXT_CHARS),
            file_id: "f".repeat(crate::validate::MAX_FILE_ID_BYTES),
            reply_to_seq: u64::MAX,
            forwarded_from: Some(pb::ForwardedFrom {
                chat_id: u64::MAX,
                seq: u64::MAX,
                sender_id: u64::MAX,
                sent_at_ms: i64::MIN,
            }),
            sent_at_ms: i64::MIN,
            edited: true,
            edited_at_ms: i64::MIN,
            deleted: true,
            deleted_at_ms: i64::MIN,
            reactions: (0..crate::delivery::redact::MAX_REACTION_EMOJI)
                .map(|_| pb::Reaction {
                    emoji: "e".repeat(crate::validate::MAX_EMOJI_BYTES),
                    user_ids: vec![u64::MAX; crate::delivery::redact::MAX_REACTION_USERS_SHOWN + 1],
                    count: u32::MAX,
                })
                .collect(),
            mention_ids: vec![u64::MAX; crate::handlers::mentions::MAX_MENTIONS],
            client_msg_id: "c".repeat(crate::validate::MAX_CLIENT_MSG_ID_BYTES),
            from_blocked_user: true,
            attachment: Some(Box::new(largest_file_info())),
        };
        let message_len = prost::encoding::message::encoded_len(1, &message);
        assert!(
            message_len <= max::MESSAGE,
            "{message_len} > {}",
            max::MESSAGE
        );
        let event = pb::ChatEvent {
            chat_id: u64::MAX,
            seq: u64::MAX,
            at_ms: i64::MIN,
            actor_id: u64::MAX,
            body: Some(pb::chat_event::Body::MessageCreated(message.clone())),
        };
        let event_len = prost::encoding::message::encoded_len(1, &event);
        assert!(event_len <= max::EVENT, "{event_len} > {}", max::EVENT);
        let mut page = Page::new(1);
        assert!(page.offer(event).unwrap());
        // A whole answer of one such item is a frame the client accepts.
        let answer = pb::Response {
            request_id: u64::MAX,
            result: Some(pb::response::Result::Events(pb::ChatEventList {
                events: page.into_items(),
                more: true,
            })),
        };
        assert!(answer.encoded_len() <= MAX_FRAME_BYTES);
    }
}
