//! Key rotation (protocol.md 9.6, "Key rotation"; capability `key_rotation`): the server's key
//! rings as admins see them (`admin_list_keys`: ids, states and times, never a secret), a new
//! current key (`admin_rotate_key`), and the end of an overlap (`admin_retire_keys`). The keys
//! are the store's, so a change through one node is one for the whole cluster (`auth::keys`).
//! The secrets shared with webhook receivers and TURN servers are given to admins
//! (`admin_get_key_secrets`, recorded in the audit log); the server's own keys never are.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::auth::keyring::{kind_name, server_made};
use crate::auth::keys::{KeyError, SHARED_SECRET_BYTES};
use crate::auth::master_key::{MasterKeyError, MasterKeyRing};
use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::admin::require_admin;
use crate::state::now_ms;

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> ApiError {
        match e {
            KeyError::NotConfigured(_) | KeyError::Full(_) => ApiError::precondition(e.to_string()),
            KeyError::Store(store) => store.into(),
            KeyError::Contended(_) => ApiError::unavailable(e.to_string()),
            KeyError::Seal(_) | KeyError::Publish { .. } => {
                tracing::error!(error = %e, "key ring");
                ApiError::internal()
            }
        }
    }
}

impl From<MasterKeyError> for ApiError {
    fn from(e: MasterKeyError) -> ApiError {
        match e {
            MasterKeyError::NoPreviousFile
            | MasterKeyError::Unfinished(_)
            | MasterKeyError::TooSoon(_)
            | MasterKeyError::NotWritable(_) => ApiError::precondition(e.to_string()),
            MasterKeyError::Store(store) => store.into(),
            MasterKeyError::Contended => ApiError::unavailable(e.to_string()),
            MasterKeyError::Unknown(_)
            | MasterKeyError::Damaged(_)
            | MasterKeyError::AtRest(_)
            | MasterKeyError::Files(_)
            | MasterKeyError::Rewrap { .. } => {
                tracing::error!(error = %e, "master key ring");
                ApiError::internal()
            }
        }
    }
}

/// The kind a request names; `INVALID_ARGUMENT` on `field` for an unspecified or unknown one.
fn kind(field: &str, raw: i32) -> ApiResult<pb::KeyKind> {
    match pb::KeyKind::try_from(raw) {
        Ok(pb::KeyKind::Unspecified) | Err(_) => Err(ApiError::invalid(
            field,
            "must be tokens, refresh, webhook, turn or master",
        )),
        Ok(kind) => Ok(kind),
    }
}

/// The master key's ring; `FAILED_PRECONDITION` when the server does not encrypt at rest.
fn master(ctx: &ConnCtx) -> ApiResult<&MasterKeyRing> {
    ctx.state.master_key.as_deref().ok_or_else(|| {
        ApiError::precondition(
            "this server has no master key configured (it does not encrypt at rest)",
        )
    })
}

/// Every ring as admins see it: the master key's (empty when the server does not encrypt at
/// rest) after the others.
async fn rings(ctx: &ConnCtx, now: i64) -> ApiResult<pb::KeyRingList> {
    let mut list = ctx.state.keys.list(now);
    list.rings.push(match &ctx.state.master_key {
        Some(master) => master.view(now).await?,
        None => pb::KeyRing {
            kind: pb::KeyKind::Master as i32,
            keys: Vec::new(),
            rotation_interval_ms: 0,
        },
    });
    Ok(list)
}

/// AdminListKeys: every ring, no secret.
pub async fn admin_list_keys(ctx: &ConnCtx, _req: pb::AdminListKeys) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    // What another node changed a moment ago is shown too.
    ctx.state.keys.reload().await?;
    Ok(Answer::Keys(rings(ctx, now_ms()).await?))
}

/// AdminRotateKey: a new current key of a kind; the one before verifies for the overlap.
pub async fn admin_rotate_key(ctx: &ConnCtx, req: pb::AdminRotateKey) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let kind = kind("admin_rotate_key.kind", req.kind)?;
    let secret = if server_made(kind) {
        if !req.secret.is_empty() {
            return Err(ApiError::invalid(
                "admin_rotate_key.secret",
                format!(
                    "the server makes the {} keys: give no secret",
                    kind_name(kind)
                ),
            ));
        }
        None
    } else {
        if !SHARED_SECRET_BYTES.contains(&req.secret.len()) {
            return Err(ApiError::invalid(
                "admin_rotate_key.secret",
                format!(
                    "the new {} secret must be {} to {} bytes",
                    kind_name(kind),
                    SHARED_SECRET_BYTES.start(),
                    SHARED_SECRET_BYTES.end()
                ),
            ));
        }
        Some(req.secret)
    };
    let now = now_ms();
    let kid = match kind {
        pb::KeyKind::Master => master(ctx)?.rotate(now).await?,
        _ => ctx.state.keys.rotate(kind, secret, now).await?,
    };
    tracing::info!(
        admin,
        kind = kind_name(kind),
        kid,
        "keys rotated by an admin"
    );
    Ok(Answer::Keys(rings(ctx, now).await?))
}

/// AdminRetireKeys: ends the overlap of a kind; only its current key verifies from now on.
pub async fn admin_retire_keys(ctx: &ConnCtx, req: pb::AdminRetireKeys) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    let kind = kind("admin_retire_keys.kind", req.kind)?;
    let now = now_ms();
    let ended = match kind {
        pb::KeyKind::Master => master(ctx)?.retire(now).await?,
        _ => ctx.state.keys.retire(kind).await?,
    };
    tracing::info!(
        admin,
        kind = kind_name(kind),
        ended,
        "key overlap ended by an admin"
    );
    Ok(Answer::Keys(rings(ctx, now).await?))
}

/// AdminGetKeySecrets: the webhook or TURN secrets that verify, for the parties sharing them.
pub async fn admin_get_key_secrets(
    ctx: &ConnCtx,
    req: pb::AdminGetKeySecrets,
) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let kind = kind("admin_get_key_secrets.kind", req.kind)?;
    if server_made(kind) {
        return Err(ApiError::invalid(
            "admin_get_key_secrets.kind",
            format!(
                "the {} keys never leave the server: only webhook and turn secrets are given",
                kind_name(kind)
            ),
        ));
    }
    // A rotation another node made a moment ago is given too.
    ctx.state.keys.reload().await?;
    Ok(Answer::KeySecrets(ctx.state.keys.secrets(kind, now_ms())?))
}
