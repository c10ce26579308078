//! Group calls (capability `group_calls`, spec 14.7 and 9.9): join, leave, the current call of a
//! chat, and the mesh signaling relayed to one participant device. The transitions are
//! `calls::group`; `calls::service` carries them out (events to the chat's members, history).

use chatproto::capability::Capability;
use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use super::access;
use super::calls::{SignalRef, check_signal, device_with, relay_signal, unavailable};
use crate::calls::group::{GroupError, MAX_PARTICIPANTS};
use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::state::now_ms;

fn refused(e: GroupError) -> ApiError {
    match e {
        GroupError::NotFound => ApiError::not_found("group call"),
        GroupError::InCall => ApiError::conflict("you are already in a call"),
        GroupError::Full => ApiError::conflict(format!(
            "the group call has {MAX_PARTICIPANTS} participants already"
        )),
        GroupError::IdTaken => ApiError::internal(),
        GroupError::NotTakingPart => {
            ApiError::conflict("this device does not take part in the group call")
        }
        GroupError::NoSuchDevice => ApiError::new(
            pb::ErrorCode::NotFound,
            "no participant device of the group call has this id",
        )
        .with_field("send_group_call_signal.to_device_id"),
    }
}

/// The chat of group call `call_id`, when the caller is one of its members (NOT_FOUND
/// otherwise, like a call they may not know of).
async fn member_of_call(ctx: &ConnCtx, call_id: u64, user_id: u64) -> ApiResult<u64> {
    let chat_id = ctx
        .state
        .calls
        .read_book(|b| b.group(call_id).map(|c| c.chat_id))
        .await
        .map_err(unavailable)?
        .ok_or_else(|| refused(GroupError::NotFound))?;
    access::member(&ctx.state, chat_id, user_id).await?;
    Ok(chat_id)
}

/// Joins the group call of a group chat with this device, starting it when there is none.
pub async fn join_group_call(ctx: &ConnCtx, req: pb::JoinGroupCall) -> ApiResult<Answer> {
    let me = device_with(ctx, Capability::GroupCalls)?;
    let membership = access::member(&ctx.state, req.chat_id, me.user_id).await?;
    if membership.kind() != pb::ChatKind::Group {
        return Err(ApiError::denied("group calls are only in groups"));
    }
    let calls = &ctx.state.calls;
    let now = now_ms();
    let call = loop {
        let id = rand::random::<u64>();
        match calls
            .with_book(|b| b.join_group(req.chat_id, me, req.video, id, now))
            .await
            .map_err(unavailable)?
        {
            Err(GroupError::IdTaken) => continue,
            other => break other.map_err(refused)?,
        }
    };
    // Judged on the member cache before the join: a removal committed meanwhile took the
    // caller out of the call before they were in it (`members_gone`). Checked before anyone is
    // told: a call the refused join started goes without a trace.
    let still = access::still_member(&ctx.state, req.chat_id, me.user_id).await;
    if let Err(refusal) = still.and_then(|()| super::calls::still_taking_part(ctx, me)) {
        calls.withdraw_join(req.chat_id, call.id, me).await;
        return Err(refusal);
    }
    calls.apply_group(&call, now).await;
    Ok(Answer::GroupCall(call.to_pb(Some(me))))
}

/// Leaves a group call; the last one to leave ends it.
pub async fn leave_group_call(ctx: &ConnCtx, req: pb::LeaveGroupCall) -> ApiResult<Answer> {
    let me = device_with(ctx, Capability::GroupCalls)?;
    member_of_call(ctx, req.call_id, me.user_id).await?;
    let calls = &ctx.state.calls;
    let now = now_ms();
    if let Some(call) = calls
        .with_book(|b| b.leave_group(req.call_id, me.user_id, now))
        .await
        .map_err(unavailable)?
        .map_err(refused)?
    {
        calls.apply_group(&call, now).await;
    }
    Ok(Answer::Ok(pb::Ok {}))
}

/// The live group call of a group chat.
pub async fn get_group_call(ctx: &ConnCtx, req: pb::GetGroupCall) -> ApiResult<Answer> {
    let me = device_with(ctx, Capability::GroupCalls)?;
    access::member(&ctx.state, req.chat_id, me.user_id).await?;
    ctx.state
        .calls
        .read_book(|b| b.group_of_chat(req.chat_id).map(|c| c.to_pb(Some(me))))
        .await
        .map_err(unavailable)?
        .map(Answer::GroupCall)
        .ok_or_else(|| refused(GroupError::NotFound))
}

impl<'a> From<&'a pb::group_call_signal::Kind> for SignalRef<'a> {
    fn from(kind: &'a pb::group_call_signal::Kind) -> Self {
        use pb::group_call_signal::Kind;
        match kind {
            Kind::Offer(s) => SignalRef::Offer(s),
            Kind::Answer(s) => SignalRef::Answer(s),
            Kind::Candidate(c) => SignalRef::Candidate(c),
            Kind::ScreenShare(s) => SignalRef::ScreenShare(s),
        }
    }
}

/// Relays an offer, answer, candidate or screen-share change verbatim from this participant
/// device to the one participant device it names.
pub async fn send_group_call_signal(
    ctx: &ConnCtx,
    mut req: pb::GroupCallSignal,
) -> ApiResult<Answer> {
    let me = device_with(ctx, Capability::GroupCalls)?;
    check_signal(
        ctx,
        "send_group_call_signal",
        req.kind.as_ref().map(SignalRef::from),
    )?;
    let route = match ctx
        .state
        .calls
        .read_book(|b| b.group_route(req.call_id, me, req.to_device_id))
        .await
        .map_err(unavailable)?
    {
        Ok(route) => route,
        Err(GroupError::NotTakingPart) => {
            // Someone outside the group may not learn that the call exists.
            member_of_call(ctx, req.call_id, me.user_id).await?;
            return Err(refused(GroupError::NotTakingPart));
        }
        Err(e) => return Err(refused(e)),
    };
    req.from_user_id = me.user_id;
    req.from_device_id = route.from.device_id;
    let call_id = req.call_id;
    let event = pb::Event {
        kind: Some(pb::event::Kind::GroupCallSignal(req)),
    };
    relay_signal(ctx, call_id, me.user_id, route.to.device, &event).await
}
