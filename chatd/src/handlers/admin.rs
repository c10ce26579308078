//! Server administration, for users with the admin role (chatctl's requests).
//!
//! The role is read from the store on every request rather than trusted from the connection's
//! authentication time, so a demotion takes effect at once.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::delivery::members::Audience;
use crate::error::{ApiError, ApiResult};
use crate::handlers::account::{kick_sessions, kick_user, session_view};
use crate::handlers::users::{cursor_username, existing_user, page_cursor, user_view};
use crate::state::now_ms;
use crate::store::{UserChat, UserChatsQuery};
use crate::validate;

async fn require_admin(ctx: &ConnCtx) -> ApiResult<u64> {
    let me = ctx.principal()?;
    match ctx.state.store.user(me.user_id).await? {
        Some(u) if u.role == pb::Role::Admin && !u.disabled => Ok(me.user_id),
        _ => Err(ApiError::denied("server admins only")),
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
    let mut users = ctx
        .state
        .store
        .list_users(&query, after.as_deref(), limit + 1)
        .await?;
    let next_cursor = page_cursor(&mut users, limit);
    let ids: Vec<u64> = users.iter().map(|u| u.id).collect();
    let online = ctx.state.delivery.online_among(&ids).await;
    Ok(Answer::Users(pb::UserList {
        users: users
            .iter()
            .map(|u| user_view(u, admin, true, online.contains(&u.id)))
            .collect(),
        next_cursor,
    }))
}

/// AdminSetUserDisabled: disabling revokes every session and closes live connections at once.
pub async fn admin_set_user_disabled(
    ctx: &ConnCtx,
    req: pb::AdminSetUserDisabled,
) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let user = existing_user(ctx, req.user_id, "admin_set_user_disabled.user_id").await?;
    if user.id == admin && req.disabled {
        return Err(ApiError::precondition(
            "an admin cannot disable their own account",
        ));
    }
    ctx.state.store.set_disabled(user.id, req.disabled).await?;
    if req.disabled {
        ctx.state
            .store
            .revoke_user_sessions(user.id, None, now_ms())
            .await?;
        kick_user(ctx, user.id, "account disabled");
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
    if user.id == admin {
        return Err(ApiError::precondition(
            "an admin cannot delete their own account",
        ));
    }
    let store = &ctx.state.store;
    let now = now_ms();
    store.revoke_user_sessions(user.id, None, now).await?;
    kick_user(ctx, user.id, "account deleted");
    // Leave every chat first, so nobody keeps seeing a member that no longer exists.
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
        for entry in chats {
            remove_from_chat(ctx, &entry, admin).await?;
        }
    }
    store.delete_user(user.id, now).await?;
    tracing::info!(admin, user_id = user.id, "account deleted");
    Ok(Answer::Ok(pb::Ok {}))
}

/// AdminResetPassword: new password, every session revoked.
pub async fn admin_reset_password(ctx: &ConnCtx, req: pb::AdminResetPassword) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    validate::password("admin_reset_password.new_password", &req.new_password)?;
    let user = existing_user(ctx, req.user_id, "admin_reset_password.user_id").await?;
    let hash = ctx
        .state
        .passwords
        .hash(req.new_password)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        })?;
    ctx.state.store.set_password_hash(user.id, &hash).await?;
    let revoked = ctx
        .state
        .store
        .revoke_user_sessions(user.id, None, now_ms())
        .await?;
    kick_sessions(ctx, user.id, &revoked, "password reset by an admin");
    tracing::info!(admin, user_id = user.id, "password reset");
    Ok(Answer::Ok(pb::Ok {}))
}

/// AdminSetRole. The last admin cannot be demoted.
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
    if user.role == pb::Role::Admin
        && role == pb::Role::User
        && ctx.state.store.count_admins().await? <= 1
    {
        return Err(ApiError::precondition("cannot demote the last admin"));
    }
    ctx.state.store.set_role(user.id, role).await?;
    tracing::info!(admin, user_id = user.id, ?role, "role set");
    Ok(Answer::Ok(pb::Ok {}))
}

/// AdminListSessions.
pub async fn admin_list_sessions(ctx: &ConnCtx, req: pb::AdminListSessions) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let user = existing_user(ctx, req.user_id, "admin_list_sessions.user_id").await?;
    let sessions = ctx.state.store.list_sessions(user.id).await?;
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
async fn remove_from_chat(ctx: &ConnCtx, entry: &UserChat, admin: u64) -> ApiResult<()> {
    let store = &ctx.state.store;
    let chat_id = entry.chat.id;
    let user_id = entry.member.user_id;
    let now = now_ms();
    let members = store.members(chat_id).await?;
    let mut events = Vec::new();
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
        match heir {
            Some(heir) => events.extend(
                store
                    .transfer_ownership(chat_id, admin, heir.user_id, now)
                    .await?,
            ),
            None => {
                let event = store.delete_chat(chat_id, admin, now).await?;
                ctx.state
                    .delivery
                    .append(event, Audience::users(vec![user_id]));
                return Ok(());
            }
        }
    }
    events.push(
        store
            .remove_member(chat_id, admin, user_id, false, now)
            .await?,
    );
    let recipients: Vec<u64> = members.iter().map(|m| m.user_id).collect();
    for event in events {
        ctx.state
            .delivery
            .append(event, Audience::users(recipients.clone()));
    }
    Ok(())
}
