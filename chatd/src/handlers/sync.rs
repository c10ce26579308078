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
/// that the caller has left or lost since, within the requested range of chat ids and as many as
/// fit into one answer (protocol.md 7.3, "Pages").
pub async fn sync(ctx: &ConnCtx, req: pb::Sync) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let range = SyncRange::of(&req)?;
    let mut known: Vec<u64> = req
        .cursors
        .iter()
        .map(|c| c.chat_id)
        .filter(|id| *id != 0 && range.contains(*id))
        .collect();
    known.sort_unstable();
    known.dedup();
    // One store read for both: every reconnect ends with this request.
    let (heads, unread_notifications) = ctx.state.store.sync_state(me, &known).await?;
    let (heads, next_after_chat_id) = range.page(heads)?;
    Ok(Answer::Sync(pb::SyncResult {
        heads,
        unread_notifications,
        next_after_chat_id,
    }))
}

/// The chat ids one `sync` covers: `(after, through]`.
#[derive(Debug, Clone, Copy)]
struct SyncRange {
    after: u64,
    through: u64,
}

impl SyncRange {
    fn of(req: &pb::Sync) -> ApiResult<Self> {
        let through = match req.through_chat_id {
            0 => u64::MAX,
            t if t <= req.after_chat_id => {
                return Err(ApiError::invalid(
                    "sync.through_chat_id",
                    "must be 0 or above after_chat_id",
                ));
            }
            t => t,
        };
        Ok(Self {
            after: req.after_chat_id,
            through,
        })
    }

    fn contains(self, chat_id: u64) -> bool {
        self.after < chat_id && chat_id <= self.through
    }

    /// The heads in the range by ascending chat id, as many as fit into an answer, and where
    /// the next page starts (0: nowhere, everything was answered).
    fn page(self, mut heads: Vec<pb::ChatHead>) -> ApiResult<(Vec<pb::ChatHead>, u64)> {
        let beyond = heads.iter().any(|h| h.chat_id > self.through);
        heads.retain(|h| self.contains(h.chat_id));
        heads.sort_unstable_by_key(|h| h.chat_id);
        let page = Page::fill(u32::MAX, heads)?;
        let more = page.more();
        let heads = page.into_items();
        let next = match heads.last() {
            Some(last) if more => last.chat_id,
            _ if beyond => self.through,
            _ => 0,
        };
        Ok((heads, next))
    }
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
    let reader = access::reader(state, req.chat_id, me).await?;
    let up_to_seq = reader.up_to_seq();
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
    // A removal committed between the check and the read ends the page there; a page that
    // loses events so has no `more` (protocol.md 7.3).
    if !events.is_empty() {
        let bound = reader.bound_after_read(state, req.chat_id, me).await?;
        events.retain(|e| e.seq <= bound);
    }
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
    use chatproto::frame::MAX_FRAME_BYTES;
    use prost::Message;

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

    fn head(chat_id: u64) -> pb::ChatHead {
        pb::ChatHead {
            chat_id,
            last_seq: u64::MAX,
            member: true,
        }
    }

    fn range(after: u64, through: u64) -> SyncRange {
        SyncRange::of(&pb::Sync {
            cursors: Vec::new(),
            after_chat_id: after,
            through_chat_id: through,
        })
        .expect("valid range")
    }

    /// Paging through more heads than fit into one frame answers each exactly once, in order,
    /// every page within the frame limit.
    #[test]
    fn pages_cover_every_head_once_within_the_frame_limit() {
        // The largest heads there are (ten-byte varints): far more than one frame holds.
        let all: Vec<pb::ChatHead> = (0..40_000u64)
            .map(|i| head(u64::MAX - 40_000 + i))
            .collect();
        let mut after = 0;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let mut shuffled = all.clone();
            shuffled.reverse();
            let (heads, next) = range(after, 0).page(shuffled).expect("page");
            let answer = pb::Response {
                request_id: u64::MAX,
                result: Some(Answer::Sync(pb::SyncResult {
                    heads: heads.clone(),
                    unread_notifications: u64::MAX,
                    next_after_chat_id: next,
                })),
            };
            assert!(
                answer.encoded_len() <= MAX_FRAME_BYTES,
                "page {pages} too large"
            );
            seen.extend(heads.iter().map(|h| h.chat_id));
            pages += 1;
            if next == 0 {
                break;
            }
            assert!(next > after, "paging moves forward");
            after = next;
        }
        assert!(pages > 1, "the heads fit into one page: nothing was tested");
        let want: Vec<u64> = all.iter().map(|h| h.chat_id).collect();
        assert_eq!(seen, want);
    }

    /// A bounded range answers only its heads, and points past its bound when the caller has
    /// chats beyond it, even when none lies inside.
    #[test]
    fn a_bounded_range_points_past_its_bound() {
        let heads = || vec![head(30), head(10), head(20), head(50)];
        let (inside, next) = range(10, 30).page(heads()).expect("page");
        let ids: Vec<u64> = inside.iter().map(|h| h.chat_id).collect();
        assert_eq!((ids, next), (vec![20, 30], 30));
        let (inside, next) = range(30, 40).page(heads()).expect("page");
        assert_eq!((inside.len(), next), (0, 40));
        let (inside, next) = range(30, 0).page(heads()).expect("page");
        assert_eq!((inside.len(), next), (1, 0));
    }

    #[test]
    fn a_bound_at_or_below_the_start_is_invalid() {
        for through in [5, 4] {
            let err = SyncRange::of(&pb::Sync {
                cursors: Vec::new(),
                after_chat_id: 5,
                through_chat_id: through,
            })
            .expect_err("invalid");
            assert_eq!(err.code, pb::ErrorCode::InvalidArgument);
        }
    }
}
