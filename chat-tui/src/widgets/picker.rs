//! A list to pick from, with a query line: users to start a chat with or to invite, chats to
//! forward to, emoji, search results, sessions, contacts, statuses, mute durations.
//!
//! Local pickers filter their items by the query; remote ones (user and message search) show
//! what the server found for it.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget as _};
use unicode_width::UnicodeWidthStr as _;

use super::text_input::TextBuffer;
use crate::theme::Theme;

/// What choosing an item does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// Open a private chat with the user.
    NewPrivateChat,
    /// Invite the user into the chat.
    Invite(u64),
    /// Remove the member from the chat.
    Kick(u64),
    /// Make the member an admin.
    Promote(u64),
    /// Make the admin a member.
    Demote(u64),
    /// Make the member the owner.
    Transfer(u64),
    /// Forward message `seq` of `chat_id` to the chosen chat.
    Forward {
        /// Source chat.
        chat_id: u64,
        /// Message.
        seq: u64,
    },
    /// React to message `seq` of `chat_id` with the chosen emoji.
    React {
        /// Chat.
        chat_id: u64,
        /// Message.
        seq: u64,
    },
    /// Jump to the chosen message; searches `chat_id` (0: every chat).
    Search {
        /// The chat searched, or 0.
        chat_id: u64,
    },
    /// Revoke the chosen session.
    Sessions,
    /// Open a private chat with the chosen contact.
    Contacts,
    /// Add the chosen user as a contact.
    AddContact,
    /// Unblock the chosen user.
    Blocked,
    /// Set my status.
    Status,
    /// Mute the chat for the chosen duration.
    Mute(u64),
    /// The chat's menu: members, invite, leave, pin, mute, archive, search.
    ChatMenu(u64),
    /// The members of a chat: choosing one opens what can be done to them.
    Members(u64),
    /// What to do to a member: promote, demote, transfer, kick, message, block, profile.
    MemberAction {
        /// The chat.
        chat_id: u64,
        /// The member.
        user_id: u64,
    },
    /// My menu: status, profile, contacts, blocked users, sessions, sign out.
    MeMenu,
}

/// What an item stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A user.
    User(u64),
    /// A chat.
    Chat(u64),
    /// A message.
    Message {
        /// Chat.
        chat_id: u64,
        /// Message.
        seq: u64,
    },
    /// A session.
    Session(u64),
    /// A word: an emoji, a status name, a duration.
    Text(String),
}

/// One row of a picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The main text.
    pub label: String,
    /// Secondary text, dimmed.
    pub detail: String,
    /// What it stands for.
    pub value: Value,
}

impl Item {
    /// An item.
    pub fn new(label: impl Into<String>, detail: impl Into<String>, value: Value) -> Self {
        Self {
            label: label.into(),
            detail: detail.into(),
            value,
        }
    }
}

/// A picker's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    /// The window's title.
    pub title: String,
    /// What choosing does.
    pub purpose: Purpose,
    /// The query typed.
    pub query: TextBuffer,
    /// The items (all of them for a local picker, the results for a remote one).
    pub items: Vec<Item>,
    /// The highlighted row among the visible items.
    pub selected: usize,
    /// Results come from the server for the query (answers carry this token).
    pub remote: Option<u64>,
    /// A remote query is in flight.
    pub loading: bool,
    /// Shown when there are no items.
    pub empty: String,
}

impl Picker {
    /// A picker that filters `items` by the query.
    pub fn local(title: impl Into<String>, purpose: Purpose, items: Vec<Item>) -> Self {
        Self {
            title: title.into(),
            purpose,
            query: TextBuffer::default(),
            items,
            selected: 0,
            remote: None,
            loading: false,
            empty: "nothing matches".into(),
        }
    }

    /// A picker whose items the server finds for the query; `token` tags the answers.
    pub fn remote(title: impl Into<String>, purpose: Purpose, token: u64, empty: &str) -> Self {
        Self {
            remote: Some(token),
            empty: empty.into(),
            ..Self::local(title, purpose, Vec::new())
        }
    }

    /// The items shown: all results of a remote picker, the matching items of a local one.
    pub fn visible(&self) -> Vec<&Item> {
        let query = self.query.text().to_lowercase();
        self.items
            .iter()
            .filter(|item| {
                self.remote.is_some()
                    || query.is_empty()
                    || item.label.to_lowercase().contains(&query)
                    || item.detail.to_lowercase().contains(&query)
            })
            .collect()
    }

    /// The highlighted item.
    pub fn chosen(&self) -> Option<&Item> {
        self.visible().get(self.selected).copied()
    }

    /// Moves the highlight by `delta` rows, staying inside the list.
    pub fn move_by(&mut self, delta: isize) {
        let len = self.visible().len();
        if len == 0 {
            self.selected = 0;
            return;
        }
        self.selected = self.selected.saturating_add_signed(delta).min(len - 1);
    }
}

/// Where the picker's rows are on screen, for clicks: `(row rect, index)`.
pub type RowHits = Vec<(Rect, usize)>;

/// Draws the picker centred in `area`; returns the cursor position and the row areas.
pub fn render(picker: &Picker, theme: &Theme, area: Rect, buf: &mut Buffer) -> (Position, RowHits) {
    let width = area.width.saturating_sub(4).min(70).max(20.min(area.width));
    // Tall enough for the items (and the query line and borders), at most 20 rows.
    let wanted = picker.visible().len().max(1) as u16 + 3;
    let height = wanted
        .clamp(6, 20)
        .min(area.height.saturating_sub(2))
        .max(5.min(area.height));
    let rect = super::centered(area, width, height);
    Clear.render(rect, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Span::styled(format!(" {} ", picker.title), theme.accent()))
        .title_bottom(Span::styled(
            " ↑↓ choose · enter pick · esc close ",
            theme.dim(),
        ));
    let inner = block.inner(rect);
    block.render(rect, buf);
    let mut hits = Vec::new();
    if inner.height == 0 {
        return (Position::new(inner.x, inner.y), hits);
    }
    let query_line = Line::from(vec![
        Span::styled("› ", theme.accent()),
        Span::raw(picker.query.text().to_string()),
    ]);
    Paragraph::new(query_line).render(Rect::new(inner.x, inner.y, inner.width, 1), buf);
    let cursor_x = picker.query.text()[..picker.query.cursor()].width() as u16;
    let cursor = Position::new(
        (inner.x + 2 + cursor_x).min(inner.right().saturating_sub(1)),
        inner.y,
    );
    let list = Rect::new(
        inner.x,
        inner.y + 1,
        inner.width,
        inner.height.saturating_sub(1),
    );
    let items = picker.visible();
    if items.is_empty() {
        let text = if picker.loading {
            "searching…"
        } else {
            picker.empty.as_str()
        };
        Paragraph::new(Span::styled(text, theme.dim())).render(list, buf);
        return (cursor, hits);
    }
    let rows = list.height as usize;
    let first = picker.selected.saturating_sub(rows.saturating_sub(1));
    for (i, item) in items.iter().enumerate().skip(first).take(rows) {
        let y = list.y + (i - first) as u16;
        let row = Rect::new(list.x, y, list.width, 1);
        let style = if i == picker.selected {
            theme.selected()
        } else {
            theme.text()
        };
        let line = Line::from(vec![
            Span::styled(format!(" {} ", item.label), style),
            Span::styled(item.detail.clone(), theme.dim()),
        ]);
        buf.set_style(row, style);
        Paragraph::new(line).render(row, buf);
        hits.push((row, i));
    }
    (cursor, hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_pickers_filter_and_keep_the_highlight_inside() {
        let mut p = Picker::local(
            "Status",
            Purpose::Status,
            vec![
                Item::new("online", "", Value::Text("online".into())),
                Item::new("away", "", Value::Text("away".into())),
                Item::new("busy", "do not disturb", Value::Text("busy".into())),
            ],
        );
        p.move_by(10);
        assert_eq!(p.chosen().unwrap().label, "busy");
        p.query.set("DIS");
        p.selected = 0;
        assert_eq!(p.visible().len(), 1);
        assert_eq!(p.chosen().unwrap().label, "busy");
        p.move_by(-3);
        assert_eq!(p.selected, 0);
        let remote = Picker::remote("Users", Purpose::NewPrivateChat, 4, "type a name");
        assert!(remote.chosen().is_none());
    }
}
