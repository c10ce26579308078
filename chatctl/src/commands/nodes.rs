//! `chatctl nodes`: the live chatd nodes (`admin_list_nodes`: the answering node on the
//! embedded default, every registered node in cluster mode), and `chatctl nodes drain NODE`
//! (`admin_drain_node`) for rolling restarts.

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::cli::NodesCommand;
use crate::output::{Output, Paint, Table, confirm, human_count, now_ms, relative_time};
use crate::session::Admin;
use crate::settings::Settings;

/// One node as `nodes --json` prints it.
#[derive(Debug, Serialize)]
struct NodeView {
    node_id: String,
    addr: String,
    connections: u64,
    version: String,
    started_at_ms: i64,
    /// 0 on the embedded default, which has no registry.
    heartbeat_at_ms: i64,
    draining: bool,
    /// The node that answered.
    answering: bool,
}

/// What `nodes drain --json` prints.
#[derive(Debug, Serialize)]
struct Drained<'a> {
    node_id: &'a str,
    drain_requested: bool,
}

pub(super) async fn run(command: Option<NodesCommand>, settings: &Settings) -> anyhow::Result<()> {
    // The question comes before signing in, so that refusing costs nothing on the server.
    if let Some(NodesCommand::Drain { node, yes, .. }) = &command {
        confirm(
            &format!("Drain node {node}? Its clients move to other nodes and its chatd exits."),
            *yes,
        )?;
    }
    let admin = Admin::sign_in(settings).await?;
    let (client, out) = (admin.client(), settings.output);
    let result = match command {
        None => list(client, out).await,
        Some(NodesCommand::Drain { node, .. }) => drain(client, out, &node).await,
    };
    let finished = admin.finish(settings).await;
    result.and(finished)
}

async fn drain(client: &Client, out: Output, node: &str) -> anyhow::Result<()> {
    client
        .admin_drain_node(pb::AdminDrainNode {
            node_id: node.to_owned(),
        })
        .await
        .with_context(|| format!("cannot drain node {node}"))?;
    out.result(
        &Drained {
            node_id: node,
            drain_requested: true,
        },
        &format!("node {node}: drain requested (at its next heartbeat if it is another node)"),
    )
}

async fn list(client: &Client, out: Output) -> anyhow::Result<()> {
    let list = client
        .admin_list_nodes(pb::AdminListNodes {})
        .await
        .context("cannot list the nodes")?;
    if list.more {
        eprintln!("chatctl: more nodes exist than one answer holds; only the first are listed");
    }
    let views: Vec<NodeView> = list
        .nodes
        .into_iter()
        .map(|n| NodeView {
            node_id: n.node_id,
            addr: n.addr,
            connections: n.connections,
            version: n.version,
            started_at_ms: n.started_at_ms,
            heartbeat_at_ms: n.heartbeat_at_ms,
            draining: n.draining,
            answering: n.answering,
        })
        .collect();
    if out.json {
        return out.json(&views);
    }
    let now = now_ms();
    let mut table = Table::new(&[
        "NODE",
        "ADDRESS",
        "CONNS",
        "VERSION",
        "STARTED",
        "HEARTBEAT",
        "STATE",
    ]);
    for n in views {
        let (state, paint) = if n.draining {
            ("draining", Paint::Yellow)
        } else {
            ("serving", Paint::Green)
        };
        let name = if n.answering {
            format!("{} *", n.node_id)
        } else {
            n.node_id
        };
        let heartbeat = if n.heartbeat_at_ms == 0 {
            "-".to_owned()
        } else {
            relative_time(n.heartbeat_at_ms, now)
        };
        table.painted_row(vec![
            (name, Paint::Plain),
            (n.addr, Paint::Plain),
            (human_count(n.connections), Paint::Plain),
            (n.version, Paint::Plain),
            (relative_time(n.started_at_ms, now), Paint::Plain),
            (heartbeat, Paint::Plain),
            (state.to_owned(), paint),
        ]);
    }
    out.table(&table)
}
