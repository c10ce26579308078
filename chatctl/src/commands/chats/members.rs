//! `chatctl chats members CHAT`: a chat's current members (`admin_list_members`, every page),
//! named by their public profiles.

use std::collections::HashMap;

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;
use serde::Serialize;

use crate::output::{Output, Paint, Table, now_ms, relative_time};

/// One member as `--json` prints it.
#[derive(Debug, Serialize)]
struct MemberView {
    user_id: u64,
    /// Empty when the account is gone.
    username: String,
    role: &'static str,
    joined_at_ms: i64,
}

fn role_name(role: pb::MemberRole) -> &'static str {
    match role {
        pb::MemberRole::Owner => "owner",
        pb::MemberRole::Admin => "admin",
        pb::MemberRole::Member => "member",
        pb::MemberRole::Unspecified => "unknown",
    }
}

pub(super) async fn run(client: &Client, out: Output, chat: u64) -> anyhow::Result<()> {
    let mut members = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .admin_list_members(pb::AdminListMembers {
                chat_id: chat,
                limit: 0,
                cursor,
            })
            .await
            .with_context(|| format!("cannot list the members of chat {chat}"))?;
        members.extend(page.members);
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    let ids: Vec<u64> = members.iter().map(|m| m.user_id).collect();
    let names: HashMap<u64, String> = client
        .users_by_id(&ids)
        .await
        .context("cannot read the members' names")?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    let views: Vec<MemberView> = members
        .iter()
        .map(|m| MemberView {
            user_id: m.user_id,
            username: names.get(&m.user_id).cloned().unwrap_or_default(),
            role: role_name(m.role()),
            joined_at_ms: m.joined_at_ms,
        })
        .collect();
    if out.json {
        return out.json(&views);
    }
    let now = now_ms();
    let mut table = Table::new(&["ID", "USERNAME", "ROLE", "JOINED"]);
    for m in views {
        let paint = if m.role == "member" {
            Paint::Plain
        } else {
            Paint::Yellow
        };
        table.painted_row(vec![
            (m.user_id.to_string(), Paint::Plain),
            (m.username, Paint::Plain),
            (m.role.to_owned(), paint),
            (relative_time(m.joined_at_ms, now), Paint::Plain),
        ]);
    }
    out.table(&table)
}
