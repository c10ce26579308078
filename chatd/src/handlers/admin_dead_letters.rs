//! The dead letters of email and webhook delivery (protocol.md 16.4): `admin_list_dead_letters`,
//! `admin_retry_dead_letters`, `admin_purge_dead_letters`. Retry and purge are admin changes
//! and recorded in the audit log ([`super::admin_audit`]).

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::admin::require_admin;
use crate::handlers::cursor::IdList;
use crate::handlers::notifications::required_ids;
use crate::handlers::page::Page;
use crate::outbox::Outbox;
use crate::state::now_ms;
use crate::store::DeliverySet;
use crate::validate;

/// AdminListDeadLetters: the dead letters, oldest first, paged.
pub async fn admin_list_dead_letters(
    ctx: &ConnCtx,
    req: pb::AdminListDeadLetters,
) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let limit = validate::page_limit("admin_list_dead_letters.limit", req.limit)?;
    let after = IdList::DeadLetters.decode("admin_list_dead_letters.cursor", &req.cursor)?;
    let letters = ctx
        .state
        .store
        .dead_letters((after != 0).then_some(after), limit + 1)
        .await?;
    let page = Page::fill(
        limit,
        letters.iter().map(|d| pb::DeadLetter {
            id: d.id,
            kind: d.kind as i32,
            user_id: d.user_id,
            attempts: d.attempts,
            created_at_ms: d.created_at_ms,
            failed_at_ms: d.dead_at_ms,
            last_error: d.last_error.clone(),
            target: Outbox::target(d),
        }),
    )?;
    let next_cursor = match page.items().last() {
        Some(last) if page.more() => IdList::DeadLetters.encode(last.id),
        _ => String::new(),
    };
    Ok(Answer::DeadLetters(pb::DeadLetterList {
        dead_letters: page.into_items(),
        next_cursor,
    }))
}

/// The dead letters a retry or purge names.
fn which(field: &'static str, ids: &[u64], all: bool) -> ApiResult<DeliverySet> {
    if all {
        if !ids.is_empty() {
            return Err(ApiError::invalid(field, "must be empty when all is set"));
        }
        return Ok(DeliverySet::All);
    }
    Ok(DeliverySet::Ids(required_ids(field, ids)?))
}

/// AdminRetryDeadLetters: the named dead letters are tried again from their first attempt.
pub async fn admin_retry_dead_letters(
    ctx: &ConnCtx,
    req: pb::AdminRetryDeadLetters,
) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let which = which("admin_retry_dead_letters.ids", &req.ids, req.all)?;
    let count = ctx.state.store.retry_dead_letters(which, now_ms()).await?;
    Ok(Answer::DeadLettersChanged(pb::DeadLettersChanged { count }))
}

/// AdminPurgeDeadLetters: the named dead letters are deleted.
pub async fn admin_purge_dead_letters(
    ctx: &ConnCtx,
    req: pb::AdminPurgeDeadLetters,
) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let which = which("admin_purge_dead_letters.ids", &req.ids, req.all)?;
    let count = ctx.state.store.purge_dead_letters(which).await?;
    Ok(Answer::DeadLettersChanged(pb::DeadLettersChanged { count }))
}
