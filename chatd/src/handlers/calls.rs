//! Calls (capability `calls`, spec section 14): start, accept, end, signaling relay and ICE
//! servers.
//!
//! The protocol is specified and vectored; this server does not offer `calls` yet (Hello
//! leaves it out of the negotiated set), so every call request is answered as spec 9.9 says for
//! a connection without the capability: FAILED_PRECONDITION.

use chatproto::capability::Capability;
use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};

/// FAILED_PRECONDITION unless the connection negotiated `calls`.
fn require_calls(ctx: &ConnCtx) -> ApiResult<u64> {
    let me = ctx.principal()?.user_id;
    if !ctx.has_capability(Capability::Calls) {
        return Err(ApiError::precondition(
            "the capability calls was not negotiated on this connection",
        ));
    }
    Ok(me)
}

/// The answer while the server does not implement calls: Hello never negotiates `calls`, so
/// [`require_calls`] refuses first; this names the case should that change without a handler.
fn not_offered(ctx: &ConnCtx) -> ApiResult<Answer> {
    require_calls(ctx)?;
    Err(ApiError::new(
        pb::ErrorCode::Unimplemented,
        "calls are not served by this server",
    ))
}

/// Starts a call in a private chat.
pub async fn start_call(ctx: &ConnCtx, _req: pb::StartCall) -> ApiResult<Answer> {
    not_offered(ctx)
}

/// Accepts a ringing call on this device.
pub async fn accept_call(ctx: &ConnCtx, _req: pb::AcceptCall) -> ApiResult<Answer> {
    not_offered(ctx)
}

/// Cancels, declines or hangs up a call.
pub async fn end_call(ctx: &ConnCtx, _req: pb::EndCall) -> ApiResult<Answer> {
    not_offered(ctx)
}

/// Relays an SDP offer or answer, or an ICE candidate, to the other device of an active call.
pub async fn send_call_signal(ctx: &ConnCtx, _req: pb::CallSignal) -> ApiResult<Answer> {
    not_offered(ctx)
}

/// The STUN and TURN servers, with TURN credentials.
pub async fn get_ice_servers(ctx: &ConnCtx, _req: pb::GetIceServers) -> ApiResult<Answer> {
    not_offered(ctx)
}
