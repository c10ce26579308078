//! `chatctl dlq purge ID... | --all`: dead letters are deleted (`admin_purge_dead_letters`).

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use super::none_found;
use crate::output::Output;

/// What `dlq purge --json` prints.
#[derive(Debug, Serialize)]
struct Purged {
    purged: u64,
}

pub(super) async fn run(
    client: &Client,
    out: Output,
    ids: Vec<u64>,
    all: bool,
) -> anyhow::Result<()> {
    let changed = client
        .admin_purge_dead_letters(pb::AdminPurgeDeadLetters {
            ids: ids.clone(),
            all,
        })
        .await
        .context("cannot purge the dead letters")?;
    none_found(&ids, changed.count)?;
    out.result(
        &Purged {
            purged: changed.count,
        },
        &format!("{} dead letters deleted", changed.count),
    )
}
