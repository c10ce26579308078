//! Server administration, for users with the admin role (chatctl's requests).
//!
//! The role is read from the store on every request rather than trusted from the connection's
//! authentication time, so a demotion takes effect at once, also on connections that were open
//! before it (the connection keeps no role, see `conn::phase::Principal`).
//!
//! An admin cannot disable, delete or demote themselves (PERMISSION_DENIED), so the server always
//! keeps at least one admin that someone can act as; demoting, disabling or deleting the last
//! active admin is refused the same way. That last rule is the store's: it checks and changes in
//! one atomic step (`Conflict(LastAdmin)`, answered PERMISSION_DENIED), and so is the acting
//! admin's role, checked again in the write that takes rights away (`Conflict(NotAdmin)`), so two
//! admins removing each other at the same moment cannot both succeed.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::delivery::members::Audience;
use crate::error::{ApiError, ApiResult};
use crate::handlers::account::{
    NewAccount, PasswordChange, create_user, kick_sessions, kick_user, session_view, set_password,
};
use crate::handlers::hello::SERVER_NAME;
use crate::handlers::users::{cursor_username, existing_user, user_page, user_view};
use crate::state::now_ms;
use crate::store::{Actor, ConflictKind, StoreError, StoreResult, UserChat, UserChatsQuery};
use crate::validate;

/// Whether the caller is a server admin now (an active account with `ROLE_ADMIN`), read from the
/// store.
pub async fn is_server_admin(ctx: &ConnCtx) -> ApiResult<bool> {
    let me = ctx.principal()?;
    Ok(matches!(
        ctx.state.store.user(me.user_id).await?,
        Some(u) if u.role == pb::Role::Admin && u.is_active()
    ))
}

/// The caller's id, or PERMISSION_DENIED unless they are a server admin, and one with
/// two-factor login on where the server requires that of admins (spec 17.3; their other
/// requests still work, so they can turn it on).
pub async fn require_admin(ctx: &ConnCtx) -> ApiResult<u64> {
    if !is_server_admin(ctx).await? {
        return Err(ApiError::denied("server admins only"));
    }
    let me = ctx.principal()?.user_id;
    if ctx.state.settings.require_admin_two_factor
        && !super::two_factor::is_enabled(ctx, me).await?
    {
        return Err(ApiError::denied(
            "this server requires two-factor login of admins: turn it on first (begin_two_factor)",
        ));
    }
    Ok(me)
}

/// PERMISSION_DENIED when an admin's request would `what` (disable, delete, demote) themselves.
fn refuse_self(admin: u64, target: u64, what: &str) -> ApiResult<()> {
    if admin == target {
        Err(ApiError::denied(format!(
            "an admin cannot {what} themselves"
        )))
    } else {
        Ok(())
    }
}

/// AdminListUsers: every account, including disabled and deleted ones.
pub async fn admin_list_users(ctx: &ConnCtx, req: pb::AdminListUsers) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let query = if req.query.is_empty() {
        String::new()
    } else {
        validate::user_query("admin_list_users.query", &req.query)?
    };
    let limit = validate::page_limit("admin_list_users.limit", req.limit)?;
    let after = cursor_username(&req.cursor, "admin_list_users.cursor")?;
    let users = ctx
        .state
        .store
        .list_users(&query, after.as_deref(), limit + 1)
        .await?;
    let ids: Vec<u64> = users.iter().map(|u| u.id).collect();
    let online = ctx.state.delivery.online_among(&ids).await;
    let views = users
        .iter()
        .map(|u| user_view(u, admin, true, online.contains(&u.id)))
        .collect();
    user_page(limit, views)
}

/// AdminSetUserDisabled: disabling revokes every session and closes live connections at once.
pub async fn admin_set_user_disabled(
    ctx: &ConnCtx,
    req: pb::AdminSetUserDisabled,
) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let user = existing_user(ctx, req.user_id, "admin_set_user_disabled.user_id").await?;
    if req.disabled {
        refuse_self(admin, user.id, "disable")?;
    }
    ctx.state
        .store
        .set_disabled(user.id, req.disabled, Some(admin))
        .await?;
    if req.disabled {
        // Closed first: a disabled account signs in nowhere, so its connections go even when
        // the revocation below fails (a retry of this request then completes it).
        kick_user(ctx, user.id, "account disabled");
        ctx.state
            .store
            .revoke_user_sessions(user.id, None, now_ms())
            .await?;
    }
    tracing::info!(
        admin,
        user_id = user.id,
        disabled = req.disabled,
        "account disabled flag set"
    );
    Ok(Answer::Ok(pb::Ok {}))
}

/// AdminDeleteUser: profile purged, sessions revoked, removed from every chat; groups they owned
/// pass to another member (an admin first) or are deleted when empty.
pub async fn admin_delete_user(ctx: &ConnCtx, req: pb::AdminDeleteUser) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let user = existing_user(ctx, req.user_id, "admin_delete_user.user_id").await?;
    refuse_self(admin, user.id, "delete")?;
    let store = &ctx.state.store;
    // Disabled first: the store refuses it for the last admin before anything is undone, and
    // a deletion cut short leaves a disabled account rather than a half-removed active one.
    store.set_disabled(user.id, true, Some(admin)).await?;
    // Closed before the revocation, as a disabled account's are (see above).
    kick_user(ctx, user.id, "account deleted");
    let now = now_ms();
    store.revoke_user_sessions(user.id, None, now).await?;
    // Leave every chat first, so nobody keeps seeing a member that no longer exists.
    let mut idle_passes = 0;
    loop {
        let chats = store
            .user_chats(
                user.id,
                UserChatsQuery {
                    include_archived: true,
                    after: None,
                    limit: 100,
                },
            )
            .await?;
        if chats.is_empty() {
            break;
        }
        let mut removed = false;
        for entry in chats {
            removed |= remove_from_chat(ctx, &entry, admin).await?;
        }
        // Passes that find only work done by others end once those others are done; a store
        // that keeps listing chats it cannot take the user out of does not hold this forever.
        idle_passes = if removed { 0 } else { idle_passes + 1 };
        if idle_passes > MAX_IDLE_PASSES {
            return Err(ApiError::unavailable(
                "the user's chats kept changing while they were taken out; try again",
            ));
        }
    }
    store.delete_user(user.id, now, Some(admin)).await?;
    tracing::info!(admin, user_id = user.id, "account deleted");
    Ok(Answer::Ok(pb::Ok {}))
}

/// AdminResetPassword: new password, every session revoked.
pub async fn admin_reset_password(ctx: &ConnCtx, req: pb::AdminResetPassword) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    validate::password("admin_reset_password.new_password", &req.new_password)?;
    let user = existing_user(ctx, req.user_id, "admin_reset_password.user_id").await?;
    let change = PasswordChange {
        user_id: user.id,
        new_password: req.new_password,
        replacing: None,
        keep: None,
        reason: "password reset by an admin",
    };
    set_password(ctx, change).await?;
    tracing::info!(admin, user_id = user.id, "password reset");
    Ok(Answer::Ok(pb::Ok {}))
}

/// AdminSetRole. Nobody demotes themselves, and the last admin cannot be demoted.
pub async fn admin_set_role(ctx: &ConnCtx, req: pb::AdminSetRole) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let role = match pb::Role::try_from(req.role) {
        Ok(pb::Role::User) => pb::Role::User,
        Ok(pb::Role::Admin) => pb::Role::Admin,
        _ => {
            return Err(ApiError::invalid(
                "admin_set_role.role",
                "must be ROLE_USER or ROLE_ADMIN",
            ));
        }
    };
    let user = existing_user(ctx, req.user_id, "admin_set_role.user_id").await?;
    if role == pb::Role::User {
        refuse_self(admin, user.id, "demote")?;
    }
    ctx.state.store.set_role(user.id, role, Some(admin)).await?;
    tracing::info!(admin, user_id = user.id, ?role, "role set");
    Ok(Answer::Ok(pb::Ok {}))
}

/// AdminListSessions.
pub async fn admin_list_sessions(ctx: &ConnCtx, req: pb::AdminListSessions) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let user = existing_user(ctx, req.user_id, "admin_list_sessions.user_id").await?;
    let sessions = super::account::live_sessions(ctx, user.id).await?;
    Ok(Answer::Sessions(pb::SessionList {
        sessions: sessions.iter().map(|s| session_view(s, None)).collect(),
    }))
}

/// AdminRevokeSessions: one session, or all with session_id 0.
pub async fn admin_revoke_sessions(
    ctx: &ConnCtx,
    req: pb::AdminRevokeSessions,
) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let user = existing_user(ctx, req.user_id, "admin_revoke_sessions.user_id").await?;
    let now = now_ms();
    let revoked = if req.session_id == 0 {
        ctx.state
            .store
            .revoke_user_sessions(user.id, None, now)
            .await?
    } else {
        ctx.state
            .store
            .revoke_session(user.id, req.session_id, now)
            .await?;
        vec![req.session_id]
    };
    kick_sessions(ctx, user.id, &revoked, "session revoked by an admin");
    tracing::info!(
        admin,
        user_id = user.id,
        count = revoked.len(),
        "sessions revoked"
    );
    Ok(Answer::Ok(pb::Ok {}))
}

/// Takes a departing user out of one chat, handing a group they own to another member first (an
/// admin if there is one) or deleting it when nobody else is left.
///
/// Another request may take the user out of the chat first (a second deletion of the same user
/// at once): what it already did is skipped, and the caller's next read of the user's chats
/// shows what is left. True when this request took the user out.
async fn remove_from_chat(ctx: &ConnCtx, entry: &UserChat, admin: u64) -> ApiResult<bool> {
    match remove_from_chat_once(ctx, entry, admin).await {
        Ok(()) => Ok(true),
        Err(
            StoreError::NotFound("member" | "chat") | StoreError::Conflict(ConflictKind::NotOwner),
        ) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Passes over a departing user's chats in a row that take them out of none (see
/// [`admin_delete_user`]).
const MAX_IDLE_PASSES: u32 = 3;

/// [`remove_from_chat`] as the chat was when `entry` was read.
async fn remove_from_chat_once(ctx: &ConnCtx, entry: &UserChat, admin: u64) -> StoreResult<()> {
    let store = &ctx.state.store;
    let chat_id = entry.chat.id;
    let user_id = entry.member.user_id;
    let now = now_ms();
    let members = store.members(chat_id).await?;
    let recipients: Vec<u64> = members.iter().map(|m| m.user_id).collect();
    // Each change is told as soon as it is made: a later step may find its work done already.
    let tell = |events: Vec<pb::ChatEvent>| {
        for event in events {
            ctx.state
                .delivery
                .append(event, Audience::users(recipients.clone()));
        }
    };
    if entry.member.role == pb::MemberRole::Owner {
        let heir = members
            .iter()
            .filter(|m| m.user_id != user_id)
            .max_by_key(|m| {
                (
                    m.role == pb::MemberRole::Admin,
                    std::cmp::Reverse(m.joined_at_seq),
                )
            });
        let Some(heir) = heir else {
            let event = store
                .delete_chat(chat_id, Actor::unjudged(admin), now)
                .await?;
            ctx.state.calls.members_gone(chat_id, &[user_id]).await;
            ctx.state
                .delivery
                .append(event, Audience::users(vec![user_id]));
            return Ok(());
        };
        tell(
            store
                .transfer_ownership(chat_id, admin, user_id, heir.user_id, now)
                .await?,
        );
    }
    tell(vec![
        store
            .remove_member(chat_id, Actor::unjudged(admin), user_id, false, now)
            .await?,
    ]);
    ctx.state.calls.members_gone(chat_id, &[user_id]).await;
    Ok(())
}

/// AdminCreateUser: an account made by an admin (`register`'s rules, no session opened).
pub async fn admin_create_user(ctx: &ConnCtx, req: pb::AdminCreateUser) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let username = validate::username("admin_create_user.username", &req.username)?;
    validate::email("admin_create_user.email", &req.email)?;
    validate::password("admin_create_user.password", &req.password)?;
    let role = match pb::Role::try_from(req.role) {
        Ok(pb::Role::Unspecified | pb::Role::User) => pb::Role::User,
        Ok(pb::Role::Admin) => pb::Role::Admin,
        Err(_) => {
            return Err(ApiError::invalid(
                "admin_create_user.role",
                "must be ROLE_USER or ROLE_ADMIN",
            ));
        }
    };
    let account = NewAccount {
        username,
        email: req.email,
        password: req.password,
        role,
    };
    let user = create_user(ctx, account, "admin_create_user.username").await?;
    tracing::info!(admin, user_id = user.id, username = %user.username, "user created by an admin");
    Ok(Answer::User(user_view(&user, admin, true, false)))
}

/// AdminHealth: the answering node's dependencies, each checked now.
pub async fn admin_health(ctx: &ConnCtx, _req: pb::AdminHealth) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let checks: Vec<pb::HealthCheck> = ctx
        .state
        .health_checks()
        .await
        .into_iter()
        .map(|(name, result)| pb::HealthCheck {
            name: name.to_owned(),
            healthy: result.is_ok(),
            detail: result.err().unwrap_or_default(),
        })
        .collect();
    Ok(Answer::Health(pb::ServerHealth {
        healthy: checks.iter().all(|c| c.healthy),
        checks,
        server_name: SERVER_NAME.to_owned(),
        node_id: ctx.state.settings.node_id.clone(),
    }))
}

/// AdminStats: the store's counts, and this node's connections and uptime.
pub async fn admin_stats(ctx: &ConnCtx, _req: pb::AdminStats) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let counts = ctx.state.store.counts().await?;
    let uptime = ctx.state.node.started.elapsed();
    Ok(Answer::Stats(pb::ServerStats {
        users: counts.users,
        chats: counts.chats,
        messages: counts.messages,
        connections: ctx.state.delivery.connection_count() as u64,
        uptime_ms: i64::try_from(uptime.as_millis()).unwrap_or(i64::MAX),
        server_name: SERVER_NAME.to_owned(),
        node_id: ctx.state.settings.node_id.clone(),
        messages_last_minute: ctx.state.metrics.messages_last_minute(),
    }))
}
