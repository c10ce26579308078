//! Typing indicators, by datagram (preferred) or by the SendTyping request (fallback).
//!
//! Typing is never stored: a member's signal goes at once to the other members that are
//! connected (to this node, and in cluster mode to the others through the chat's channel), except
//! members who blocked the sender and members the sender blocked. It is rate-limited per user and
//! chat. Only those who may post may signal typing (not plain channel members).
//! Datagrams are unreliable by nature, so a bad or refused one is dropped with a debug log and
//! never answered.

use std::sync::Arc;

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::access::{self, can_post};
use crate::state::AppState;

/// How long a typing indicator shows unless repeated.
pub const TYPING_EXPIRES_MS: u32 = 5000;

/// SendTyping: the stream fallback for clients without datagrams.
pub async fn send_typing(ctx: &ConnCtx, req: pb::SendTyping) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    typing(&ctx.state, me, req.chat_id).await?;
    Ok(Answer::Ok(pb::Ok {}))
}

/// Handles one datagram from the client. Never fails and never panics: garbage, datagrams before
/// authentication and refused signals are logged at debug level and dropped.
pub async fn on_datagram(ctx: &ConnCtx, bytes: &[u8]) {
    let Some(principal) = ctx.principal_opt() else {
        tracing::debug!(
            conn = ctx.conn_id,
            "datagram before authentication: dropped"
        );
        return;
    };
    let datagram = match chatproto::io::decode_datagram(bytes) {
        Ok(datagram) => datagram,
        Err(e) => {
            tracing::debug!(conn = ctx.conn_id, error = %e, "undecodable datagram: dropped");
            return;
        }
    };
    let Some(pb::datagram::Kind::Typing(signal)) = datagram.kind else {
        tracing::debug!(conn = ctx.conn_id, "empty or unknown datagram: dropped");
        return;
    };
    // The connection's read loop must not wait on the store or Redis: the rest runs on its own
    // task.
    let state: Arc<AppState> = ctx.state.clone();
    let conn_id = ctx.conn_id;
    tokio::spawn(async move {
        // Datagrams bypass request dispatch, so they spend the same per-user budget here.
        if state.limits.check_request(principal.user_id).await.is_err() {
            tracing::debug!(
                conn = conn_id,
                "typing datagram over the request budget: dropped"
            );
            return;
        }
        if let Err(e) = typing(&state, principal.user_id, signal.chat_id).await {
            tracing::debug!(conn = conn_id, chat_id = signal.chat_id, error = %e, "typing datagram refused");
        }
    });
}

/// Checks and delivers one typing signal of `me` in `chat_id`.
async fn typing(state: &AppState, me: u64, chat_id: u64) -> ApiResult<()> {
    let m = access::member(state, chat_id, me).await?;
    if !can_post(m.kind(), m.role) {
        return Err(ApiError::denied(
            "only channel admins and the owner may post",
        ));
    }
    state
        .limits
        .check_typing(me, chat_id)
        .await
        .map_err(|limited| {
            state.metrics.rate_limited(limited.scope);
            ApiError::from(limited)
        })?;
    state
        .delivery
        .typing(chat_id, me, &m.members, TYPING_EXPIRES_MS);
    Ok(())
}
