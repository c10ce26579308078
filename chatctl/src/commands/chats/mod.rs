//! `chatctl chats ...`: every chat of the server, member or not, through the `admin_*` chat
//! requests (spec/protocol.md 9.6), and deleting one (`delete_chat`, 9.3). Admins see a chat
//! from outside: its kind, title, owner and counts, never its messages.

mod delete;
mod list;
mod members;
mod show;

use chatproto::pb;
use serde::Serialize;

use crate::cli::ChatsCommand;
use crate::session::Admin;
use crate::settings::Settings;

/// One chat as `--json` prints it (`list`, `show`).
#[derive(Debug, Serialize)]
struct ChatView {
    id: u64,
    kind: &'static str,
    title: String,
    description: String,
    /// 0 for private chats.
    owner_id: u64,
    member_count: u32,
    /// The sequence number of the chat's latest event.
    last_seq: u64,
    created_at_ms: i64,
    last_activity_ms: i64,
}

impl From<&pb::Chat> for ChatView {
    fn from(c: &pb::Chat) -> Self {
        Self {
            id: c.id,
            kind: kind_name(c.kind()),
            title: c.title.clone(),
            description: c.description.clone(),
            owner_id: c.owner_id,
            member_count: c.member_count,
            last_seq: c.last_seq,
            created_at_ms: c.created_at_ms,
            last_activity_ms: c.last_activity_ms,
        }
    }
}

fn kind_name(kind: pb::ChatKind) -> &'static str {
    match kind {
        pb::ChatKind::Private => "private",
        pb::ChatKind::Group => "group",
        pb::ChatKind::Channel => "channel",
        pb::ChatKind::Unspecified => "unknown",
    }
}

pub(super) async fn run(command: ChatsCommand, settings: &Settings) -> anyhow::Result<()> {
    // The question comes before signing in, so that refusing costs nothing on the server.
    if let ChatsCommand::Delete { chat, yes } = &command {
        delete::confirm(chat.chat, *yes)?;
    }
    let admin = Admin::sign_in(settings).await?;
    let (client, out) = (admin.client(), settings.output);
    let result = match command {
        ChatsCommand::List {
            kind,
            name,
            member,
            limit,
            ..
        } => list::run(client, out, kind, name, member, limit).await,
        ChatsCommand::Show(c) => show::run(client, out, c.chat).await,
        ChatsCommand::Members(c) => members::run(client, out, c.chat).await,
        ChatsCommand::Delete { chat, .. } => delete::run(client, out, chat.chat).await,
    };
    let finished = admin.finish(settings).await;
    result.and(finished)
}
