//! Line and column of a byte offset in a text, as editors count them (both from 1, columns in
//! characters), for error messages about configuration files.

use std::fmt;

/// A place in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text`. An offset at the very end of a text that ends
    /// with a newline (where parsers report "unexpected end of input") is placed at the end of
    /// the last line, where the problem is, not on a line that does not exist.
    pub fn of(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        if offset == text.len() && text.ends_with('\n') {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_count_from_one_in_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(Position::of(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of(text, 4), Position { line: 1, column: 5 });
        assert_eq!(Position::of(text, 6), Position { line: 2, column: 1 });
        // After the two-byte 'é': column 3.
        assert_eq!(Position::of(text, 9), Position { line: 2, column: 3 });
        // Inside a multi-byte character: its start.
        assert_eq!(Position::of(text, 8), Position { line: 2, column: 2 });
    }

    #[test]
    fn the_end_of_a_text_is_on_its_last_line() {
        assert_eq!(
            Position::of("a = \"open\n", 10),
            Position {
                line: 1,
                column: 10
            }
        );
        assert_eq!(Position::of("a = ", 4), Position { line: 1, column: 5 });
        assert_eq!(Position::of("", 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of("x", 99).to_string(), "1:2");
    }
}
