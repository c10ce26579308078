//! Two-factor login (protocol.md section 17): turning it on and off, recovery codes, the code a
//! login needs. (The admins' duty to use it where the server requires that is checked with
//! the admin role, in [`require_admin`].)
//!
//! The codes themselves (TOTP, recovery codes, how secrets are sealed) are
//! [`crate::auth::two_factor`]; whether a code was used before is the store's, so that a code
//! logs in once across nodes. Every request here that checks a code or a password is throttled
//! like a password change, so codes cannot be guessed faster than passwords; the state checks
//! before it (on or off, pending or not) reveal nothing to guess and are not charged.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::auth::two_factor::{self, DIGITS, PERIOD_SECS};
use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::account::{confirm_password, throttle_secret_check};
use crate::handlers::admin::require_admin;
use crate::handlers::users::existing_user;
use crate::state::now_ms;
use crate::store::{TwoFactorRecord, UserRecord};
use crate::validate;

/// The issuer authenticator apps show beside the username.
const ISSUER: &str = "chat";

/// A right code, checked and not spent yet (see [`check`], [`spend`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RightCode {
    /// A TOTP code of this step, later than the last one used.
    Totp(u64),
    /// One of the user's recovery codes, by its hash.
    Recovery(String),
}

/// The user's TOTP secret, opened. A secret that does not open means the token key changed
/// since it was sealed: an operator's problem, not the user's, so INTERNAL (and logged).
fn open_secret(ctx: &ConnCtx, user_id: u64, record: &TwoFactorRecord) -> ApiResult<Vec<u8>> {
    ctx.state
        .two_factor
        .open(user_id, &record.sealed_secret)
        .map_err(|e| {
            tracing::error!(user_id, error = %e, "cannot open a two-factor secret (was the token key replaced?)");
            ApiError::internal()
        })
}

/// Whether `code` is a right, unused code of the user's enabled two-factor login: a TOTP code,
/// or with `recovery` also a recovery code. Spends nothing: `None` for a wrong or used code.
async fn check(
    ctx: &ConnCtx,
    user_id: u64,
    record: &TwoFactorRecord,
    code: &str,
    recovery: bool,
) -> ApiResult<Option<RightCode>> {
    let code = code.trim();
    if two_factor::is_totp_form(code) {
        let secret = open_secret(ctx, user_id, record)?;
        let step = two_factor::matching_step(&secret, code, now_ms(), record.last_step);
        return Ok(step.map(RightCode::Totp));
    }
    if !recovery {
        return Ok(None);
    }
    let Some(hash) = ctx.state.two_factor.recovery_hash(code) else {
        return Ok(None);
    };
    let known = ctx.state.store.has_recovery_code(user_id, &hash).await?;
    Ok(known.then_some(RightCode::Recovery(hash)))
}

/// Spends a code [`check`] found right; false when another request spent it first.
pub(crate) async fn spend(ctx: &ConnCtx, user_id: u64, code: &RightCode) -> ApiResult<bool> {
    Ok(match code {
        RightCode::Totp(step) => {
            ctx.state
                .store
                .spend_two_factor_step(user_id, *step)
                .await?
        }
        RightCode::Recovery(hash) => ctx.state.store.spend_recovery_code(user_id, hash).await?,
    })
}

/// The user's enabled two-factor login, or FAILED_PRECONDITION.
async fn enabled(ctx: &ConnCtx, user_id: u64) -> ApiResult<TwoFactorRecord> {
    ctx.state
        .store
        .two_factor(user_id)
        .await?
        .filter(|r| r.enabled)
        .ok_or_else(|| ApiError::precondition("two-factor login is not on"))
}

/// Whether the user has two-factor login on.
pub(crate) async fn is_enabled(ctx: &ConnCtx, user_id: u64) -> ApiResult<bool> {
    Ok(ctx
        .state
        .store
        .two_factor(user_id)
        .await?
        .is_some_and(|r| r.enabled))
}

/// PERMISSION_DENIED naming `field`: the code is not a right one.
fn wrong_code(field: &'static str, what: &str) -> ApiError {
    ApiError::denied(format!("the code is not {what}")).with_field(field)
}

/// The second step of `login` (spec 17.3), after the right password: for an account with
/// two-factor login on, `code` must be a right, unused code. It is checked here and spent
/// ([`spend`]) once the login's session is stored, before the connection signs in, so a login
/// that fails before leaves the code unspent (a recovery code would otherwise be gone for
/// good). `None`: two-factor login is off.
pub(crate) async fn check_login(
    ctx: &ConnCtx,
    user: &UserRecord,
    code: &str,
) -> ApiResult<Option<RightCode>> {
    const FIELD: &str = "login.two_factor_code";
    let Some(record) = ctx
        .state
        .store
        .two_factor(user.id)
        .await?
        .filter(|r| r.enabled)
    else {
        return Ok(None);
    };
    if code.is_empty() {
        ctx.state.metrics.auth_failure("two_factor_required");
        return Err(ApiError::unauthenticated("two-factor code required").with_field(FIELD));
    }
    match check(ctx, user.id, &record, code, true).await? {
        Some(right) => Ok(Some(right)),
        None => Err(wrong_login_code(ctx)),
    }
}

/// The answer to a wrong or used login code.
pub(crate) fn wrong_login_code(ctx: &ConnCtx) -> ApiError {
    ctx.state.metrics.auth_failure("bad_two_factor_code");
    ApiError::unauthenticated("wrong or used two-factor code").with_field("login.two_factor_code")
}

/// BeginTwoFactor: a new pending secret, after the password.
pub async fn begin_two_factor(ctx: &ConnCtx, req: pb::BeginTwoFactor) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    validate::presented_password("begin_two_factor.password", &req.password)?;
    if is_enabled(ctx, me.user_id).await? {
        return Err(ApiError::conflict("two-factor login is already on"));
    }
    let user = confirm_password(ctx, me.user_id, req.password, "begin_two_factor.password").await?;
    let secret = two_factor::new_secret();
    let sealed = ctx
        .state
        .two_factor
        .seal(me.user_id, &secret)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot seal a two-factor secret");
            ApiError::internal()
        })?;
    if !ctx.state.store.stage_two_factor(me.user_id, sealed).await? {
        return Err(ApiError::conflict("two-factor login is already on"));
    }
    Ok(Answer::TwoFactorSetup(pb::TwoFactorSetup {
        secret: two_factor::base32(&secret),
        otpauth_uri: two_factor::otpauth_uri(ISSUER, &user.username, &secret),
        digits: DIGITS,
        period_seconds: u32::try_from(PERIOD_SECS).unwrap_or(u32::MAX),
    }))
}

/// New recovery codes: shown to the user, stored as hashes.
fn new_recovery_codes(ctx: &ConnCtx) -> (Vec<String>, Vec<String>) {
    let codes = two_factor::new_recovery_codes();
    let hashes = codes
        .iter()
        .filter_map(|c| ctx.state.two_factor.recovery_hash(c))
        .collect();
    (codes, hashes)
}

/// EnableTwoFactor: a current code of the pending secret turns it on.
pub async fn enable_two_factor(ctx: &ConnCtx, req: pb::EnableTwoFactor) -> ApiResult<Answer> {
    const FIELD: &str = "enable_two_factor.code";
    let me = ctx.principal()?;
    validate::two_factor_code(FIELD, &req.code, true)?;
    let record = match ctx.state.store.two_factor(me.user_id).await? {
        None => {
            return Err(ApiError::precondition(
                "no pending two-factor secret: call begin_two_factor first",
            ));
        }
        Some(r) if r.enabled => return Err(ApiError::conflict("two-factor login is already on")),
        Some(r) => r,
    };
    throttle_secret_check(ctx, me.user_id).await?;
    let secret = open_secret(ctx, me.user_id, &record)?;
    let Some(step) = two_factor::matching_step(&secret, req.code.trim(), now_ms(), 0) else {
        return Err(wrong_code(FIELD, "a current code of the pending secret"));
    };
    let (codes, hashes) = new_recovery_codes(ctx);
    let enabled = ctx
        .state
        .store
        .enable_two_factor(me.user_id, record.sealed_secret, step, hashes)
        .await?;
    if !enabled {
        // Another request began again (a new pending secret) or enabled it meanwhile.
        return Err(ApiError::conflict(
            "the pending secret changed meanwhile: begin again",
        ));
    }
    tracing::info!(user_id = me.user_id, "two-factor login turned on");
    Ok(Answer::RecoveryCodes(pb::RecoveryCodes { codes }))
}

/// DisableTwoFactor: a current code or a recovery code turns it off.
pub async fn disable_two_factor(ctx: &ConnCtx, req: pb::DisableTwoFactor) -> ApiResult<Answer> {
    const FIELD: &str = "disable_two_factor.code";
    let me = ctx.principal()?;
    validate::two_factor_code(FIELD, &req.code, true)?;
    let record = enabled(ctx, me.user_id).await?;
    throttle_secret_check(ctx, me.user_id).await?;
    // Checked, not spent: turning it off forgets every code, and a code spent before a
    // write that then failed would be gone.
    if check(ctx, me.user_id, &record, &req.code, true)
        .await?
        .is_none()
    {
        return Err(wrong_code(
            FIELD,
            "a current code nor an unused recovery code",
        ));
    }
    ctx.state.store.disable_two_factor(me.user_id).await?;
    tracing::info!(user_id = me.user_id, "two-factor login turned off");
    Ok(Answer::Ok(pb::Ok {}))
}

/// RegenerateRecoveryCodes: a current code replaces the recovery codes.
pub async fn regenerate_recovery_codes(
    ctx: &ConnCtx,
    req: pb::RegenerateRecoveryCodes,
) -> ApiResult<Answer> {
    const FIELD: &str = "regenerate_recovery_codes.code";
    let me = ctx.principal()?;
    validate::two_factor_code(FIELD, &req.code, true)?;
    let record = enabled(ctx, me.user_id).await?;
    throttle_secret_check(ctx, me.user_id).await?;
    let right = check(ctx, me.user_id, &record, &req.code, false).await?;
    let spent = match &right {
        Some(right) => spend(ctx, me.user_id, right).await?,
        None => false,
    };
    if !spent {
        return Err(wrong_code(FIELD, "a current code"));
    }
    let (codes, hashes) = new_recovery_codes(ctx);
    if !ctx
        .state
        .store
        .replace_recovery_codes(me.user_id, hashes)
        .await?
    {
        return Err(ApiError::precondition("two-factor login is not on"));
    }
    Ok(Answer::RecoveryCodes(pb::RecoveryCodes { codes }))
}

/// AdminDisableTwoFactor: turns off a user's two-factor login.
pub async fn admin_disable_two_factor(
    ctx: &ConnCtx,
    req: pb::AdminDisableTwoFactor,
) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    existing_user(ctx, req.user_id, "admin_disable_two_factor.user_id").await?;
    if !ctx.state.store.disable_two_factor(req.user_id).await? {
        return Err(ApiError::conflict(
            "two-factor login is not on for this user",
        ));
    }
    tracing::info!(
        user_id = req.user_id,
        "two-factor login turned off by an admin"
    );
    Ok(Answer::Ok(pb::Ok {}))
}
