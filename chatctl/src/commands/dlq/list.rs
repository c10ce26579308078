//! `chatctl dlq list`: the dead letters, oldest first (`admin_list_dead_letters`), every page or
//! the first `--limit`.

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::output::{Output, Table, now_ms, relative_time};

/// One dead letter as `dlq list --json` prints it.
#[derive(Debug, Serialize)]
struct LetterView {
    id: u64,
    /// `digest`, `email` or `webhook`.
    kind: String,
    user_id: u64,
    /// The email address, or the webhook's notification kind; empty for a digest.
    target: String,
    attempts: u32,
    created_at_ms: i64,
    failed_at_ms: i64,
    last_error: String,
}

impl From<pb::DeadLetter> for LetterView {
    fn from(d: pb::DeadLetter) -> Self {
        let kind = pb::DeliveryKind::try_from(d.kind).map_or_else(
            |_| format!("kind {}", d.kind),
            |k| {
                k.as_str_name()
                    .trim_start_matches("DELIVERY_KIND_")
                    .to_ascii_lowercase()
            },
        );
        LetterView {
            id: d.id,
            kind,
            user_id: d.user_id,
            target: d.target,
            attempts: d.attempts,
            created_at_ms: d.created_at_ms,
            failed_at_ms: d.failed_at_ms,
            last_error: d.last_error,
        }
    }
}

pub(super) async fn run(client: &Client, out: Output, limit: Option<u64>) -> anyhow::Result<()> {
    let wanted = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut letters = Vec::new();
    let mut cursor = String::new();
    while letters.len() < wanted {
        let page = client
            .admin_list_dead_letters(pb::AdminListDeadLetters { limit: 0, cursor })
            .await
            .context("cannot list the dead letters")?;
        letters.extend(page.dead_letters);
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    letters.truncate(wanted);
    let views: Vec<LetterView> = letters.into_iter().map(LetterView::from).collect();
    if out.json {
        return out.json(&views);
    }
    let now = now_ms();
    let mut table = Table::new(&[
        "ID", "KIND", "USER", "TARGET", "ATTEMPTS", "FAILED", "ERROR",
    ]);
    for d in views {
        table.row(vec![
            d.id.to_string(),
            d.kind,
            d.user_id.to_string(),
            d.target,
            d.attempts.to_string(),
            relative_time(d.failed_at_ms, now),
            d.last_error,
        ]);
    }
    out.table(&table)
}
