//! `chatctl audit`: the audit log of admin changes (`admin_list_audit`), newest first, every
//! page or the first `--limit` entries, filtered by actor, action, subject and age.

use std::time::Duration;

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::commands::users::find;
use crate::output::{Output, Paint, Table, ms_ago, now_ms, relative_time};
use crate::session::Admin;
use crate::settings::Settings;

/// The filters of `chatctl audit`, as given on the command line.
pub(super) struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub since: Option<Duration>,
}

/// One entry as `audit --json` prints it.
#[derive(Debug, Serialize)]
struct EntryView {
    id: u64,
    at_ms: i64,
    actor_id: u64,
    /// Empty when the actor is unknown (0: not authenticated) or deleted.
    actor: String,
    address: String,
    action: String,
    subject: String,
    detail: String,
    /// `OK`, or the error code it was answered with (e.g. `PERMISSION_DENIED`).
    outcome: String,
}

impl From<pb::AuditEntry> for EntryView {
    fn from(e: pb::AuditEntry) -> Self {
        let outcome = match pb::ErrorCode::try_from(e.outcome) {
            Ok(pb::ErrorCode::Unspecified) => "OK".to_owned(),
            Ok(code) => code
                .as_str_name()
                .trim_start_matches("ERROR_CODE_")
                .to_owned(),
            Err(_) => format!("code {}", e.outcome),
        };
        EntryView {
            id: e.id,
            at_ms: e.at_ms,
            actor_id: e.actor_id,
            actor: e.actor_username,
            address: e.address,
            action: e.action,
            subject: e.subject,
            detail: e.detail,
            outcome,
        }
    }
}

pub(super) async fn run(
    filter: Filter,
    limit: Option<u64>,
    settings: &Settings,
) -> anyhow::Result<()> {
    let admin = Admin::sign_in(settings).await?;
    let result = list(admin.client(), settings.output, filter, limit).await;
    let finished = admin.finish(settings).await;
    result.and(finished)
}

async fn list(
    client: &Client,
    out: Output,
    filter: Filter,
    limit: Option<u64>,
) -> anyhow::Result<()> {
    let actor_id = match &filter.actor {
        Some(name) => find(client, name).await?.id,
        None => 0,
    };
    let since_ms = filter.since.map_or(0, ms_ago);
    let wanted = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut entries = Vec::new();
    let mut cursor = String::new();
    while entries.len() < wanted {
        let page = client
            .admin_list_audit(pb::AdminListAudit {
                actor_id,
                action: filter.action.clone().unwrap_or_default(),
                subject: filter.subject.clone().unwrap_or_default(),
                since_ms,
                limit: 0,
                cursor,
            })
            .await
            .context("cannot read the audit log")?;
        entries.extend(page.entries);
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    entries.truncate(wanted);
    let views: Vec<EntryView> = entries.into_iter().map(EntryView::from).collect();
    if out.json {
        return out.json(&views);
    }
    let now = now_ms();
    let mut table = Table::new(&[
        "ID", "WHEN", "ACTOR", "FROM", "ACTION", "SUBJECT", "DETAIL", "OUTCOME",
    ]);
    for e in views {
        let actor = match (e.actor.is_empty(), e.actor_id) {
            (false, _) => e.actor,
            (true, 0) => "-".to_owned(),
            (true, id) => format!("#{id}"),
        };
        let paint = if e.outcome == "OK" {
            Paint::Plain
        } else {
            Paint::Yellow
        };
        table.painted_row(vec![
            (e.id.to_string(), Paint::Plain),
            (relative_time(e.at_ms, now), Paint::Plain),
            (actor, Paint::Plain),
            (e.address, Paint::Plain),
            (e.action, Paint::Plain),
            (e.subject, Paint::Plain),
            (e.detail, Paint::Plain),
            (e.outcome, paint),
        ]);
    }
    out.table(&table)
}
