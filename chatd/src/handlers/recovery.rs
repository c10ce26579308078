//! Email verification and account recovery (protocol.md section 18, capability
//! `account_recovery`): codes emailed to verify an address, changing the address, and resetting
//! a forgotten password with a code.
//!
//! The codes are [`crate::auth::account_codes`]'s (the store keeps keyed hashes, each is spent
//! once, lives briefly and survives a few wrong attempts); the emails go through the outbox.
//!
//! Anti-enumeration. `request_password_reset` answers the same `code_sent` whether the account
//! exists, has a usable address, was sent a code a moment ago or none of these: it answers
//! before looking, and the lookup, the code and the email happen in a task of their own, so
//! neither the answer nor its time depends on the account. `reset_password` answers one
//! PERMISSION_DENIED for an unknown account, a missing, wrong, used or expired code alike.
//! Both are throttled per source address (the login budget); a reset also per account name
//! tried, and the emails per account by the store's resend gap, so nobody can flood an
//! inbox or guess codes quickly.

use std::sync::Arc;

use chatproto::capability::Capability;
use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::auth::account_codes::MAX_ATTEMPTS;
use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::account::{
    PasswordChange, confirm_password, set_password, throttle_secret_check, throttled,
};
use crate::handlers::users::own_view;
use crate::outbox::usable_address;
use crate::state::{AppState, now_ms};
use crate::store::{CodePurpose, NewAccountCode, Redemption, UserRecord};
use crate::validate;

/// Reset emails to one account at most this often (silently: the answer is the same).
const RESET_RESEND_GAP_MS: i64 = 60_000;

/// The one answer to a code that does not work, whatever the reason.
const WRONG_CODE: &str = "the code is wrong, used or expired";

/// FAILED_PRECONDITION unless the connection negotiated `account_recovery`.
fn negotiated(ctx: &ConnCtx) -> ApiResult<()> {
    if ctx.has_capability(Capability::AccountRecovery) {
        Ok(())
    } else {
        Err(ApiError::precondition(format!(
            "the capability {} was not negotiated on this connection",
            Capability::AccountRecovery
        )))
    }
}

/// How long a code of `purpose` stays good; FAILED_PRECONDITION when the server sends no email
/// (a matter of its configuration, not of any account).
fn lifetime_ms(ctx: &ConnCtx, purpose: CodePurpose) -> ApiResult<i64> {
    let lifetime = ctx
        .state
        .outbox
        .code_lifetime(purpose)
        .ok_or_else(|| ApiError::precondition("this server does not send email"))?;
    Ok(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX))
}

fn code_sent(ctx: &ConnCtx, purpose: CodePurpose) -> ApiResult<Answer> {
    let seconds = lifetime_ms(ctx, purpose)? / 1000;
    Ok(Answer::CodeSent(pb::CodeSent {
        valid_for_seconds: u32::try_from(seconds).unwrap_or(u32::MAX),
    }))
}

/// Makes a new code of `purpose` for `user`, keeps its hash and queues the email carrying it
/// to `to`; false when the store kept the live code instead (younger than `resend_gap_ms`).
/// Does nothing when the server sends no email.
async fn send_code(
    state: &AppState,
    user: &UserRecord,
    to: &str,
    purpose: CodePurpose,
    resend_gap_ms: i64,
) -> ApiResult<bool> {
    let Some(lifetime) = state.outbox.code_lifetime(purpose) else {
        return Ok(false);
    };
    let now = now_ms();
    let (code, hash) = state.account_codes.issue(user.id, purpose.number());
    let lifetime = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
    let kept = state
        .store
        .put_account_code(NewAccountCode {
            user_id: user.id,
            purpose,
            hash,
            email: to.to_owned(),
            expires_at_ms: now.saturating_add(lifetime),
            now_ms: now,
            resend_gap_ms,
        })
        .await?;
    if kept {
        state
            .outbox
            .queue_code(user, to, purpose, &code, now)
            .await?;
    }
    Ok(kept)
}

/// After `register`: the verification email to the new account's address, when the server
/// sends email and its operator does not vouch for every address already. A failure is logged:
/// the account exists, and the user can ask again.
pub(super) async fn after_register(ctx: &ConnCtx, user: &UserRecord) {
    if ctx.state.outbox.email().is_none_or(|e| e.unverified) {
        return;
    }
    if let Err(e) = send_code(&ctx.state, user, &user.email, CodePurpose::VerifyEmail, 0).await {
        tracing::warn!(user_id = user.id, error = %e, "cannot send the verification email");
    }
}

/// Spends `user`'s live code of `purpose` if `code` is it; otherwise counts a wrong attempt
/// (a `code` that cannot be a code counts too).
async fn redeem(
    ctx: &ConnCtx,
    user: &UserRecord,
    purpose: CodePurpose,
    code: &str,
    now: i64,
) -> ApiResult<Redemption> {
    let hash = ctx
        .state
        .account_codes
        .hash(user.id, purpose.number(), code)
        .unwrap_or_default();
    Ok(ctx
        .state
        .store
        .redeem_account_code(user.id, purpose, &hash, now, MAX_ATTEMPTS)
        .await?)
}

/// The caller's active account.
async fn me(ctx: &ConnCtx) -> ApiResult<UserRecord> {
    let me = ctx.principal()?;
    ctx.state
        .store
        .user(me.user_id)
        .await?
        .filter(|u| !u.deleted && !u.disabled)
        .ok_or_else(|| ApiError::unauthenticated("account disabled"))
}

/// RequestEmailVerification: a new code to the caller's current address.
pub async fn request_email_verification(
    ctx: &ConnCtx,
    _req: pb::RequestEmailVerification,
) -> ApiResult<Answer> {
    ctx.principal()?;
    negotiated(ctx)?;
    lifetime_ms(ctx, CodePurpose::VerifyEmail)?;
    let user = me(ctx).await?;
    if user.email_verified {
        return Err(ApiError::conflict("the address is already verified"));
    }
    throttle_secret_check(ctx, user.id).await?;
    send_code(&ctx.state, &user, &user.email, CodePurpose::VerifyEmail, 0).await?;
    code_sent(ctx, CodePurpose::VerifyEmail)
}

/// VerifyEmail: the code emailed to the caller's current address verifies it.
pub async fn verify_email(ctx: &ConnCtx, req: pb::VerifyEmail) -> ApiResult<Answer> {
    const FIELD: &str = "verify_email.code";
    ctx.principal()?;
    negotiated(ctx)?;
    lifetime_ms(ctx, CodePurpose::VerifyEmail)?;
    validate::two_factor_code(FIELD, &req.code, true)?;
    let user = me(ctx).await?;
    if user.email_verified {
        return Err(ApiError::conflict("the address is already verified"));
    }
    throttle_secret_check(ctx, user.id).await?;
    let redeemed = redeem(ctx, &user, CodePurpose::VerifyEmail, &req.code, now_ms()).await?;
    let Redemption::Redeemed { email } = redeemed else {
        ctx.state.metrics.auth_failure("bad_email_code");
        return Err(ApiError::denied(WRONG_CODE).with_field(FIELD));
    };
    if !ctx.state.store.mark_email_verified(user.id, &email).await? {
        return Err(ApiError::conflict(
            "the address changed after the code was sent: verify the new one",
        ));
    }
    tracing::info!(user_id = user.id, "email address verified");
    let user = me(ctx).await?;
    Ok(Answer::User(own_view(&user)))
}

/// ChangeEmail: after the password, a new address, unverified, with a code sent to it; the old
/// address is told.
pub async fn change_email(ctx: &ConnCtx, req: pb::ChangeEmail) -> ApiResult<Answer> {
    let me_id = ctx.principal()?.user_id;
    negotiated(ctx)?;
    validate::email("change_email.new_email", &req.new_email)?;
    validate::presented_password("change_email.password", &req.password)?;
    // A check of state, made before the password's throttle and not charged to it (spec 9.12).
    if let Some(current) = ctx.state.store.user(me_id).await?
        && current.email == req.new_email
    {
        return Err(ApiError::conflict("that is already the account's address"));
    }
    let user = confirm_password(ctx, me_id, req.password, "change_email.password").await?;
    ctx.state.store.set_email(user.id, &req.new_email).await?;
    tracing::info!(user_id = user.id, "email address changed");
    let changed = me(ctx).await?;
    if let Some(email) = ctx.state.outbox.email() {
        // The old address hears of it only when the server could use it.
        if let Some(old) = usable_address(&user, email) {
            let queued = ctx
                .state
                .outbox
                .queue_email_changed(&user, old, &req.new_email, now_ms())
                .await;
            if let Err(e) = queued {
                tracing::warn!(user_id = user.id, error = %e, "cannot queue the address change notice");
            }
        }
        send_code(
            &ctx.state,
            &changed,
            &req.new_email,
            CodePurpose::VerifyEmail,
            0,
        )
        .await?;
    }
    Ok(Answer::User(own_view(&changed)))
}

/// The `account` of the reset requests: a username or an address, checked like either.
fn account_field(field: &'static str, raw: &str) -> ApiResult<()> {
    if raw.contains('@') {
        validate::email(field, raw)?;
    } else {
        validate::username(field, raw)?;
    }
    Ok(())
}

/// The accounts `account` names (a username, or every active account with that address) whose
/// address the server may use.
async fn accounts(state: &AppState, account: &str) -> ApiResult<Vec<UserRecord>> {
    let Some(email) = state.outbox.email() else {
        return Ok(Vec::new());
    };
    let found = if account.contains('@') {
        state.store.users_by_email(account).await?
    } else {
        let username = validate::username("account", account)?;
        state
            .store
            .user_by_username(&username)
            .await?
            .into_iter()
            .collect()
    };
    Ok(found
        .into_iter()
        .filter(|u| usable_address(u, email).is_some())
        .collect())
}

/// RequestPasswordReset: a reset code to the named account's usable address, if there is one;
/// the same answer in any case.
pub async fn request_password_reset(
    ctx: &ConnCtx,
    req: pb::RequestPasswordReset,
) -> ApiResult<Answer> {
    negotiated(ctx)?;
    let answer = code_sent(ctx, CodePurpose::ResetPassword)?;
    account_field("request_password_reset.account", &req.account)?;
    ctx.state
        .limits
        .check_login_address(ctx.remote.ip())
        .await
        .map_err(|limited| throttled(ctx, limited))?;
    let state = Arc::clone(&ctx.state);
    tokio::spawn(async move {
        let users = match accounts(&state, &req.account).await {
            Ok(users) => users,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up an account for a password reset");
                return;
            }
        };
        for user in users {
            let to = user.email.clone();
            let sent = send_code(
                &state,
                &user,
                &to,
                CodePurpose::ResetPassword,
                RESET_RESEND_GAP_MS,
            )
            .await;
            match sent {
                Ok(true) => tracing::info!(user_id = user.id, "password reset code sent"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(user_id = user.id, error = %e, "cannot send a password reset code")
                }
            }
        }
    });
    Ok(answer)
}

/// ResetPassword: the emailed code sets a new password and revokes every session.
pub async fn reset_password(ctx: &ConnCtx, req: pb::ResetPassword) -> ApiResult<Answer> {
    const FIELD: &str = "reset_password.code";
    negotiated(ctx)?;
    lifetime_ms(ctx, CodePurpose::ResetPassword)?;
    account_field("reset_password.account", &req.account)?;
    validate::two_factor_code(FIELD, &req.code, true)?;
    validate::password("reset_password.new_password", &req.new_password)?;
    let key = format!("reset:{}", req.account.to_lowercase());
    ctx.state
        .limits
        .check_login(&key, ctx.remote.ip())
        .await
        .map_err(|limited| throttled(ctx, limited))?;
    let now = now_ms();
    let mut reset = None;
    let users = accounts(&ctx.state, &req.account).await?;
    if users.is_empty() {
        // No account to try the code on: look for the code of an id no account has, so that
        // an unknown account costs the store read a known one does (the answer is the same).
        let nobody = ctx
            .state
            .store
            .redeem_account_code(0, CodePurpose::ResetPassword, "", now, MAX_ATTEMPTS)
            .await?;
        debug_assert_eq!(nobody, Redemption::Missing);
    }
    for user in users {
        let redeemed = redeem(ctx, &user, CodePurpose::ResetPassword, &req.code, now).await?;
        if matches!(redeemed, Redemption::Redeemed { .. }) {
            reset = Some(user);
            break;
        }
    }
    let Some(user) = reset else {
        ctx.state.metrics.auth_failure("bad_reset_code");
        return Err(ApiError::denied(WRONG_CODE).with_field(FIELD));
    };
    let change = PasswordChange {
        user_id: user.id,
        new_password: req.new_password,
        replacing: None,
        keep: None,
        reason: "password reset",
    };
    let revoked = set_password(ctx, change).await?;
    if ctx.principal_opt().is_some_and(|p| p.user_id == user.id) {
        ctx.deauthenticate().await;
    }
    tracing::info!(
        user_id = user.id,
        sessions = revoked,
        "password reset with an emailed code"
    );
    Ok(Answer::Ok(pb::Ok {}))
}
