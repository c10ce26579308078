//! Typing indicators, by datagram (preferred) or by the SendTyping request (fallback).
//!
//! Typing is never stored: a member's signal goes at once to the other members that are
//! connected (to this node, and in cluster mode to the others through the chat's channel), except
//! members who blocked the sender and members the sender blocked. It is rate-limited per user and
//! chat. Only those who may post may signal typing (not plain channel members).
//! Datagrams are unreliable by nature, so a bad or refused one is dropped with a debug log and
//! never answered.

use std::sync::Arc;
use std::time::Instant;

use chatproto::pb;
use chatproto::pb::response::Result as Answer;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::access::{self, can_post};
use crate::limits::keyed::KeyedLimiter;
use crate::rate::Rate;
use crate::state::AppState;

/// How long a typing indicator shows unless repeated.
pub const TYPING_EXPIRES_MS: u32 = 5000;

/// SendTyping: the stream fallback for clients without datagrams.
pub async fn send_typing(ctx: &ConnCtx, req: pb::SendTyping) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    typing(&ctx.state, me, req.chat_id).await?;
    Ok(Answer::Ok(pb::Ok {}))
}

/// Typing datagrams one connection may have in flight (checked against the store and
/// delivered) at once; more are dropped. Typing is best effort: a burst beyond this loses
/// nothing a client relies on.
pub const DATAGRAMS_IN_FLIGHT: usize = 4;

/// The per-connection admission of datagrams, owned by the connection's read loop: a local
/// budget checked inline (no await, no shared state), then a bound on the work in flight. Only
/// an admitted datagram reaches the shared limits, which in a cluster cost a Redis round trip.
#[derive(Debug)]
pub struct DatagramGate {
    budget: KeyedLimiter<()>,
    in_flight: Arc<Semaphore>,
}

impl DatagramGate {
    /// A gate whose local budget is `rate` (the server passes the per-user request rate: a
    /// connection can never send more datagrams than its user may send requests).
    pub fn new(rate: Rate) -> Self {
        DatagramGate {
            budget: KeyedLimiter::new(rate, 1),
            in_flight: Arc::new(Semaphore::new(DATAGRAMS_IN_FLIGHT)),
        }
    }

    /// Admits one datagram: a permit to hold while it is handled, or `None` to drop it.
    fn admit(&mut self, now: Instant) -> Option<OwnedSemaphorePermit> {
        self.budget.check(&(), now).ok()?;
        Arc::clone(&self.in_flight).try_acquire_owned().ok()
    }
}

/// Handles one datagram from the client. Never fails, never waits and never panics: garbage,
/// datagrams before authentication, datagrams beyond the connection's budget and refused
/// signals are logged at debug level and dropped.
pub fn on_datagram(ctx: &ConnCtx, gate: &mut DatagramGate, bytes: &[u8]) {
    ctx.state.metrics.datagram_received();
    let Some(principal) = ctx.principal_opt() else {
        tracing::debug!(
            conn = ctx.conn_id,
            "datagram before authentication: dropped"
        );
        return;
    };
    let Some(permit) = gate.admit(Instant::now()) else {
        tracing::debug!(
            conn = ctx.conn_id,
            "datagram over the connection's budget: dropped"
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
    // task, holding the permit.
    let state: Arc<AppState> = ctx.state.clone();
    let conn_id = ctx.conn_id;
    tokio::spawn(async move {
        let _permit = permit;
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
    let datagrams = state
        .delivery
        .typing(chat_id, me, &m.members, TYPING_EXPIRES_MS);
    state.metrics.datagrams_sent(datagrams);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_gate_checks_the_budget_then_bounds_the_work_in_flight() {
        let now = Instant::now();
        let mut tight = DatagramGate::new(Rate::new(2, 1, Duration::from_secs(60)).unwrap());
        assert!(tight.admit(now).is_some());
        assert!(tight.admit(now).is_some());
        assert!(tight.admit(now).is_none(), "over the local budget");

        let mut gate = DatagramGate::new(Rate::new(100, 100, Duration::from_secs(1)).unwrap());
        let held: Vec<_> = (0..DATAGRAMS_IN_FLIGHT)
            .map(|_| gate.admit(now).expect("within the bound"))
            .collect();
        assert!(gate.admit(now).is_none(), "too many in flight");
        drop(held);
        assert!(gate.admit(now).is_some(), "finished work frees its place");
    }
}
