//! `admin_broadcast` (protocol.md 9.6, capability `broadcasts`): a server admin's announcement
//! to every user, recorded as a notification of kind `BROADCAST` for each active user and sent
//! live to those online, on every node ([`crate::notify::Notifier::broadcast`]).

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::ApiResult;
use crate::handlers::admin::require_admin;
use crate::state::now_ms;
use crate::validate;

/// AdminBroadcast: the text is checked before anything is recorded; the answer comes once every
/// copy is committed (live delivery goes on after it).
pub async fn admin_broadcast(ctx: &ConnCtx, req: pb::AdminBroadcast) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    validate::broadcast_text("admin_broadcast.text", &req.text)?;
    let sent_at_ms = now_ms();
    let recipients = ctx
        .state
        .notifier
        .broadcast(admin, req.text, sent_at_ms)
        .await?;
    tracing::info!(admin, recipients, "broadcast recorded");
    Ok(Answer::Broadcast(pb::BroadcastResult {
        recipients,
        sent_at_ms,
    }))
}
