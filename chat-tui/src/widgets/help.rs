//! The `?` overlay: every key binding of the contexts in use, then every slash command. It is
//! drawn from the key table and the command table themselves.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget as _};

use crate::keys::{Context, Keymap};
use crate::slash::COMMANDS;
use crate::theme::Theme;

/// The lines of the help text: the contexts in `first` come first (where the user is), then
/// the others, then the commands.
pub fn lines(keymap: &Keymap, first: &[Context], theme: &Theme) -> Vec<Line<'static>> {
    let mut order: Vec<Context> = first.to_vec();
    order.extend(Context::ALL.into_iter().filter(|c| !first.contains(c)));
    let mut out = Vec::new();
    for context in order {
        let commands = keymap.commands_in(context);
        if commands.is_empty() {
            continue;
        }
        out.push(Line::from(Span::styled(context.title(), theme.accent())));
        for (command, keys) in commands {
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            out.push(Line::from(vec![
                Span::raw(format!("  {:<22}", keys.join(", "))),
                Span::styled(command.help(), theme.dim()),
            ]));
        }
        out.push(Line::default());
    }
    out.push(Line::from(Span::styled(
        "Commands (type in the composer)",
        theme.accent(),
    )));
    for command in COMMANDS {
        out.push(Line::from(vec![
            Span::raw(format!("  {:<22}", command.usage())),
            Span::styled(command.help, theme.dim()),
        ]));
    }
    out
}

/// The key bindings and commands as Markdown tables (the README shows them; a test keeps the
/// two the same).
#[cfg(test)]
pub fn markdown(keymap: &Keymap) -> String {
    let mut out = String::new();
    for context in Context::ALL {
        out.push_str(&format!(
            "**{}** (`[keys.{}]`)\n\n| Keys | Action | Name |\n| --- | --- | --- |\n",
            context.title(),
            context.name()
        ));
        for (command, keys) in keymap.commands_in(context) {
            let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            out.push_str(&format!(
                "| {} | {} | `{}` |\n",
                keys.join(" "),
                command.help(),
                command.name()
            ));
        }
        out.push('\n');
    }
    out.push_str("**Commands** (typed in the composer; Tab completes them)\n\n| Command | Does |\n| --- | --- |\n");
    for command in COMMANDS {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            command.usage().replace('|', "\\|"),
            command.help
        ));
    }
    out
}

/// Draws the overlay scrolled by `scroll` rows.
pub fn render(
    keymap: &Keymap,
    first: &[Context],
    scroll: u16,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) {
    let rect = super::centered(
        area,
        area.width.saturating_sub(2).min(84),
        area.height.saturating_sub(2),
    );
    Clear.render(rect, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Span::styled(" Keys and commands ", theme.accent()))
        .title_bottom(Span::styled(" ↑↓ scroll · esc close ", theme.dim()));
    let inner = block.inner(rect);
    block.render(rect, buf);
    Paragraph::new(lines(keymap, first, theme))
        .scroll((scroll, 0))
        .render(inner, buf);
}

#[cfg(test)]
mod tests {
    /// The README's tables are the key table and the command table.
    #[test]
    fn the_readme_lists_every_key_and_command() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("chat-tui/README.md");
        let start = "<!-- keys: generated from the key table; a test checks it -->\n";
        let end = "<!-- end of keys -->";
        let from = readme.find(start).expect("keys start marker") + start.len();
        let to = readme.find(end).expect("keys end marker");
        let expected = super::markdown(&crate::keys::Keymap::default());
        assert_eq!(
            &readme[from..to],
            expected,
            "update chat-tui/README.md with the output of help::markdown"
        );
    }
}
