//! `chatctl db status | migrate | ensure-indexes`: the storage schema's version and indexes
//! (`admin_db_status`), and the two repairs chatd also makes when it starts (`admin_db_migrate`,
//! `admin_db_ensure_indexes`), each reporting what it did.

use anyhow::Context as _;
use chatproto::pb;
use serde::Serialize;

use crate::cli::DbCommand;
use crate::output::Table;
use crate::session::Admin;
use crate::settings::Settings;

/// What every `db` command prints with `--json`. The field names are stable: scripts read them.
#[derive(Debug, Serialize)]
struct SchemaView {
    backend: String,
    version_before: u32,
    version: u32,
    latest_version: u32,
    applied: Vec<String>,
    indexes_created: Vec<String>,
    indexes: u32,
    indexes_missing: Vec<String>,
}

pub(super) async fn run(command: DbCommand, settings: &Settings) -> anyhow::Result<()> {
    let admin = Admin::sign_in(settings).await?;
    let client = admin.client();
    let report = match command {
        DbCommand::Status(_) => client
            .admin_db_status(pb::AdminDbStatus {})
            .await
            .context("cannot read the schema"),
        DbCommand::Migrate(_) => client
            .admin_db_migrate(pb::AdminDbMigrate {})
            .await
            .context("cannot migrate the schema"),
        DbCommand::EnsureIndexes(_) => client
            .admin_db_ensure_indexes(pb::AdminDbEnsureIndexes {})
            .await
            .context("cannot create the missing indexes"),
    };
    admin.finish(settings).await?;
    let r = report?;
    let view = SchemaView {
        backend: r.backend,
        version_before: r.version_before,
        version: r.version,
        latest_version: r.latest_version,
        applied: r.applied,
        indexes_created: r.indexes_created,
        indexes: r.indexes,
        indexes_missing: r.indexes_missing,
    };
    let out = settings.output;
    if out.json {
        return out.json(&view);
    }
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let version = if view.version_before == view.version {
        format!(
            "{} (this chatd writes {})",
            view.version, view.latest_version
        )
    } else {
        format!(
            "{} -> {} (this chatd writes {})",
            view.version_before, view.version, view.latest_version
        )
    };
    let mut table = Table::new(&["SCHEMA", "VALUE"]);
    table.row(vec!["backend".into(), view.backend.clone()]);
    table.row(vec!["version".into(), version]);
    table.row(vec!["migrations applied".into(), list(&view.applied)]);
    table.row(vec!["indexes".into(), view.indexes.to_string()]);
    table.row(vec!["indexes created".into(), list(&view.indexes_created)]);
    table.row(vec!["indexes missing".into(), list(&view.indexes_missing)]);
    out.table(&table)
}
