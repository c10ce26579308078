//! The screens shown before the main one: connecting, and the server's certificate to trust
//! (or, loudly, a certificate that changed).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Padding, Paragraph, Widget as _, Wrap};

use crate::model::TrustPrompt;
use crate::theme::Theme;

/// "Connecting to …" with the last error and the countdown to the next attempt.
pub fn render_connecting(
    detail: &str,
    retry_in_s: Option<i64>,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let rect = super::centered(
        area,
        area.width.saturating_sub(2).min(70),
        7.min(area.height),
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .padding(Padding::horizontal(1))
        .title(Span::styled(" chat-tui ", theme.accent()));
    let inner = block.inner(rect);
    block.render(rect, buf);
    let mut lines = vec![Line::raw(detail.to_string())];
    if let Some(s) = retry_in_s {
        lines.push(Line::from(Span::styled(
            format!("Trying again in {s} s…"),
            theme.warn(),
        )));
    }
    lines.push(Line::from(Span::styled("ctrl-c: quit", theme.dim())));
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .render(inner, buf);
}

/// The fingerprint to confirm, or the refusal of a changed one.
pub fn render_trust(prompt: &TrustPrompt, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let changed = prompt.known.is_some();
    let rect = super::centered(
        area,
        area.width.saturating_sub(2).min(76),
        16.min(area.height),
    );
    let (title, style) = if changed {
        (" WARNING: SERVER CERTIFICATE CHANGED ", theme.error())
    } else {
        (" New server ", theme.accent())
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .padding(Padding::horizontal(1))
        .border_style(if changed {
            theme.error()
        } else {
            theme.border(true)
        })
        .title(Span::styled(title, style));
    let inner = block.inner(rect);
    block.render(rect, buf);
    let fp = Span::styled(prompt.fingerprint.clone(), theme.accent());
    let lines = match &prompt.known {
        Some(known) => vec![
            Line::from(Span::styled(
                format!(
                    "{} presents a different certificate than before.",
                    prompt.address
                ),
                theme.error(),
            )),
            Line::raw(
                "Someone may be intercepting the connection, or the server's certificate was replaced.",
            ),
            Line::raw(""),
            Line::raw("Recorded fingerprint (SHA-256):"),
            Line::from(Span::styled(known.clone(), theme.dim())),
            Line::raw("Presented fingerprint:"),
            Line::from(fp),
            Line::raw(""),
            Line::raw(format!(
                "The connection was refused. If the change is expected, check the new fingerprint with the server's operator and remove the line for {} from {}.",
                prompt.address, prompt.file
            )),
            Line::from(Span::styled("q / esc / ctrl-c: quit", theme.dim())),
        ],
        None => vec![
            Line::raw(format!(
                "This is the first connection to {}.",
                prompt.address
            )),
            Line::raw("Its certificate's SHA-256 fingerprint is:"),
            Line::raw(""),
            Line::from(fp),
            Line::raw(""),
            Line::raw(
                "Compare it with the one the server's operator gave you (chatd prints it on start).",
            ),
            Line::raw(format!("Trusting it records it in {}.", prompt.file)),
            Line::raw(""),
            Line::from(vec![
                Span::styled("y", theme.accent()),
                Span::raw(": trust and connect   "),
                Span::styled("n / esc", theme.accent()),
                Span::raw(": quit"),
            ]),
        ],
    };
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .render(inner, buf);
}
