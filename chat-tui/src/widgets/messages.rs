//! The message pane: the open chat's messages, laid out from the bottom up, with day
//! separators, sender names in stable colours, quoted replies, forwarded and edited markers,
//! tombstones, reactions with counts, ticks on my own messages, attachments, and the messages
//! still in the outbox ("sending…"), and the calls the chat's history records ("☎ missed audio
//! call").
//!
//! Only the messages that fit are laid out: the pane starts at its bottom message (the view's
//! anchor, or the latest) and walks up until it is full, so a chat of any length draws in the
//! same time.

use chatproto::pb;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget as _};

use super::chat_list::presence_dot;
use super::wrap::wrap_spans;
use super::{clock_time, local, shorten};
use crate::model::Model;
use crate::model::calls::{LoggedCall, summary};
use crate::model::view::ChatView;
use crate::model::window::reaction_total;
use crate::theme::Theme;

/// Columns before a message's text on its continuation rows (under the `HH:MM ` time).
const INDENT: usize = 6;

/// What the pane drew: rows per message (for clicks) and the oldest and newest message shown.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Drawn {
    /// `(row, seq)` of every drawn row of a message.
    pub rows: Vec<(u16, u64)>,
    /// The oldest and newest message on screen.
    pub visible: Option<(u64, u64)>,
}

/// A message's rows, before they are placed.
struct Laid {
    seq: Option<u64>,
    lines: Vec<Line<'static>>,
}

/// The title of the pane: the chat's name, kind and members, or the peer's presence.
fn header(model: &Model, view: &ChatView, focused: bool) -> Line<'static> {
    let theme = &model.config.theme;
    let title = model.chats.title(view.chat_id, &model.users);
    let mut spans = Vec::new();
    if focused {
        spans.push(Span::styled(
            format!(" {}", super::FOCUS_MARK),
            theme.border(true),
        ));
    }
    spans.push(Span::styled(format!(" {title} "), theme.accent()));
    if let Some(entry) = model.chats.get(view.chat_id) {
        match entry.kind() {
            pb::ChatKind::Private => {
                let user = entry.peer.and_then(|p| model.users.get(p));
                spans.push(presence_dot(user.map(|u| u.status), theme));
                let status = match user.and_then(|u| pb::UserStatus::try_from(u.status).ok()) {
                    Some(pb::UserStatus::Online) => "online".to_string(),
                    Some(pb::UserStatus::Away) => "away".to_string(),
                    Some(pb::UserStatus::Busy) => "busy".to_string(),
                    _ => match user.map(|u| u.last_seen_at_ms).filter(|&t| t > 0) {
                        Some(t) => format!("last seen {}", clock_time(t, model.clock.utc_offset_s)),
                        None => "offline".to_string(),
                    },
                };
                spans.push(Span::styled(format!(" {status} "), theme.dim()));
            }
            kind => {
                let what = if kind == pb::ChatKind::Channel {
                    "channel"
                } else {
                    "group"
                };
                spans.push(Span::styled(
                    format!("· {what} · {} members ", entry.chat.member_count),
                    theme.dim(),
                ));
            }
        }
    }
    Line::from(spans)
}

/// Draws the open chat (or a hint when none is open).
pub fn render(model: &Model, focused: bool, area: Rect, buf: &mut Buffer) -> Drawn {
    let theme = &model.config.theme;
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused));
    let Some(view) = &model.view else {
        let block = block.title(super::pane_title("Messages", focused, theme));
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(vec![
            Line::from(Span::styled(
                "Choose a chat on the left (enter opens it).",
                theme.dim(),
            )),
            Line::from(Span::styled(
                "n: new private chat · N: new group · ?: every key",
                theme.dim(),
            )),
        ])
        .render(inner, buf);
        return Drawn::default();
    };
    block = block.title(header(model, view, focused));
    let inner = block.inner(area);
    block.render(area, buf);
    let width = inner.width as usize;
    let height = inner.height as usize;
    if width < INDENT + 4 || height == 0 {
        return Drawn::default();
    }

    // The bottom message: the anchor, moved down to the selection when it is below it.
    let last = view.window.last_seq();
    let mut bottom = view.anchor.or(last);
    if let (Some(sel), Some(b)) = (view.selected, bottom)
        && sel > b
    {
        bottom = Some(sel);
    }
    let following = bottom == last;
    let mut laid: Vec<Laid> = Vec::new();
    if following && view.window.at_latest {
        for request in model.pending.shown_in(view.chat_id) {
            laid.push(lay_pending(model, request, width));
        }
        laid.reverse();
    }
    // Walk up from the bottom until the pane is full; if the selection is above the top, start
    // again from the selection's neighbourhood so that it shows.
    let fill = |from: Option<u64>, mut laid: Vec<Laid>| {
        let mut used: usize = laid.iter().map(|l| l.lines.len()).sum();
        let iter = view
            .window
            .iter()
            .rev()
            .skip_while(|m| from.is_some_and(|b| m.seq > b));
        let mut previous: Option<&pb::Message> = None;
        // Recorded calls go between the messages around their seq; below the bottom message
        // only when the pane follows the latest.
        let mut calls_below = match from {
            Some(b) if !(following && view.window.at_latest && from == bottom) => b,
            _ => u64::MAX,
        };
        for m in iter {
            if used >= height {
                break;
            }
            if calls_below > m.seq + 1 {
                for (_, call) in model
                    .calls
                    .logged_in(view.chat_id, m.seq + 1..=calls_below - 1)
                    .rev()
                {
                    laid.push(lay_call(model, call));
                    used += 1;
                }
            }
            calls_below = m.seq;
            // The day separator above a message is known once the message above it is seen:
            // it is added to the block below when the day changes.
            if let Some(below) = previous
                && day(below.sent_at_ms, model) != day(m.sent_at_ms, model)
                && let Some(l) = laid.last_mut()
            {
                l.lines.insert(0, separator(below.sent_at_ms, model, width));
                used += 1;
            }
            let block = lay_message(model, view, m, width);
            used += block.lines.len();
            laid.push(block);
            previous = Some(m);
        }
        // Above the oldest message of the chat (or in a chat without messages): its first calls.
        if used < height && !view.window.has_older && calls_below > 0 {
            for (_, call) in model
                .calls
                .logged_in(view.chat_id, 0..=calls_below - 1)
                .rev()
            {
                laid.push(lay_call(model, call));
            }
        }
        if let Some(top) = previous
            && !view.window.has_older
            && used < height
            && let Some(l) = laid.last_mut()
        {
            // The very first message of the chat gets its day too.
            l.lines.insert(0, separator(top.sent_at_ms, model, width));
        }
        laid
    };
    let mut blocks = fill(bottom, laid);
    if let Some(sel) = view.selected {
        let shown_top = blocks.iter().filter_map(|b| b.seq).min();
        if shown_top.is_some_and(|top| sel < top) {
            // Place the selection at the top: take the messages from it downwards.
            let mut below = Vec::new();
            let mut used = 0;
            for m in view.window.iter().skip_while(|m| m.seq < sel) {
                used += lay_message(model, view, m, width).lines.len();
                if used > height && !below.is_empty() {
                    break;
                }
                below.push(m.seq);
            }
            blocks = fill(below.last().copied(), Vec::new());
        }
    }

    // Place the blocks bottom-up; the top one may be cut.
    let mut drawn = Drawn::default();
    let mut y = inner.bottom();
    let mut seen: Option<(u64, u64)> = None;
    'blocks: for block in &blocks {
        let selected = block.seq.is_some() && block.seq == view.selected;
        for line in block.lines.iter().rev() {
            if y == inner.y {
                break 'blocks;
            }
            y -= 1;
            let row = Rect::new(inner.x, y, inner.width, 1);
            if selected {
                buf.set_style(row, theme.selected());
            }
            Paragraph::new(line.clone()).render(row, buf);
            if let Some(seq) = block.seq {
                drawn.rows.push((y, seq));
                seen = Some(match seen {
                    None => (seq, seq),
                    Some((top, bottom)) => (top.min(seq), bottom.max(seq)),
                });
            }
        }
    }
    if view.window.is_empty() && blocks.is_empty() {
        let text = if view.loads.is_empty() {
            "No messages yet. Say hello!"
        } else {
            "Loading…"
        };
        Paragraph::new(Span::styled(text, theme.dim())).render(inner, buf);
    } else if view.window.has_older && y > inner.y && !view.loads.is_empty() {
        Paragraph::new(Span::styled("loading older messages…", theme.dim()))
            .render(Rect::new(inner.x, y - 1, inner.width, 1), buf);
    }
    drawn.visible = seen;
    drawn
}

fn day(ms: i64, model: &Model) -> chrono::NaiveDate {
    local(ms, model.clock.utc_offset_s).date_naive()
}

fn separator(ms: i64, model: &Model, width: usize) -> Line<'static> {
    let label = format!(
        " {} ",
        local(ms, model.clock.utc_offset_s).format("%A, %-d %B %Y")
    );
    let rest = width.saturating_sub(label.chars().count());
    let left = rest / 2;
    Line::from(Span::styled(
        format!("{}{label}{}", "─".repeat(left), "─".repeat(rest - left)),
        model.config.theme.dim(),
    ))
}

/// What stands in for a message whose content is not shown: deleted for everyone, or a
/// placeholder for a message from a user we blocked (spec 9.2).
fn stand_in(m: &pb::Message) -> Option<&'static str> {
    if m.deleted {
        Some("message deleted")
    } else if m.from_blocked_user {
        Some("message from a blocked user")
    } else {
        None
    }
}

/// The text of a message as shown in one line (quotes, previews, notifications).
pub fn preview(m: &pb::Message) -> String {
    if let Some(stand_in) = stand_in(m) {
        return stand_in.into();
    }
    match attachment(m) {
        Some(a) if m.text.is_empty() => a,
        Some(a) => format!("{a} {}", m.text),
        None => m.text.clone(),
    }
}

/// The kind of a media message in words; `None` for text.
fn media_kind(kind: i32) -> Option<&'static str> {
    match pb::MessageKind::try_from(kind).unwrap_or(pb::MessageKind::Unspecified) {
        pb::MessageKind::Text | pb::MessageKind::Unspecified => None,
        pb::MessageKind::Image => Some("image"),
        pb::MessageKind::Video => Some("video"),
        pb::MessageKind::Audio => Some("audio"),
        pb::MessageKind::File => Some("file"),
        pb::MessageKind::Voice => Some("voice message"),
    }
}

/// How an attachment is shown: `[kind name · size · type]` (`s` on the message saves it).
pub fn attachment(m: &pb::Message) -> Option<String> {
    let kind = media_kind(m.kind)?;
    let Some(file) = &m.attachment else {
        return Some(format!("[{kind}]"));
    };
    let name = if file.name.is_empty() {
        "unnamed"
    } else {
        &file.name
    };
    Some(format!(
        "[{kind} {name} · {} · {}]",
        super::human_size(file.size),
        file.mime
    ))
}

fn lay_message(model: &Model, view: &ChatView, m: &pb::Message, width: usize) -> Laid {
    let theme = &model.config.theme;
    let me = model.me_id();
    let mut lines = Vec::new();
    let time = clock_time(m.sent_at_ms, model.clock.utc_offset_s);
    if m.reply_to_seq != 0 {
        let quoted = match view.window.get(m.reply_to_seq) {
            Some(q) => format!("{}: {}", model.users.name(q.sender_id), preview(q)),
            None => "an earlier message".to_string(),
        };
        lines.push(Line::from(Span::styled(
            shorten(&format!("{}↳ {quoted}", " ".repeat(INDENT)), width),
            theme.dim(),
        )));
    }
    if let Some(f) = &m.forwarded_from {
        lines.push(Line::from(Span::styled(
            shorten(
                &format!(
                    "{}⤷ forwarded from {}",
                    " ".repeat(INDENT),
                    model.users.name(f.sender_id)
                ),
                width,
            ),
            theme.dim(),
        )));
    }
    let mut spans = vec![
        Span::styled(format!("{time} "), theme.dim()),
        Span::styled(model.users.name(m.sender_id), theme.sender(m.sender_id)),
        Span::raw(" "),
    ];
    if let Some(stand_in) = stand_in(m) {
        spans.push(Span::styled(
            stand_in,
            theme.dim().add_modifier(Modifier::ITALIC),
        ));
    } else {
        let body_style = if m.mention_ids.contains(&me) {
            theme.mention()
        } else {
            theme.text()
        };
        if let Some(a) = attachment(m) {
            spans.push(Span::styled(a, theme.accent()));
            if !m.text.is_empty() {
                spans.push(Span::raw(" "));
            }
        }
        spans.push(Span::styled(m.text.clone(), body_style));
        if m.edited {
            spans.push(Span::styled(" (edited)", theme.dim()));
        }
    }
    if m.sender_id == me && !m.deleted {
        spans.push(ticks(view.ticks(m.seq, me), theme));
    }
    lines.extend(wrap_spans(&spans, width, INDENT));
    if !m.reactions.is_empty() {
        let mut r = vec![Span::raw(" ".repeat(INDENT))];
        for reaction in &m.reactions {
            let style = if reaction.user_ids.contains(&me) {
                theme.accent()
            } else {
                theme.text()
            };
            r.push(Span::styled(
                format!("{} {}", reaction.emoji, reaction_total(reaction)),
                style,
            ));
            r.push(Span::raw("  "));
        }
        lines.extend(wrap_spans(&r, width, INDENT));
    }
    Laid {
        seq: Some(m.seq),
        lines,
    }
}

fn ticks(state: Option<(bool, bool)>, theme: &Theme) -> Span<'static> {
    match state {
        Some((_, true)) => Span::styled(" ✓✓", theme.accent()),
        Some((true, false)) => Span::styled(" ✓✓", theme.dim()),
        _ => Span::styled(" ✓", theme.dim()),
    }
}

/// A call recorded in the chat, in one line: "10:31 ☎ missed audio call".
fn lay_call(model: &Model, logged: &LoggedCall) -> Laid {
    let theme = &model.config.theme;
    let line = Line::from(vec![
        Span::styled(
            format!("{} ", clock_time(logged.at_ms, model.clock.utc_offset_s)),
            theme.dim(),
        ),
        Span::styled(
            format!("☎ {}", summary(&logged.call, model.me_id())),
            theme.dim().add_modifier(Modifier::ITALIC),
        ),
    ]);
    Laid {
        seq: None,
        lines: vec![line],
    }
}

fn lay_pending(model: &Model, request: &pb::SendMessage, width: usize) -> Laid {
    let theme = &model.config.theme;
    let me = model.me_id();
    let mut lines = Vec::new();
    if request.reply_to_seq != 0 {
        lines.push(Line::from(Span::styled(
            format!("{}↳ reply", " ".repeat(INDENT)),
            theme.dim(),
        )));
    }
    let text = if request.forward.is_some() {
        "forwarded message".to_string()
    } else if let Some(kind) = media_kind(request.kind) {
        format!("[{kind}]")
    } else {
        request.text.clone()
    };
    let spans = vec![
        Span::styled("--:-- ", theme.dim()),
        Span::styled(model.users.name(me), theme.sender(me)),
        Span::raw(" "),
        Span::styled(text, Style::default()),
        Span::styled(" … sending", theme.warn()),
    ];
    lines.extend(wrap_spans(&spans, width, INDENT));
    Laid { seq: None, lines }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_deleted_messages_show_a_stand_in() {
        let placeholder = pb::Message {
            kind: pb::MessageKind::Image as i32,
            from_blocked_user: true,
            ..Default::default()
        };
        assert_eq!(preview(&placeholder), "message from a blocked user");
        let deleted = pb::Message {
            deleted: true,
            ..placeholder.clone()
        };
        assert_eq!(preview(&deleted), "message deleted");
        let text = pb::Message {
            kind: pb::MessageKind::Text as i32,
            text: "hi".into(),
            ..Default::default()
        };
        assert_eq!(preview(&text), "hi");
        let file = pb::Message {
            kind: pb::MessageKind::File as i32,
            file_id: "f1".into(),
            attachment: Some(Box::new(pb::FileInfo {
                id: "f1".into(),
                name: "report.pdf".into(),
                mime: "application/pdf".into(),
                size: 1_572_864,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            preview(&file),
            "[file report.pdf · 1.5 MiB · application/pdf]"
        );
        let purged = pb::Message {
            attachment: None,
            ..file
        };
        assert_eq!(preview(&purged), "[file]");
    }
}
