//! `chatctl bans list | add | remove | mode`: who may connect (spec/protocol.md 9.6, "Access
//! rules"): bans of addresses and CIDR ranges, allow rules, and allow-list mode. Ranges are
//! checked by the server, which answers with the canonical form.

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::cli::{AccessMode, BansCommand};
use crate::output::{Output, Paint, Table, confirm, now_ms, relative_time};
use crate::session::Admin;
use crate::settings::Settings;

/// One rule as `bans --json` prints it. The field names are stable: scripts read them.
#[derive(Debug, Serialize)]
struct RuleView {
    cidr: String,
    /// `ban` or `allow`.
    kind: &'static str,
    reason: String,
    created_by: u64,
    created_at_ms: i64,
    /// 0: never.
    expires_at_ms: i64,
}

/// What `bans list --json` and `bans mode --json` print.
#[derive(Debug, Serialize)]
struct AccessView {
    /// `open` or `allow-list`.
    mode: &'static str,
    /// Your address as the answering node sees it.
    your_address: String,
    rules: Vec<RuleView>,
}

/// What `bans remove --json` prints.
#[derive(Debug, Serialize)]
struct Removed<'a> {
    cidr: &'a str,
    kind: &'static str,
    removed: bool,
}

fn kind_name(kind: pb::AccessRuleKind) -> &'static str {
    match kind {
        pb::AccessRuleKind::Allow => "allow",
        _ => "ban",
    }
}

fn kind_of(allow: bool) -> pb::AccessRuleKind {
    if allow {
        pb::AccessRuleKind::Allow
    } else {
        pb::AccessRuleKind::Ban
    }
}

fn view(rule: pb::AccessRule) -> RuleView {
    RuleView {
        kind: kind_name(rule.kind()),
        cidr: rule.cidr,
        reason: rule.reason,
        created_by: rule.created_by,
        created_at_ms: rule.created_at_ms,
        expires_at_ms: rule.expires_at_ms,
    }
}

pub(super) async fn run(command: BansCommand, settings: &Settings) -> anyhow::Result<()> {
    // The question comes before signing in, so that refusing costs nothing on the server.
    if let BansCommand::Mode {
        mode: AccessMode::AllowList,
        yes,
        ..
    } = &command
    {
        confirm(
            "Let in only ranges with an allow rule (and the server's exempt ranges)?",
            *yes,
        )?;
    }
    let admin = Admin::sign_in(settings).await?;
    let (client, out) = (admin.client(), settings.output);
    let result = match command {
        BansCommand::List(_) => list(client, out).await,
        BansCommand::Add {
            cidr,
            allow,
            duration,
            reason,
            ..
        } => add(client, out, &cidr, allow, duration, reason).await,
        BansCommand::Remove { cidr, allow, .. } => remove(client, out, &cidr, allow).await,
        BansCommand::Mode { mode, .. } => set_mode(client, out, mode).await,
    };
    let finished = admin.finish(settings).await;
    result.and(finished)
}

async fn list(client: &Client, out: Output) -> anyhow::Result<()> {
    let access = client
        .admin_list_access_rules(pb::AdminListAccessRules {})
        .await
        .context("cannot list the access rules")?;
    print_access(out, access)
}

async fn add(
    client: &Client,
    out: Output,
    cidr: &str,
    allow: bool,
    duration: Option<std::time::Duration>,
    reason: String,
) -> anyhow::Result<()> {
    let expires_in_ms = duration.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let kind = kind_of(allow);
    let rule = client
        .admin_add_access_rule(pb::AdminAddAccessRule {
            cidr: cidr.to_owned(),
            kind: kind as i32,
            reason,
            expires_in_ms,
        })
        .await
        .with_context(|| format!("cannot add the {} rule for {cidr}", kind_name(kind)))?;
    let until = match rule.expires_at_ms {
        0 => "until removed".to_owned(),
        at => format!("until {}", relative_time(at, now_ms())),
    };
    let human = match kind {
        pb::AccessRuleKind::Allow => format!("{}: allowed {until}", rule.cidr),
        _ => format!(
            "{}: banned {until}; new connections from it are refused",
            rule.cidr
        ),
    };
    out.result(&view(rule), &human)
}

async fn remove(client: &Client, out: Output, cidr: &str, allow: bool) -> anyhow::Result<()> {
    let kind = kind_of(allow);
    client
        .admin_remove_access_rule(pb::AdminRemoveAccessRule {
            cidr: cidr.to_owned(),
            kind: kind as i32,
        })
        .await
        .with_context(|| format!("cannot remove the {} rule for {cidr}", kind_name(kind)))?;
    out.result(
        &Removed {
            cidr,
            kind: kind_name(kind),
            removed: true,
        },
        &format!("{cidr}: {} rule removed", kind_name(kind)),
    )
}

async fn set_mode(client: &Client, out: Output, mode: AccessMode) -> anyhow::Result<()> {
    let access = client
        .admin_set_access_mode(pb::AdminSetAccessMode {
            allow_list: mode == AccessMode::AllowList,
        })
        .await
        .context("cannot change the access mode")?;
    print_access(out, access)
}

fn print_access(out: Output, access: pb::AccessList) -> anyhow::Result<()> {
    if access.more {
        eprintln!("chatctl: more rules exist than one answer holds; only the first are listed");
    }
    let view = AccessView {
        mode: if access.allow_list {
            "allow-list"
        } else {
            "open"
        },
        your_address: access.caller_address,
        rules: access.rules.into_iter().map(view).collect(),
    };
    if out.json {
        return out.json(&view);
    }
    let now = now_ms();
    let mut table = Table::new(&["KIND", "RANGE", "REASON", "ADDED", "EXPIRES"]);
    for r in &view.rules {
        let paint = if r.kind == "ban" {
            Paint::Red
        } else {
            Paint::Green
        };
        let expires = if r.expires_at_ms == 0 {
            "never".to_owned()
        } else {
            relative_time(r.expires_at_ms, now)
        };
        table.painted_row(vec![
            (r.kind.to_owned(), paint),
            (r.cidr.clone(), Paint::Plain),
            (r.reason.clone(), Paint::Plain),
            (relative_time(r.created_at_ms, now), Paint::Plain),
            (expires, Paint::Plain),
        ]);
    }
    let mode = match view.mode {
        "allow-list" => "allow-list (only allowed ranges may connect)",
        _ => "open (everyone not banned may connect)",
    };
    crate::output::print_line(&format!(
        "mode: {mode}; your address: {}",
        view.your_address
    ))?;
    if !view.rules.is_empty() {
        out.table(&table)?;
    }
    Ok(())
}
