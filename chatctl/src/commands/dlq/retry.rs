//! `chatctl dlq retry ID... | --all`: dead letters are tried again from their first attempt
//! (`admin_retry_dead_letters`).

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use super::none_found;
use crate::output::Output;

/// What `dlq retry --json` prints.
#[derive(Debug, Serialize)]
struct Retried {
    retried: u64,
}

pub(super) async fn run(
    client: &Client,
    out: Output,
    ids: Vec<u64>,
    all: bool,
) -> anyhow::Result<()> {
    let changed = client
        .admin_retry_dead_letters(pb::AdminRetryDeadLetters {
            ids: ids.clone(),
            all,
        })
        .await
        .context("cannot retry the dead letters")?;
    none_found(&ids, changed.count)?;
    out.result(
        &Retried {
            retried: changed.count,
        },
        &format!("{} dead letters queued again", changed.count),
    )
}
