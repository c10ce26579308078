//! Catching up: Sync reports the heads of the caller's chats, GetChatEvents pages through one
//! chat's log. Together they make offline delivery gap-free: a client compares each head with the
//! highest seq it applied and fetches what lies between.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::delivery::redact::{Viewer, redact_event};
use crate::error::{ApiError, ApiResult};
use crate::handlers::access;
use crate::handlers::page::Page;

/// GetChatEvents page size when the request leaves `limit` at 0.
pub const DEFAULT_EVENTS_PAGE: u32 = 100;

/// Largest GetChatEvents page. Larger than `Limits.max_page_size` because catching up after a
/// long absence wants big pages; a page of large messages stops earlier, at the frame limit
/// ([`Page`]).
pub const MAX_EVENTS_PAGE: u32 = 500;

/// The heads of every current chat of the caller, plus those of the chats named in the cursors
/// that the caller has left or lost since.
pub async fn sync(ctx: &ConnCtx, req: pb::Sync) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let mut known: Vec<u64> = req
        .cursors
        .iter()
        .map(|c| c.chat_id)
        .filter(|id| *id != 0)
        .collect();
    known.sort_unstable();
    known.dedup();
    // One store read for both: every reconnect ends with this request.
    let (heads, unread_notifications) = ctx.state.store.sync_state(me, &known).await?;
    Ok(Answer::Sync(pb::SyncResult {
        heads,
        unread_notifications,
    }))
}

/// The page size a GetChatEvents asks for: 0 means the default; above the maximum is refused.
fn events_limit(limit: u32) -> ApiResult<u32> {
    match limit {
        0 => Ok(DEFAULT_EVENTS_PAGE),
        l if l > MAX_EVENTS_PAGE => Err(ApiError::invalid(
            "get_chat_events.limit",
            format!("at most {MAX_EVENTS_PAGE}"),
        )),
        l => Ok(l),
    }
}

/// Chat events after `after_seq`, ascending and contiguous, within what the caller may read.
pub async fn get_chat_events(ctx: &ConnCtx, req: pb::GetChatEvents) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let limit = events_limit(req.limit)?;
    let up_to_seq = access::reader(state, req.chat_id, me).await?.up_to_seq();
    if req.after_seq >= up_to_seq {
        return Ok(Answer::Events(pb::ChatEventList {
            events: Vec::new(),
            more: false,
        }));
    }
    // One more than asked for tells whether more exist within the readable range.
    let mut events: Vec<pb::ChatEvent> = state
        .store
        .events(req.chat_id, req.after_seq, up_to_seq, limit + 1)
        .await?;
    let viewer = Viewer::load(&*state.store, me).await?;
    for event in &mut events {
        redact_event(event, &viewer);
    }
    let page = Page::fill(limit, events)?;
    Ok(Answer::Events(pb::ChatEventList {
        more: page.more(),
        events: page.into_items(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_limit_defaults_and_caps() {
        assert_eq!(events_limit(0).unwrap(), DEFAULT_EVENTS_PAGE);
        assert_eq!(events_limit(1).unwrap(), 1);
        assert_eq!(events_limit(MAX_EVENTS_PAGE).unwrap(), MAX_EVENTS_PAGE);
        let err = events_limit(MAX_EVENTS_PAGE + 1).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_str()),
            (pb::ErrorCode::InvalidArgument, "get_chat_events.limit")
        );
    }
}
