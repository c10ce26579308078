//! Server administration of nodes (chatctl's `nodes`): which chatd nodes are live, and draining
//! one for a rolling restart. On the embedded default the answering node is the only one; in
//! cluster mode the node registry in Redis (`cluster::registry`) knows every live node, and a
//! drain asked of another node reaches it through the registry at its next heartbeat.

use chatproto::pb;
use chatproto::pb::response::Result as Answer;

use crate::conn::ConnCtx;
use crate::error::{ApiError, ApiResult};
use crate::handlers::admin::require_admin;
use crate::handlers::page::Page;
use crate::state::AppState;
use crate::validate::FieldError;

/// Most nodes one answer lists (the frame budget may stop it earlier; `more` says so).
const MAX_NODES: u32 = 1000;

/// Longest node id (chatd's `--node-id` takes 1-64 bytes).
const MAX_NODE_ID_BYTES: usize = 64;

/// The answering node, as it knows itself now.
fn this_node(state: &AppState) -> pb::NodeStatus {
    pb::NodeStatus {
        node_id: state.settings.node_id.clone(),
        addr: state.node.addr().to_owned(),
        connections: state.delivery.connection_count() as u64,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at_ms: state.node.started_at_ms,
        heartbeat_at_ms: 0,
        draining: state.node.draining(),
        answering: true,
    }
}

fn unreadable(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(format!("the node registry cannot be read: {e}"))
}

/// AdminListNodes: every live node by id.
pub async fn admin_list_nodes(ctx: &ConnCtx, _req: pb::AdminListNodes) -> ApiResult<Answer> {
    require_admin(ctx).await?;
    let mut me = this_node(&ctx.state);
    let mut nodes = Vec::new();
    if let Some(cluster) = &ctx.state.cluster {
        for r in cluster.registry.records().await.map_err(unreadable)? {
            if r.id == me.node_id {
                me.heartbeat_at_ms = r.heartbeat_ms;
                continue;
            }
            nodes.push(pb::NodeStatus {
                node_id: r.id,
                addr: r.addr,
                connections: r.conns,
                version: r.version,
                started_at_ms: r.started_at_ms,
                heartbeat_at_ms: r.heartbeat_ms,
                draining: r.draining,
                answering: false,
            });
        }
    }
    nodes.push(me);
    nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    let page = Page::fill(MAX_NODES, nodes)?;
    Ok(Answer::Nodes(pb::NodeList {
        more: page.more(),
        nodes: page.into_items(),
    }))
}

/// AdminDrainNode: this node drains once the answer is out (the answer is a request in flight,
/// which a drain finishes); another node when its heartbeat finds the request.
pub async fn admin_drain_node(ctx: &ConnCtx, req: pb::AdminDrainNode) -> ApiResult<Answer> {
    let admin = require_admin(ctx).await?;
    if req.node_id.len() > MAX_NODE_ID_BYTES {
        return Err(FieldError::too_large(
            "admin_drain_node.node_id",
            format!("a node id has at most {MAX_NODE_ID_BYTES} bytes"),
        )
        .into());
    }
    let state = &ctx.state;
    if req.node_id.is_empty() || req.node_id == state.settings.node_id {
        tracing::info!(admin, "drain of this node requested by an admin");
        state.node.drain();
        return Ok(Answer::Ok(pb::Ok {}));
    }
    let Some(cluster) = &state.cluster else {
        return Err(ApiError::not_found("node"));
    };
    let records = cluster.registry.records().await.map_err(unreadable)?;
    let target = records
        .iter()
        .find(|r| r.id == req.node_id)
        .ok_or_else(|| ApiError::not_found("node"))?;
    cluster
        .registry
        .request_drain(&target.id, target.started_at_ms)
        .await
        .map_err(|e| ApiError::unavailable(format!("the drain request was not stored: {e}")))?;
    tracing::info!(admin, node = %target.id, "drain of another node requested by an admin");
    Ok(Answer::Ok(pb::Ok {}))
}
