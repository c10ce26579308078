//! `chatctl dlq ...`: the dead letters of email and webhook delivery, deliveries that failed
//! their last attempt (spec/protocol.md 16.4): list them, try them again, or delete them.

mod list;
mod purge;
mod retry;

use crate::cli::DlqCommand;
use crate::error::Error;
use crate::output::{Output, confirm};
use crate::session::Admin;
use crate::settings::Settings;

/// The ids a retry or purge names: `--all`, or at least one id.
fn chosen(ids: &[u64], all: bool) -> anyhow::Result<Vec<u64>> {
    match (ids.is_empty(), all) {
        (true, false) => Err(Error::Usage("name dead letters by id, or give --all".into()).into()),
        (false, true) => Err(Error::Usage("give ids or --all, not both".into()).into()),
        _ => Ok(ids.to_vec()),
    }
}

/// What the ids name, for the confirmation.
fn named(ids: &[u64]) -> String {
    if ids.is_empty() {
        return "every dead letter".to_owned();
    }
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!("dead letters {}", list.join(", "))
}

pub(super) async fn run(command: DlqCommand, settings: &Settings) -> anyhow::Result<()> {
    // Usage and the question come before signing in, so that refusing costs nothing.
    match &command {
        DlqCommand::List { .. } => {}
        DlqCommand::Retry { ids, all, .. } => {
            chosen(ids, *all)?;
        }
        DlqCommand::Purge { ids, all, yes, .. } => {
            let ids = chosen(ids, *all)?;
            confirm(&format!("Delete {} for good?", named(&ids)), *yes)?;
        }
    }
    let admin = Admin::sign_in(settings).await?;
    let (client, out) = (admin.client(), settings.output);
    let result = match command {
        DlqCommand::List { limit, .. } => list::run(client, out, limit).await,
        DlqCommand::Retry { ids, all, .. } => retry::run(client, out, ids, all).await,
        DlqCommand::Purge { ids, all, .. } => purge::run(client, out, ids, all).await,
    };
    let finished = admin.finish(settings).await;
    result.and(finished)
}

/// Prints how many dead letters a retry or purge changed: `{"<done>": N}` with `--json`, else
/// "N dead letters <done>". Fails with "not found" (exit status 4) when ids were named and none
/// of them was a dead letter.
fn report(out: Output, ids: &[u64], count: u64, done: &'static str) -> anyhow::Result<()> {
    if !ids.is_empty() && count == 0 {
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        return Err(Error::NotFound {
            what: "dead letter",
            name: list.join(","),
        }
        .into());
    }
    let json = std::collections::BTreeMap::from([(done, count)]);
    out.result(&json, &format!("{count} dead letters {done}"))
}
