//! `chatctl messages ...`: moderation of messages through `admin_delete_message` and
//! `admin_purge_messages` (spec/protocol.md 9.6). The members of a chat see each deletion as an
//! ordinary delete for everyone.

mod delete;
mod purge;

use crate::cli::MessagesCommand;
use crate::output::{confirm, ms_ago, now_ms, relative_time};
use crate::session::Admin;
use crate::settings::Settings;

pub(super) async fn run(command: MessagesCommand, settings: &Settings) -> anyhow::Result<()> {
    // The question comes before signing in, so that refusing costs nothing on the server.
    match &command {
        MessagesCommand::Delete { chat, seq, yes, .. } => confirm(
            &format!("Delete message {seq} of chat {chat} for everyone?"),
            *yes,
        )?,
        MessagesCommand::Purge {
            sender,
            chat,
            since,
            yes,
            ..
        } => {
            let mut place = chat.map_or("every chat".to_owned(), |c| format!("chat {c}"));
            if let Some(ago) = since {
                place.push_str(&format!(" since {}", relative_time(ms_ago(*ago), now_ms())));
            }
            confirm(
                &format!("Delete every message {sender} sent in {place}, for everyone?"),
                *yes,
            )?;
        }
    }
    let admin = Admin::sign_in(settings).await?;
    let (client, out) = (admin.client(), settings.output);
    let result = match command {
        MessagesCommand::Delete { chat, seq, .. } => delete::run(client, out, chat, seq).await,
        MessagesCommand::Purge {
            sender,
            chat,
            since,
            ..
        } => purge::run(client, out, &sender, chat, since).await,
    };
    let finished = admin.finish(settings).await;
    result.and(finished)
}
