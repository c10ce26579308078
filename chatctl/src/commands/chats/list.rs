//! `chatctl chats list`: every chat by id (`admin_list_chats`), all pages or the first
//! `--limit` chats, filtered by kind, title and member.

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;

use super::ChatView;
use crate::cli::ChatKind;
use crate::commands::users::find;
use crate::output::{Output, Table, human_count, now_ms, relative_time};

pub(super) async fn run(
    client: &Client,
    out: Output,
    kind: Option<ChatKind>,
    name: Option<String>,
    member: Option<String>,
    limit: Option<u64>,
) -> anyhow::Result<()> {
    let member_id = match &member {
        Some(name) => find(client, name).await?.id,
        None => 0,
    };
    let kind = kind.map_or(pb::ChatKind::Unspecified, |k| match k {
        ChatKind::Private => pb::ChatKind::Private,
        ChatKind::Group => pb::ChatKind::Group,
        ChatKind::Channel => pb::ChatKind::Channel,
    });
    let wanted = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let mut chats = Vec::new();
    let mut cursor = String::new();
    while chats.len() < wanted {
        let page = client
            .admin_list_chats(pb::AdminListChats {
                kind: kind as i32,
                query: name.clone().unwrap_or_default(),
                member_id,
                limit: 0,
                cursor,
            })
            .await
            .context("cannot list chats")?;
        chats.extend(page.chats);
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    chats.truncate(wanted);
    let views: Vec<ChatView> = chats.iter().map(ChatView::from).collect();
    if out.json {
        return out.json(&views);
    }
    let now = now_ms();
    let mut table = Table::new(&["ID", "KIND", "TITLE", "MEMBERS", "CREATED", "LAST ACTIVITY"]);
    for chat in views {
        table.row(vec![
            chat.id.to_string(),
            chat.kind.to_owned(),
            chat.title,
            human_count(u64::from(chat.member_count)),
            relative_time(chat.created_at_ms, now),
            relative_time(chat.last_activity_ms, now),
        ]);
    }
    out.table(&table)
}
