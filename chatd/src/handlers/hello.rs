//! Hello: version check, capability negotiation and, in cluster mode with `--steering`, steering
//! of new connections away from an overloaded node (only for clients that offered `redirect`;
//! the connection is then closed with REDIRECTED, see [`close_after`](super::close_after)).

use chatproto::capability::Capability;
use chatproto::error::CloseCode;
use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::state::now_ms;

/// The software name a node gives in `Welcome` and `ServerHealth`.
pub(crate) const SERVER_NAME: &str = concat!("chatd/", env!("CARGO_PKG_VERSION"));

/// Limits announced in Welcome; handlers enforce the same numbers. The file limits only go to
/// connections that negotiated `files` (`files` is then `Some`).
pub fn limits(files: Option<&crate::files::FileSettings>) -> pb::Limits {
    pb::Limits {
        max_frame_bytes: chatproto::frame::MAX_FRAME_BYTES as u32,
        max_text_chars: crate::validate::MAX_TEXT_CHARS as u32,
        max_page_size: crate::validate::MAX_PAGE_SIZE,
        max_concurrent_requests: crate::limits::MAX_CONCURRENT_REQUESTS,
        max_chat_members: crate::handlers::chats::MAX_CHAT_MEMBERS,
        max_file_bytes: files.map_or(0, |f| f.max_file_bytes),
        max_concurrent_uploads: files.map_or(0, |_| crate::files::MAX_CONCURRENT_UPLOADS),
        upload_quota_bytes: files.map_or(0, |f| f.upload_quota_bytes),
    }
}

/// Answers Hello with Welcome.
pub async fn hello(ctx: &ConnCtx, hello: pb::Hello) -> ApiResult<Answer> {
    ctx.require_no_hello()?;
    if hello.protocol_major != chatproto::PROTOCOL_MAJOR {
        return Err(ApiError::precondition(format!(
            "unsupported protocol major version {}: this server speaks {}",
            hello.protocol_major,
            chatproto::PROTOCOL_MAJOR
        ))
        .closing(CloseCode::VersionMismatch));
    }
    crate::validate::client_name("hello.client_name", &hello.client_name)?;
    if hello.capabilities.len() > 64 {
        return Err(ApiError::invalid(
            "hello.capabilities",
            "more than 64 capabilities",
        ));
    }
    let datagrams_possible = ctx.conn.max_datagram_size().is_some();
    // This server offers every capability of chat/1; datagrams only where the path carries them.
    let capabilities: Vec<String> = hello
        .capabilities
        .iter()
        .filter(|c| match Capability::from_name(c) {
            Some(Capability::Datagrams) => datagrams_possible,
            Some(Capability::ZeroRtt) => ctx.state.settings.zero_rtt,
            Some(
                Capability::Redirect
                | Capability::Files
                | Capability::Calls
                | Capability::ScreenShare
                | Capability::GroupCalls
                | Capability::Broadcasts
                | Capability::AccountRecovery
                | Capability::KeyRotation,
            ) => true,
            None => false,
        })
        .cloned()
        .collect();
    ctx.set_hello(capabilities.clone())?;
    tracing::debug!(conn = ctx.conn_id, client = ?hello.client_name, ?capabilities, "hello");
    let redirect = steer(ctx, &capabilities).map(|address| {
        tracing::debug!(conn = ctx.conn_id, %address, "steering a new connection to a less loaded node");
        pb::Redirect { addresses: vec![address], reason: "this node is busier than its share; use a less loaded node".into() }
    });
    let limits = limits(
        Capability::Files
            .is_in(&capabilities)
            .then_some(&ctx.state.files.settings),
    );
    Ok(Answer::Welcome(pb::Welcome {
        protocol_major: chatproto::PROTOCOL_MAJOR,
        protocol_minor: chatproto::PROTOCOL_MINOR,
        capabilities,
        server_name: SERVER_NAME.to_owned(),
        node_id: ctx.state.settings.node_id.clone(),
        server_time_ms: now_ms(),
        limits: Some(limits),
        redirect,
    }))
}

/// The address to steer this new connection to, if steering is on, the client follows
/// redirects, and this node is above its fair share of the cluster's connections.
fn steer(ctx: &ConnCtx, capabilities: &[String]) -> Option<String> {
    let state = &ctx.state;
    if !state.settings.steering || !Capability::Redirect.is_in(capabilities) {
        return None;
    }
    let cluster = state.cluster.as_ref()?;
    cluster
        .registry
        .steer(state.delivery.connection_count() as u64)
}
