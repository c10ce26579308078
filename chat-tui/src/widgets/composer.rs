//! The composer: a multi-line message input with input history, a reply or edit it is bound
//! to, and Tab completion of `@mentions`, `#chats` and `/commands`.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget as _};

use super::text_input::{TextBuffer, wrap};
use crate::theme::Theme;

/// Input history entries kept (and stored between runs).
pub const HISTORY_LEN: usize = 200;
/// The composer grows to at most this many text rows.
pub const MAX_ROWS: u16 = 6;

/// What sending the composer's text does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A new message.
    New,
    /// A reply to message `seq`, quoting `preview`.
    Reply {
        /// The message replied to.
        seq: u64,
        /// Its sender and text, shortened.
        preview: String,
    },
    /// The new text of my message `seq`.
    Edit {
        /// The message edited.
        seq: u64,
    },
}

/// Completion candidates being cycled through with Tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Where the completed word starts.
    pub start: usize,
    /// The candidates, each the whole replacement.
    pub candidates: Vec<String>,
    /// The one inserted now.
    pub index: usize,
}

/// The composer's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composer {
    /// The text.
    pub input: TextBuffer,
    /// New message, reply or edit.
    pub mode: Mode,
    /// Sent texts, oldest first.
    pub history: Vec<String>,
    /// The history entry shown, while browsing it.
    pub browsing: Option<usize>,
    /// The text that was in the composer when browsing started.
    pub draft: String,
    /// Tab completion in progress.
    pub completion: Option<Completion>,
}

impl Default for Composer {
    fn default() -> Self {
        Self {
            input: TextBuffer::default(),
            mode: Mode::New,
            history: Vec::new(),
            browsing: None,
            draft: String::new(),
            completion: None,
        }
    }
}

impl Composer {
    /// Records a sent text in the input history (not twice in a row).
    pub fn remember(&mut self, text: &str) {
        if self.history.last().map(String::as_str) != Some(text) {
            self.history.push(text.to_string());
        }
        if self.history.len() > HISTORY_LEN {
            let extra = self.history.len() - HISTORY_LEN;
            self.history.drain(..extra);
        }
        self.browsing = None;
    }

    /// Shows the previous history entry; false when there is none.
    pub fn history_prev(&mut self) -> bool {
        let next = match self.browsing {
            None if self.history.is_empty() => return false,
            None => {
                self.draft = self.input.text().to_string();
                self.history.len() - 1
            }
            Some(0) => return false,
            Some(i) => i - 1,
        };
        self.browsing = Some(next);
        self.input.set(self.history[next].clone());
        true
    }

    /// Shows the next history entry, or the draft after the last; false when not browsing.
    pub fn history_next(&mut self) -> bool {
        let Some(i) = self.browsing else {
            return false;
        };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            self.input.set(self.history[i + 1].clone());
        } else {
            self.browsing = None;
            self.input.set(std::mem::take(&mut self.draft));
        }
        true
    }

    /// Inserts the next completion candidate (starting a completion with `candidates`).
    pub fn complete(&mut self, start: usize, candidates: Vec<String>) -> bool {
        // A completion goes on only while its last insertion is still what precedes the cursor.
        let current = self.completion.take().filter(|c| {
            self.input.text().get(c.start..self.input.cursor())
                == c.candidates.get(c.index).map(String::as_str)
        });
        let completion = match current {
            Some(mut c) if !c.candidates.is_empty() => {
                c.index = (c.index + 1) % c.candidates.len();
                c
            }
            _ if candidates.is_empty() => return false,
            _ => Completion {
                start,
                candidates,
                index: 0,
            },
        };
        self.input
            .replace_before_cursor(completion.start, &completion.candidates[completion.index]);
        self.completion = Some(completion);
        true
    }

    /// How many rows the composer needs at `width` columns (borders included).
    pub fn height(&self, width: u16) -> u16 {
        let inner = width.saturating_sub(4).max(1) as usize;
        let rows = wrap(self.input.text(), self.input.cursor(), inner, false)
            .rows
            .len() as u16;
        let banner = u16::from(self.mode != Mode::New);
        rows.clamp(1, MAX_ROWS) + banner + 2
    }
}

/// Draws the composer in `area`; returns where the terminal cursor goes when it is focused.
pub fn render(
    composer: &Composer,
    title: &str,
    focused: bool,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) -> Option<Position> {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(super::pane_title(title, focused, theme));
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.width < 3 || inner.height == 0 {
        return None;
    }
    let mut y = inner.y;
    let banner = match &composer.mode {
        Mode::New => None,
        Mode::Reply { preview, .. } => Some(format!("↳ replying to {preview}  (esc cancels)")),
        Mode::Edit { .. } => Some("✎ editing your message  (esc cancels)".to_string()),
    };
    if let Some(banner) = banner {
        Paragraph::new(Line::from(Span::styled(banner, theme.dim())))
            .render(Rect::new(inner.x, y, inner.width, 1), buf);
        y += 1;
    }
    let text_width = inner.width.saturating_sub(2) as usize;
    let wrapped = wrap(
        composer.input.text(),
        composer.input.cursor(),
        text_width,
        false,
    );
    let rows_fit = (inner.y + inner.height).saturating_sub(y) as usize;
    // Keep the cursor row visible.
    let first = wrapped.cursor.0.saturating_sub(rows_fit.saturating_sub(1));
    let prompt = Span::styled("› ", theme.accent());
    for (i, row) in wrapped.rows.iter().skip(first).take(rows_fit).enumerate() {
        let lead = if i == 0 && first == 0 {
            prompt.clone()
        } else {
            Span::raw("  ")
        };
        Paragraph::new(Line::from(vec![lead, Span::raw(row.clone())]))
            .render(Rect::new(inner.x, y + i as u16, inner.width, 1), buf);
    }
    if composer.input.is_empty() && composer.mode == Mode::New {
        Paragraph::new(Span::styled(
            "Write a message — enter sends, alt-enter for a new line",
            theme.dim(),
        ))
        .render(
            Rect::new(inner.x + 2, y, inner.width.saturating_sub(2), 1),
            buf,
        );
    }
    focused.then(|| {
        Position::new(
            inner.x + 2 + wrapped.cursor.1 as u16,
            y + (wrapped.cursor.0 - first) as u16,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_browses_back_and_returns_to_the_draft() {
        let mut c = Composer::default();
        c.remember("one");
        c.remember("two");
        c.remember("two");
        assert_eq!(c.history, ["one", "two"]);
        c.input.set("draft");
        assert!(c.history_prev());
        assert_eq!(c.input.text(), "two");
        assert!(c.history_prev());
        assert!(!c.history_prev());
        assert_eq!(c.input.text(), "one");
        assert!(c.history_next());
        assert!(c.history_next());
        assert_eq!(c.input.text(), "draft");
        assert!(!c.history_next());
    }

    #[test]
    fn history_is_bounded() {
        let mut c = Composer::default();
        for i in 0..HISTORY_LEN + 10 {
            c.remember(&i.to_string());
        }
        assert_eq!(c.history.len(), HISTORY_LEN);
        assert_eq!(c.history[0], "10");
    }

    #[test]
    fn tab_cycles_through_candidates() {
        let mut c = Composer::default();
        c.input.set("hi @a");
        assert!(c.complete(3, vec!["@alice ".into(), "@anna ".into()]));
        assert_eq!(c.input.text(), "hi @alice ");
        assert!(c.complete(3, vec![]));
        assert_eq!(c.input.text(), "hi @anna ");
        assert!(c.complete(3, vec![]));
        assert_eq!(c.input.text(), "hi @alice ");
        // Once the text changed, Tab starts over.
        c.input.set("/mu");
        assert!(c.complete(0, vec!["/mute ".into()]));
        assert_eq!(c.input.text(), "/mute ");
        c.completion = None;
        assert!(!c.complete(0, vec![]));
    }
}
