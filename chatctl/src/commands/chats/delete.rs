//! `chatctl chats delete CHAT`: a server admin may delete any chat, member or not
//! (`delete_chat`, spec/protocol.md 9.3); to anyone else a chat they are not in does not exist.

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::output::{Output, confirm as ask};

/// What `chats delete --json` prints.
#[derive(Debug, Serialize)]
struct Deleted {
    chat_id: u64,
    deleted: bool,
}

/// Asks before anything is done.
pub(super) fn confirm(chat: u64, yes: bool) -> anyhow::Result<()> {
    ask(
        &format!("Delete chat {chat} and its history for every member?"),
        yes,
    )
}

pub(super) async fn run(client: &Client, out: Output, chat: u64) -> anyhow::Result<()> {
    client
        .delete_chat(pb::DeleteChat { chat_id: chat })
        .await
        .with_context(|| format!("cannot delete chat {chat}"))?;
    out.result(
        &Deleted {
            chat_id: chat,
            deleted: true,
        },
        &format!("chat {chat}: deleted"),
    )
}
