//! Who may connect (protocol.md 9.6, "Access rules"): adding and removing bans and allow
//! rules, listing them, and allow-list mode. The rules are stored, and each node decides from
//! its own snapshot ([`crate::access`]); this node reloads it as soon as a change is stored,
//! the others within their refresh interval.
//!
//! A change that would refuse the address the admin is asking from is refused
//! (FAILED_PRECONDITION): the verdict on the caller's address is computed on the rules as they
//! would be after the change, the way the accept loop computes it, so an admin cannot lock
//! themselves out by a slip (the server's exempt ranges stay the way back in).

use std::net::IpAddr;

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::access::cidr::Cidr;
use crate::access::{AccessList, Verdict};
use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::admin::require_admin;
use crate::handlers::page::Page;
use crate::state::now_ms;
use crate::validate::{self, FieldError};

/// Longest range text accepted (the longest IPv6 form with a prefix is 43 bytes).
pub(crate) const MAX_CIDR_BYTES: usize = 64;

/// Most rules one answer lists (the frame budget may stop it earlier; `more` says so).
const MAX_LISTED: u32 = 10_000;

/// A range from a request, in canonical form.
fn range(field: &'static str, raw: &str) -> ApiResult<Cidr> {
    if raw.len() > MAX_CIDR_BYTES {
        return Err(FieldError::too_large(field, format!("at most {MAX_CIDR_BYTES} bytes")).into());
    }
    raw.trim()
        .parse()
        .map_err(|e: crate::access::cidr::CidrError| ApiError::invalid(field, e.to_string()))
}

/// BAN or ALLOW from a request.
fn kind(field: &'static str, raw: i32) -> ApiResult<pb::AccessRuleKind> {
    match pb::AccessRuleKind::try_from(raw) {
        Ok(k @ (pb::AccessRuleKind::Ban | pb::AccessRuleKind::Allow)) => Ok(k),
        _ => Err(ApiError::invalid(
            field,
            "must be ACCESS_RULE_KIND_BAN or ACCESS_RULE_KIND_ALLOW",
        )),
    }
}

/// The kind's lowercase name, as the audit log and chatctl write it.
pub(crate) fn kind_name(kind: i32) -> &'static str {
    match pb::AccessRuleKind::try_from(kind) {
        Ok(pb::AccessRuleKind::Ban) => "ban",
        Ok(pb::AccessRuleKind::Allow) => "allow",
        _ => "unspecified",
    }
}

/// The caller's address as the accept loop sees addresses.
fn caller(ctx: &ConnCtx) -> IpAddr {
    crate::access::cidr::canonical(ctx.remote.ip())
}

/// FAILED_PRECONDITION when the rules `after` would refuse the caller, whom the stored rules
/// admit now.
async fn refuse_lockout(ctx: &ConnCtx, after: &AccessList) -> ApiResult<()> {
    let access = &ctx.state.access;
    let me = caller(ctx);
    let now = stored_list(ctx).await?;
    if access.verdict_under(&now, me) == Verdict::Admit
        && access.verdict_under(after, me) != Verdict::Admit
    {
        return Err(ApiError::precondition(format!(
            "this would refuse your own address {me}: add an allow rule for it first, or make \
             the change from another address (the server's exempt ranges are always let in)"
        )));
    }
    Ok(())
}

/// The stored rules and mode, as a node would load them.
async fn stored_list(ctx: &ConnCtx) -> ApiResult<AccessList> {
    let store = &ctx.state.store;
    Ok(AccessList::new(
        &store.access_rules().await?,
        store.allow_list_mode().await?,
    ))
}

/// The stored rules with `change` applied to them, and the mode.
async fn stored_with(
    ctx: &ConnCtx,
    change: impl FnOnce(&mut Vec<pb::AccessRule>),
    allow_list: Option<bool>,
) -> ApiResult<AccessList> {
    let store = &ctx.state.store;
    let mut rules = store.access_rules().await?;
    change(&mut rules);
    let mode = match allow_list {
        Some(mode) => mode,
        None => store.allow_list_mode().await?,
    };
    Ok(AccessList::new(&rules, mode))
}

/// Makes this node decide on the stored rules at once; the stored change stands if that fails
/// (the next refresh picks it up).
async fn apply_here(ctx: &ConnCtx) {
    if let Err(e) = ctx.state.access.reload().await {
        tracing::warn!(error = %e, "cannot reload the access rules after a change; the next refresh will");
    }
}

/// The rules now in force and the mode, for the caller.
async fn access_list(ctx: &ConnCtx) -> ApiResult<Answer> {
    let store = &ctx.state.store;
    let now = now_ms();
    let live = store
        .access_rules()
        .await?
        .into_iter()
        .filter(|r| r.expires_at_ms == 0 || r.expires_at_ms > now);
    let page = Page::fill(MAX_LISTED, live)?;
    Ok(Answer::Access(pb::AccessList {
        more: page.more(),
        rules: page.into_items(),
        allow_list: store.allow_list_mode().await?,
        caller_address: caller(ctx).to_string(),
    }))
}

/// AdminAddAccessRule: adds or replaces the rule of its kind for its range.
pub async fn admin_add_access_rule(
    ctx: &ConnCtx,
    req: pb::AdminAddAccessRule,
) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let range = range("admin_add_access_rule.cidr", &req.cidr)?;
    let kind = kind("admin_add_access_rule.kind", req.kind)?;
    let reason = validate::access_reason("admin_add_access_rule.reason", &req.reason)?;
    if req.expires_in_ms < 0 {
        return Err(ApiError::invalid(
            "admin_add_access_rule.expires_in_ms",
            "must not be negative (0: until removed)",
        ));
    }
    let now = now_ms();
    let rule = pb::AccessRule {
        cidr: range.to_string(),
        kind: kind as i32,
        reason,
        created_by: admin,
        created_at_ms: now,
        expires_at_ms: match req.expires_in_ms {
            0 => 0,
            ms => now.saturating_add(ms),
        },
    };
    let after = stored_with(
        ctx,
        |rules| {
            rules.retain(|r| !(r.kind == rule.kind && r.cidr == rule.cidr));
            rules.push(rule.clone());
        },
        None,
    )
    .await?;
    refuse_lockout(ctx, &after).await?;
    ctx.state.store.put_access_rule(rule.clone()).await?;
    apply_here(ctx).await;
    tracing::info!(admin, cidr = %rule.cidr, kind = kind_name(rule.kind), "access rule added");
    Ok(Answer::AccessRule(rule))
}

/// AdminRemoveAccessRule: removes the rule of a kind for a range (any spelling of it).
pub async fn admin_remove_access_rule(
    ctx: &ConnCtx,
    req: pb::AdminRemoveAccessRule,
) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let cidr = range("admin_remove_access_rule.cidr", &req.cidr)?.to_string();
    let kind = kind("admin_remove_access_rule.kind", req.kind)?;
    let after = stored_with(
        ctx,
        |rules| rules.retain(|r| !(r.kind == kind as i32 && r.cidr == cidr)),
        None,
    )
    .await?;
    refuse_lockout(ctx, &after).await?;
    ctx.state.store.delete_access_rule(kind, &cidr).await?;
    apply_here(ctx).await;
    tracing::info!(admin, %cidr, kind = kind_name(kind as i32), "access rule removed");
    Ok(Answer::Ok(pb::Ok {}))
}

/// AdminListAccessRules: the rules in force, bans first, and the mode.
pub async fn admin_list_access_rules(
    ctx: &ConnCtx,
    _req: pb::AdminListAccessRules,
) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    access_list(ctx).await
}

/// AdminSetAccessMode: allow-list mode on or off.
pub async fn admin_set_access_mode(
    ctx: &ConnCtx,
    req: pb::AdminSetAccessMode,
) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let after = stored_with(ctx, |_| {}, Some(req.allow_list)).await?;
    refuse_lockout(ctx, &after).await?;
    ctx.state.store.set_allow_list_mode(req.allow_list).await?;
    apply_here(ctx).await;
    tracing::info!(admin, allow_list = req.allow_list, "access mode set");
    access_list(ctx).await
}
