//! `chatctl export CHAT`: a chat's whole history as JSON Lines on standard output, oldest first,
//! page by page (`admin_export_history`, spec/protocol.md 9.6): one page in memory at a time,
//! written out before the next is asked for, so a chat of any length exports in bounded memory.
//! Senders' usernames are looked up once per sender.

use std::collections::HashMap;
use std::io::Write as _;

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::session::Admin;
use crate::settings::Settings;

/// One message, as one line of the export. The field names are stable: scripts read them.
#[derive(Debug, Serialize)]
struct MessageLine {
    seq: u64,
    sender_id: u64,
    /// The sender's username now; empty when the account is deleted or unknown.
    sender: String,
    sent_at_ms: i64,
    /// `text`, `image`, `video`, `audio`, `file` or `voice`.
    kind: &'static str,
    text: String,
    /// The seq of the message this one answers, if any.
    reply_to: Option<u64>,
    forwarded_from: Option<Forwarded>,
    edited: bool,
    edited_at_ms: i64,
    deleted: bool,
    deleted_at_ms: i64,
    reactions: Vec<ReactionLine>,
    mention_ids: Vec<u64>,
    attachment: Option<Attachment>,
}

/// Where a forwarded message came from.
#[derive(Debug, Serialize)]
struct Forwarded {
    chat_id: u64,
    seq: u64,
    sender_id: u64,
    sent_at_ms: i64,
}

#[derive(Debug, Serialize)]
struct ReactionLine {
    emoji: String,
    count: u32,
    /// Who reacted (the server lists at most a few per emoji; `count` is the total).
    user_ids: Vec<u64>,
}

/// What the server knows of an attached file (not its bytes).
#[derive(Debug, Serialize)]
struct Attachment {
    file_id: String,
    name: String,
    mime: String,
    size: u64,
    /// Hex.
    sha256: String,
    width: u32,
    height: u32,
}

fn kind_name(kind: i32) -> &'static str {
    match pb::MessageKind::try_from(kind) {
        Ok(pb::MessageKind::Text) => "text",
        Ok(pb::MessageKind::Image) => "image",
        Ok(pb::MessageKind::Video) => "video",
        Ok(pb::MessageKind::Audio) => "audio",
        Ok(pb::MessageKind::File) => "file",
        Ok(pb::MessageKind::Voice) => "voice",
        Ok(pb::MessageKind::Unspecified) | Err(_) => "unknown",
    }
}

impl MessageLine {
    fn new(m: pb::Message, sender: String) -> Self {
        Self {
            seq: m.seq,
            sender_id: m.sender_id,
            sender,
            sent_at_ms: m.sent_at_ms,
            kind: kind_name(m.kind),
            text: m.text,
            reply_to: (m.reply_to_seq != 0).then_some(m.reply_to_seq),
            forwarded_from: m.forwarded_from.map(|f| Forwarded {
                chat_id: f.chat_id,
                seq: f.seq,
                sender_id: f.sender_id,
                sent_at_ms: f.sent_at_ms,
            }),
            edited: m.edited,
            edited_at_ms: m.edited_at_ms,
            deleted: m.deleted,
            deleted_at_ms: m.deleted_at_ms,
            reactions: m
                .reactions
                .into_iter()
                .map(|r| ReactionLine {
                    emoji: r.emoji,
                    count: r.count,
                    user_ids: r.user_ids,
                })
                .collect(),
            mention_ids: m.mention_ids,
            attachment: m.attachment.map(|f| Attachment {
                file_id: f.id,
                name: f.name,
                mime: f.mime,
                size: f.size,
                sha256: crate::output::hex(&f.sha256),
                width: f.width,
                height: f.height,
            }),
        }
    }
}

pub(super) async fn run(chat_id: u64, settings: &Settings) -> anyhow::Result<()> {
    let admin = Admin::sign_in(settings).await?;
    let result = export(admin.client(), chat_id).await;
    let finished = admin.finish(settings).await;
    result.and(finished)
}

async fn export(client: &Client, chat_id: u64) -> anyhow::Result<()> {
    // One entry per sender of the chat, not per message.
    let mut senders: HashMap<u64, String> = HashMap::new();
    let mut after_seq = 0;
    loop {
        let page = client
            .admin_export_history(pb::AdminExportHistory {
                chat_id,
                after_seq,
                limit: 0,
            })
            .await
            .with_context(|| format!("cannot export chat {chat_id}"))?;
        let mut unknown: Vec<u64> = page
            .messages
            .iter()
            .map(|m| m.sender_id)
            .filter(|id| !senders.contains_key(id))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if !unknown.is_empty() {
            let users = client
                .users_by_id(&unknown)
                .await
                .context("cannot look up the senders")?;
            for id in unknown {
                let name = users
                    .iter()
                    .find(|u| u.id == id)
                    .map(|u| u.username.clone())
                    .unwrap_or_default();
                senders.insert(id, name);
            }
        }
        let Some(last) = page.messages.last().map(|m| m.seq) else {
            break;
        };
        let mut out = std::io::stdout().lock();
        for message in page.messages {
            let sender = senders.get(&message.sender_id).cloned().unwrap_or_default();
            let line = serde_json::to_string(&MessageLine::new(message, sender))
                .context("cannot encode JSON")?;
            writeln!(out, "{line}").context("cannot write to standard output")?;
        }
        out.flush().context("cannot write to standard output")?;
        if !page.more {
            break;
        }
        after_seq = last;
    }
    Ok(())
}
