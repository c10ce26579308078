//! Request handlers: one module per area, one function per request kind.
//!
//! [`dispatch`] enforces the connection state machine (Hello first, then authentication) and the
//! per-address and per-user request budgets before any handler runs.
//!
//! # Layout
//! - [`hello`]: the Hello request.
//! - [`account`]: register, login, refresh, authenticate, logout, password, sessions.
//! - [`users`]: profiles, search, contacts, blocks.
//! - [`admin`]: server administration: accounts, health, stats; [`admin_chats`]: of chats and
//!   messages (moderation); [`admin_nodes`]: of nodes (list, drain); [`admin_audit`]: the
//!   audit log of admin changes, recorded here in [`dispatch`]; [`admin_backup`]: copies of
//!   the embedded database; [`admin_dead_letters`]: the deliveries by email and webhook that
//!   failed for good; [`admin_broadcast`]: announcements to every user; [`admin_access`]: who
//!   may connect (bans, allow-list mode); [`admin_db`]: the storage schema's version and
//!   indexes; [`admin_keys`]: key rotation.
//! - [`chats`]: chats and per-user chat state; [`membership`]: members, roles, ownership.
//! - [`messages`]: send, edit, delete, react; [`history`]: history, search, edit history;
//!   [`receipts`]: delivery and read receipts.
//! - [`sync`]: Sync and GetChatEvents.
//! - [`notifications`]: the notification center's requests (list, mark read, clear,
//!   preferences); the notifications themselves come from [`crate::notify`].
//! - [`two_factor`]: two-factor login: turning it on and off, recovery codes, login's code.
//! - [`recovery`]: email verification, email change and password reset by emailed codes.
//! - [`typing`]: typing indicators (request and datagram).
//! - [`files`]: upload and download requests (capability `files`); [`unsubscribe`]: the
//!   one-click unsubscribe links of email digests, on the same HTTPS server as downloads.
//! - [`calls`]: call signaling and ICE servers (capability `calls`).
//! - [`group_calls`]: group calls, mesh signaling (capability `group_calls`).
//! - Shared by those: [`access`] (authorization), [`views`] (what a caller sees),
//!   [`cursor`] (paging cursors), [`page`] (answers bounded by frame size), [`mentions`]
//!   (`@username` parsing).

pub mod access;
pub mod account;
pub mod admin;
pub mod admin_access;
pub mod admin_audit;
pub mod admin_backup;
pub mod admin_broadcast;
pub mod admin_chats;
pub mod admin_db;
pub mod admin_dead_letters;
pub mod admin_keys;
pub mod admin_nodes;
pub mod calls;
pub mod chats;
pub mod cursor;
pub mod files;
pub mod group_calls;
pub mod hello;
pub mod history;
pub mod membership;
pub mod mentions;
pub mod messages;
pub mod notifications;
pub mod page;
pub mod receipts;
pub mod recovery;
pub mod sync;
pub mod two_factor;
pub mod typing;
pub mod unsubscribe;
pub mod users;
pub mod views;

use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::pb::response::Result as Answer;
use chatproto::request::Caller;

use crate::error::{ApiError, ApiResult};
use chatproto::error::CloseCode;

use crate::conn::ConnCtx;

/// Every request handler under its kind's name in `spec/chat.proto`: [`dispatch`] calls
/// `by_kind::NAME` for each kind of the request table ([`chatproto::request`]), so a new kind
/// needs only its handler, named after it, in one of the area modules.
mod by_kind {
    pub(super) use super::{
        account::*, admin::*, admin_access::*, admin_audit::*, admin_backup::*, admin_broadcast::*,
        admin_chats::*, admin_db::*, admin_dead_letters::*, admin_keys::*, admin_nodes::*,
        calls::*, chats::*, files::*, group_calls::*, hello::*, history::*, membership::*,
        messages::*, notifications::*, receipts::*, recovery::*, sync::*, two_factor::*, typing::*,
        users::*,
    };
}

/// The metric label of a request kind.
pub fn kind_name(request: &pb::Request) -> &'static str {
    request.kind.as_ref().map_or("unknown", Kind::name)
}

/// Whether the connection must close after this outcome was answered, and with which code: a
/// Welcome that redirects, or an error that says so ([`ApiError::closing`]).
pub fn close_after(outcome: &ApiResult<Answer>) -> Option<CloseCode> {
    match outcome {
        Ok(Answer::Welcome(w)) if w.redirect.is_some() => Some(CloseCode::Redirected),
        Ok(_) => None,
        Err(e) => e.close,
    }
}

/// Checks the connection state and budgets, then runs the handler. `early` says the request
/// came in 0-RTT data, which an attacker may have replayed: only the kinds the request table
/// marks early-safe are served then (protocol.md 2.5).
pub async fn dispatch(ctx: &ConnCtx, request: pb::Request, early: bool) -> ApiResult<Answer> {
    let Some(kind) = request.kind else {
        return Err(ApiError::new(
            pb::ErrorCode::Unimplemented,
            "unknown or missing request kind",
        ));
    };
    if early && !kind.early_safe() {
        return Err(ApiError::new(
            pb::ErrorCode::TooEarly,
            format!(
                "{} is not served in 0-RTT data: send it again once the handshake completes",
                kind.name()
            ),
        ));
    }
    ctx.state
        .limits
        .check_address_request(ctx.remote.ip())
        .await
        .map_err(|limited| {
            ctx.state.metrics.rate_limited(limited.scope);
            ApiError::from(limited)
        })?;
    if kind.caller() != Caller::First && ctx.capabilities().is_none() {
        return Err(ApiError::precondition("the first request must be hello"));
    }
    if kind.caller() == Caller::User {
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
    // An authentication request counts against the per-address cap on authenticated
    // connections before it does any work, and the counts follow the outcome after it.
    let authenticates = kind.caller() == Caller::Anyone;
    if authenticates {
        ctx.reserve_authenticated()?;
    }
    let audit = admin_audit::audited(&kind, &ctx.state.settings.node_id).map(|r| (kind.name(), r));
    macro_rules! route {
        ($({ name: $name:ident, variant: $variant:ident, message: $message:ident, doc: $doc:literal })*) => {
            match kind {
                $(Kind::$variant(r) => by_kind::$name(ctx, r).await,)*
            }
        };
    }
    let outcome = chatproto::for_each_request!(route);
    if authenticates {
        ctx.settle_admission();
    }
    if let Some((action, record)) = audit {
        admin_audit::record(ctx, action, record, &outcome).await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_close_code_comes_from_the_typed_outcome_not_the_message() {
        let worded = ApiError::precondition("unsupported protocol major version 2");
        assert_eq!(close_after(&Err(worded.clone())), None);
        let closing = worded.closing(CloseCode::VersionMismatch);
        assert_eq!(close_after(&Err(closing)), Some(CloseCode::VersionMismatch));
        let redirect = Answer::Welcome(pb::Welcome {
            redirect: Some(pb::Redirect::default()),
            ..Default::default()
        });
        assert_eq!(close_after(&Ok(redirect)), Some(CloseCode::Redirected));
        assert_eq!(close_after(&Ok(Answer::Ok(pb::Ok {}))), None);
    }
}
