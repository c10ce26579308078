//! Delivery and read receipts.
//!
//! A member moves their own cursors forward with MarkReceipt. When a cursor moved, the members of
//! a private chat or group get a ReceiptUpdate; in a channel only the caller's own other
//! connections do (readers of a channel do not see each other, but a user's devices must agree on
//! what is unread). Receipts of a user never reach members who blocked them (spec 9.2).

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::delivery::redact::Viewer;
use crate::error::{ApiError, ApiResult};
use crate::handlers::access::{self, chat_not_found};

/// Moves the caller's delivered or read cursor forward (never back).
pub async fn mark_receipt(ctx: &ConnCtx, req: pb::MarkReceipt) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let kind = pb::ReceiptKind::try_from(req.kind)
        .ok()
        .filter(|k| *k != pb::ReceiptKind::Unspecified)
        .ok_or_else(|| {
            ApiError::invalid(
                "mark_receipt.kind",
                "must be RECEIPT_KIND_DELIVERED or RECEIPT_KIND_READ",
            )
        })?;
    let m = access::member(state, req.chat_id, me).await?;
    let chat = state
        .store
        .chat(req.chat_id)
        .await?
        .ok_or_else(chat_not_found)?;
    if req.up_to_seq > chat.last_seq {
        return Err(ApiError::invalid(
            "mark_receipt.up_to_seq",
            format!("beyond the chat's latest event ({})", chat.last_seq),
        ));
    }
    if let Some((delivered_seq, read_seq)) = state
        .store
        .mark_receipt(req.chat_id, me, kind, req.up_to_seq)
        .await?
    {
        let update = pb::Event {
            kind: Some(pb::event::Kind::Receipt(pb::ReceiptUpdate {
                chat_id: req.chat_id,
                user_id: me,
                delivered_seq,
                read_seq,
            })),
        };
        let only_me = [me];
        let recipients = if m.kind() == pb::ChatKind::Channel {
            &only_me[..]
        } else {
            m.members.ids()
        };
        state
            .delivery
            .notify_chat(req.chat_id, recipients, &update, Some(ctx.conn_id));
    }
    Ok(Answer::Ok(pb::Ok {}))
}

/// Every member's cursors: members of private chats and groups; in a channel chat admins only
/// (PERMISSION_DENIED for plain members, whose readers do not see each other).
pub async fn get_receipts(ctx: &ConnCtx, req: pb::GetReceipts) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let m = access::member(state, req.chat_id, me).await?;
    if m.kind() == pb::ChatKind::Channel {
        m.require_manager()?;
    }
    let mut receipts = state.store.receipts(req.chat_id).await?;
    let viewer = Viewer::load(&*state.store, me).await?;
    receipts.retain(|r| !viewer.blocks(r.user_id));
    Ok(Answer::Receipts(pb::ReceiptList { receipts }))
}
