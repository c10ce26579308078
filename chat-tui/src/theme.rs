//! Colours and text styles. Every style the screens use comes from here, so a theme in the
//! config file and `NO_COLOR` apply everywhere.

use ratatui::style::{Color, Modifier, Style};

/// The styles of the user interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    /// Titles, the focused border, the cursor row in lists.
    pub accent: Color,
    /// Timestamps, hints, separators.
    pub dim: Color,
    /// Errors, the certificate warning.
    pub error: Color,
    /// Success feedback, the connected dot.
    pub ok: Color,
    /// Warnings, the reconnecting state.
    pub warn: Color,
    /// Messages that mention me.
    pub mention: Color,
    /// The background of the selected row.
    pub selection: Color,
    /// Sender names are given these colours by user id, so a name keeps its colour.
    pub senders: Vec<Color>,
    /// No colours at all (`NO_COLOR`): only bold, reverse and underline.
    pub monochrome: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Self {
            accent: Color::Cyan,
            dim: Color::DarkGray,
            error: Color::Red,
            ok: Color::Green,
            warn: Color::Yellow,
            mention: Color::LightYellow,
            selection: Color::DarkGray,
            senders: vec![
                Color::LightBlue,
                Color::LightGreen,
                Color::LightMagenta,
                Color::LightCyan,
                Color::LightRed,
                Color::Yellow,
                Color::Blue,
                Color::Magenta,
            ],
            monochrome: false,
        }
    }
}

impl Theme {
    /// The theme without colours that `NO_COLOR` asks for.
    pub fn monochrome() -> Self {
        Self {
            monochrome: true,
            ..Self::default()
        }
    }

    fn fg(&self, color: Color) -> Style {
        if self.monochrome {
            Style::default()
        } else {
            Style::default().fg(color)
        }
    }

    /// Plain text.
    pub fn text(&self) -> Style {
        Style::default()
    }

    /// Titles and highlights.
    pub fn accent(&self) -> Style {
        self.fg(self.accent).add_modifier(Modifier::BOLD)
    }

    /// Secondary text.
    pub fn dim(&self) -> Style {
        if self.monochrome {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            self.fg(self.dim)
        }
    }

    /// Errors.
    pub fn error(&self) -> Style {
        self.fg(self.error).add_modifier(Modifier::BOLD)
    }

    /// Success.
    pub fn ok(&self) -> Style {
        self.fg(self.ok)
    }

    /// Warnings.
    pub fn warn(&self) -> Style {
        self.fg(self.warn)
    }

    /// Text that mentions me.
    pub fn mention(&self) -> Style {
        self.fg(self.mention).add_modifier(Modifier::BOLD)
    }

    /// The selected row of a list or the selected message.
    pub fn selected(&self) -> Style {
        if self.monochrome {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().bg(self.selection)
        }
    }

    /// A border: the focused pane's in the accent colour.
    pub fn border(&self, focused: bool) -> Style {
        match (focused, self.monochrome) {
            (true, true) => Style::default().add_modifier(Modifier::BOLD),
            (true, false) => self.fg(self.accent),
            (false, _) => self.dim(),
        }
    }

    /// The name of a sender, in the colour of their id.
    pub fn sender(&self, user_id: u64) -> Style {
        let style = Style::default().add_modifier(Modifier::BOLD);
        if self.monochrome || self.senders.is_empty() {
            return style;
        }
        // A multiplicative hash spreads consecutive ids over the palette.
        let index =
            (user_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % self.senders.len();
        style.fg(self.senders[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_colours_are_stable_and_monochrome_has_none() {
        let theme = Theme::default();
        assert_eq!(theme.sender(42), theme.sender(42));
        let distinct: std::collections::HashSet<_> = (1..=16)
            .map(|id| format!("{:?}", theme.sender(id).fg))
            .collect();
        assert!(
            distinct.len() >= 4,
            "ids spread over the palette: {distinct:?}"
        );
        let mono = Theme::monochrome();
        assert_eq!(mono.sender(42).fg, None);
        assert_eq!(mono.error().fg, None);
        assert_eq!(mono.selected().bg, None);
    }
}
