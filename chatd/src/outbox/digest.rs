//! Putting a user's digest together (protocol.md 16.2): when their digest step is due, the
//! unread notifications they have not been told of by email, left out those recorded during
//! do-not-disturb (`silent`) and those of chats muted now, rendered from the text and HTML
//! templates beside this file into one email.

use chatproto::pb;

use super::account::usable_address;
use super::{DEFAULT_DIGEST_MINUTES, EmailPayload, Outbox, Step, encode};
use crate::notify::{MINUTES_PER_DAY, quiet_at};
use crate::store::{NewDelivery, NotificationQuery, StoreError};

/// Most notifications one digest lists (the newest); the rest are counted.
pub const MAX_ITEMS: u32 = 50;

/// The page size in which a digest reads the unread notifications.
const PAGE: u32 = 200;

const TEXT_TEMPLATE: &str = include_str!("templates/digest.txt");
const HTML_TEMPLATE: &str = include_str!("templates/digest.html");

/// When the do-not-disturb hours that hold at `now_ms` end (the next minute outside them), or
/// `None` when they do not hold; a day later when they never end (all day).
pub fn quiet_end(dnd: &pb::DoNotDisturb, now_ms: i64) -> Option<i64> {
    if !quiet_at(dnd, now_ms) {
        return None;
    }
    let minute = now_ms - now_ms.rem_euclid(60_000);
    (1..=i64::from(MINUTES_PER_DAY))
        .map(|m| minute + m * 60_000)
        .find(|&t| !quiet_at(dnd, t))
        .or(Some(now_ms + i64::from(MINUTES_PER_DAY) * 60_000))
}

fn store_error(e: StoreError) -> String {
    format!("store: {e}")
}

/// One line of the digest.
pub(super) struct Item {
    what: String,
    chat: String,
    preview: String,
}

impl Outbox {
    /// The digest step of `user`, at `now`.
    pub(super) async fn digest(&self, user: u64, now: i64) -> Result<Step, String> {
        let (Some(email), Some(links)) = (&self.settings.email, &self.links) else {
            return Ok(Step::Done);
        };
        let store = &self.store;
        let prefs = store
            .notification_prefs(user)
            .await
            .map_err(store_error)?
            .unwrap_or_default();
        if prefs.disabled || !prefs.email {
            return Ok(Step::Done);
        }
        let Some(account) = store.user(user).await.map_err(store_error)? else {
            return Ok(Step::Done);
        };
        let Some(to) = usable_address(&account, email) else {
            return Ok(Step::Done);
        };
        let minutes = match prefs.email_digest_minutes {
            0 => DEFAULT_DIGEST_MINUTES,
            m => m,
        };
        let interval_ms = i64::from(minutes) * 60_000;
        if !self.delivery.online_among(&[user]).await.is_empty() {
            return Ok(Step::Postpone(now.saturating_add(interval_ms)));
        }
        let away_enough = account.last_seen_at_ms.saturating_add(interval_ms);
        if away_enough > now {
            return Ok(Step::Postpone(away_enough));
        }
        if let Some(end) = prefs
            .do_not_disturb
            .as_ref()
            .and_then(|d| quiet_end(d, now))
        {
            return Ok(Step::Postpone(end));
        }
        let mark = store.digest_mark(user).await.map_err(store_error)?;
        // Every unread one since the mark, newest first: they are few (a user keeps
        // `--notifications-kept`), and one left out here would fall below the new mark unsaid.
        let mut unread = Vec::new();
        let mut before_id = None;
        loop {
            let page = store
                .notifications(NotificationQuery {
                    user_id: user,
                    unread_only: true,
                    before_id,
                    limit: PAGE,
                })
                .await
                .map_err(store_error)?;
            let full = page.len() >= PAGE as usize;
            before_id = page.last().map(|n| n.id);
            unread.extend(page.into_iter().filter(|n| n.id > mark));
            if !full || before_id.is_none_or(|id| id <= mark) {
                break;
            }
        }
        let mut newest = mark;
        let mut told = Vec::new();
        for n in unread {
            newest = newest.max(n.id);
            if n.silent {
                continue;
            }
            // A broadcast belongs to no chat (chat_id 0), so no chat of it can be muted.
            let muted = n.chat_id != 0
                && store
                    .user_chat(n.chat_id, user)
                    .await
                    .map_err(store_error)?
                    .is_none_or(|c| c.state.muted_until_ms > now);
            if !muted {
                told.push(n);
            }
        }
        if told.is_empty() {
            store
                .set_digest_mark(user, newest)
                .await
                .map_err(store_error)?;
            return Ok(Step::Done);
        }
        let count = told.len().to_string();
        let more = match told.len().saturating_sub(MAX_ITEMS as usize) {
            0 => String::new(),
            n => format!("and {n} more\n"),
        };
        told.truncate(MAX_ITEMS as usize);
        let items = self.items(&told).await?;
        let name = if account.display_name.is_empty() {
            account.username.clone()
        } else {
            account.display_name.clone()
        };
        let unsubscribe = links.url(user);
        let vars = [
            ("name", name.as_str()),
            ("count", count.as_str()),
            ("more", more.as_str()),
            ("unsubscribe", unsubscribe.as_str()),
        ];
        let payload = EmailPayload {
            to: to.to_owned(),
            subject: format!("{count} new notifications while you were away"),
            text: render(TEXT_TEMPLATE, &vars, &items, |s| s.to_owned()),
            html: render(HTML_TEMPLATE, &vars, &items, escape_html),
            unsubscribe,
            sealed_code: String::new(),
        };
        let new = NewDelivery {
            kind: pb::DeliveryKind::Email,
            key: format!("email:{user}:{newest}"),
            user_id: user,
            payload: encode(&payload),
            due_ms: now,
            now_ms: now,
        };
        store.enqueue_delivery(new).await.map_err(store_error)?;
        store
            .set_digest_mark(user, newest)
            .await
            .map_err(store_error)?;
        Ok(Step::Done)
    }

    /// The lines of a digest: who did what, where.
    async fn items(&self, told: &[pb::Notification]) -> Result<Vec<Item>, String> {
        let mut actors: Vec<u64> = told.iter().map(|n| n.actor_id).collect();
        actors.sort_unstable();
        actors.dedup();
        let users = self.store.users(&actors).await.map_err(store_error)?;
        let name_of = |id: u64| {
            users
                .iter()
                .find(|u| u.id == id && !u.deleted)
                .map_or_else(|| "someone".to_owned(), |u| u.username.clone())
        };
        let mut items = Vec::with_capacity(told.len());
        for n in told {
            let actor = name_of(n.actor_id);
            let what = match n.kind() {
                pb::NotificationKind::Mention => format!("{actor} mentioned you"),
                pb::NotificationKind::Reply => format!("{actor} replied to you"),
                pb::NotificationKind::PrivateMessage => format!("{actor} wrote to you"),
                pb::NotificationKind::MissedCall => format!("you missed a call from {actor}"),
                pb::NotificationKind::AddedToChat => format!("{actor} added you"),
                pb::NotificationKind::Broadcast => format!("{actor} announced to everyone"),
                pb::NotificationKind::Unspecified => format!("{actor} did something"),
            };
            // A broadcast belongs to no chat (chat_id 0): it comes from the server's admins.
            let chat = if n.chat_id == 0 {
                "the server".to_owned()
            } else {
                match self.store.chat(n.chat_id).await.map_err(store_error)? {
                    Some(c) if !c.title.is_empty() => c.title,
                    Some(c) if c.kind == pb::ChatKind::Private => {
                        format!("your chat with {actor}")
                    }
                    _ => format!("chat {}", n.chat_id),
                }
            };
            let preview = if n.preview.is_empty() {
                String::new()
            } else {
                format!(": \u{201c}{}\u{201d}", n.preview)
            };
            items.push(Item {
                what,
                chat,
                preview,
            });
        }
        Ok(items)
    }
}

/// Fills `template`: `{{name}}` from `vars`, and the section `{{#items}}...{{/items}}` once per
/// item with its `{{what}}`, `{{chat}}` and `{{preview}}`. Every value goes through `escape`.
pub(super) fn render(
    template: &str,
    vars: &[(&str, &str)],
    items: &[Item],
    escape: fn(&str) -> String,
) -> String {
    let (head, rest) = template.split_once("{{#items}}").unwrap_or((template, ""));
    let (section, tail) = rest.split_once("{{/items}}").unwrap_or(("", rest));
    let fill = |text: &str, values: &[(&str, &str)]| {
        let mut out = text.to_owned();
        for (name, value) in values {
            out = out.replace(&format!("{{{{{name}}}}}"), &escape(value));
        }
        out
    };
    let mut out = fill(head, vars);
    for item in items {
        let values = [
            ("what", item.what.as_str()),
            ("chat", item.chat.as_str()),
            ("preview", item.preview.as_str()),
        ];
        out.push_str(&fill(&fill(section, &values), vars));
    }
    out.push_str(&fill(tail, vars));
    out
}

pub(super) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_every_item_and_escape_html() {
        let items = [
            Item {
                what: "ann mentioned you".into(),
                chat: "<b>team</b>".into(),
                preview: ": hi".into(),
            },
            Item {
                what: "bob wrote to you".into(),
                chat: "your chat with bob".into(),
                preview: String::new(),
            },
        ];
        let vars = [
            ("name", "Cy"),
            ("count", "2"),
            ("more", ""),
            ("unsubscribe", "https://x/u?a=1&b=2"),
        ];
        let text = render(TEXT_TEMPLATE, &vars, &items, |s| s.to_owned());
        assert!(text.contains("Hello Cy,"), "{text}");
        assert!(
            text.contains("- ann mentioned you in <b>team</b>: hi\n"),
            "{text}"
        );
        assert!(
            text.contains("- bob wrote to you in your chat with bob\n"),
            "{text}"
        );
        assert!(text.contains("https://x/u?a=1&b=2"));
        assert!(!text.contains("{{"), "{text}");
        let html = render(HTML_TEMPLATE, &vars, &items, escape_html);
        assert!(html.contains("&lt;b&gt;team&lt;/b&gt;"), "{html}");
        assert!(html.contains("href=\"https://x/u?a=1&amp;b=2\""), "{html}");
        assert!(!html.contains("{{"), "{html}");
    }

    #[test]
    fn quiet_hours_end_at_the_first_minute_outside_them() {
        let dnd = pb::DoNotDisturb {
            enabled: true,
            start_minute: 22 * 60,
            end_minute: 7 * 60,
            utc_offset_minutes: 0,
        };
        let day = 1_767_225_600_000_i64; // 2026-01-01T00:00Z
        let at = |h: i64, m: i64| day + (h * 60 + m) * 60_000;
        assert_eq!(quiet_end(&dnd, at(12, 0)), None);
        assert_eq!(quiet_end(&dnd, at(23, 30) + 5_000), Some(at(31, 0)));
        assert_eq!(quiet_end(&dnd, at(6, 59)), Some(at(7, 0)));
        let all_day = pb::DoNotDisturb {
            start_minute: 0,
            end_minute: 0,
            ..dnd
        };
        assert_eq!(
            quiet_end(&all_day, at(1, 0)),
            Some(at(1, 0) + 24 * 3_600_000)
        );
    }
}
