//! Server administration of chats and messages (chatctl's `chats`, `messages` and `export`):
//! any chat, whether the admin is a member or not. Admins see a chat as an outsider would if it
//! were public ([`chat_outside_view`]): never its members' own state, and its messages' content
//! only through an export, which the audit log records.
//!
//! Moderation deletes go through the same store call and the same publishing as a delete for
//! everyone by a chat admin, so members' clients see them as ordinary deletes (a
//! `message_deleted` event whose actor is the server admin).

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::delivery::members::Audience;
use crate::delivery::redact::{Viewer, redact_message};
use crate::error::{ApiError, ApiResult};
use crate::handlers::access::{chat_not_found, message_not_found};
use crate::handlers::admin::require_admin;
use crate::handlers::cursor::IdList;
use crate::handlers::page::Page;
use crate::handlers::views::{chat_outside_view, member_to_pb};
use crate::state::now_ms;
use crate::store::{
    Actor, AllChatsQuery, ChatRecord, ConflictKind, HistoryQuery, SentQuery, StoreError,
};
use crate::validate;

/// The chat, or NOT_FOUND for an unknown or deleted one (INVALID_ARGUMENT for id 0).
async fn existing_chat(ctx: &ConnCtx, chat_id: u64, field: &str) -> ApiResult<ChatRecord> {
    if chat_id == 0 {
        return Err(ApiError::invalid(field, "required"));
    }
    ctx.state
        .store
        .chat(chat_id)
        .await?
        .ok_or_else(chat_not_found)
}

/// AdminListChats: every chat by id, filtered by kind, title and member.
pub async fn admin_list_chats(ctx: &ConnCtx, req: pb::AdminListChats) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let kind = match pb::ChatKind::try_from(req.kind) {
        Ok(pb::ChatKind::Unspecified) => None,
        Ok(kind) => Some(kind),
        Err(_) => {
            return Err(ApiError::invalid(
                "admin_list_chats.kind",
                "not a chat kind",
            ));
        }
    };
    let title = if req.query.is_empty() {
        String::new()
    } else {
        validate::chat_query("admin_list_chats.query", &req.query)?
    };
    let limit = validate::page_limit("admin_list_chats.limit", req.limit)?;
    let after_id = IdList::Chats.decode("admin_list_chats.cursor", &req.cursor)?;
    let query = AllChatsQuery {
        kind,
        title,
        member_id: (req.member_id != 0).then_some(req.member_id),
        after_id,
        limit: limit + 1,
    };
    let chats = ctx.state.store.all_chats(query).await?;
    let page = Page::fill(limit, chats.iter().map(chat_outside_view))?;
    let next_cursor = match page.items().last() {
        Some(last) if page.more() => IdList::Chats.encode(last.id),
        _ => String::new(),
    };
    Ok(Answer::Chats(pb::ChatList {
        chats: page.into_items(),
        next_cursor,
    }))
}

/// AdminGetChat: one chat, without its members.
pub async fn admin_get_chat(ctx: &ConnCtx, req: pb::AdminGetChat) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let chat = existing_chat(ctx, req.chat_id, "admin_get_chat.chat_id").await?;
    Ok(Answer::Chat(chat_outside_view(&chat)))
}

/// AdminListMembers: a chat's current members by user id.
pub async fn admin_list_members(ctx: &ConnCtx, req: pb::AdminListMembers) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let limit = validate::page_limit("admin_list_members.limit", req.limit)?;
    let after = IdList::Members.decode("admin_list_members.cursor", &req.cursor)?;
    existing_chat(ctx, req.chat_id, "admin_list_members.chat_id").await?;
    // At most `MAX_CHAT_MEMBERS` rows: read whole, paged here.
    let mut members = ctx.state.store.members(req.chat_id).await?;
    members.sort_unstable_by_key(|m| m.user_id);
    let page = Page::fill(
        limit,
        members
            .iter()
            .filter(|m| m.user_id > after)
            .map(member_to_pb),
    )?;
    let next_cursor = match page.items().last() {
        Some(last) if page.more() => IdList::Members.encode(last.user_id),
        _ => String::new(),
    };
    Ok(Answer::Members(pb::MemberList {
        members: page.into_items(),
        next_cursor,
    }))
}

/// AdminExportHistory: one page of a chat's messages, oldest first, as stored.
pub async fn admin_export_history(ctx: &ConnCtx, req: pb::AdminExportHistory) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let limit = validate::page_limit("admin_export_history.limit", req.limit)?;
    existing_chat(ctx, req.chat_id, "admin_export_history.chat_id").await?;
    let query = HistoryQuery {
        chat_id: req.chat_id,
        // No user has id 0, so no message hidden by someone for themselves is left out.
        viewer: 0,
        before_seq: 0,
        // Seq 1 is the chat's `chat_created` event (protocol.md 7.1), never a message, so "above
        // 1" is the whole history, read oldest first (an after_seq of 0 reads the newest).
        after_seq: req.after_seq.max(1),
        up_to_seq: u64::MAX,
        limit: limit + 1,
    };
    let mut messages = ctx.state.store.history(query).await?;
    // As nobody in particular sees them: no placeholders, nobody's `client_msg_id`.
    let anyone = Viewer::anyone();
    for message in &mut messages {
        redact_message(message, &anyone);
    }
    let page = Page::fill(limit, messages)?;
    let more = page.more();
    Ok(Answer::Export(pb::HistoryExport {
        messages: page.into_items(),
        more,
    }))
}

/// AdminDeleteMessage: one message deleted for everyone; again, a success.
pub async fn admin_delete_message(ctx: &ConnCtx, req: pb::AdminDeleteMessage) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    existing_chat(ctx, req.chat_id, "admin_delete_message.chat_id").await?;
    let message = ctx
        .state
        .store
        .message(req.chat_id, req.seq)
        .await?
        .ok_or_else(message_not_found)?;
    if !message.deleted {
        let recipients = member_ids(ctx, req.chat_id).await?;
        // False when deleted meanwhile: the outcome asked for all the same.
        delete_for_everyone(ctx, admin, &recipients, req.chat_id, req.seq).await?;
        tracing::info!(
            admin,
            chat_id = req.chat_id,
            seq = req.seq,
            sender = message.sender_id,
            "message deleted by an admin"
        );
    }
    Ok(Answer::Ok(pb::Ok {}))
}

/// AdminPurgeMessages: up to `limit` of a user's messages deleted for everyone, by chat.
pub async fn admin_purge_messages(ctx: &ConnCtx, req: pb::AdminPurgeMessages) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let limit = validate::page_limit("admin_purge_messages.limit", req.limit)?;
    if req.user_id == 0 {
        return Err(ApiError::invalid(
            "admin_purge_messages.user_id",
            "required",
        ));
    }
    // A deleted account's messages stay, so they can still be purged.
    if ctx.state.store.user(req.user_id).await?.is_none() {
        return Err(ApiError::not_found("user"));
    }
    let chat = if req.chat_id == 0 {
        None
    } else {
        existing_chat(ctx, req.chat_id, "admin_purge_messages.chat_id").await?;
        Some(req.chat_id)
    };
    if req.since_ms < 0 {
        return Err(ApiError::invalid(
            "admin_purge_messages.since_ms",
            "a time, not negative",
        ));
    }
    // Deleted messages no longer match, so each request starts from the beginning.
    let query = SentQuery {
        sender_id: req.user_id,
        chat_id: chat,
        since_ms: (req.since_ms > 0).then_some(req.since_ms),
        after: (0, 0),
        limit: limit + 1,
    };
    let found = ctx.state.store.sent_messages(query).await?;
    let more = found.len() > limit as usize;
    let mut deleted = 0_u32;
    let mut recipients: Option<(u64, Vec<u64>)> = None;
    for &(chat_id, seq) in found.iter().take(limit as usize) {
        // Messages come grouped by chat: its members are read once per chat.
        if recipients.as_ref().is_none_or(|(id, _)| *id != chat_id) {
            recipients = Some((chat_id, member_ids(ctx, chat_id).await?));
        }
        let members = recipients.as_ref().map_or(&[][..], |(_, m)| m.as_slice());
        if delete_for_everyone(ctx, admin, members, chat_id, seq).await? {
            deleted += 1;
        }
    }
    tracing::info!(
        admin,
        user_id = req.user_id,
        chat_id = req.chat_id,
        deleted,
        more,
        "messages purged by an admin"
    );
    Ok(Answer::Purged(pb::PurgeResult { deleted, more }))
}

/// The chat's current members (read from the store, not the cache: who is told must be exact).
async fn member_ids(ctx: &ConnCtx, chat_id: u64) -> ApiResult<Vec<u64>> {
    let members = ctx.state.store.members(chat_id).await?;
    Ok(members.iter().map(|m| m.user_id).collect())
}

/// Deletes one message for everyone as `admin` and tells `recipients` as any delete for
/// everyone is told; false when it was gone already (deleted for everyone, or its chat
/// deleted, since it was read).
async fn delete_for_everyone(
    ctx: &ConnCtx,
    admin: u64,
    recipients: &[u64],
    chat_id: u64,
    seq: u64,
) -> ApiResult<bool> {
    match ctx
        .state
        .store
        .delete_message(chat_id, seq, Actor::unjudged(admin), now_ms())
        .await
    {
        Ok(event) => {
            ctx.state
                .delivery
                .append(event, Audience::users(recipients.to_vec()));
            Ok(true)
        }
        Err(StoreError::Conflict(ConflictKind::MessageDeleted) | StoreError::NotFound("chat")) => {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}
