//! The progress bar of file transfers: one row above the typing line while any runs, showing
//! the newest (the one `x` cancels) and how many others run.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{LineGauge, Widget as _};

use super::{human_size, shorten};
use crate::model::Model;
use crate::model::transfers::Direction;

/// Rows the bar takes: one while a transfer runs, else none.
pub fn height(model: &Model) -> u16 {
    u16::from(!model.transfers.is_empty())
}

/// Draws the newest transfer's progress.
pub fn render(model: &Model, area: Rect, buf: &mut Buffer) {
    let Some(t) = model.transfers.latest() else {
        return;
    };
    let theme = &model.config.theme;
    let arrow = match t.direction {
        Direction::Upload => "↑",
        Direction::Download => "↓",
    };
    let amount = if t.total == 0 {
        "preparing…".to_string()
    } else {
        format!(
            "{:>3}% {} of {}",
            (t.ratio() * 100.0).floor() as u32,
            human_size(t.done),
            human_size(t.total)
        )
    };
    let others = match model.transfers.len() {
        1 => String::new(),
        n => format!(" (+{})", n - 1),
    };
    // The bar keeps at least a fifth of the row; the name gives way.
    let fixed = amount.chars().count() + others.chars().count() + 14;
    let room = (area.width as usize).saturating_sub(fixed + area.width as usize / 5);
    let label = Line::from(vec![
        Span::styled(format!(" {arrow} "), theme.accent()),
        Span::raw(shorten(&t.name, room.max(8))),
        Span::styled(format!("{others} {amount} "), theme.dim()),
    ]);
    LineGauge::default()
        .ratio(t.ratio())
        .label(label)
        .filled_symbol(symbols::line::THICK_HORIZONTAL)
        .unfilled_symbol(symbols::line::HORIZONTAL)
        .filled_style(theme.accent())
        .unfilled_style(theme.dim())
        .render(
            Rect {
                width: area.width.saturating_sub(10),
                ..area
            },
            buf,
        );
    let hint = Rect {
        x: area.right().saturating_sub(10),
        width: area.width.min(10),
        ..area
    };
    ratatui::widgets::Paragraph::new(Span::styled(" x cancels", theme.dim())).render(hint, buf);
}
