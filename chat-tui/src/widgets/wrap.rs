//! Word wrapping of styled text into rows of a fixed width, with a hanging indent, so message
//! heights are known before drawing (the message pane lays messages out from the bottom up).

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;

/// Runs of spaces and runs of everything else, in order: rows break only between them, so
/// punctuation stays with its word.
fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let space = first.is_whitespace();
        let end = rest
            .char_indices()
            .find(|(_, c)| c.is_whitespace() != space)
            .map_or(rest.len(), |(i, _)| i);
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

/// Wraps `spans` into rows of `width` columns. Rows after the first start with `indent`
/// spaces. Breaks at spaces when it can, inside words when it must, and at every `\n`.
pub fn wrap_spans(spans: &[Span<'_>], width: usize, indent: usize) -> Vec<Line<'static>> {
    let width = width.max(indent + 1);
    let mut lines: Vec<Vec<Span<'static>>> = vec![Vec::new()];
    let mut col = 0usize;
    let new_row = |lines: &mut Vec<Vec<Span<'static>>>, col: &mut usize| {
        // Spaces before a break are not shown.
        if let Some(last) = lines.last_mut().and_then(|row| row.last_mut()) {
            let trimmed = last.content.trim_end().len();
            last.content.to_mut().truncate(trimmed);
        }
        lines.push(vec![Span::raw(" ".repeat(indent))]);
        *col = indent;
    };
    let push = |lines: &mut Vec<Vec<Span<'static>>>, text: &str, style: Style| {
        if let Some(row) = lines.last_mut() {
            match row.last_mut() {
                Some(last) if last.style == style => last.content.to_mut().push_str(text),
                _ => row.push(Span::styled(text.to_string(), style)),
            }
        }
    };
    for span in spans {
        for (i, segment) in span.content.split('\n').enumerate() {
            if i > 0 {
                new_row(&mut lines, &mut col);
            }
            for word in words(segment) {
                let w = word.width();
                if col + w <= width {
                    push(&mut lines, word, span.style);
                    col += w;
                    continue;
                }
                if word.trim().is_empty() {
                    // A space at the end of a row is dropped: the break replaces it.
                    new_row(&mut lines, &mut col);
                    continue;
                }
                if w <= width - indent && col > indent {
                    new_row(&mut lines, &mut col);
                    push(&mut lines, word, span.style);
                    col += w;
                    continue;
                }
                // A word longer than a row: split it by grapheme.
                for g in word.graphemes(true) {
                    let gw = g.width();
                    if col + gw > width && col > indent {
                        new_row(&mut lines, &mut col);
                    }
                    push(&mut lines, g, span.style);
                    col += gw;
                }
            }
        }
    }
    lines.into_iter().map(Line::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line<'_>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    #[test]
    fn wraps_at_spaces_with_a_hanging_indent() {
        let spans = [Span::raw("12:00 "), Span::raw("the quick brown fox jumps")];
        let lines = wrap_spans(&spans, 16, 6);
        assert_eq!(
            text(&lines),
            ["12:00 the quick", "      brown fox", "      jumps"]
        );
    }

    #[test]
    fn punctuation_stays_with_its_word() {
        let lines = wrap_spans(&[Span::raw("in the wiki, please")], 12, 2);
        assert_eq!(text(&lines), ["in the wiki,", "  please"]);
    }

    #[test]
    fn long_words_and_newlines() {
        let lines = wrap_spans(&[Span::raw("abcdefghijkl\nxy")], 6, 2);
        assert_eq!(text(&lines), ["abcdef", "  ghij", "  kl", "  xy"]);
        let lines = wrap_spans(&[Span::raw("日本語テキスト")], 6, 0);
        assert_eq!(text(&lines), ["日本語", "テキス", "ト"]);
    }

    #[test]
    fn styles_stay_with_their_text() {
        let bold = Style::default().add_modifier(ratatui::style::Modifier::BOLD);
        let lines = wrap_spans(&[Span::styled("alice", bold), Span::raw(" hi")], 20, 0);
        assert_eq!(lines[0].spans[0].style, bold);
        assert_eq!(lines[0].spans[1].content, " hi");
    }
}
