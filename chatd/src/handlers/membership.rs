//! Group and channel membership: adding, removing and leaving, roles, and ownership.
//!
//! Every change's event goes to the members before the change plus those it adds (so a removed
//! user's devices learn it too); delivery drops the chat's member cache entry as it goes.
//! Private chats have no membership to manage: those requests are PERMISSION_DENIED.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::access::{self, Judge, member_not_found};
use crate::handlers::chats::{MAX_CHAT_MEMBERS, check_invitees};
use crate::handlers::views::chat_view;
use crate::state::now_ms;
use crate::store::{Actor, ConflictKind, StoreError};

fn chat_full() -> ApiError {
    let max_members = MAX_CHAT_MEMBERS;
    StoreError::Conflict(ConflictKind::ChatFull { max_members }).into()
}

/// Adds users to a group or channel (admins and the owner).
pub async fn add_members(ctx: &ConnCtx, req: pb::AddMembers) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let m = access::member(state, req.chat_id, me).await?;
    let judge = Judge::Manage {
        what: "have members added",
    };
    judge.check(state, &m).await?;
    let mut ids = req.user_ids;
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(ApiError::invalid(
            "add_members.user_ids",
            "at least one user id is required",
        ));
    }
    if ids.contains(&0) {
        return Err(ApiError::invalid(
            "add_members.user_ids",
            "0 is not a user id",
        ));
    }
    if ids.len() > MAX_CHAT_MEMBERS as usize {
        return Err(ApiError::invalid(
            "add_members.user_ids",
            format!("a chat has at most {MAX_CHAT_MEMBERS} members"),
        ));
    }
    ids.retain(|id| m.members.role_of(*id).is_none());
    if ids.is_empty() {
        return Err(ApiError::conflict("already members"));
    }
    if m.members.len() + ids.len() > MAX_CHAT_MEMBERS as usize {
        return Err(chat_full());
    }
    check_invitees(state, me, &ids).await?;
    // The store judges the limit again, on the members as they are when it adds these: two
    // additions at once both pass the check above.
    let now = now_ms();
    let (m, event) = access::under_membership(state, req.chat_id, m, judge, |members_seq| {
        let (actor, ids) = (Actor::judged(me, members_seq), &ids);
        state
            .store
            .add_members(req.chat_id, actor, ids, MAX_CHAT_MEMBERS, now)
    })
    .await?;
    state
        .notifier
        .members_added(req.chat_id, event.seq, me, ids.clone());
    state.delivery.append(event, m.audience().and(&ids));
    Ok(Answer::Chat(chat_view(state, req.chat_id, me, true).await?))
}

/// Removes a member: admins remove plain members, the owner removes anyone else.
pub async fn remove_member(ctx: &ConnCtx, req: pb::RemoveMember) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let m = access::member(state, req.chat_id, me).await?;
    let judge = Judge::Remove {
        target: req.user_id,
    };
    judge.check(state, &m).await?;
    let now = now_ms();
    let (m, event) = access::under_membership(state, req.chat_id, m, judge, |members_seq| {
        let actor = Actor::judged(me, members_seq);
        state
            .store
            .remove_member(req.chat_id, actor, req.user_id, false, now)
    })
    .await?;
    // The members before the change: those after it plus the removed user.
    state.delivery.append(event, m.audience());
    state.calls.members_gone(req.chat_id, &[req.user_id]).await;
    Ok(Answer::Ok(pb::Ok {}))
}

/// Leaves a group or channel. The owner must transfer ownership first (CONFLICT); private chats
/// cannot be left (PERMISSION_DENIED: delete the chat instead).
pub async fn leave_chat(ctx: &ConnCtx, req: pb::LeaveChat) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let m = access::member(state, req.chat_id, me).await?;
    m.require_not_private("be left; delete the chat instead")?;
    if m.role == pb::MemberRole::Owner {
        return Err(ApiError::conflict(
            "the owner must transfer ownership before leaving",
        ));
    }
    // Anyone may leave: nothing to judge again (the store answers NOT_FOUND "member" when a
    // removal came first).
    let event = state
        .store
        .remove_member(req.chat_id, Actor::unjudged(me), me, true, now_ms())
        .await?;
    state.delivery.append(event, m.audience());
    state.calls.members_gone(req.chat_id, &[me]).await;
    Ok(Answer::Ok(pb::Ok {}))
}

/// Promotes a member to admin or demotes an admin (the owner only).
pub async fn set_member_role(ctx: &ConnCtx, req: pb::SetMemberRole) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let m = access::member(state, req.chat_id, me).await?;
    let judge = Judge::Own {
        what: "have member roles",
    };
    judge.check(state, &m).await?;
    let role = pb::MemberRole::try_from(req.role)
        .ok()
        .filter(|r| matches!(r, pb::MemberRole::Member | pb::MemberRole::Admin))
        .ok_or_else(|| {
            ApiError::invalid(
                "set_member_role.role",
                "must be MEMBER_ROLE_MEMBER or MEMBER_ROLE_ADMIN",
            )
        })?;
    if req.user_id == me {
        return Err(ApiError::invalid(
            "set_member_role.user_id",
            "the owner's role changes only by transferring ownership",
        ));
    }
    let current = m
        .members
        .role_of(req.user_id)
        .ok_or_else(member_not_found)?;
    if current != role {
        let now = now_ms();
        let (m, changed) = access::under_membership(state, req.chat_id, m, judge, |members_seq| {
            let actor = Actor::judged(me, members_seq);
            async move {
                match (state.store)
                    .set_member_role(req.chat_id, actor, req.user_id, role, now)
                    .await
                {
                    Ok(event) => Ok(Some(event)),
                    // The same request at once, or a role the cache had not caught up with:
                    // the member has the role asked for (the request is repeat-safe).
                    Err(StoreError::Conflict(ConflictKind::SameRole)) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .await?;
        if let Some(changed) = changed {
            state.delivery.append(changed, m.audience());
        }
    }
    Ok(Answer::Ok(pb::Ok {}))
}

/// Hands the chat to another member (the owner only); the previous owner becomes an admin.
pub async fn transfer_ownership(ctx: &ConnCtx, req: pb::TransferOwnership) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let m = access::member(state, req.chat_id, me).await?;
    m.require_not_private("have an owner")?;
    m.require_owner()?;
    if req.user_id == me {
        return Err(ApiError::invalid(
            "transfer_ownership.user_id",
            "you already own this chat",
        ));
    }
    m.members
        .role_of(req.user_id)
        .ok_or_else(member_not_found)?;
    let events = state
        .store
        .transfer_ownership(req.chat_id, me, me, req.user_id, now_ms())
        .await?;
    for event in events {
        state.delivery.append(event, m.audience());
    }
    Ok(Answer::Ok(pb::Ok {}))
}
