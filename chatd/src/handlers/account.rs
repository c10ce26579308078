//! Accounts and sessions: register, login, refresh, authenticate, logout, password change and
//! session management.
//!
//! Login answers the same error, after the same password-hashing work, for an unknown user, a
//! wrong password and a disabled account with a wrong password, so that neither the answer nor
//! its timing tells whether an account exists or is disabled. Only the right password learns
//! that its account is disabled. Attempts are throttled per address, per account from one
//! address, and per account with a higher ceiling (`Limits::check_login`).

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::auth::password::PasswordError;
use crate::auth::refresh;
use crate::auth::token::TokenError;
use crate::conn::{ConnCtx, Principal};
use crate::error::{ApiError, ApiResult};
use crate::handlers::two_factor::{self, RightCode};
use crate::handlers::users::user_view;
use crate::state::now_ms;
use crate::store::{ConflictKind, NewSession, NewUser, RefreshOutcome, StoreError, UserRecord};
use crate::validate;
use chatproto::pb::KeyKind;

const BAD_CREDENTIALS: &str = "invalid username or password";

/// The answer to a refresh token that is not a live one of this server's.
const INVALID_REFRESH: &str = "invalid or revoked refresh token";

/// Longest access token verified; the server's are far shorter.
const MAX_ACCESS_TOKEN_BYTES: usize = 4096;

fn session_revoked_event(reason: &str) -> pb::Event {
    pb::Event {
        kind: Some(pb::event::Kind::SessionRevoked(pb::SessionRevoked {
            reason: reason.into(),
        })),
    }
}

/// Closes every live connection of the given sessions of `user_id`, on every node.
pub fn kick_sessions(ctx: &ConnCtx, user_id: u64, sessions: &[u64], reason: &str) {
    let event = session_revoked_event(reason);
    for session in sessions {
        ctx.state.delivery.kick(user_id, Some(*session), &event);
    }
}

/// Closes every live connection of `user_id`, on every node.
pub fn kick_user(ctx: &ConnCtx, user_id: u64, reason: &str) {
    ctx.state
        .delivery
        .kick(user_id, None, &session_revoked_event(reason));
}

/// The answer when a password could not be hashed: UNAVAILABLE when too many wait to be,
/// INTERNAL (logged) otherwise.
fn hashing_failed(e: PasswordError) -> ApiError {
    match e {
        PasswordError::Busy => busy_checking(),
        e => {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        }
    }
}

fn busy_checking() -> ApiError {
    ApiError::unavailable("too many passwords are being checked; try again shortly")
}

/// Whether a checked password matched: a stored hash that does not parse never matches, and
/// UNAVAILABLE when too many wait to be checked (the answer does not depend on the account).
fn checked(verified: Result<bool, PasswordError>) -> ApiResult<bool> {
    match verified {
        Ok(ok) => Ok(ok),
        Err(PasswordError::Busy) => Err(busy_checking()),
        Err(e) => {
            tracing::warn!(error = %e, "a password could not be checked");
            Ok(false)
        }
    }
}

/// RATE_LIMITED, counted in the metrics.
pub(super) fn throttled(ctx: &ConnCtx, limited: crate::limits::keyed::RateLimited) -> ApiError {
    ctx.state.metrics.rate_limited(limited.scope);
    limited.into()
}

/// Starts a session for `user`, issues its tokens and authenticates the connection. With
/// `code` (a login's two-factor code, checked), the code is spent between the session's
/// creation and the connection's sign-in: a login that fails before leaves it unspent, and
/// one that loses it to another login at once signs nothing in. Whatever fails after the
/// session is stored revokes it again (its tokens were never sent); a sign-in that fails after
/// the spend (the connection kicked meanwhile) leaves the code spent.
async fn open_session(
    ctx: &ConnCtx,
    user: &UserRecord,
    device_name: String,
    code: Option<&RightCode>,
) -> ApiResult<pb::AuthResult> {
    ctx.check_same_user(user.id)?;
    let now = now_ms();
    let refresh::RefreshToken {
        token: refresh_token,
        hash: refresh_hash,
    } = new_refresh_token(ctx)?;
    let mark = ctx.state.delivery.kick_mark();
    let session = ctx
        .state
        .store
        .create_session(NewSession {
            user_id: user.id,
            device_name,
            address: ctx.remote.to_string(),
            refresh_hash,
            now_ms: now,
            // What the sign-in was checked against (or, on registration, just written).
            checked_hash: Some(user.password_hash.clone()),
        })
        .await
        .map_err(|e| match e {
            // A change of password, a disabling or a deletion came between the check and now.
            StoreError::Conflict(ConflictKind::CredentialsChanged) => {
                ApiError::unauthenticated(BAD_CREDENTIALS)
            }
            other => other.into(),
        })?;
    let signed_in = async {
        let (access_token, access_expires_at_ms) = issue(ctx, user, session.id, now)?;
        if let Some(code) = code {
            // Again, right before the spend: another stream of this connection may have
            // signed it in as someone else since.
            ctx.check_same_user(user.id)?;
            if !two_factor::spend(ctx, user.id, code).await? {
                return Err(two_factor::wrong_login_code(ctx));
            }
            if matches!(code, RightCode::Recovery(_)) {
                tracing::info!(user_id = user.id, "logged in with a recovery code");
            }
        }
        let principal = Principal {
            user_id: user.id,
            session_id: session.id,
        };
        ctx.authenticated(principal, mark).await?;
        Ok((access_token, access_expires_at_ms))
    };
    let (access_token, access_expires_at_ms) = match signed_in.await {
        Ok(tokens) => tokens,
        Err(e) => {
            let revoked = (ctx.state.store)
                .revoke_session(user.id, session.id, now_ms())
                .await;
            if let Err(revoke) = revoked {
                tracing::warn!(user_id = user.id, error = %revoke, "cannot revoke an unused session");
            }
            return Err(e);
        }
    };
    // After the switch: when this connection's previous session is the one signed out, the
    // connection itself stays, on its new session.
    trim_sessions(ctx, user.id, session.id).await;
    Ok(pb::AuthResult {
        user: Some(user_view(user, user.id, true, true)),
        session_id: session.id,
        access_token,
        access_expires_at_ms,
        refresh_token,
    })
}

/// Signs out the least recently used sessions of `user_id` beyond `--max-sessions-per-user`,
/// never `keep` (the one just opened) nor one opened after it, as `revoke_session` would
/// (protocol.md 11.3). Best
/// effort: a store failure is logged, and the next login trims again.
async fn trim_sessions(ctx: &ConnCtx, user_id: u64, keep: u64) {
    let live = match live_sessions(ctx, user_id).await {
        Ok(live) => live,
        Err(e) => {
            tracing::warn!(user_id, error = %e.message, "cannot list sessions to trim them");
            return;
        }
    };
    let now = now_ms();
    for session in sessions_over(&live, keep, ctx.state.settings.max_sessions_per_user) {
        match ctx.state.store.revoke_session(user_id, session, now).await {
            // Revoked meanwhile (a logout, a concurrent login's trim): nothing left to do.
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(user_id, session, error = %e, "cannot sign out a session over the cap");
                return;
            }
        }
        kick_sessions(ctx, user_id, &[session], "signed out: too many sessions");
    }
}

/// The sessions among `live` to sign out so that at most `max` stay, keeping `keep`: the least
/// recently used first (the older one of a tie).
fn sessions_over(live: &[crate::store::SessionRecord], keep: u64, max: usize) -> Vec<u64> {
    // Older ones only: a newer session belongs to a login still under way (which may yet fail
    // and take it back), and that login trims for it.
    let mut others: Vec<&crate::store::SessionRecord> =
        live.iter().filter(|s| s.id < keep).collect();
    let excess = (others.len() + 1).saturating_sub(max.max(1));
    others.sort_by_key(|s| (s.last_seen_at_ms, s.id));
    others.iter().take(excess).map(|s| s.id).collect()
}

fn issue(ctx: &ConnCtx, user: &UserRecord, session_id: u64, now: i64) -> ApiResult<(String, i64)> {
    let key = ctx.state.keys.current(KeyKind::Tokens).ok_or_else(|| {
        tracing::error!("no access-token signing key");
        ApiError::internal()
    })?;
    ctx.state
        .tokens
        .issue(
            key.token_kid(),
            &key.secret,
            user.id,
            session_id,
            user.role,
            now,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign an access token");
            ApiError::internal()
        })
}

/// A new refresh token, hashed under the current pepper.
fn new_refresh_token(ctx: &ConnCtx) -> ApiResult<refresh::RefreshToken> {
    let pepper = ctx.state.keys.current(KeyKind::Refresh).ok_or_else(|| {
        tracing::error!("no refresh-token pepper");
        ApiError::internal()
    })?;
    Ok(refresh::RefreshToken::generate(pepper.kid, &pepper.secret))
}

/// Rotates the presented refresh token to `new_hash` (see [`stored_as`]).
async fn rotate_presented(
    ctx: &ConnCtx,
    presented: &str,
    new_hash: &str,
    now: i64,
) -> ApiResult<RefreshOutcome> {
    let rotated = stored_as(ctx, presented, now, |hash| async move {
        match ctx.state.store.rotate_refresh(&hash, new_hash, now).await? {
            RefreshOutcome::Invalid => Ok(None),
            found => Ok(Some(found)),
        }
    })
    .await?;
    Ok(rotated.unwrap_or(RefreshOutcome::Invalid))
}

/// The first answer of `known` about a stored form of the presented refresh token, `None` when
/// no form is known: it is looked up under each pepper that still verifies, current first (a
/// token issued before a rotation is stored under an older one); when none knows it, once more
/// after reading the keys again, in case another node rotated the pepper a moment ago.
async fn stored_as<T, F>(
    ctx: &ConnCtx,
    presented: &str,
    now: i64,
    known: impl Fn(String) -> F,
) -> ApiResult<Option<T>>
where
    F: Future<Output = crate::store::StoreResult<Option<T>>>,
{
    let keys = &ctx.state.keys;
    let mut tried: Vec<u32> = Vec::new();
    for attempt in 0..2 {
        if attempt == 1 && !keys.reload_on_miss().await {
            break;
        }
        for pepper in keys.verifying(KeyKind::Refresh, now) {
            if tried.contains(&pepper.kid) {
                continue;
            }
            tried.push(pepper.kid);
            let hash = refresh::peppered_hash(pepper.kid, &pepper.secret, presented);
            if let Some(found) = known(hash).await? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// The claims of `token` if it verifies at `now` under one of the token keys: the key its
/// `kid` names, read again from the store once when this node does not know it yet.
async fn verify_access(
    ctx: &ConnCtx,
    token: &str,
    now: i64,
) -> Result<crate::auth::token::AccessClaims, TokenError> {
    let keys = &ctx.state.keys;
    let verify = || {
        ctx.state.tokens.verify(token, now, |kid| {
            keys.secret(KeyKind::Tokens, kid.unwrap_or(0), now)
        })
    };
    match verify() {
        Err(TokenError::UnknownKey) if keys.reload_on_miss().await => verify(),
        other => other,
    }
}

/// Register: create an account and log in.
pub async fn register(ctx: &ConnCtx, req: pb::Register) -> ApiResult<Answer> {
    // Whatever the fields, and before it costs the login budget (spec 3.4).
    if let Some(p) = ctx.principal_opt() {
        return Err(ApiError::precondition(format!(
            "this connection is already authenticated as user {}",
            p.user_id
        )));
    }
    let username = validate::username("register.username", &req.username)?;
    validate::email("register.email", &req.email)?;
    validate::password("register.password", &req.password)?;
    let device = validate::device_name("register.device_name", &req.device_name)?;
    // Hashing is the expensive part: registrations share the per-address login budget.
    ctx.state
        .limits
        .check_login_address(ctx.remote.ip())
        .await
        .map_err(|limited| throttled(ctx, limited))?;
    let user = create_user(
        ctx,
        NewAccount {
            username,
            email: req.email,
            password: req.password,
            role: pb::Role::User,
        },
        "register.username",
    )
    .await?;
    tracing::info!(user_id = user.id, username = %user.username, "registered");
    super::recovery::after_register(ctx, &user).await;
    Ok(Answer::Auth(open_session(ctx, &user, device, None).await?))
}

/// A validated account to create.
pub(crate) struct NewAccount {
    /// Folded username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// The password, hashed here.
    pub password: String,
    /// Server role.
    pub role: pb::Role,
}

/// Hashes the password and creates the account (`register`, `admin_create_user`); CONFLICT
/// naming `username_field` when the username is taken.
pub(crate) async fn create_user(
    ctx: &ConnCtx,
    account: NewAccount,
    username_field: &'static str,
) -> ApiResult<UserRecord> {
    let hash = ctx
        .state
        .passwords
        .hash(account.password)
        .await
        .map_err(hashing_failed)?;
    ctx.state
        .store
        .create_user(NewUser {
            username: account.username,
            email: account.email,
            password_hash: hash,
            role: account.role,
            now_ms: now_ms(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(kind @ ConflictKind::UsernameTaken) => {
                ApiError::conflict(kind.to_string()).with_field(username_field)
            }
            other => other.into(),
        })
}

/// Login with username and password.
pub async fn login(ctx: &ConnCtx, req: pb::Login) -> ApiResult<Answer> {
    let username = validate::username("login.username", &req.username)?;
    if req.password.is_empty() {
        return Err(ApiError::invalid("login.password", "required"));
    }
    validate::presented_password("login.password", &req.password)?;
    let device = validate::device_name("login.device_name", &req.device_name)?;
    validate::two_factor_code("login.two_factor_code", &req.two_factor_code, false)?;
    ctx.state
        .limits
        .check_login(&username, ctx.remote.ip())
        .await
        .map_err(|limited| throttled(ctx, limited))?;
    let user = ctx
        .state
        .store
        .user_by_username(&username)
        .await?
        .filter(|u| !u.deleted);
    let Some(user) = user else {
        // Same work as a real verification, so timing does not reveal unknown usernames.
        checked(ctx.state.passwords.verify_dummy(req.password).await)?;
        ctx.state.metrics.auth_failure("bad_credentials");
        return Err(ApiError::unauthenticated(BAD_CREDENTIALS));
    };
    let ok = checked(
        ctx.state
            .passwords
            .verify(req.password, user.password_hash.clone())
            .await,
    )?;
    if !ok {
        ctx.state.metrics.auth_failure("bad_credentials");
        return Err(ApiError::unauthenticated(BAD_CREDENTIALS));
    }
    if user.disabled {
        ctx.state.metrics.auth_failure("disabled");
        return Err(ApiError::unauthenticated("account disabled"));
    }
    ctx.check_same_user(user.id)?;
    let code = two_factor::check_login(ctx, &user, &req.two_factor_code).await?;
    Ok(Answer::Auth(
        open_session(ctx, &user, device, code.as_ref()).await?,
    ))
}

/// Exchange a refresh token for new tokens (rotation with reuse detection).
pub async fn refresh(ctx: &ConnCtx, req: pb::Refresh) -> ApiResult<Answer> {
    if !refresh::is_well_formed(&req.refresh_token) {
        // Tokens are opaque to clients (spec 11.2): one that is not a token is unknown, and a
        // client answered UNAUTHENTICATED knows to log in again.
        ctx.state.metrics.auth_failure("bad_refresh");
        return Err(ApiError::unauthenticated(INVALID_REFRESH));
    }
    let now = now_ms();
    if ctx.principal_opt().is_some() {
        // Another user's token is refused before it is spent: rotating it first would leave its
        // owner holding a used token, which the next refresh takes for theft.
        let owner = stored_as(ctx, &req.refresh_token, now, |hash| async move {
            ctx.state.store.refresh_owner(&hash).await
        })
        .await?;
        if let Some(owner) = owner {
            ctx.check_same_user(owner)?;
        }
    }
    let refresh::RefreshToken {
        token: new_token,
        hash: new_hash,
    } = new_refresh_token(ctx)?;
    let mark = ctx.state.delivery.kick_mark();
    let outcome = rotate_presented(ctx, &req.refresh_token, &new_hash, now).await?;
    let session = match outcome {
        RefreshOutcome::Rotated(session) => session,
        RefreshOutcome::Reused {
            session_id,
            user_id,
        } => {
            tracing::warn!(user_id, session_id, "refresh token reused: session revoked");
            ctx.state.metrics.auth_failure("refresh_reuse");
            kick_sessions(ctx, user_id, &[session_id], "refresh token reuse detected");
            return Err(ApiError::unauthenticated(
                "refresh token reuse detected: session revoked",
            ));
        }
        // Judged before rotating: the rotation itself counts as a use, so a session idle for
        // too long would otherwise come back to life.
        RefreshOutcome::Expired {
            session_id,
            user_id,
        } => {
            ctx.state.metrics.auth_failure("refresh_expired");
            kick_sessions(ctx, user_id, &[session_id], "session expired");
            return Err(ApiError::unauthenticated("session expired: log in again"));
        }
        RefreshOutcome::Invalid => {
            ctx.state.metrics.auth_failure("bad_refresh");
            return Err(ApiError::unauthenticated(INVALID_REFRESH));
        }
    };
    let user = active_user(ctx, session.user_id).await?;
    ctx.check_same_user(user.id)?;
    ctx.state
        .store
        .touch_session(session.id, &ctx.remote.to_string(), now)
        .await?;
    let (access_token, access_expires_at_ms) = issue(ctx, &user, session.id, now)?;
    ctx.authenticated(
        Principal {
            user_id: user.id,
            session_id: session.id,
        },
        mark,
    )
    .await?;
    Ok(Answer::Auth(pb::AuthResult {
        user: Some(user_view(&user, user.id, true, true)),
        session_id: session.id,
        access_token,
        access_expires_at_ms,
        refresh_token: new_token,
    }))
}

async fn active_user(ctx: &ConnCtx, user_id: u64) -> ApiResult<UserRecord> {
    active(ctx, ctx.state.store.user(user_id).await?)
}

/// `user` when it exists and may sign in; `UNAUTHENTICATED` otherwise.
fn active(ctx: &ConnCtx, user: Option<UserRecord>) -> ApiResult<UserRecord> {
    match user {
        Some(user) if user.is_active() => Ok(user),
        Some(_) => {
            ctx.state.metrics.auth_failure("disabled");
            Err(ApiError::unauthenticated("account disabled"))
        }
        None => Err(ApiError::unauthenticated("no such account")),
    }
}

/// Authenticate the connection with an access token.
pub async fn authenticate(ctx: &ConnCtx, req: pb::Authenticate) -> ApiResult<Answer> {
    if req.access_token.is_empty() || req.access_token.len() > MAX_ACCESS_TOKEN_BYTES {
        // Not a token this server issued (they are opaque to clients, spec 11.2): one answer
        // for every token that does not verify, and none worth verifying.
        ctx.state.metrics.auth_failure("bad_token");
        return Err(ApiError::unauthenticated("invalid access token"));
    }
    let now = now_ms();
    let claims = verify_access(ctx, &req.access_token, now)
        .await
        .map_err(|e| {
            ctx.state.metrics.auth_failure("bad_token");
            ApiError::unauthenticated(format!("invalid access token: {e}"))
        })?;
    let mark = ctx.state.delivery.kick_mark();
    // One store read for both: a reconnect wave is mostly this request.
    let (session, user) = ctx
        .state
        .store
        .session_and_user(claims.session_id, claims.user_id)
        .await?;
    let Some(session) = session.filter(|s| s.is_live_for(claims.user_id)) else {
        ctx.state.metrics.auth_failure("revoked");
        return Err(ApiError::unauthenticated("session revoked"));
    };
    let user = active(ctx, user)?;
    // Written behind the answer: a reconnect wave must not queue on the store (auth::touches).
    ctx.state
        .touches
        .record(session.id, ctx.remote.to_string(), now);
    ctx.authenticated(
        Principal {
            user_id: user.id,
            session_id: session.id,
        },
        mark,
    )
    .await?;
    Ok(Answer::Auth(pb::AuthResult {
        user: Some(user_view(&user, user.id, true, true)),
        session_id: session.id,
        ..Default::default()
    }))
}

/// Logout: revoke this connection's session; the connection stays open, unauthenticated.
pub async fn logout(ctx: &ConnCtx, _req: pb::Logout) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    ctx.state
        .store
        .revoke_session(me.user_id, me.session_id, now_ms())
        .await?;
    ctx.deauthenticate().await;
    // Other connections that authenticated with the same session end too.
    kick_sessions(ctx, me.user_id, &[me.session_id], "logged out");
    Ok(Answer::Ok(pb::Ok {}))
}

/// Change the password; every other session is revoked.
pub async fn change_password(ctx: &ConnCtx, req: pb::ChangePassword) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    validate::password("change_password.new_password", &req.new_password)?;
    const FIELD: &str = "change_password.old_password";
    validate::presented_password(FIELD, &req.old_password)?;
    throttle_secret_check(ctx, me.user_id).await?;
    let user = active_user(ctx, me.user_id).await?;
    if !verify(ctx, req.old_password, &user.password_hash).await? {
        // A repeat of a change that was made (its answer lost, or its revocation failed after
        // the new password was stored): the new password is the password now, so the change
        // is finished rather than refused. The caller proves the password it names, and
        // revoking its other sessions is what it may ask for anyway (`revoke_other_sessions`).
        // The attempt is charged once (spec 11.4 counts requests, and says what checking two
        // passwords in one gives a guesser).
        if verify(ctx, req.new_password, &user.password_hash).await? {
            let keep = Some(me.session_id);
            revoke_sessions(ctx, me.user_id, keep, "password changed").await?;
            return Ok(Answer::Ok(pb::Ok {}));
        }
        ctx.state.metrics.auth_failure("bad_credentials");
        return Err(ApiError::denied("wrong password").with_field(FIELD));
    }
    let change = PasswordChange {
        user_id: me.user_id,
        new_password: req.new_password,
        replacing: Some(&user.password_hash),
        keep: Some(me.session_id),
        reason: "password changed",
    };
    match set_password(ctx, change).await {
        Ok(_) => Ok(Answer::Ok(pb::Ok {})),
        // Another change from the same old password came first: this one's old password is not
        // the password any more.
        Err(e) if e.code == pb::ErrorCode::Conflict => {
            Err(ApiError::denied("wrong password").with_field(FIELD))
        }
        Err(e) => Err(e),
    }
}

/// A new password for a user, and what setting it does to their sessions.
pub(super) struct PasswordChange<'a> {
    /// Whose.
    pub user_id: u64,
    /// The new password, validated.
    pub new_password: String,
    /// The hash the change was judged on (`change_password`: the old password's); the store
    /// refuses with CONFLICT when it is not the stored one any more. Resets replace any.
    pub replacing: Option<&'a str>,
    /// The session that stays (`change_password` keeps the caller's; resets keep none).
    pub keep: Option<u64>,
    /// What their closed connections are told.
    pub reason: &'a str,
}

/// Hashes and stores a new password, then revokes every session of the user but `keep` and
/// closes their connections; returns how many were revoked.
pub(super) async fn set_password(ctx: &ConnCtx, change: PasswordChange<'_>) -> ApiResult<usize> {
    let PasswordChange {
        user_id,
        new_password,
        replacing,
        keep,
        reason,
    } = change;
    let hash = ctx
        .state
        .passwords
        .hash(new_password)
        .await
        .map_err(hashing_failed)?;
    ctx.state
        .store
        .set_password_hash(user_id, &hash, replacing)
        .await?;
    revoke_sessions(ctx, user_id, keep, reason).await
}

/// Revokes every session of `user_id` but `keep` and closes their connections, telling them
/// `reason`; returns how many were revoked.
async fn revoke_sessions(
    ctx: &ConnCtx,
    user_id: u64,
    keep: Option<u64>,
    reason: &str,
) -> ApiResult<usize> {
    let revoked = ctx
        .state
        .store
        .revoke_user_sessions(user_id, keep, now_ms())
        .await?;
    kick_sessions(ctx, user_id, &revoked, reason);
    Ok(revoked.len())
}

/// Throttles a request that checks the caller's password or a code of theirs, like a password
/// change (spec 11.4): per address, and per user in a bucket of its own.
pub(super) async fn throttle_secret_check(ctx: &ConnCtx, user_id: u64) -> ApiResult<()> {
    ctx.state
        .limits
        .check_password_change(user_id, ctx.remote.ip())
        .await
        .map_err(|limited| throttled(ctx, limited))
}

/// The caller's active account once `password` proved to be its password (throttled by
/// [`throttle_secret_check`]); PERMISSION_DENIED "wrong password" naming `field` otherwise.
pub(super) async fn confirm_password(
    ctx: &ConnCtx,
    user_id: u64,
    password: String,
    field: &'static str,
) -> ApiResult<UserRecord> {
    throttle_secret_check(ctx, user_id).await?;
    let user = active_user(ctx, user_id).await?;
    if !verify(ctx, password, &user.password_hash).await? {
        ctx.state.metrics.auth_failure("bad_credentials");
        return Err(ApiError::denied("wrong password").with_field(field));
    }
    Ok(user)
}

/// Whether `password` is the one `hash` was made from.
async fn verify(ctx: &ConnCtx, password: String, hash: &str) -> ApiResult<bool> {
    checked(ctx.state.passwords.verify(password, hash.to_owned()).await)
}

/// The wire form of a session.
pub fn session_view(session: &crate::store::SessionRecord, current: Option<u64>) -> pb::Session {
    pb::Session {
        id: session.id,
        device_name: session.device_name.clone(),
        created_at_ms: session.created_at_ms,
        last_seen_at_ms: session.last_seen_at_ms,
        address: session.address.clone(),
        current: current == Some(session.id),
    }
}

/// A user's live sessions (neither revoked nor expired) as a device list shows them: with their
/// latest use, whether it was written yet or not (`auth::touches`).
pub async fn live_sessions(
    ctx: &ConnCtx,
    user_id: u64,
) -> ApiResult<Vec<crate::store::SessionRecord>> {
    let sessions = ctx.state.store.list_sessions(user_id).await?;
    let now = now_ms();
    Ok(sessions
        .into_iter()
        .map(|s| ctx.state.touches.apply(s))
        .filter(|s| !refresh::refresh_expired(s.created_at_ms, s.last_seen_at_ms, now))
        .collect())
}

/// My live sessions.
pub async fn list_sessions(ctx: &ConnCtx, _req: pb::ListSessions) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    let sessions = live_sessions(ctx, me.user_id).await?;
    Ok(Answer::Sessions(pb::SessionList {
        sessions: sessions
            .iter()
            .map(|s| session_view(s, Some(me.session_id)))
            .collect(),
    }))
}

/// Revoke one of my sessions.
pub async fn revoke_session(ctx: &ConnCtx, req: pb::RevokeSession) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    if req.session_id == 0 {
        return Err(ApiError::invalid("revoke_session.session_id", "required"));
    }
    ctx.state
        .store
        .revoke_session(me.user_id, req.session_id, now_ms())
        .await?;
    if req.session_id == me.session_id {
        // Revoking one's own session is a logout: this connection stays open, unauthenticated.
        ctx.deauthenticate().await;
    }
    kick_sessions(ctx, me.user_id, &[req.session_id], "session revoked");
    Ok(Answer::Ok(pb::Ok {}))
}

/// Revoke every session of mine except this connection's.
pub async fn revoke_other_sessions(
    ctx: &ConnCtx,
    _req: pb::RevokeOtherSessions,
) -> ApiResult<Answer> {
    let me = ctx.principal()?;
    revoke_sessions(ctx, me.user_id, Some(me.session_id), "session revoked").await?;
    Ok(Answer::Ok(pb::Ok {}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SessionRecord;

    fn session(id: u64, last_seen_at_ms: i64) -> SessionRecord {
        SessionRecord::sample(id, last_seen_at_ms)
    }

    /// The least recently used go first (the older of a tie); the session just opened stays
    /// even when it is the least recently used.
    #[test]
    fn the_least_recently_used_sessions_are_over_the_cap() {
        let live = [
            session(1, 50),
            session(2, 10),
            session(3, 10),
            session(4, 40),
            session(9, 0),
            // A login still under way: it trims for itself.
            session(10, 0),
        ];
        assert_eq!(sessions_over(&live, 9, 5), Vec::<u64>::new());
        assert_eq!(sessions_over(&live, 9, 3), [2, 3]);
        assert_eq!(sessions_over(&live, 9, 1), [2, 3, 4, 1]);
        assert_eq!(
            sessions_over(&live, 9, 0),
            [2, 3, 4, 1],
            "a cap of 0 still keeps the new session"
        );
    }
}
