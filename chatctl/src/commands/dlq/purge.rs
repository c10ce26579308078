//! `chatctl dlq purge ID... | --all`: dead letters are deleted (`admin_purge_dead_letters`).

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
        .admin_purge_dead_letters(pb::AdminPurgeDeadLetters {
            ids: ids.clone(),
            all,
        })
        .await
        .context("cannot purge the dead letters")?;
    report(out, &ids, changed.count, "purged")
}
