//! `chatctl messages purge --sender NAME [--chat CHAT] [--since DURATION]`: every message a user
//! sent (recently, with `--since`) deleted for everyone, one bounded request after another until
//! the server says none are left.

use std::time::Duration;

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::commands::users::find;
use crate::output::{Output, ms_ago, now_ms, relative_time};

/// What `messages purge --json` prints.
#[derive(Debug, Serialize)]
struct Purged<'a> {
    user_id: u64,
    username: &'a str,
    /// The chat purged; none for every chat.
    chat_id: Option<u64>,
    /// Only messages sent at or after this time (ms since the epoch); none for all.
    since_ms: Option<i64>,
    deleted: u64,
}

pub(super) async fn run(
    client: &Client,
    out: Output,
    sender: &str,
    chat: Option<u64>,
    since: Option<Duration>,
) -> anyhow::Result<()> {
    let user = find(client, sender).await?;
    // One fixed time for every step, so that the steps agree on what they purge.
    let since_ms = since.map(ms_ago);
    let mut deleted = 0_u64;
    loop {
        let step = client
            .admin_purge_messages(pb::AdminPurgeMessages {
                user_id: user.id,
                chat_id: chat.unwrap_or(0),
                limit: 0,
                since_ms: since_ms.unwrap_or(0),
            })
            .await
            .with_context(|| {
                format!(
                    "cannot purge the messages of {} ({deleted} deleted so far)",
                    user.username
                )
            })?;
        deleted += u64::from(step.deleted);
        // A step that deleted nothing while more remain would repeat forever: the server
        // lists only messages it can delete, so that is a bug worth reporting, not a loop.
        if !step.more {
            break;
        }
        if step.deleted == 0 {
            anyhow::bail!(
                "the server reports messages of {} left but deleted none of them",
                user.username
            );
        }
    }
    let mut place = chat.map_or("every chat".to_owned(), |c| format!("chat {c}"));
    if let Some(since) = since_ms {
        place.push_str(&format!(", sent since {}", relative_time(since, now_ms())));
    }
    out.result(
        &Purged {
            user_id: user.id,
            username: &user.username,
            chat_id: chat,
            since_ms,
            deleted,
        },
        &format!(
            "{}: {deleted} messages deleted for everyone in {place}",
            user.username
        ),
    )
}
