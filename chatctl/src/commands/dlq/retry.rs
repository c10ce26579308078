//! `chatctl dlq retry ID... | --all`: dead letters are tried again from their first attempt
//! (`admin_retry_dead_letters`).

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;

use super::report;
use crate::output::Output;

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
    report(out, &ids, changed.count, "retried")
}
