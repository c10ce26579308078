//! The terminal: raw mode and the alternate screen (restored on exit and on panic), mouse,
//! bracketed paste, and the escape sequences of the bell and desktop notifications.

use std::io::{self, Stdout, Write as _};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::config::DesktopProtocol;

/// The terminal the app draws on.
pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Takes the terminal over: raw mode, alternate screen, mouse and paste reporting. A panic
/// restores it before the message is printed.
///
/// # Errors
/// When the terminal refuses (not a terminal).
pub fn enter() -> io::Result<Term> {
    enable_raw_mode()?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = leave();
        previous(info);
    }));
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

/// Gives the terminal back as it was.
///
/// # Errors
/// When writing to the terminal fails.
pub fn leave() -> io::Result<()> {
    let raw = disable_raw_mode();
    execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    )?;
    raw
}

/// Rings the bell.
///
/// # Errors
/// When writing to the terminal fails.
pub fn bell() -> io::Result<()> {
    let mut out = io::stdout();
    out.write_all(b"\x07")?;
    out.flush()
}

/// Text safe inside an escape sequence: no control characters, and no `;` (the field
/// separator of OSC 777).
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() || c == ';' { ' ' } else { c })
        .collect()
}

/// The escape sequence of a desktop notification.
pub fn notification(protocol: DesktopProtocol, title: &str, body: &str) -> String {
    match protocol {
        DesktopProtocol::Osc777 => {
            format!("\x1b]777;notify;{};{}\x1b\\", clean(title), clean(body))
        }
        DesktopProtocol::Osc9 => format!("\x1b]9;{}: {}\x1b\\", clean(title), clean(body)),
    }
}

/// Sends a desktop notification through the terminal.
///
/// # Errors
/// When writing to the terminal fails.
pub fn notify(protocol: DesktopProtocol, title: &str, body: &str) -> io::Result<()> {
    let mut out = io::stdout();
    out.write_all(notification(protocol, title, body).as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_cannot_smuggle_escape_sequences() {
        assert_eq!(
            notification(
                DesktopProtocol::Osc777,
                "team; x",
                "alice: hi\x1b]0;pwned\x07"
            ),
            "\x1b]777;notify;team  x;alice: hi ]0 pwned \x1b\\"
        );
        assert_eq!(
            notification(DesktopProtocol::Osc9, "team", "hi"),
            "\x1b]9;team: hi\x1b\\"
        );
    }
}
