//! Users: profiles, search, contacts and blocks.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::delivery::presence::effective_status;
use crate::error::{ApiError, ApiResult};
use crate::handlers::files::access;
use crate::handlers::page::Page;
use crate::store::{ProfilePatch, UserRecord};
use crate::validate::{self, MAX_PAGE_SIZE};

/// How a user looks to `viewer`: private fields only for themselves (or admins, with
/// `privileged`). `online` is whether the user is connected to any node (see
/// [`Delivery::online_among`](crate::delivery::Delivery::online_among)); callers hide presence from users
/// the subject blocked.
pub fn user_view(user: &UserRecord, viewer: u64, privileged: bool, online: bool) -> pb::User {
    let own = user.id == viewer;
    pb::User {
        id: user.id,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        bio: user.bio.clone(),
        avatar_file_id: user.avatar_file_id.clone(),
        status: effective_status(user, online) as i32,
        last_seen_at_ms: user.last_seen_at_ms,
        created_at_ms: user.created_at_ms,
        email: if own || privileged {
            user.email.clone()
        } else {
            String::new()
        },
        role: if own || privileged {
            user.role as i32
        } else {
            0
        },
        disabled: privileged && user.disabled,
        two_factor_enabled: false,
        email_verified: (own || privileged) && user.email_verified,
    }
}

/// The caller's own view of themselves: they are connected, so online.
pub fn own_view(user: &UserRecord) -> pb::User {
    user_view(user, user.id, false, true)
}

/// Views of `users` for `viewer`, with presence hidden where the subject blocked the viewer.
async fn views(ctx: &ConnCtx, users: &[UserRecord], viewer: u64) -> ApiResult<Vec<pb::User>> {
    let ids: Vec<u64> = users.iter().map(|u| u.id).collect();
    let online = ctx.state.delivery.online_among(&ids).await;
    let blocked_me = {
        let mut v = Vec::new();
        for u in users {
            if u.id != viewer && ctx.state.store.is_blocked(u.id, viewer).await? {
                v.push(u.id);
            }
        }
        v
    };
    Ok(users
        .iter()
        .map(|u| {
            let mut view = user_view(u, viewer, false, online.contains(&u.id));
            if blocked_me.contains(&u.id) {
                view.status = pb::UserStatus::Offline as i32;
                view.last_seen_at_ms = 0;
            }
            view
        })
        .collect())
}

/// An existing, not deleted user, or NOT_FOUND naming the field.
pub async fn existing_user(ctx: &ConnCtx, user_id: u64, field: &str) -> ApiResult<UserRecord> {
    if user_id == 0 {
        return Err(ApiError::invalid(field, "required"));
    }
    match ctx.state.store.user(user_id).await? {
        Some(u) if !u.deleted => Ok(u),
        _ => Err(ApiError::not_found("user")),
    }
}

/// NOT_FOUND "user" when `user_id` never existed. Unlike [`existing_user`] a deleted user
/// passes: undoing a relation with them (remove a contact, unblock) must stay possible.
async fn known_user(ctx: &ConnCtx, user_id: u64, field: &str) -> ApiResult<()> {
    if user_id == 0 {
        return Err(ApiError::invalid(field, "required"));
    }
    match ctx.state.store.user(user_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("user")),
    }
}

/// GetMe.
pub async fn get_me(ctx: &ConnCtx, _req: pb::GetMe) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    let user = ctx
        .state
        .store
        .user(me.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let mut view = own_view(&user);
    view.two_factor_enabled = super::two_factor::is_enabled(ctx, me.user_id).await?;
    Ok(Answer::User(view))
}

/// GetUsers: unknown ids are left out; the others come in the order asked, as many as fit
/// one frame (`next_cursor`, the last id answered, tells the client to ask for the rest).
pub async fn get_users(ctx: &ConnCtx, req: pb::GetUsers) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    let ids = validate::id_list("get_users.user_ids", &req.user_ids)?;
    let mut users = ctx.state.store.users(&ids).await?;
    users.sort_by_key(|u| ids.iter().position(|id| *id == u.id));
    let page = Page::fill(u32::MAX, views(ctx, &users, me.user_id).await?)?;
    let next_cursor = match page.items().last() {
        Some(last) if page.more() => last.id.to_string(),
        _ => String::new(),
    };
    Ok(Answer::Users(pb::UserList {
        users: page.into_items(),
        next_cursor,
    }))
}

/// UpdateProfile.
pub async fn update_profile(ctx: &ConnCtx, req: pb::UpdateProfile) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    if let Some(bio) = &req.bio {
        validate::bio("update_profile.bio", bio)?;
    }
    let display_name = req
        .display_name
        .as_deref()
        .map(|v| validate::display_name("update_profile.display_name", v))
        .transpose()?;
    let status = match pb::UserStatus::try_from(req.status) {
        Ok(pb::UserStatus::Unspecified) => None,
        Ok(status) => Some(status),
        Err(_) => return Err(ApiError::invalid("update_profile.status", "unknown status")),
    };
    // Last: it reads the file, and only a request that is otherwise valid needs to.
    let mut avatar = None;
    if let Some(file_id) = req.avatar_file_id.as_deref().filter(|a| !a.is_empty()) {
        validate::file_id("update_profile.avatar_file_id", file_id)?;
        avatar = Some(
            access::check_avatar(
                &ctx.state,
                me.user_id,
                file_id,
                "update_profile.avatar_file_id",
            )
            .await?,
        );
    }
    let patch = ProfilePatch {
        display_name,
        bio: req.bio,
        avatar_file_id: req.avatar_file_id,
        status,
    };
    let status_changed = patch.status.is_some();
    let user = ctx.state.store.update_profile(me.user_id, patch).await?;
    access::publish_avatar(&ctx.state, avatar).await?;
    if status_changed {
        ctx.state.delivery.announce_presence(me.user_id).await;
    }
    Ok(Answer::User(own_view(&user)))
}

/// SearchUsers: prefix of username or display name, paged by username.
pub async fn search_users(ctx: &ConnCtx, req: pb::SearchUsers) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    let query = validate::user_query("search_users.query", &req.query)?;
    let limit = validate::page_limit_or("search_users.limit", req.limit, 20)?;
    let after = cursor_username(&req.cursor, "search_users.cursor")?;
    let users = ctx
        .state
        .store
        .search_users(&query, after.as_deref(), limit + 1)
        .await?;
    user_page(limit, views(ctx, &users, me.user_id).await?)
}

/// Decodes a username cursor (the last username of the previous page).
pub fn cursor_username(cursor: &str, field: &str) -> ApiResult<Option<String>> {
    if cursor.is_empty() {
        return Ok(None);
    }
    validate::username("cursor", cursor)
        .map(Some)
        .map_err(|_| ApiError::invalid(field, "malformed cursor"))
}

/// A page of users ordered by username from `limit + 1` views: those that fit, and the last
/// one's username as the next cursor when some were left out.
pub fn user_page(limit: u32, users: Vec<pb::User>) -> ApiResult<Answer> {
    let page = Page::fill(limit, users)?;
    let next_cursor = match page.items().last() {
        Some(last) if page.more() => last.username.clone(),
        _ => String::new(),
    };
    Ok(Answer::Users(pb::UserList {
        users: page.into_items(),
        next_cursor,
    }))
}

/// A page of the users `ids` (a contact or block list), ordered by username, after `after`.
async fn listed_users(
    ctx: &ConnCtx,
    ids: &[u64],
    viewer: u64,
    limit: u32,
    after: Option<String>,
) -> ApiResult<Answer> {
    let mut users = ctx.state.store.users(ids).await?;
    users.sort_by(|a, b| a.username.cmp(&b.username));
    users.retain(|u| after.as_ref().is_none_or(|after| u.username > *after));
    users.truncate(limit as usize + 1);
    user_page(limit, views(ctx, &users, viewer).await?)
}

/// AddContact.
pub async fn add_contact(ctx: &ConnCtx, req: pb::AddContact) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    if req.user_id == me.user_id {
        return Err(ApiError::invalid(
            "add_contact.user_id",
            "cannot add yourself",
        ));
    }
    existing_user(ctx, req.user_id, "add_contact.user_id").await?;
    ctx.state.store.add_contact(me.user_id, req.user_id).await?;
    Ok(Answer::Ok(pb::Ok {}))
}

/// RemoveContact.
pub async fn remove_contact(ctx: &ConnCtx, req: pb::RemoveContact) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    known_user(ctx, req.user_id, "remove_contact.user_id").await?;
    ctx.state
        .store
        .remove_contact(me.user_id, req.user_id)
        .await?;
    Ok(Answer::Ok(pb::Ok {}))
}

/// ListContacts, paged by username.
pub async fn list_contacts(ctx: &ConnCtx, req: pb::ListContacts) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    let limit = validate::page_limit_or("list_contacts.limit", req.limit, MAX_PAGE_SIZE)?;
    let after = cursor_username(&req.cursor, "list_contacts.cursor")?;
    let ids = ctx.state.store.contacts(me.user_id).await?;
    listed_users(ctx, &ids, me.user_id, limit, after).await
}

/// BlockUser. The blocked user sees the blocker go offline at once, and a private call between
/// them ends.
pub async fn block_user(ctx: &ConnCtx, req: pb::BlockUser) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    if req.user_id == me.user_id {
        return Err(ApiError::invalid(
            "block_user.user_id",
            "cannot block yourself",
        ));
    }
    existing_user(ctx, req.user_id, "block_user.user_id").await?;
    ctx.state.store.block(me.user_id, req.user_id).await?;
    ctx.state.delivery.blocks_changed(me.user_id).await?;
    let hidden = pb::Event {
        kind: Some(pb::event::Kind::Presence(pb::PresenceUpdate {
            user_id: me.user_id,
            status: pb::UserStatus::Offline as i32,
            last_seen_at_ms: 0,
        })),
    };
    ctx.state.delivery.notify(&[req.user_id], &hidden, None);
    ctx.state.calls.blocked(me.user_id, req.user_id).await;
    Ok(Answer::Ok(pb::Ok {}))
}

/// UnblockUser. The unblocked user sees the current presence again.
pub async fn unblock_user(ctx: &ConnCtx, req: pb::UnblockUser) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    known_user(ctx, req.user_id, "unblock_user.user_id").await?;
    ctx.state.store.unblock(me.user_id, req.user_id).await?;
    ctx.state.delivery.blocks_changed(me.user_id).await?;
    ctx.state.delivery.announce_presence(me.user_id).await;
    Ok(Answer::Ok(pb::Ok {}))
}

/// ListBlocked, paged by username.
pub async fn list_blocked(ctx: &ConnCtx, req: pb::ListBlocked) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    let limit = validate::page_limit_or("list_blocked.limit", req.limit, MAX_PAGE_SIZE)?;
    let after = cursor_username(&req.cursor, "list_blocked.cursor")?;
    let ids = ctx.state.store.blocked(me.user_id).await?;
    listed_users(ctx, &ids, me.user_id, limit, after).await
}
