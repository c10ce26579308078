//! Calls (capability `calls`, spec section 14 and 9.9): start, accept, end, the signaling relay
//! and ICE servers. The state machine is `calls::machine`; `calls::service` carries out its
//! transitions (events, history), on one node or across a cluster. Group calls are in
//! `handlers::group_calls`.

use chatproto::capability::Capability;
use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use super::access;
use crate::calls::home::BookError;
use crate::calls::machine::{CallError, Device, Ended};
use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::state::now_ms;

/// Longest SDP offer or answer, in bytes (spec 10).
const MAX_SDP_BYTES: usize = 65_536;
/// Longest ICE candidate field, and longest screen-share `mid`, in bytes (spec 10).
const MAX_CANDIDATE_BYTES: usize = 1024;

/// The caller's device, unless the connection did not negotiate `calls` (FAILED_PRECONDITION).
fn device(ctx: &ConnCtx) -> ApiResult<Device> {
    device_with(ctx, Capability::Calls)
}

/// The caller's device, unless the connection did not negotiate `capability`
/// (FAILED_PRECONDITION).
pub(super) fn device_with(ctx: &ConnCtx, capability: Capability) -> ApiResult<Device> {
    let user_id = ctx.principal()?.user_id;
    if !ctx.has_capability(capability) {
        return Err(ApiError::precondition(format!(
            "the capability {capability} was not negotiated on this connection"
        )));
    }
    Ok(Device {
        user_id,
        conn_id: ctx.conn_id,
    })
}

/// UNAUTHENTICATED unless `device` is still this connection's signed-in user. Checked after a
/// call request put the device in the book: a logout or kick that ran meanwhile (it takes the
/// connection's devices out of calls, `ConnCtx::deauthenticate`) found it not there yet, and
/// nothing would take it out later.
pub(super) fn still_taking_part(ctx: &ConnCtx, device: Device) -> ApiResult<()> {
    match ctx.principal_opt() {
        Some(p) if p.user_id == device.user_id => Ok(()),
        _ => Err(ApiError::unauthenticated(
            "signed out while the request was made",
        )),
    }
}

/// A string field over its maximum length (spec 6.2).
fn too_large(field: &str, message: &str) -> ApiError {
    ApiError::new(pb::ErrorCode::TooLarge, message).with_field(field)
}

/// The call state could not be read or changed (cluster mode, its store unreachable).
pub(super) fn unavailable(e: BookError) -> ApiError {
    tracing::warn!(error = %e, "call state unavailable");
    ApiError::unavailable("the call state is unavailable; try again")
}

fn refused(e: CallError) -> ApiError {
    match e {
        CallError::NotFound => ApiError::not_found("call"),
        CallError::CallerInCall => ApiError::conflict("you are already in a call"),
        CallError::IdTaken => ApiError::internal(),
        CallError::NotTheCallee => ApiError::denied("only the callee may accept a call"),
        CallError::NotRinging => ApiError::conflict("the call is not ringing"),
        CallError::NotActive => ApiError::conflict("the call is not active"),
        CallError::NotTakingPart => {
            ApiError::conflict("another device of yours takes part in this call")
        }
    }
}

/// Starts a call in a private chat: RINGING, or ENDED BUSY when the callee is in a call.
pub async fn start_call(ctx: &ConnCtx, req: pb::StartCall) -> ApiResult<Answer> {
    let me = device(ctx)?;
    let membership = access::member(&ctx.state, req.chat_id, me.user_id).await?;
    if membership.kind() != pb::ChatKind::Private {
        return Err(ApiError::denied("calls are only in private chats"));
    }
    let callee = membership
        .peer()
        .ok_or_else(|| ApiError::denied("the other member of this chat is gone"))?;
    access::require_not_blocked_private(&ctx.state, &membership).await?;
    let calls = &ctx.state.calls;
    let now = now_ms();
    let transition = loop {
        let id = rand::random::<u64>();
        match calls
            .with_book(|b| b.start(id, req.chat_id, me, callee, req.video, now, calls.ring_ms()))
            .await
            .map_err(unavailable)?
        {
            Err(CallError::IdTaken) => continue,
            other => break other.map_err(refused)?,
        }
    };
    // Judged before the call was made: a block or the chat's deletion committed meanwhile ended
    // the pair's calls before this one was in the book (`CallService::blocked`, `chat_deleted`).
    let state = &ctx.state;
    let callable = match access::still_member(state, req.chat_id, me.user_id).await {
        Ok(()) => access::require_not_blocked_private(state, &membership).await,
        Err(e) => Err(e),
    }
    .and_then(|()| still_taking_part(ctx, me));
    if let Err(refusal) = callable {
        // Told to nobody yet; a BUSY start is in the book no more.
        if transition.notify {
            calls.withdraw(transition.call.id).await;
        }
        return Err(refusal);
    }
    let call = transition.call.to_pb();
    calls.apply(transition, now).await;
    Ok(Answer::Call(call))
}

/// Accepts a ringing call on this device.
pub async fn accept_call(ctx: &ConnCtx, req: pb::AcceptCall) -> ApiResult<Answer> {
    let me = device(ctx)?;
    let calls = &ctx.state.calls;
    let now = now_ms();
    let transition = calls
        .with_book(|b| b.accept(req.call_id, me, now))
        .await
        .map_err(unavailable)?
        .map_err(refused)?;
    let call = transition.call.to_pb();
    calls.apply(transition, now).await;
    if let Err(signed_out) = still_taking_part(ctx, me) {
        // As the sign-out would have: the call ends DISCONNECTED.
        calls.disconnected(me).await;
        return Err(signed_out);
    }
    Ok(Answer::Call(call))
}

/// Cancels, declines or hangs up a call; an ended call stays ended.
pub async fn end_call(ctx: &ConnCtx, req: pb::EndCall) -> ApiResult<Answer> {
    let me = device(ctx)?;
    let calls = &ctx.state.calls;
    let now = now_ms();
    match calls
        .with_book(|b| b.end(req.call_id, me.user_id, now))
        .await
        .map_err(unavailable)?
        .map_err(refused)?
    {
        Ended::Now(transition) => calls.apply(transition, now).await,
        Ended::Already => {}
    }
    Ok(Answer::Ok(pb::Ok {}))
}

/// A signal's kind, borrowed from a private or a group call's signal.
pub(super) enum SignalRef<'a> {
    Offer(&'a str),
    Answer(&'a str),
    Candidate(&'a pb::IceCandidate),
    ScreenShare(&'a pb::ScreenShare),
}

impl<'a> From<&'a pb::call_signal::Kind> for SignalRef<'a> {
    fn from(kind: &'a pb::call_signal::Kind) -> Self {
        use pb::call_signal::Kind;
        match kind {
            Kind::Offer(s) => SignalRef::Offer(s),
            Kind::Answer(s) => SignalRef::Answer(s),
            Kind::Candidate(c) => SignalRef::Candidate(c),
            Kind::ScreenShare(s) => SignalRef::ScreenShare(s),
        }
    }
}

/// Checks a signal's kind and sizes (spec 9.9, 10); the server parses nothing else of it.
/// `request` names the request in the error's field.
pub(super) fn check_signal(
    ctx: &ConnCtx,
    request: &str,
    kind: Option<SignalRef<'_>>,
) -> ApiResult<()> {
    let field = |name: &str| format!("{request}.{name}");
    match kind {
        None => Err(ApiError::invalid(
            field("kind"),
            "no offer, answer, candidate or screen_share",
        )),
        Some(SignalRef::Offer(sdp)) if sdp.len() > MAX_SDP_BYTES => {
            Err(too_large(&field("offer"), "SDP over 64 KiB"))
        }
        Some(SignalRef::Answer(sdp)) if sdp.len() > MAX_SDP_BYTES => {
            Err(too_large(&field("answer"), "SDP over 64 KiB"))
        }
        Some(SignalRef::Candidate(c))
            if [&c.candidate, &c.sdp_mid, &c.username_fragment]
                .iter()
                .any(|f| f.len() > MAX_CANDIDATE_BYTES) =>
        {
            Err(too_large(
                &field("candidate"),
                "a candidate field over 1024 bytes",
            ))
        }
        Some(SignalRef::ScreenShare(_)) if !ctx.has_capability(Capability::ScreenShare) => {
            Err(ApiError::precondition(
                "the capability screen_share was not negotiated on this connection",
            ))
        }
        Some(SignalRef::ScreenShare(s)) if s.mid.len() > MAX_CANDIDATE_BYTES => {
            Err(too_large(&field("screen_share"), "a mid over 1024 bytes"))
        }
        Some(_) => Ok(()),
    }
}

/// Relays an SDP offer or answer (the first ones or a renegotiation), an ICE candidate or a
/// screen-share change verbatim to the other device taking part.
pub async fn send_call_signal(ctx: &ConnCtx, mut req: pb::CallSignal) -> ApiResult<Answer> {
    let me = device(ctx)?;
    check_signal(
        ctx,
        "send_call_signal",
        req.kind.as_ref().map(SignalRef::from),
    )?;
    let peer = ctx
        .state
        .calls
        .read_book(|b| b.peer(req.call_id, me))
        .await
        .map_err(unavailable)?
        .map_err(refused)?;
    req.from_user_id = me.user_id;
    let call_id = req.call_id;
    let event = pb::Event {
        kind: Some(pb::event::Kind::CallSignal(req)),
    };
    relay_signal(ctx, call_id, me.user_id, peer, &event).await
}

/// Charges a signal to its sender's budget for the call, then sends it to the device `to`,
/// on whichever node it is. Only a device taking part gets here, so nobody else can use up a
/// call's budget.
pub(super) async fn relay_signal(
    ctx: &ConnCtx,
    call_id: u64,
    sender: u64,
    to: Device,
    event: &pb::Event,
) -> ApiResult<Answer> {
    ctx.state
        .limits
        .check_call_signal(call_id, sender)
        .await
        .map_err(|limited| super::account::throttled(ctx, limited))?;
    ctx.state
        .delivery
        .signal_connection(to.user_id, to.conn_id, event);
    Ok(Answer::Ok(pb::Ok {}))
}

/// The STUN and TURN servers, with TURN credentials.
pub async fn get_ice_servers(ctx: &ConnCtx, _req: pb::GetIceServers) -> ApiResult<Answer> {
    let me = device(ctx)?;
    Ok(Answer::IceServers(ctx.state.calls.ice_servers(me.user_id)))
}
