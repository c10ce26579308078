//! `chatctl chats ...`: moderation of chats. A server admin may delete any chat, member or not
//! (`delete_chat`, spec/protocol.md 9.3); to anyone else a chat they are not in does not exist.

use anyhow::Context as _;
use chatproto::pb;
use serde::Serialize;

use crate::cli::ChatsCommand;
use crate::output::confirm;
use crate::session::Admin;
use crate::settings::Settings;

/// What `chats delete --json` prints.
#[derive(Debug, Serialize)]
struct Deleted {
    chat_id: u64,
    deleted: bool,
}

pub(super) async fn run(command: ChatsCommand, settings: &Settings) -> anyhow::Result<()> {
    match command {
        ChatsCommand::Delete { chat, yes, .. } => {
            confirm(
                &format!("Delete chat {chat} and its history for every member?"),
                yes,
            )?;
            let admin = Admin::sign_in(settings).await?;
            let result = admin
                .client()
                .delete_chat(pb::DeleteChat { chat_id: chat })
                .await
                .with_context(|| format!("cannot delete chat {chat}"));
            admin.finish(settings).await?;
            result?;
            settings.output.result(
                &Deleted {
                    chat_id: chat,
                    deleted: true,
                },
                &format!("chat {chat}: deleted"),
            )
        }
    }
}
