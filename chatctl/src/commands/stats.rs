//! `chatctl stats`: how much the server holds (`admin_stats`), and the answering node's live
//! connections, uptime and message rate over the last minute.

use anyhow::Context as _;
use chatproto::pb;
use serde::Serialize;

use crate::output::{Table, human_count};
use crate::session::Admin;
use crate::settings::Settings;

/// What `stats --json` prints.
#[derive(Debug, Serialize)]
struct StatsView {
    users: u64,
    chats: u64,
    messages: u64,
    connections: u64,
    uptime_ms: i64,
    server_name: String,
    node_id: String,
    /// The messages the answering node stored in the last 60 seconds.
    messages_last_minute: u64,
    /// The same as a rate: `messages_last_minute / 60`.
    messages_per_second: f64,
}

pub(super) async fn run(settings: &Settings) -> anyhow::Result<()> {
    let admin = Admin::sign_in(settings).await?;
    let stats = admin
        .client()
        .admin_stats(pb::AdminStats {})
        .await
        .context("cannot ask the server for its counts");
    admin.finish(settings).await?;
    let s = stats?;
    let view = StatsView {
        users: s.users,
        chats: s.chats,
        messages: s.messages,
        connections: s.connections,
        uptime_ms: s.uptime_ms,
        server_name: s.server_name,
        node_id: s.node_id,
        messages_last_minute: s.messages_last_minute,
        messages_per_second: per_second(s.messages_last_minute),
    };
    let out = settings.output;
    if out.json {
        return out.json(&view);
    }
    let mut table = Table::new(&["STAT", "VALUE"]);
    table.row(vec!["users".into(), human_count(view.users)]);
    table.row(vec!["chats".into(), human_count(view.chats)]);
    table.row(vec!["messages".into(), human_count(view.messages)]);
    table.row(vec![
        format!("connections ({})", view.node_id),
        human_count(view.connections),
    ]);
    table.row(vec![
        format!("uptime ({})", view.node_id),
        duration(view.uptime_ms),
    ]);
    table.row(vec![
        format!("messages/s, last minute ({})", view.node_id),
        format!(
            "{:.2} ({} messages)",
            view.messages_per_second,
            human_count(view.messages_last_minute)
        ),
    ]);
    table.row(vec!["server".into(), view.server_name]);
    out.table(&table)
}

/// The mean rate of a minute's count, rounded to hundredths so JSON shows what the table does.
fn per_second(last_minute: u64) -> f64 {
    // Exact below 2^53 messages a minute.
    (last_minute as f64 / 60.0 * 100.0).round() / 100.0
}

/// A duration in its two largest units: "45s", "12m 5s", "3h 20m", "2d 4h".
fn duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::{duration, per_second};

    #[test]
    fn a_minute_count_reads_as_a_rate() {
        assert!(per_second(0).abs() < f64::EPSILON);
        assert!((per_second(90) - 1.5).abs() < f64::EPSILON);
        assert!((per_second(1) - 0.02).abs() < f64::EPSILON);
    }

    #[test]
    fn durations_read_in_their_two_largest_units() {
        assert_eq!(duration(-5), "0s");
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(725_000), "12m 5s");
        assert_eq!(duration(12_000_000), "3h 20m");
        assert_eq!(duration(187_200_000), "2d 4h");
    }
}
