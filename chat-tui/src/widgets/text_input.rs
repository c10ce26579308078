//! The text editing every input shares (the composer, form fields, filters and prompts): a
//! string with a cursor that moves by grapheme, word and line, and its soft-wrapped layout.
//!
//! The composer is multi-line; `up`/`down` report whether the cursor could move, so the
//! composer recalls input history only from its first or last line.

use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;

use crate::keys::Command;

/// Text with a cursor (a byte offset on a grapheme boundary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextBuffer {
    text: String,
    cursor: usize,
}

impl TextBuffer {
    /// A buffer holding `text` with the cursor at its end.
    pub fn with_text(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            cursor: text.len(),
            text,
        }
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The cursor's byte offset.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// True when there is no text.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Replaces the text, cursor at the end.
    pub fn set(&mut self, text: impl Into<String>) {
        *self = Self::with_text(text);
    }

    /// Takes the text out, leaving the buffer empty.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Inserts a character at the cursor.
    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    /// Inserts a string at the cursor.
    pub fn insert_str(&mut self, s: &str) {
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }

    /// Replaces bytes `start..cursor` with `with` (completion).
    pub fn replace_before_cursor(&mut self, start: usize, with: &str) {
        let start = start.min(self.cursor);
        self.text.replace_range(start..self.cursor, with);
        self.cursor = start + with.len();
    }

    /// The word the cursor is at the end of (for completion): its start offset and text.
    pub fn word_before_cursor(&self) -> (usize, &str) {
        let before = &self.text[..self.cursor];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
        (start, &before[start..])
    }

    fn prev_boundary(&self) -> usize {
        self.text[..self.cursor]
            .grapheme_indices(true)
            .next_back()
            .map_or(0, |(i, _)| i)
    }

    fn next_boundary(&self) -> usize {
        self.text[self.cursor..]
            .graphemes(true)
            .next()
            .map_or(self.cursor, |g| self.cursor + g.len())
    }

    fn word_start(&self) -> usize {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end_matches(|c: char| !c.is_alphanumeric());
        trimmed
            .rfind(|c: char| !c.is_alphanumeric())
            .map_or(0, |i| {
                i + trimmed[i..].chars().next().map_or(1, char::len_utf8)
            })
    }

    fn word_end(&self) -> usize {
        let after = &self.text[self.cursor..];
        let skip = after.len()
            - after
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .len();
        let rest = &after[skip..];
        let word = rest
            .find(|c: char| !c.is_alphanumeric())
            .unwrap_or(rest.len());
        self.cursor + skip + word
    }

    fn line_start(&self) -> usize {
        self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1)
    }

    fn line_end(&self) -> usize {
        self.text[self.cursor..]
            .find('\n')
            .map_or(self.text.len(), |i| self.cursor + i)
    }

    /// Moves to the same column of the previous line; false on the first line.
    pub fn up(&mut self) -> bool {
        let start = self.line_start();
        if start == 0 {
            return false;
        }
        let column = self.text[start..self.cursor].chars().count();
        let prev_start = self.text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
        self.cursor = column_offset(&self.text, prev_start, start - 1, column);
        true
    }

    /// Moves to the same column of the next line; false on the last line.
    pub fn down(&mut self) -> bool {
        let end = self.line_end();
        if end == self.text.len() {
            return false;
        }
        let column = self.text[self.line_start()..self.cursor].chars().count();
        let next_start = end + 1;
        let next_end = self.text[next_start..]
            .find('\n')
            .map_or(self.text.len(), |i| next_start + i);
        self.cursor = column_offset(&self.text, next_start, next_end, column);
        true
    }

    /// Carries out an editing command; false when `command` is not an editing command.
    pub fn apply(&mut self, command: Command) -> bool {
        match command {
            Command::Left => self.cursor = self.prev_boundary(),
            Command::Right => self.cursor = self.next_boundary(),
            Command::WordLeft => self.cursor = self.word_start(),
            Command::WordRight => self.cursor = self.word_end(),
            Command::LineStart => self.cursor = self.line_start(),
            Command::LineEnd => self.cursor = self.line_end(),
            Command::Backspace => {
                let start = self.prev_boundary();
                self.text.replace_range(start..self.cursor, "");
                self.cursor = start;
            }
            Command::DeleteChar => {
                let end = self.next_boundary();
                self.text.replace_range(self.cursor..end, "");
            }
            Command::DeleteWord => {
                let start = self.word_start();
                self.text.replace_range(start..self.cursor, "");
                self.cursor = start;
            }
            Command::ClearLine => {
                let start = self.line_start();
                self.text.replace_range(start..self.cursor, "");
                self.cursor = start;
            }
            _ => return false,
        }
        true
    }
}

/// The byte offset of column `column` (in characters) of the line `start..end`, or its end.
fn column_offset(text: &str, start: usize, end: usize, column: usize) -> usize {
    text[start..end]
        .char_indices()
        .nth(column)
        .map_or(end, |(i, _)| start + i)
}

/// Text laid out in rows of at most `width` columns, and where the cursor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// The rows.
    pub rows: Vec<String>,
    /// The cursor's row and column.
    pub cursor: (usize, usize),
}

/// Lays `text` out in rows of `width` columns, breaking at line breaks and wherever a row is
/// full (by grapheme, so wide characters never split). `mask` shows every grapheme as `•`.
pub fn wrap(text: &str, cursor: usize, width: usize, mask: bool) -> Wrapped {
    let width = width.max(1);
    let mut rows = vec![String::new()];
    let mut row_width = 0;
    let mut at = None;
    for (offset, g) in text.grapheme_indices(true) {
        if offset == cursor {
            at = Some((rows.len() - 1, row_width));
        }
        if g == "\n" || g == "\r\n" {
            rows.push(String::new());
            row_width = 0;
            continue;
        }
        let shown = if mask { "•" } else { g };
        let w = shown.width();
        if row_width + w > width && row_width > 0 {
            rows.push(String::new());
            row_width = 0;
            if offset == cursor {
                at = Some((rows.len() - 1, 0));
            }
        }
        if let Some(row) = rows.last_mut() {
            row.push_str(shown);
        }
        row_width += w;
    }
    let cursor = at.unwrap_or_else(|| {
        // At the end: on the last row, or at the start of a new one when that row is full.
        if row_width >= width {
            rows.push(String::new());
            (rows.len() - 1, 0)
        } else {
            (rows.len() - 1, row_width)
        }
    });
    Wrapped { rows, cursor }
}

/// What a one-line box `width` columns wide shows of `text` when its cursor is `before`
/// columns in: the text scrolled by as few whole characters as keep the cursor in the box, and
/// the cursor's column in the box. Columns, not characters: a wide character takes two.
pub fn scrolled_to_cursor(text: &str, before: usize, width: usize) -> (&str, usize) {
    let needed = before.saturating_sub(width.saturating_sub(1));
    let mut skipped = 0;
    let mut from = text.len();
    for (at, c) in text.char_indices() {
        if skipped >= needed {
            from = at;
            break;
        }
        skipped += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
    }
    (
        text.get(from..).unwrap_or(""),
        before.saturating_sub(skipped),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrolled_line_keeps_the_cursor_in_the_box_by_columns() {
        assert_eq!(scrolled_to_cursor("abcdef", 3, 10), ("abcdef", 3));
        assert_eq!(scrolled_to_cursor("abcdef", 6, 4), ("def", 3));
        // Two columns a character: four columns skipped are two characters.
        assert_eq!(scrolled_to_cursor("日本語です", 10, 7), ("語です", 6));
        // A wide character that does not fit whole is skipped whole.
        assert_eq!(scrolled_to_cursor("日本語です", 10, 8), ("語です", 6));
        assert_eq!(scrolled_to_cursor("", 0, 5), ("", 0));
    }

    fn buffer(text: &str, cursor: usize) -> TextBuffer {
        TextBuffer {
            text: text.into(),
            cursor,
        }
    }

    #[test]
    fn cursor_moves_by_grapheme_word_and_line() {
        let mut b = TextBuffer::with_text("héllo wörld 👍🏽");
        b.apply(Command::Left);
        assert_eq!(
            &b.text()[b.cursor()..],
            "👍🏽",
            "a skin-toned emoji is one grapheme"
        );
        b.apply(Command::WordLeft);
        assert_eq!(&b.text()[b.cursor()..], "wörld 👍🏽");
        b.apply(Command::DeleteWord);
        assert_eq!(b.text(), "wörld 👍🏽");
        b.apply(Command::WordRight);
        assert_eq!(b.cursor(), "wörld".len());
        b.apply(Command::LineEnd);
        b.apply(Command::Backspace);
        assert_eq!(b.text(), "wörld ");
        b.apply(Command::LineStart);
        b.apply(Command::DeleteChar);
        assert_eq!(b.text(), "örld ");
        assert!(!b.apply(Command::Send));
    }

    #[test]
    fn up_and_down_keep_the_column_and_report_the_edges() {
        let mut b = buffer("first line\nab\nthird", 3);
        assert!(!b.up());
        assert!(b.down());
        assert_eq!(
            &b.text()[b.cursor()..],
            "\nthird",
            "clamped to the short line"
        );
        assert!(b.down());
        assert_eq!(&b.text()[b.cursor()..], "ird", "column 2 carried over");
        assert!(!b.down());
        b.apply(Command::ClearLine);
        assert_eq!(b.text(), "first line\nab\nird");
    }

    #[test]
    fn completion_replaces_the_word_before_the_cursor() {
        let mut b = TextBuffer::with_text("hi @al");
        let (start, word) = b.word_before_cursor();
        assert_eq!(word, "@al");
        b.replace_before_cursor(start, "@alice ");
        assert_eq!(b.text(), "hi @alice ");
        assert_eq!(b.take(), "hi @alice ");
        assert!(b.is_empty());
    }

    #[test]
    fn wrapping_breaks_rows_and_places_the_cursor() {
        let w = wrap("abcdef\ngh", 2, 4, false);
        assert_eq!(w.rows, ["abcd", "ef", "gh"]);
        assert_eq!(w.cursor, (0, 2));
        let w = wrap("abcd", 4, 4, false);
        assert_eq!(w.rows, ["abcd", ""]);
        assert_eq!(w.cursor, (1, 0));
        let w = wrap("日本語", 3, 4, false);
        assert_eq!(w.rows, ["日本", "語"]);
        assert_eq!(w.cursor, (0, 2));
        assert_eq!(wrap("日本語", 6, 4, false).cursor, (1, 0));
        assert_eq!(wrap("pass", 4, 10, true).rows, ["••••"]);
    }
}
