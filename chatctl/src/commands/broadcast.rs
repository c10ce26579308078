//! `chatctl broadcast TEXT`: an announcement to every user (`admin_broadcast`,
//! spec/protocol.md 9.6), recorded as a notification for each active user and sent live to
//! those connected. It reaches everyone, so a terminal is asked first.

use anyhow::Context as _;
use chatproto::pb;
use serde::Serialize;

use crate::output::{confirm, human_count};
use crate::session::Admin;
use crate::settings::Settings;

/// What `broadcast --json` prints. The field names are stable: scripts read them.
#[derive(Debug, Serialize)]
struct BroadcastView {
    /// For how many users it was recorded.
    recipients: u64,
    sent_at_ms: i64,
}

pub(super) async fn run(text: &str, yes: bool, settings: &Settings) -> anyhow::Result<()> {
    // Asked before signing in, so that refusing costs nothing on the server.
    confirm("Send this announcement to every user?", yes)?;
    let admin = Admin::sign_in(settings).await?;
    let sent = admin
        .client()
        .admin_broadcast(pb::AdminBroadcast {
            text: text.to_owned(),
        })
        .await
        .context("cannot send the announcement");
    let reported = sent.and_then(|sent| report(sent, settings));
    let finished = admin.finish(settings).await;
    reported.and(finished)
}

fn report(sent: pb::BroadcastResult, settings: &Settings) -> anyhow::Result<()> {
    let view = BroadcastView {
        recipients: sent.recipients,
        sent_at_ms: sent.sent_at_ms,
    };
    let users = if view.recipients == 1 {
        "user"
    } else {
        "users"
    };
    settings.output.result(
        &view,
        &format!(
            "announcement recorded for {} {users}; connected ones get it now, the others when \
             they next sync",
            human_count(view.recipients)
        ),
    )
}
