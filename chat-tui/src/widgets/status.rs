//! The typing line ("alice is typing…") and the status bar: who I am, the connection (with the
//! reconnect countdown), this device's call, the outbox, feedback, and the key for help.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget as _};
use unicode_width::UnicodeWidthStr as _;

use crate::model::{ConnState, Level, Model};

/// The sentence of the typing line for these names.
pub fn typing_sentence(names: &[String]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("{one} is typing…")),
        [a, b] => Some(format!("{a} and {b} are typing…")),
        more => Some(format!("{} people are typing…", more.len())),
    }
}

/// Draws who is typing in the open chat.
pub fn render_typing(model: &Model, area: Rect, buf: &mut Buffer) {
    let Some(chat_id) = model.open_chat() else {
        return;
    };
    let me = model.me_id();
    let names: Vec<String> = model
        .typing
        .in_chat(chat_id)
        .into_iter()
        .filter(|&u| u != me)
        .map(|u| model.users.name(u))
        .collect();
    if let Some(sentence) = typing_sentence(&names) {
        Paragraph::new(Span::styled(
            format!(" {sentence}"),
            model
                .config
                .theme
                .dim()
                .add_modifier(ratatui::style::Modifier::ITALIC),
        ))
        .render(area, buf);
    }
}

/// The connection as the status bar says it.
pub fn connection_text(model: &Model) -> (String, Level) {
    match &model.conn {
        ConnState::Connecting => ("◌ connecting".into(), Level::Info),
        ConnState::Connected { .. } => ("● connected".into(), Level::Ok),
        ConnState::Reconnecting { at_ms, .. } => {
            let left = (at_ms - model.clock.now_ms).max(0);
            let text = if left == 0 {
                "◌ reconnecting…".to_string()
            } else {
                format!("◌ reconnecting in {} s", (left + 999) / 1000)
            };
            (text, Level::Error)
        }
        ConnState::Offline(reason) => (format!("○ offline: {reason}"), Level::Error),
    }
}

/// Draws the status bar.
pub fn render_status(model: &Model, area: Rect, buf: &mut Buffer) {
    let theme = &model.config.theme;
    let style_of = |level| match level {
        Level::Ok => theme.ok(),
        Level::Error => theme.error(),
        Level::Info => theme.dim(),
    };
    let me = model
        .me
        .as_ref()
        .map_or_else(|| "not signed in".to_string(), |u| u.username.clone());
    let (conn, conn_level) = connection_text(model);
    let mut spans = vec![
        Span::styled(format!(" {me} "), theme.accent()),
        Span::styled(conn, style_of(conn_level)),
    ];
    if let Some((call, level)) = super::call::status_text(model) {
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(call, style_of(level)));
    }
    if !model.pending.is_empty() {
        spans.push(Span::styled(
            format!(" · {} unsent", model.pending.len()),
            theme.warn(),
        ));
    }
    if let Some(notice) = model
        .notice
        .as_ref()
        .filter(|n| n.until_ms > model.clock.now_ms)
    {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(notice.text.clone(), style_of(notice.level)));
    }
    let help = " ? help ";
    let used: usize = spans.iter().map(|s| s.content.width()).sum();
    let room = (area.width as usize).saturating_sub(used);
    if room >= help.len() {
        spans.push(Span::raw(" ".repeat(room - help.len())));
        spans.push(Span::styled(help, theme.dim()));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_sentences() {
        assert_eq!(typing_sentence(&[]), None);
        assert_eq!(
            typing_sentence(&["alice".into()]).unwrap(),
            "alice is typing…"
        );
        assert_eq!(
            typing_sentence(&["alice".into(), "bob".into()]).unwrap(),
            "alice and bob are typing…"
        );
        assert_eq!(
            typing_sentence(&["a".into(), "b".into(), "c".into()]).unwrap(),
            "3 people are typing…"
        );
    }
}
