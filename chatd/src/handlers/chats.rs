//! Chats: opening private chats, creating groups and channels, updating and deleting them, the
//! caller's own chat state, and listing and reading chats. Membership changes are in
//! [`membership`](super::membership).
//!
//! Every mutation appends one chat event (the store does that) which is then published to the
//! chat's members; see [`access`](super::access) for who may do what.

use std::collections::HashSet;

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::delivery::members::Audience;
use crate::delivery::redact::Viewer;
use crate::error::{ApiError, ApiResult};
use crate::handlers::access::{self, Judge, blocked_either_way, chat_not_found};
use crate::handlers::admin::is_server_admin;
use crate::handlers::cursor::ChatListCursor;
use crate::handlers::page::Page;
use crate::handlers::views::{chat_to_pb, chat_view};
use crate::state::{AppState, now_ms};
use crate::store::{Actor, ChatPatch, NewGroup, UserChatPatch, UserChatsQuery};
use crate::validate;

/// Largest group or channel membership (announced in Welcome).
pub const MAX_CHAT_MEMBERS: u32 = 10_000;

/// Opens (creating on first use) the private chat with another user.
pub async fn create_private_chat(ctx: &ConnCtx, req: pb::CreatePrivateChat) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    if req.user_id == 0 {
        return Err(ApiError::invalid(
            "create_private_chat.user_id",
            "a user id is required",
        ));
    }
    if req.user_id == me {
        return Err(ApiError::invalid(
            "create_private_chat.user_id",
            "cannot open a private chat with yourself",
        ));
    }
    let peer = state.store.user(req.user_id).await?;
    if !peer.is_some_and(|u| !u.deleted && !u.disabled) {
        return Err(ApiError::not_found("user"));
    }
    if blocked_either_way(state, me, req.user_id).await? {
        return Err(ApiError::denied("blocked"));
    }
    let (chat, created) = state
        .store
        .open_private_chat(me, req.user_id, now_ms())
        .await?;
    if created {
        // The store returns the record only; chat_created is the chat's first event.
        for event in state.store.events(chat.id, 0, 1, 1).await? {
            state
                .delivery
                .append(event, Audience::users(vec![me, req.user_id]));
        }
    }
    Ok(Answer::Chat(chat_view(state, chat.id, me, true).await?))
}

/// Creates a group or channel owned by the caller.
pub async fn create_group(ctx: &ConnCtx, req: pb::CreateGroup) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let kind = pb::ChatKind::try_from(req.kind)
        .ok()
        .filter(|k| matches!(k, pb::ChatKind::Group | pb::ChatKind::Channel))
        .ok_or_else(|| {
            ApiError::invalid(
                "create_group.kind",
                "must be CHAT_KIND_GROUP or CHAT_KIND_CHANNEL",
            )
        })?;
    let title = validate::chat_title("create_group.title", &req.title)?;
    validate::description("create_group.description", &req.description)?;
    let mut member_ids = req.member_ids;
    member_ids.retain(|id| *id != me);
    member_ids.sort_unstable();
    member_ids.dedup();
    if member_ids.contains(&0) {
        return Err(ApiError::invalid(
            "create_group.member_ids",
            "0 is not a user id",
        ));
    }
    if member_ids.len() >= MAX_CHAT_MEMBERS as usize {
        return Err(ApiError::invalid(
            "create_group.member_ids",
            format!("a chat has at most {MAX_CHAT_MEMBERS} members, the owner included"),
        ));
    }
    check_invitees(state, me, &member_ids).await?;
    let (chat, event) = state
        .store
        .create_group(NewGroup {
            kind,
            title,
            description: req.description,
            owner: me,
            member_ids: member_ids.clone(),
            now_ms: now_ms(),
        })
        .await?;
    state
        .notifier
        .members_added(chat.id, event.seq, me, member_ids.clone());
    let mut recipients = member_ids;
    recipients.push(me);
    state.delivery.append(event, Audience::users(recipients));
    Ok(Answer::Chat(chat_view(state, chat.id, me, true).await?))
}

/// Checks that everyone `actor` wants to put into a chat is an active user who has not blocked
/// `actor`: NOT_FOUND naming the first unknown user, PERMISSION_DENIED naming the first blocker.
pub async fn check_invitees(state: &AppState, actor: u64, ids: &[u64]) -> ApiResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let active: HashSet<u64> = state
        .store
        .users(ids)
        .await?
        .into_iter()
        .filter(|u| !u.deleted && !u.disabled)
        .map(|u| u.id)
        .collect();
    if let Some(missing) = ids.iter().find(|id| !active.contains(id)) {
        return Err(ApiError::new(
            pb::ErrorCode::NotFound,
            format!("user {missing} not found"),
        ));
    }
    for id in ids {
        if state.store.is_blocked(*id, actor).await? {
            return Err(ApiError::denied(format!("blocked by user {id}")));
        }
    }
    Ok(())
}

/// Changes a group's or channel's title, description or avatar (admins and the owner).
pub async fn update_chat(ctx: &ConnCtx, req: pb::UpdateChat) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let m = access::member(state, req.chat_id, me).await?;
    let judge = Judge::Manage { what: "be updated" };
    judge.check(state, &m).await?;
    let title = req
        .title
        .as_deref()
        .map(|t| validate::chat_title("update_chat.title", t))
        .transpose()?;
    if let Some(description) = &req.description {
        validate::description("update_chat.description", description)?;
    }
    let mut avatar = None;
    if let Some(file_id) = req.avatar_file_id.as_deref().filter(|a| !a.is_empty()) {
        validate::file_id("update_chat.avatar_file_id", file_id)?;
        avatar = Some(
            crate::handlers::files::access::check_avatar(
                state,
                me,
                file_id,
                "update_chat.avatar_file_id",
            )
            .await?,
        );
    }
    if title.is_some() || req.description.is_some() || req.avatar_file_id.is_some() {
        let patch = ChatPatch {
            title,
            description: req.description,
            avatar_file_id: req.avatar_file_id,
        };
        let now = now_ms();
        let (m, (_, event)) =
            access::under_membership(state, req.chat_id, m, judge, |members_seq| {
                let actor = Actor::judged(me, members_seq);
                state
                    .store
                    .update_chat(req.chat_id, actor, patch.clone(), now)
            })
            .await?;
        state.delivery.append(event, m.audience());
        crate::handlers::files::access::publish_avatar(state, avatar).await?;
    }
    Ok(Answer::Chat(
        chat_view(state, req.chat_id, me, false).await?,
    ))
}

/// Deletes a chat: its owner or a server admin; in a private chat, either member. Its calls end.
pub async fn delete_chat(ctx: &ConnCtx, req: pb::DeleteChat) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let chat_id = req.chat_id;
    let as_member = match access::member(state, chat_id, me).await {
        Ok(m) => match Judge::DeleteChat.check(state, &m).await {
            Ok(()) => Some(m),
            Err(_) if is_server_admin(ctx).await? => None,
            Err(e) => return Err(e),
        },
        // A server admin may delete any chat; everyone else learns nothing about it.
        Err(e)
            if e.code == pb::ErrorCode::NotFound
                && chat_id != 0
                && is_server_admin(ctx).await? =>
        {
            state
                .store
                .chat(chat_id)
                .await?
                .ok_or_else(chat_not_found)?;
            None
        }
        Err(e) => return Err(e),
    };
    // Everyone who was a member learns of the deletion (read from the store, not the cache:
    // this list must be exact), read again with each try.
    let delete = |actor: Actor| async move {
        let members = state.store.members(chat_id).await?;
        let event = state.store.delete_chat(chat_id, actor, now_ms()).await?;
        Ok((members, event))
    };
    let (members, event) = match as_member {
        // Judged on the membership the store checks: an ownership transfer that commits
        // first refuses it.
        Some(m) => {
            let judged = access::under_membership(state, chat_id, m, Judge::DeleteChat, |seq| {
                delete(Actor::judged(me, seq))
            })
            .await;
            match judged {
                Ok((_, deleted)) => deleted,
                Err(e)
                    if e.code == pb::ErrorCode::PermissionDenied
                        && is_server_admin(ctx).await? =>
                {
                    delete(Actor::unjudged(me)).await?
                }
                Err(e) => return Err(e),
            }
        }
        None => delete(Actor::unjudged(me)).await?,
    };
    let recipients: Vec<u64> = members.iter().map(|m| m.user_id).collect();
    state.calls.chat_deleted(chat_id, me, &recipients).await;
    state.delivery.append(event, Audience::users(recipients));
    Ok(Answer::Ok(pb::Ok {}))
}

/// Pins, mutes, archives or sets mentions-only on a chat for the caller; their other connections are told.
pub async fn set_chat_state(ctx: &ConnCtx, req: pb::SetChatState) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    access::member(state, req.chat_id, me).await?;
    if req.muted_until_ms.is_some_and(|t| t < 0) {
        return Err(ApiError::invalid(
            "set_chat_state.muted_until_ms",
            "must not be negative",
        ));
    }
    let mut view = state
        .store
        .user_chat(req.chat_id, me)
        .await?
        .ok_or_else(chat_not_found)?;
    let current = &view.state;
    let changes = req.pinned.is_some_and(|p| p != current.pinned)
        || req
            .muted_until_ms
            .is_some_and(|t| t != current.muted_until_ms)
        || req.archived.is_some_and(|a| a != current.archived)
        || req
            .mentions_only
            .is_some_and(|m| m != current.mentions_only);
    if !changes {
        return Ok(Answer::Chat(chat_to_pb(
            &view,
            &Viewer::load(&*state.store, me).await?,
        )));
    }
    let patch = UserChatPatch {
        pinned: req.pinned,
        muted_until_ms: req.muted_until_ms,
        archived: req.archived,
        mentions_only: req.mentions_only,
    };
    view.state = state.store.set_user_state(req.chat_id, me, patch).await?;
    let chat = chat_to_pb(&view, &Viewer::load(&*state.store, me).await?);
    let changed = pb::Event {
        kind: Some(pb::event::Kind::ChatState(pb::ChatStateChanged {
            chat_id: req.chat_id,
            state: chat.state,
        })),
    };
    state.delivery.notify(&[me], &changed, Some(ctx.conn_id));
    Ok(Answer::Chat(chat))
}

/// The caller's chats, pinned first, then by last activity (newest first), paged.
pub async fn list_chats(ctx: &ConnCtx, req: pb::ListChats) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    let state = &ctx.state;
    let limit = validate::page_limit("list_chats.limit", req.limit)?;
    let after = if req.cursor.is_empty() {
        None
    } else {
        let c = ChatListCursor::decode("list_chats.cursor", &req.cursor)?;
        Some((c.pinned, c.last_activity_ms, c.chat_id))
    };
    let query = UserChatsQuery {
        include_archived: req.include_archived,
        after,
        limit: limit + 1,
    };
    let rows = state.store.user_chats(me, query).await?;
    let viewer = Viewer::load(&*state.store, me).await?;
    let page = Page::fill(limit, rows.iter().map(|uc| chat_to_pb(uc, &viewer)))?;
    let next_cursor = match page.items().last() {
        Some(last) if page.more() => ChatListCursor {
            pinned: last.state.as_ref().is_some_and(|s| s.pinned),
            last_activity_ms: last.last_activity_ms,
            chat_id: last.id,
        }
        .encode(),
        _ => String::new(),
    };
    Ok(Answer::Chats(pb::ChatList {
        chats: page.into_items(),
        next_cursor,
    }))
}

/// One chat with its members.
pub async fn get_chat(ctx: &ConnCtx, req: pb::GetChat) -> ApiResult<Answer> {
    let me = ctx.principal()?.user_id;
    Ok(Answer::Chat(
        chat_view(&ctx.state, req.chat_id, me, true).await?,
    ))
}
