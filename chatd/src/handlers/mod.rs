//! Request handlers: one module per area, one function per request kind.
//!
//! [`dispatch`] enforces the connection state machine (Hello first, then authentication) and the
//! per-address and per-user request budgets before any handler runs.
//!
//! # Layout
//! - [`hello`]: the Hello request.
//! - [`account`]: register, login, refresh, authenticate, logout, password, sessions.
//! - [`users`]: profiles, search, contacts, blocks.
//! - [`admin`]: server administration.
//! - [`chats`]: chats and per-user chat state; [`membership`]: members, roles, ownership.
//! - [`messages`]: send, edit, delete, react; [`history`]: history, search, edit history;
//!   [`receipts`]: delivery and read receipts.
//! - [`sync`]: Sync and GetChatEvents.
//! - [`typing`]: typing indicators (request and datagram).
//! - Shared by those: [`access`] (authorization), [`views`] (what a caller sees),
//!   [`cursor`] (paging cursors), [`mentions`] (`@username` parsing).

pub mod access;
pub mod account;
pub mod admin;
pub mod chats;
pub mod cursor;
pub mod hello;
pub mod history;
pub mod membership;
pub mod mentions;
pub mod messages;
pub mod receipts;
pub mod sync;
pub mod typing;
pub mod users;
pub mod views;

use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::pb::response::Result as Answer;

use crate::error::{ApiError, ApiResult};
use chatproto::error::CloseCode;

use crate::conn::ConnCtx;

/// The metric label of a request kind.
pub fn kind_name(request: &pb::Request) -> &'static str {
    match &request.kind {
        None => "unknown",
        Some(kind) => match kind {
            Kind::Hello(_) => "hello",
            Kind::Register(_) => "register",
            Kind::Login(_) => "login",
            Kind::Refresh(_) => "refresh",
            Kind::Authenticate(_) => "authenticate",
            Kind::Logout(_) => "logout",
            Kind::ChangePassword(_) => "change_password",
            Kind::ListSessions(_) => "list_sessions",
            Kind::RevokeSession(_) => "revoke_session",
            Kind::RevokeOtherSessions(_) => "revoke_other_sessions",
            Kind::GetMe(_) => "get_me",
            Kind::GetUsers(_) => "get_users",
            Kind::UpdateProfile(_) => "update_profile",
            Kind::SearchUsers(_) => "search_users",
            Kind::AddContact(_) => "add_contact",
            Kind::RemoveContact(_) => "remove_contact",
            Kind::ListContacts(_) => "list_contacts",
            Kind::BlockUser(_) => "block_user",
            Kind::UnblockUser(_) => "unblock_user",
            Kind::ListBlocked(_) => "list_blocked",
            Kind::CreatePrivateChat(_) => "create_private_chat",
            Kind::CreateGroup(_) => "create_group",
            Kind::UpdateChat(_) => "update_chat",
            Kind::DeleteChat(_) => "delete_chat",
            Kind::AddMembers(_) => "add_members",
            Kind::RemoveMember(_) => "remove_member",
            Kind::LeaveChat(_) => "leave_chat",
            Kind::SetMemberRole(_) => "set_member_role",
            Kind::TransferOwnership(_) => "transfer_ownership",
            Kind::SetChatState(_) => "set_chat_state",
            Kind::ListChats(_) => "list_chats",
            Kind::GetChat(_) => "get_chat",
            Kind::SendMessage(_) => "send_message",
            Kind::EditMessage(_) => "edit_message",
            Kind::DeleteMessage(_) => "delete_message",
            Kind::React(_) => "react",
            Kind::GetHistory(_) => "get_history",
            Kind::SearchMessages(_) => "search_messages",
            Kind::MarkReceipt(_) => "mark_receipt",
            Kind::GetReceipts(_) => "get_receipts",
            Kind::GetMessageEdits(_) => "get_message_edits",
            Kind::SendTyping(_) => "send_typing",
            Kind::Sync(_) => "sync",
            Kind::GetChatEvents(_) => "get_chat_events",
            Kind::AdminListUsers(_) => "admin_list_users",
            Kind::AdminSetUserDisabled(_) => "admin_set_user_disabled",
            Kind::AdminDeleteUser(_) => "admin_delete_user",
            Kind::AdminResetPassword(_) => "admin_reset_password",
            Kind::AdminSetRole(_) => "admin_set_role",
            Kind::AdminListSessions(_) => "admin_list_sessions",
            Kind::AdminRevokeSessions(_) => "admin_revoke_sessions",
        },
    }
}

/// Whether the connection must close after this response went out, and with which code.
pub fn close_after(response: &pb::Response) -> Option<CloseCode> {
    match &response.result {
        Some(Answer::Welcome(w)) if w.redirect.is_some() => Some(CloseCode::Redirected),
        Some(Answer::Error(e))
            if e.code() == pb::ErrorCode::FailedPrecondition
                && e.message.starts_with("unsupported protocol") =>
        {
            Some(CloseCode::VersionMismatch)
        }
        _ => None,
    }
}

/// Checks the connection state and budgets, then runs the handler.
pub async fn dispatch(ctx: &ConnCtx, request: pb::Request) -> ApiResult<Answer> {
    let Some(kind) = request.kind else {
        return Err(ApiError::new(
            pb::ErrorCode::Unimplemented,
            "unknown or missing request kind",
        ));
    };
    ctx.state
        .limits
        .check_address_request(ctx.remote.ip())
        .await
        .map_err(|limited| {
            ctx.state.metrics.rate_limited(limited.scope);
            ApiError::from(limited)
        })?;
    let opens_session = matches!(
        kind,
        Kind::Register(_) | Kind::Login(_) | Kind::Refresh(_) | Kind::Authenticate(_)
    );
    if !matches!(kind, Kind::Hello(_)) && ctx.capabilities().is_none() {
        return Err(ApiError::precondition("the first request must be hello"));
    }
    if !opens_session && !matches!(kind, Kind::Hello(_)) {
        let me = ctx.principal()?;
        ctx.state
            .limits
            .check_request(me.user_id)
            .await
            .map_err(|limited| {
                ctx.state.metrics.rate_limited(limited.scope);
                ApiError::from(limited)
            })?;
    }
    match kind {
        Kind::Hello(r) => hello::hello(ctx, r).await,
        Kind::Register(r) => account::register(ctx, r).await,
        Kind::Login(r) => account::login(ctx, r).await,
        Kind::Refresh(r) => account::refresh(ctx, r).await,
        Kind::Authenticate(r) => account::authenticate(ctx, r).await,
        Kind::Logout(r) => account::logout(ctx, r).await,
        Kind::ChangePassword(r) => account::change_password(ctx, r).await,
        Kind::ListSessions(r) => account::list_sessions(ctx, r).await,
        Kind::RevokeSession(r) => account::revoke_session(ctx, r).await,
        Kind::RevokeOtherSessions(r) => account::revoke_other_sessions(ctx, r).await,
        Kind::GetMe(r) => users::get_me(ctx, r).await,
        Kind::GetUsers(r) => users::get_users(ctx, r).await,
        Kind::UpdateProfile(r) => users::update_profile(ctx, r).await,
        Kind::SearchUsers(r) => users::search_users(ctx, r).await,
        Kind::AddContact(r) => users::add_contact(ctx, r).await,
        Kind::RemoveContact(r) => users::remove_contact(ctx, r).await,
        Kind::ListContacts(r) => users::list_contacts(ctx, r).await,
        Kind::BlockUser(r) => users::block_user(ctx, r).await,
        Kind::UnblockUser(r) => users::unblock_user(ctx, r).await,
        Kind::ListBlocked(r) => users::list_blocked(ctx, r).await,
        Kind::CreatePrivateChat(r) => chats::create_private_chat(ctx, r).await,
        Kind::CreateGroup(r) => chats::create_group(ctx, r).await,
        Kind::UpdateChat(r) => chats::update_chat(ctx, r).await,
        Kind::DeleteChat(r) => chats::delete_chat(ctx, r).await,
        Kind::AddMembers(r) => membership::add_members(ctx, r).await,
        Kind::RemoveMember(r) => membership::remove_member(ctx, r).await,
        Kind::LeaveChat(r) => membership::leave_chat(ctx, r).await,
        Kind::SetMemberRole(r) => membership::set_member_role(ctx, r).await,
        Kind::TransferOwnership(r) => membership::transfer_ownership(ctx, r).await,
        Kind::SetChatState(r) => chats::set_chat_state(ctx, r).await,
        Kind::ListChats(r) => chats::list_chats(ctx, r).await,
        Kind::GetChat(r) => chats::get_chat(ctx, r).await,
        Kind::SendMessage(r) => messages::send_message(ctx, r).await,
        Kind::EditMessage(r) => messages::edit_message(ctx, r).await,
        Kind::DeleteMessage(r) => messages::delete_message(ctx, r).await,
        Kind::React(r) => messages::react(ctx, r).await,
        Kind::GetHistory(r) => history::get_history(ctx, r).await,
        Kind::SearchMessages(r) => history::search_messages(ctx, r).await,
        Kind::MarkReceipt(r) => receipts::mark_receipt(ctx, r).await,
        Kind::GetReceipts(r) => receipts::get_receipts(ctx, r).await,
        Kind::GetMessageEdits(r) => history::get_message_edits(ctx, r).await,
        Kind::SendTyping(r) => typing::send_typing(ctx, r).await,
        Kind::Sync(r) => sync::sync(ctx, r).await,
        Kind::GetChatEvents(r) => sync::get_chat_events(ctx, r).await,
        Kind::AdminListUsers(r) => admin::list_users(ctx, r).await,
        Kind::AdminSetUserDisabled(r) => admin::set_user_disabled(ctx, r).await,
        Kind::AdminDeleteUser(r) => admin::delete_user(ctx, r).await,
        Kind::AdminResetPassword(r) => admin::reset_password(ctx, r).await,
        Kind::AdminSetRole(r) => admin::set_role(ctx, r).await,
        Kind::AdminListSessions(r) => admin::list_sessions(ctx, r).await,
        Kind::AdminRevokeSessions(r) => admin::revoke_sessions(ctx, r).await,
    }
}
