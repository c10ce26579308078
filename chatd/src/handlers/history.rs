//! Reading messages: history pages, full-text search and edit histories.
//!
//! Members read everything; former members read up to the event that ended their membership.
//! Search with `chat_id` 0 covers the caller's current chats; a former member searches a chat they
//! left by naming it.

use std::collections::{BTreeSet, HashMap};

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::delivery::redact::{Viewer, redact_message};
use crate::error::{ApiError, ApiResult};
use crate::handlers::access::{self, message_not_found};
use crate::handlers::cursor::{EditsCursor, SearchCursor};
use crate::handlers::page::Page;
use crate::store::{HistoryQuery, SearchQuery};
use crate::validate;

/// A page of messages, ascending: below `before_seq`, above `after_seq`, or the latest. A page
/// bounded by the frame keeps the messages nearest to where it starts from: the newest below
/// `before_seq` (or of the chat), the oldest above `after_seq`.
pub async fn get_history(ctx: &ConnCtx, req: pb::GetHistory) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let limit = validate::page_limit("get_history.limit", req.limit)?;
    if req.before_seq != 0 && req.after_seq != 0 {
        return Err(ApiError::invalid(
            "get_history.after_seq",
            "set before_seq or after_seq, not both",
        ));
    }
    let reader = access::reader(state, req.chat_id, me).await?;
    let query = HistoryQuery {
        chat_id: req.chat_id,
        viewer: me,
        before_seq: req.before_seq,
        after_seq: req.after_seq,
        up_to_seq: reader.up_to_seq(),
        limit,
    };
    let mut messages = state.store.history(query).await?;
    if !messages.is_empty() {
        let bound = reader.bound_after_read(state, req.chat_id, me).await?;
        messages.retain(|m| m.seq <= bound);
    }
    let viewer = Viewer::load(&*state.store, me).await?;
    for message in &mut messages {
        redact_message(message, &viewer);
    }
    let messages = if req.after_seq != 0 {
        Page::fill(limit, messages)?.into_items()
    } else {
        let mut newest_first = Page::fill(limit, messages.into_iter().rev())?.into_items();
        newest_first.reverse();
        newest_first
    };
    Ok(Answer::Messages(pb::MessageList {
        messages,
        next_cursor: String::new(),
    }))
}

/// Full-text search, newest first, over one chat or all of the caller's chats.
pub async fn search_messages(ctx: &ConnCtx, req: pb::SearchMessages) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let text = validate::message_query("search_messages.query", &req.query)?;
    let limit = validate::page_limit("search_messages.limit", req.limit)?;
    let before = if req.cursor.is_empty() {
        None
    } else {
        let c = SearchCursor::decode("search_messages.cursor", &req.cursor)?;
        Some((c.sent_at_ms, c.chat_id, c.seq))
    };
    let (chats, reader) = if req.chat_id == 0 {
        let current = state
            .store
            .heads(me, &[])
            .await?
            .into_iter()
            .filter(|h| h.member)
            .map(|h| (h.chat_id, u64::MAX))
            .collect();
        (current, None)
    } else {
        let reader = access::reader(state, req.chat_id, me).await?;
        (vec![(req.chat_id, reader.up_to_seq())], Some(reader))
    };
    // Even with no chat to search, the store answers: one that cannot search refuses.
    let viewer = Viewer::load(&*state.store, me).await?;
    let query = SearchQuery {
        viewer: me,
        text,
        chats,
        before,
        limit: limit + 1,
        // A hit would reveal what they wrote, even shown as a placeholder (spec 9.2).
        senders_blocked: viewer.blocked().to_vec(),
    };
    let mut messages = state.store.search(query).await?;
    // Where the store's scan stopped: the next page starts below it, also when hits from it
    // are left out below.
    let scanned_to = match messages.last() {
        Some(last) if messages.len() > limit as usize => Some(SearchCursor::at(last)),
        _ => None,
    };
    let bounds = match &reader {
        _ if messages.is_empty() => HashMap::new(),
        Some(reader) => HashMap::from([(
            req.chat_id,
            reader.bound_after_read(state, req.chat_id, me).await?,
        )]),
        None => {
            let hit: BTreeSet<u64> = messages.iter().map(|m| m.chat_id).collect();
            let hit: Vec<u64> = hit.into_iter().collect();
            access::bounds_after_read(state, me, &hit).await?
        }
    };
    messages.retain(|m| bounds.get(&m.chat_id).is_some_and(|b| m.seq <= *b));
    for message in &mut messages {
        redact_message(message, &viewer);
    }
    let page = Page::fill(limit, messages)?;
    let next_cursor = match (page.items().last(), scanned_to) {
        (Some(last), _) if page.more() => SearchCursor::at(last).encode(),
        (_, Some(scanned_to)) => scanned_to.encode(),
        _ => String::new(),
    };
    Ok(Answer::Messages(pb::MessageList {
        messages: page.into_items(),
        next_cursor,
    }))
}

/// The edit history of a message, the original text first, paged by frame size.
pub async fn get_message_edits(ctx: &ConnCtx, req: pb::GetMessageEdits) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    // The request first: a bad cursor is refused whatever the message.
    let skip = if req.cursor.is_empty() {
        0
    } else {
        EditsCursor::decode("get_message_edits.cursor", &req.cursor)?.skip
    };
    let reader = access::reader(state, req.chat_id, me).await?;
    reader.check_seq(req.seq)?;
    let message = state
        .store
        .message(req.chat_id, req.seq)
        .await?
        .ok_or_else(message_not_found)?;
    if Viewer::load(&*state.store, me)
        .await?
        .blocks(message.sender_id)
    {
        // A placeholder has no edits to show (spec 9.2).
        return Ok(Answer::Edits(pb::EditList::default()));
    }
    let edits = state.store.edits(req.chat_id, req.seq).await?;
    if req.seq > reader.bound_after_read(state, req.chat_id, me).await? {
        return Err(message_not_found());
    }
    let page = Page::fill(
        u32::MAX,
        edits
            .into_iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX)),
    )?;
    let next_cursor = if page.more() {
        EditsCursor {
            skip: skip.saturating_add(page.items().len() as u64),
        }
        .encode()
    } else {
        String::new()
    };
    Ok(Answer::Edits(pb::EditList {
        edits: page.into_items(),
        next_cursor,
    }))
}
