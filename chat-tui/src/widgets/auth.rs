//! The sign-in and registration screen.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget as _, Wrap};
use unicode_width::UnicodeWidthStr as _;

use super::text_input::{TextBuffer, scrolled_to_cursor};
use crate::theme::Theme;

/// The label of the field that appears when the server asks for a two-factor code.
pub const TWO_FACTOR_CODE: &str = "Two-factor code";

/// The labels of the "forgot password" form: who, the emailed code, the new password.
pub const ACCOUNT: &str = "Name or email";
/// See [`ACCOUNT`].
pub const RESET_CODE: &str = "Emailed code";
/// See [`ACCOUNT`].
pub const NEW_PASSWORD: &str = "New password";

/// One input of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its label.
    pub label: &'static str,
    /// What was typed.
    pub input: TextBuffer,
    /// Shown as dots.
    pub secret: bool,
}

impl Field {
    fn new(label: &'static str, secret: bool) -> Self {
        Self {
            label,
            input: TextBuffer::default(),
            secret,
        }
    }
}

/// The form's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthForm {
    /// Registration (username, email, password, password again) rather than sign-in.
    pub register: bool,
    /// "Forgot password" (account, emailed code, new password) rather than sign-in.
    pub reset: bool,
    /// The inputs.
    pub fields: Vec<Field>,
    /// The focused input.
    pub focus: usize,
    /// Why the last attempt failed, or why the saved session could not be used.
    pub error: Option<String>,
    /// A request is under way.
    pub busy: bool,
    /// What just went right (a code was sent, the password was reset).
    pub notice: Option<String>,
}

impl AuthForm {
    /// The sign-in form (`register: false`) or the registration form, keeping the username.
    pub fn new(register: bool, username: &str) -> Self {
        let mut fields = if register {
            vec![
                Field::new("Username", false),
                Field::new("Email", false),
                Field::new("Password", true),
                Field::new("Repeat password", true),
            ]
        } else {
            vec![Field::new("Username", false), Field::new("Password", true)]
        };
        fields[0].input.set(username);
        let focus = usize::from(!username.is_empty());
        Self {
            register,
            reset: false,
            fields,
            focus,
            error: None,
            busy: false,
            notice: None,
        }
    }

    /// The "forgot password" form, starting with `account` (a username or an address).
    pub fn reset(account: &str) -> Self {
        let mut fields = vec![
            Field::new(ACCOUNT, false),
            Field::new(RESET_CODE, false),
            Field::new(NEW_PASSWORD, true),
        ];
        fields[0].input.set(account);
        Self {
            register: false,
            reset: true,
            fields,
            focus: usize::from(!account.is_empty()),
            error: None,
            busy: false,
            notice: None,
        }
    }

    /// Asks for a two-factor code (the password was right): a field for it, empty and focused,
    /// and `error` saying why.
    pub fn ask_two_factor_code(&mut self, error: String) {
        let index = match self.field_index(TWO_FACTOR_CODE) {
            Some(i) => i,
            None => {
                self.fields.push(Field::new(TWO_FACTOR_CODE, false));
                self.fields.len() - 1
            }
        };
        self.fields[index].input.set("");
        self.focus = index;
        self.error = Some(error);
        self.busy = false;
    }

    /// The index of the field labelled `label`, if the form has one.
    pub fn field_index(&self, label: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.label == label)
    }

    /// The text of the field labelled `label`.
    pub fn value(&self, label: &str) -> &str {
        self.fields
            .iter()
            .find(|f| f.label == label)
            .map_or("", |f| f.input.text())
    }
}

/// Draws the form; returns where the cursor goes.
pub fn render(
    form: &AuthForm,
    server: &str,
    theme: &Theme,
    area: Rect,
    buf: &mut Buffer,
) -> Position {
    let height = (form.fields.len() as u16) * 2 + 7;
    let rect = super::centered(
        area,
        area.width.saturating_sub(2).min(64),
        height.min(area.height),
    );
    let title = if form.register {
        " Create an account "
    } else if form.reset {
        " Forgot password "
    } else {
        " Sign in "
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Span::styled(title, theme.accent()))
        .title(Line::from(Span::styled(format!(" {server} "), theme.dim())).right_aligned());
    let inner = block.inner(rect);
    block.render(rect, buf);
    let mut cursor = Position::new(inner.x, inner.y);
    let label_width = 17u16;
    for (i, field) in form.fields.iter().enumerate() {
        let y = inner.y + 1 + (i as u16) * 2;
        if y >= inner.bottom() {
            break;
        }
        let focused = i == form.focus;
        let label_style = if focused {
            theme.accent()
        } else {
            theme.text()
        };
        Paragraph::new(Span::styled(format!("{:>16} ", field.label), label_style))
            .render(Rect::new(inner.x, y, label_width, 1), buf);
        let width = inner.width.saturating_sub(label_width + 1) as usize;
        let shown = if field.secret {
            "•".repeat(field.input.text().chars().count())
        } else {
            field.input.text().to_string()
        };
        let before = if field.secret {
            field.input.text()[..field.input.cursor()].chars().count()
        } else {
            field.input.text()[..field.input.cursor()].width()
        };
        let (visible, at) = scrolled_to_cursor(&shown, before, width);
        let input_area = Rect::new(inner.x + label_width, y, width as u16, 1);
        buf.set_style(input_area, theme.selected());
        Paragraph::new(visible).render(input_area, buf);
        if focused {
            cursor = Position::new(input_area.x + at as u16, y);
        }
    }
    let y = inner.y + 1 + (form.fields.len() as u16) * 2;
    let status = if form.busy {
        Line::from(Span::styled("Please wait…", theme.dim()))
    } else if let Some(error) = &form.error {
        Line::from(Span::styled(error.as_str(), theme.error()))
    } else if let Some(notice) = &form.notice {
        Line::from(Span::styled(notice.as_str(), theme.text()))
    } else {
        Line::default()
    };
    let rest = Rect::new(
        inner.x + 1,
        y,
        inner.width.saturating_sub(2),
        inner.bottom().saturating_sub(y),
    );
    let keys = if form.register {
        "enter: submit · tab: next field · ctrl-r: sign in instead · ctrl-c: quit"
    } else if form.reset {
        "enter: email a code (code empty) or set the password · tab: next field · \
         ctrl-f: back to sign in · ctrl-c: quit"
    } else {
        "enter: submit · tab: next field · ctrl-r: create an account · \
         ctrl-f: forgot password · ctrl-c: quit"
    };
    Paragraph::new(vec![status, Line::from(Span::styled(keys, theme.dim()))])
        .wrap(Wrap { trim: true })
        .render(rest, buf);
    cursor
}
