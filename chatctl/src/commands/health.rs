//! `chatctl health`: whether the server and what it depends on work now; exit status 0 only
//! when they all do (5 otherwise), so monitoring scripts can call it.

use anyhow::Context as _;
use chatproto::pb;
use serde::Serialize;

use crate::error::Error;
use crate::output::{Paint, Table};
use crate::session::Admin;
use crate::settings::Settings;

/// What `health --json` prints.
#[derive(Debug, Serialize)]
struct HealthView {
    healthy: bool,
    server_name: String,
    node_id: String,
    checks: Vec<CheckView>,
}

/// One check.
#[derive(Debug, Serialize)]
struct CheckView {
    name: String,
    healthy: bool,
    detail: String,
}

pub(super) async fn run(settings: &Settings) -> anyhow::Result<()> {
    let admin = Admin::sign_in(settings).await?;
    let health = admin
        .client()
        .admin_health(pb::AdminHealth {})
        .await
        .context("cannot ask the server for its health");
    admin.finish(settings).await?;
    let health = health?;
    let view = HealthView {
        healthy: health.healthy,
        server_name: health.server_name,
        node_id: health.node_id,
        checks: health
            .checks
            .into_iter()
            .map(|c| CheckView {
                name: c.name,
                healthy: c.healthy,
                detail: c.detail,
            })
            .collect(),
    };
    let out = settings.output;
    if out.json {
        out.json(&view)?;
    } else {
        let mut table = Table::new(&["CHECK", "STATE", "DETAIL"]);
        for c in &view.checks {
            let (state, paint) = if c.healthy {
                ("ok", Paint::Green)
            } else {
                ("failing", Paint::Red)
            };
            table.painted_row(vec![
                (c.name.clone(), Paint::Plain),
                (state.to_owned(), paint),
                (c.detail.clone(), Paint::Plain),
            ]);
        }
        out.table(&table)?;
    }
    if view.healthy {
        return Ok(());
    }
    let failing: Vec<String> = view
        .checks
        .iter()
        .filter(|c| !c.healthy)
        .map(|c| format!("{} ({})", c.name, c.detail))
        .collect();
    Err(Error::Unhealthy {
        node: view.node_id,
        failing: failing.join(", "),
    }
    .into())
}
