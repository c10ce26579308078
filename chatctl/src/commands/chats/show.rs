//! `chatctl chats show CHAT`: one chat from outside (`admin_get_chat`), its owner named.

use anyhow::Context as _;
use chatproto::client::Client;
use chatproto::pb;

use super::ChatView;
use crate::output::{Output, Table, human_count, now_ms, relative_time};

pub(super) async fn run(client: &Client, out: Output, chat: u64) -> anyhow::Result<()> {
    let found = client
        .admin_get_chat(pb::AdminGetChat { chat_id: chat })
        .await
        .with_context(|| format!("cannot read chat {chat}"))?;
    let view = ChatView::from(&found);
    if out.json {
        return out.json(&view);
    }
    let owner = if view.owner_id == 0 {
        "-".to_owned()
    } else {
        let users = client
            .users_by_id(&[view.owner_id])
            .await
            .context("cannot read the owner's name")?;
        users.first().map_or_else(
            || view.owner_id.to_string(),
            |u| format!("{} ({})", u.username, u.id),
        )
    };
    let now = now_ms();
    let mut table = Table::new(&["FIELD", "VALUE"]);
    table.row(vec!["id".into(), view.id.to_string()]);
    table.row(vec!["kind".into(), view.kind.into()]);
    table.row(vec!["title".into(), view.title.clone()]);
    table.row(vec!["description".into(), view.description.clone()]);
    table.row(vec!["owner".into(), owner]);
    table.row(vec![
        "members".into(),
        human_count(u64::from(view.member_count)),
    ]);
    table.row(vec!["last seq".into(), view.last_seq.to_string()]);
    table.row(vec![
        "created".into(),
        relative_time(view.created_at_ms, now),
    ]);
    table.row(vec![
        "last activity".into(),
        relative_time(view.last_activity_ms, now),
    ]);
    out.table(&table)
}
