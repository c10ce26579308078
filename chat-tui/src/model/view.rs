//! The open chat: its message window, what part of it is on screen, the selected message, the
//! history requests in flight, and the members' receipts (for the ticks on my messages).

use std::collections::BTreeMap;

use chatproto::client::HistoryRange;
use chatproto::pb;

use super::window::MessageWindow;

/// Start loading more history when the screen gets this close (in messages) to the window's end.
pub const PREFETCH: usize = 20;

/// A history request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Matches the answer to the request.
    pub token: u64,
    /// Which messages.
    pub range: HistoryRange,
    /// The window's epoch when it was sent (see [`MessageWindow::is_stale`]).
    pub epoch: u64,
    /// How often this range was asked for again because changes overtook it.
    pub attempts: u32,
    /// The answer replaces the window (a jump to a search result).
    pub jump: bool,
}

/// The chat on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatView {
    /// Which chat.
    pub chat_id: u64,
    /// The messages held.
    pub window: MessageWindow,
    /// The message at the bottom of the pane; `None` follows the latest message.
    pub anchor: Option<u64>,
    /// The selected message (for reply, edit, react, ...).
    pub selected: Option<u64>,
    /// History requests in flight (at most one per direction).
    pub loads: Vec<Load>,
    /// Every member's receipt cursors: user → (delivered, read).
    pub receipts: BTreeMap<u64, (u64, u64)>,
    /// The members, when loaded (GetChat).
    pub members: Vec<pb::Member>,
    /// The oldest and newest message on screen at the last render.
    pub visible: Option<(u64, u64)>,
}

impl ChatView {
    /// A view of `chat_id` that follows the latest messages; its first page is still to load.
    pub fn new(chat_id: u64) -> Self {
        Self {
            chat_id,
            window: MessageWindow::default(),
            anchor: None,
            selected: None,
            loads: Vec::new(),
            receipts: BTreeMap::new(),
            members: Vec::new(),
            visible: None,
        }
    }

    /// True while a request for `range`'s direction is in flight.
    pub fn loading(&self, range: HistoryRange) -> bool {
        self.loads
            .iter()
            .any(|l| std::mem::discriminant(&l.range) == std::mem::discriminant(&range))
    }

    /// True when the pane shows the chat's latest message.
    pub fn follows_latest(&self) -> bool {
        self.anchor.is_none() && self.window.at_latest
    }

    /// Scrolls `n` messages towards older ones.
    pub fn scroll_up(&mut self, n: usize) {
        let from = self.anchor.or(self.window.last_seq());
        if let Some(from) = from {
            self.anchor = self.window.before(from, n);
        }
    }

    /// Scrolls `n` messages towards newer ones; reaching the latest follows it again.
    pub fn scroll_down(&mut self, n: usize) {
        let Some(from) = self.anchor else {
            return;
        };
        self.anchor = self.window.after(from, n);
        if self.window.at_latest && self.anchor == self.window.last_seq() {
            self.anchor = None;
        }
    }

    /// Moves the selection `n` messages up (`n < 0`) or down; selects the bottom message first.
    pub fn move_selection(&mut self, n: isize) {
        let Some(current) = self
            .selected
            .filter(|s| self.window.get(*s).is_some())
            .or(self.anchor)
            .or(self.window.last_seq())
        else {
            return;
        };
        let next = if self.selected.is_none() {
            Some(current)
        } else if n < 0 {
            self.window.before(current, n.unsigned_abs())
        } else {
            self.window.after(current, n.unsigned_abs())
        };
        self.selected = next;
        if let Some(sel) = next {
            // Keep the selection on screen: below the bottom moves the bottom down.
            let bottom = self.anchor.or(self.window.last_seq()).unwrap_or(sel);
            if sel > bottom {
                self.anchor = Some(sel);
            }
            if self.window.at_latest && Some(sel) == self.window.last_seq() {
                self.anchor = None;
            }
        }
    }

    /// The history requests the screen position calls for: older messages when the top of the
    /// screen nears the window's start, newer ones when the bottom nears its end.
    pub fn wanted_loads(&self) -> Vec<HistoryRange> {
        let mut out = Vec::new();
        // Until the pane was drawn, nothing says what is needed.
        let (Some(first), Some(last), Some((top, bottom))) = (
            self.window.first_seq(),
            self.window.last_seq(),
            self.visible,
        ) else {
            return out;
        };
        if self.window.has_older && self.window.count_before(top) < PREFETCH {
            out.push(HistoryRange::Before(first));
        }
        if !self.window.at_latest && self.window.count_after(bottom) < PREFETCH {
            out.push(HistoryRange::After(last));
        }
        out.retain(|r| !self.loading(*r));
        out
    }

    /// The receipt state of my message `seq`: (delivered to every other member, read by every
    /// other member). Channels and chats without other members have none.
    pub fn ticks(&self, seq: u64, me: u64) -> Option<(bool, bool)> {
        let others: Vec<&(u64, u64)> = self
            .receipts
            .iter()
            .filter(|(user, _)| **user != me)
            .map(|(_, r)| r)
            .collect();
        if others.is_empty() {
            return None;
        }
        Some((
            others.iter().all(|(d, r)| *d >= seq || *r >= seq),
            others.iter().all(|(_, r)| *r >= seq),
        ))
    }

    /// Applies a receipt update (cursors only move forward).
    pub fn set_receipt(&mut self, user_id: u64, delivered: u64, read: u64) {
        let entry = self.receipts.entry(user_id).or_insert((0, 0));
        entry.0 = entry.0.max(delivered).max(read);
        entry.1 = entry.1.max(read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatproto::client::HistoryPage;

    fn view_with(seqs: std::ops::RangeInclusive<u64>, has_older: bool) -> ChatView {
        let mut v = ChatView::new(1);
        v.window.merge(
            HistoryRange::Latest,
            &HistoryPage {
                messages: seqs
                    .map(|seq| pb::Message {
                        seq,
                        ..Default::default()
                    })
                    .collect(),
                end: !has_older,
            },
            None,
        );
        v
    }

    #[test]
    fn scrolling_moves_the_anchor_and_returns_to_following() {
        let mut v = view_with(1..=10, false);
        assert!(v.follows_latest());
        v.scroll_up(3);
        assert_eq!(v.anchor, Some(7));
        v.scroll_up(100);
        assert_eq!(v.anchor, Some(1));
        v.scroll_down(4);
        assert_eq!(v.anchor, Some(5));
        v.scroll_down(10);
        assert!(v.follows_latest());
    }

    #[test]
    fn the_selection_starts_at_the_bottom_and_pulls_the_screen_along() {
        let mut v = view_with(1..=10, false);
        v.move_selection(-1);
        assert_eq!(v.selected, Some(10));
        v.move_selection(-2);
        assert_eq!(v.selected, Some(8));
        v.anchor = Some(5);
        v.move_selection(1);
        assert_eq!((v.selected, v.anchor), (Some(9), Some(9)));
        v.move_selection(5);
        assert_eq!((v.selected, v.anchor), (Some(10), None));
    }

    #[test]
    fn history_is_wanted_near_the_window_ends() {
        let mut v = view_with(101..=150, true);
        v.visible = Some((140, 150));
        assert!(v.wanted_loads().is_empty());
        v.visible = Some((110, 120));
        assert_eq!(v.wanted_loads(), [HistoryRange::Before(101)]);
        v.loads.push(Load {
            token: 1,
            range: HistoryRange::Before(101),
            epoch: 0,
            attempts: 0,
            jump: false,
        });
        assert!(v.wanted_loads().is_empty(), "one request per direction");
    }

    #[test]
    fn ticks_need_every_other_member() {
        let mut v = ChatView::new(1);
        assert_eq!(v.ticks(5, 1), None);
        v.set_receipt(1, 9, 9);
        v.set_receipt(2, 5, 0);
        v.set_receipt(3, 6, 4);
        assert_eq!(v.ticks(5, 1), Some((true, false)));
        v.set_receipt(2, 0, 5);
        v.set_receipt(3, 0, 7);
        assert_eq!(v.ticks(5, 1), Some((true, true)));
        assert_eq!(v.ticks(8, 1), Some((false, false)));
    }
}
