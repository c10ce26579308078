//! The chat list pane: presence dots for private chats, `#` for groups and `»` for channels,
//! unread counts (`@` when a mention waits), pinned and muted markers, the archived section and
//! the filter line.

use chatproto::pb;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget as _};
use unicode_width::UnicodeWidthStr as _;

use crate::model::Model;
use crate::model::chats::Row;
use crate::theme::Theme;

/// The presence dot of a user and its style.
pub fn presence_dot(status: Option<i32>, theme: &Theme) -> Span<'static> {
    match status.and_then(|s| pb::UserStatus::try_from(s).ok()) {
        Some(pb::UserStatus::Online) => Span::styled("●", theme.ok()),
        Some(pb::UserStatus::Away) => Span::styled("●", theme.warn()),
        Some(pb::UserStatus::Busy) => Span::styled("●", theme.error()),
        _ => Span::styled("○", theme.dim()),
    }
}

/// Draws the chat list; returns the rows' areas (for clicks) and, while filtering, the cursor.
pub fn render(
    model: &Model,
    focused: bool,
    area: Rect,
    buf: &mut Buffer,
) -> (Vec<(Rect, u64)>, Option<Position>) {
    let theme = &model.config.theme;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(super::pane_title("Chats", focused, theme));
    let mut inner = block.inner(area);
    block.render(area, buf);
    let mut hits = Vec::new();
    let mut cursor = None;
    if let Some(filter) = &model.chats.filter {
        let line = Line::from(vec![
            Span::styled("/", theme.accent()),
            Span::raw(filter.text().to_string()),
        ]);
        Paragraph::new(line).render(Rect::new(inner.x, inner.y, inner.width, 1), buf);
        let x = filter.text()[..filter.cursor()].width() as u16;
        cursor = Some(Position::new(
            (inner.x + 1 + x).min(inner.right().saturating_sub(1)),
            inner.y,
        ));
        inner.y += 1;
        inner.height = inner.height.saturating_sub(1);
    }
    let rows = model.chats.rows(&model.users);
    if rows.is_empty() {
        let text = if model.chats.filter.is_some() {
            "no chat matches"
        } else {
            "No chats yet. n: new chat, N: new group"
        };
        Paragraph::new(Span::styled(text, theme.dim()))
            .wrap(ratatui::widgets::Wrap { trim: true })
            .render(inner, buf);
        return (hits, cursor);
    }
    let selected_index = rows
        .iter()
        .position(|r| matches!(r, Row::Chat(id) if Some(*id) == model.chats.selected));
    let height = inner.height as usize;
    let first = selected_index.map_or(0, |i| i.saturating_sub(height.saturating_sub(1)));
    for (i, row) in rows.iter().enumerate().skip(first).take(height) {
        let rect = Rect::new(inner.x, inner.y + (i - first) as u16, inner.width, 1);
        match *row {
            Row::Archived(count) => {
                let arrow = if model.chats.show_archived || model.chats.filter.is_some() {
                    "-"
                } else {
                    "+"
                };
                Paragraph::new(Span::styled(
                    format!("{arrow} Archived ({count})"),
                    theme.dim(),
                ))
                .render(rect, buf);
            }
            Row::Chat(id) => {
                let selected = Some(id) == model.chats.selected;
                let open = Some(id) == model.open_chat();
                render_row(model, id, selected, open, rect, buf);
                hits.push((rect, id));
            }
        }
    }
    (hits, cursor)
}

fn render_row(model: &Model, id: u64, selected: bool, open: bool, rect: Rect, buf: &mut Buffer) {
    let theme = &model.config.theme;
    let Some(entry) = model.chats.get(id) else {
        return;
    };
    let state = entry.state();
    let icon = match entry.kind() {
        pb::ChatKind::Private => presence_dot(
            entry
                .peer
                .and_then(|p| model.users.get(p))
                .map(|u| u.status),
            theme,
        ),
        pb::ChatKind::Channel => Span::styled("»", theme.dim()),
        _ => Span::styled("#", theme.dim()),
    };
    let mut markers = String::new();
    if state.pinned {
        markers.push('^');
    }
    if entry.muted(model.clock.now_ms) {
        markers.push('~');
    }
    let unread = match state.unread_count {
        0 => String::new(),
        n if entry.mentioned => format!("@{n}"),
        n => n.to_string(),
    };
    let right = format!(
        "{markers}{}{unread}",
        if markers.is_empty() || unread.is_empty() {
            ""
        } else {
            " "
        }
    );
    let name_width = (rect.width as usize).saturating_sub(3 + right.width());
    let name = super::shorten(&model.chats.title(id, &model.users), name_width.max(1));
    let mut name_style = if state.unread_count > 0 && !entry.muted(model.clock.now_ms) {
        theme.accent()
    } else {
        theme.text()
    };
    if open {
        name_style = name_style.add_modifier(ratatui::style::Modifier::UNDERLINED);
    }
    let pad = name_width.saturating_sub(name.width());
    let unread_style = if entry.mentioned {
        theme.mention()
    } else {
        theme.accent()
    };
    let line = Line::from(vec![
        icon,
        Span::raw(" "),
        Span::styled(name, name_style),
        Span::raw(" ".repeat(pad + 1)),
        Span::styled(markers.clone(), theme.dim()),
        Span::styled(right[markers.len()..].to_string(), unread_style),
    ]);
    let row_style = if selected {
        theme.selected()
    } else {
        Style::default()
    };
    buf.set_style(rect, row_style);
    Paragraph::new(line).render(rect, buf);
}
