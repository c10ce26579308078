//! `chatctl messages delete CHAT SEQ`: one message deleted for everyone, whoever sent it.

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::output::Output;

/// What `messages delete --json` prints.
#[derive(Debug, Serialize)]
struct Deleted {
    chat_id: u64,
    seq: u64,
    deleted: bool,
}

pub(super) async fn run(client: &Client, out: Output, chat: u64, seq: u64) -> anyhow::Result<()> {
    client
        .admin_delete_message(pb::AdminDeleteMessage { chat_id: chat, seq })
        .await
        .with_context(|| format!("cannot delete message {seq} of chat {chat}"))?;
    out.result(
        &Deleted {
            chat_id: chat,
            seq,
            deleted: true,
        },
        &format!("chat {chat}, message {seq}: deleted for everyone"),
    )
}
