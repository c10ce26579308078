//! Small windows: a one-line prompt, a yes/no confirmation and a text to read.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget as _, Wrap};
use unicode_width::UnicodeWidthStr as _;

use super::text_input::{TextBuffer, scrolled_to_cursor};
use crate::effect::NetCommand;
use crate::theme::Theme;

/// What a prompt's answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptPurpose {
    /// The title of a new group.
    NewGroup,
    /// The title of a new channel.
    NewChannel,
    /// The path of a file to send to the open chat.
    Upload,
    /// The password, to begin turning on two-factor login (shown as dots).
    TwoFactorPassword,
    /// A code of the new secret, to turn two-factor login on.
    TwoFactorEnable,
    /// A code or a recovery code, to turn two-factor login off.
    TwoFactorDisable,
    /// A code, for new recovery codes.
    TwoFactorRecoveryCodes,
    /// The password, to change the email address to the prompt's `carry` (shown as dots).
    ChangeEmailPassword,
}

impl PromptPurpose {
    /// Whether the answer is shown as dots.
    pub fn secret(self) -> bool {
        matches!(
            self,
            PromptPurpose::TwoFactorPassword | PromptPurpose::ChangeEmailPassword
        )
    }
}

/// A one-line question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The question.
    pub title: String,
    /// The answer being typed.
    pub input: TextBuffer,
    /// What the answer is for.
    pub purpose: PromptPurpose,
    /// Lines to read above the answer (a key to copy).
    pub note: Vec<String>,
    /// What the answer goes with (the new address of `/email`); empty for most prompts.
    pub carry: String,
}

impl Prompt {
    /// An empty prompt with no note.
    pub fn new(title: impl Into<String>, purpose: PromptPurpose) -> Self {
        Self {
            title: title.into(),
            input: TextBuffer::default(),
            purpose,
            note: Vec::new(),
            carry: String::new(),
        }
    }
}

/// A yes/no question before a request that cannot be undone.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// The question.
    pub question: String,
    /// What "yes" sends.
    pub command: NetCommand,
}

/// Text to read (a profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The title.
    pub title: String,
    /// The lines.
    pub lines: Vec<String>,
}

fn frame<'a>(title: &'a str, hint: &'a str, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Span::styled(format!(" {title} "), theme.accent()))
        .title_bottom(Span::styled(hint, theme.dim()))
}

/// Draws a prompt; returns where the cursor goes.
pub fn render_prompt(prompt: &Prompt, theme: &Theme, area: Rect, buf: &mut Buffer) -> Position {
    let width = area
        .width
        .saturating_sub(4)
        .min(if prompt.note.is_empty() { 60 } else { 100 });
    // Note lines wrap (a long URI must stay whole to be copied), by characters.
    let text_width = usize::from(width.saturating_sub(2).max(1));
    let note_rows: u16 = prompt
        .note
        .iter()
        .map(|l| l.width().div_ceil(text_width).max(1) as u16)
        .sum();
    let rect = super::centered(area, width, (3 + note_rows).min(area.height));
    Clear.render(rect, buf);
    let block = frame(&prompt.title, " enter ok · esc cancel ", theme);
    let mut inner = block.inner(rect);
    block.render(rect, buf);
    if note_rows > 0 {
        let lines: Vec<Line<'_>> = prompt
            .note
            .iter()
            .flat_map(|l| {
                let chars: Vec<char> = l.chars().collect();
                chars
                    .chunks(text_width)
                    .map(|c| Line::raw(c.iter().collect::<String>()))
                    .collect::<Vec<_>>()
            })
            .collect();
        Paragraph::new(lines).render(inner, buf);
        inner.y += note_rows.min(inner.height.saturating_sub(1));
        inner.height = 1;
    }
    let typed = prompt.input.text();
    let before_cursor = &typed[..prompt.input.cursor()];
    let (text, before) = if prompt.purpose.secret() {
        let dots = "•".repeat(typed.chars().count());
        (dots, before_cursor.chars().count())
    } else {
        (typed.to_owned(), before_cursor.width())
    };
    // Scroll long answers so the cursor stays in the box (after the two columns of "› ").
    let (shown, at) = scrolled_to_cursor(&text, before, inner.width.saturating_sub(2) as usize);
    Paragraph::new(Line::from(vec![
        Span::styled("› ", theme.accent()),
        Span::raw(shown),
    ]))
    .render(inner, buf);
    Position::new(inner.x + 2 + at as u16, inner.y)
}

/// Draws a confirmation.
pub fn render_confirm(confirm: &Confirm, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let rect = super::centered(area, area.width.saturating_sub(4).min(60), 4);
    Clear.render(rect, buf);
    let block = frame("Are you sure?", " y yes · n / esc no ", theme);
    let inner = block.inner(rect);
    block.render(rect, buf);
    Paragraph::new(confirm.question.as_str())
        .wrap(Wrap { trim: true })
        .render(inner, buf);
}

/// Draws a text window.
pub fn render_info(info: &Info, theme: &Theme, area: Rect, buf: &mut Buffer) {
    let height = (info.lines.len() as u16 + 2).min(area.height);
    let rect = super::centered(area, area.width.saturating_sub(4).min(60), height);
    Clear.render(rect, buf);
    let block = frame(&info.title, " esc close ", theme);
    let inner = block.inner(rect);
    block.render(rect, buf);
    let lines: Vec<Line<'_>> = info.lines.iter().map(|l| Line::raw(l.as_str())).collect();
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(inner, buf);
}
