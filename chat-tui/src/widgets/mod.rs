//! The widgets: one module per screen or part of a screen. Each renders from a reference to
//! the model (or to its own state) into a buffer; the widgets with state of their own (composer,
//! picker, forms, dialogs) keep it here too, next to the code that draws it.

pub mod auth;
pub mod call;
pub mod chat_list;
pub mod composer;
pub mod dialog;
pub mod help;
pub mod messages;
pub mod picker;
pub mod screens;
pub mod status;
pub mod text_input;
pub mod transfers;
pub mod wrap;

use chrono::{DateTime, FixedOffset};
use ratatui::layout::Rect;

/// A `width` × `height` rectangle centred in `area` (clipped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

/// The marker before the title of the focused pane (seen without colours too).
pub const FOCUS_MARK: &str = "▸";

/// A pane's title: marked when the pane has the keyboard.
pub fn pane_title(
    title: &str,
    focused: bool,
    theme: &crate::theme::Theme,
) -> ratatui::text::Span<'static> {
    let text = if focused {
        format!(" {FOCUS_MARK} {title} ")
    } else {
        format!(" {title} ")
    };
    ratatui::text::Span::styled(text, theme.border(focused))
}

/// A time in the user's time zone.
pub fn local(ms: i64, utc_offset_s: i32) -> DateTime<FixedOffset> {
    let offset =
        FixedOffset::east_opt(utc_offset_s).unwrap_or(FixedOffset::east_opt(0).expect("UTC"));
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&offset)
}

/// `HH:MM` of a time.
pub fn clock_time(ms: i64, utc_offset_s: i32) -> String {
    local(ms, utc_offset_s).format("%H:%M").to_string()
}

/// Shortens `text` to `max` characters with an ellipsis, on one line.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut s: String = one_line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// A size in bytes for people: `512 B`, `48.2 KiB`, `1.5 MiB`, `2.0 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(
            centered(Rect::new(0, 0, 80, 24), 20, 4),
            Rect::new(30, 10, 20, 4)
        );
        assert_eq!(
            centered(Rect::new(0, 0, 10, 5), 20, 8),
            Rect::new(0, 0, 10, 5)
        );
        assert_eq!(clock_time(0, 3600), "01:00");
        assert_eq!(shorten("hello\nworld", 8), "hello w…");
        assert_eq!(shorten("hi", 8), "hi");
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(48_213), "47.1 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(human_size(u64::MAX), "16777216.0 TiB");
    }
}
