//! The messages of the open chat that are held in memory: a contiguous window of the chat's
//! history, loaded a page at a time as the user scrolls, and trimmed at the far end so that a
//! chat of any length costs the same memory.
//!
//! Chat events arrive exactly once and in order (the SDK guarantees it), but nothing orders them
//! against the answer to a history request: an edit can overtake the page it applies to. The
//! window counts the changes it applied (`epoch`); a page requested before a change it may not
//! contain is asked for again instead of being merged (see [`MessageWindow::is_stale`]).

use std::collections::BTreeMap;

use chatproto::client::{HistoryPage, HistoryRange};
use chatproto::pb;
use chatproto::pb::chat_event::Body;

/// Messages per history request.
pub const PAGE: u32 = 50;
/// Messages held at most; beyond it the end far from what is on screen is dropped.
pub const MAX_MESSAGES: usize = 300;

/// A contiguous part of one chat's messages.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageWindow {
    messages: BTreeMap<u64, pb::Message>,
    /// Messages older than the first one may exist.
    pub has_older: bool,
    /// The window reaches the chat's latest message, so new messages join it.
    pub at_latest: bool,
    /// Changes to messages (edits, deletions, reactions) applied so far.
    pub epoch: u64,
}

impl Default for MessageWindow {
    /// An empty window that collects new messages while its first page loads.
    fn default() -> Self {
        Self {
            messages: BTreeMap::new(),
            has_older: true,
            at_latest: true,
            epoch: 0,
        }
    }
}

impl MessageWindow {
    /// The messages, ascending by seq.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &pb::Message> {
        self.messages.values()
    }

    /// How many messages are held.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The message `seq`, if held.
    pub fn get(&self, seq: u64) -> Option<&pb::Message> {
        self.messages.get(&seq)
    }

    /// The oldest held seq.
    pub fn first_seq(&self) -> Option<u64> {
        self.messages.keys().next().copied()
    }

    /// The newest held seq.
    pub fn last_seq(&self) -> Option<u64> {
        self.messages.keys().next_back().copied()
    }

    /// The seq `n` messages before `seq` (or the oldest held).
    pub fn before(&self, seq: u64, n: usize) -> Option<u64> {
        let mut it = self.messages.range(..seq).rev().map(|(&s, _)| s);
        let mut found = None;
        for _ in 0..n {
            match it.next() {
                Some(s) => found = Some(s),
                None => break,
            }
        }
        found.or_else(|| self.first_seq().filter(|&f| f <= seq))
    }

    /// The seq `n` messages after `seq` (or the newest held).
    pub fn after(&self, seq: u64, n: usize) -> Option<u64> {
        let mut it = self.messages.range(seq + 1..).map(|(&s, _)| s);
        let mut found = None;
        for _ in 0..n {
            match it.next() {
                Some(s) => found = Some(s),
                None => break,
            }
        }
        found.or_else(|| self.last_seq().filter(|&l| l >= seq))
    }

    /// How many held messages are older than `seq`.
    pub fn count_before(&self, seq: u64) -> usize {
        self.messages.range(..seq).count()
    }

    /// How many held messages are newer than `seq`.
    pub fn count_after(&self, seq: u64) -> usize {
        self.messages.range(seq + 1..).count()
    }

    /// True when a page requested at `epoch` may miss a change applied since.
    pub fn is_stale(&self, epoch: u64) -> bool {
        self.epoch != epoch
    }

    /// Merges a history page. `Latest` after a jump replaces the window when it would not be
    /// contiguous with it; the others extend it. `center` is what the user looks at: trimming
    /// keeps the messages around it.
    pub fn merge(&mut self, range: HistoryRange, page: &HistoryPage, center: Option<u64>) {
        match range {
            HistoryRange::Latest => {
                let contiguous = match (self.last_seq(), page.messages.first()) {
                    (Some(last), Some(first)) => self.at_latest || last >= first.seq,
                    _ => true,
                };
                if !contiguous {
                    self.messages.clear();
                }
                self.at_latest = true;
                self.has_older = !page.end;
            }
            HistoryRange::Before(_) => self.has_older = !page.end,
            HistoryRange::After(_) => {
                if page.end {
                    self.at_latest = true;
                }
            }
        }
        for m in &page.messages {
            self.messages.insert(m.seq, m.clone());
        }
        self.trim(center);
    }

    /// Replaces the window with a page around a message the user jumps to (a search result):
    /// the page just below `seq + 1`, so `seq` is its newest message.
    pub fn reset_to(&mut self, page: &HistoryPage) {
        self.messages = page.messages.iter().map(|m| (m.seq, m.clone())).collect();
        self.has_older = !page.end;
        self.at_latest = false;
    }

    /// Drops messages at the end far from `center` until at most [`MAX_MESSAGES`] remain.
    pub fn trim(&mut self, center: Option<u64>) {
        while self.messages.len() > MAX_MESSAGES {
            let (Some(first), Some(last)) = (self.first_seq(), self.last_seq()) else {
                return;
            };
            let center = center.unwrap_or(last);
            let drop_oldest = self.count_before(center) >= self.count_after(center);
            if drop_oldest {
                self.messages.remove(&first);
                self.has_older = true;
            } else {
                self.messages.remove(&last);
                self.at_latest = false;
            }
        }
    }

    /// Stores a message the server just returned (a send, an edit, a reaction), if it belongs in
    /// the window: inside it, or at its end when the window reaches the latest message.
    pub fn upsert(&mut self, message: &pb::Message) {
        let inside = self.messages.contains_key(&message.seq)
            || self.at_latest
            || self
                .last_seq()
                .is_some_and(|last| message.seq < last && self.first_seq() < Some(message.seq));
        if inside {
            self.messages.insert(message.seq, message.clone());
        }
    }

    /// Applies a chat event of this chat. Returns true when what is shown may have changed.
    pub fn apply(&mut self, event: &pb::ChatEvent) -> bool {
        match &event.body {
            Some(Body::MessageCreated(m)) => {
                let inside = self.at_latest
                    || self
                        .last_seq()
                        .is_some_and(|last| m.seq < last && self.first_seq() < Some(m.seq));
                if inside {
                    self.messages.insert(m.seq, m.clone());
                    self.trim(None);
                }
                inside
            }
            Some(Body::MessageEdited(e)) => {
                self.epoch += 1;
                match self.messages.get_mut(&e.message_seq) {
                    // Empty text: the message was deleted since (its deletion follows), or it
                    // is a placeholder, which shows no edits.
                    Some(m) if !m.deleted && !e.text.is_empty() => {
                        m.text.clone_from(&e.text);
                        m.edited = true;
                        m.edited_at_ms = e.edited_at_ms;
                        true
                    }
                    _ => false,
                }
            }
            Some(Body::MessageDeleted(d)) => {
                self.epoch += 1;
                match self.messages.get_mut(&d.message_seq) {
                    Some(m) => {
                        tombstone(m, event.at_ms);
                        true
                    }
                    None => false,
                }
            }
            Some(Body::ReactionChanged(r)) => {
                self.epoch += 1;
                match self.messages.get_mut(&r.message_seq) {
                    // A placeholder keeps no reactions (spec 9.2).
                    Some(m) if !m.deleted && !m.from_blocked_user => {
                        set_reaction(m, &r.emoji, r.user_id, r.added);
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Removes a message the user deleted for themselves.
    pub fn hide(&mut self, seq: u64) -> bool {
        self.messages.remove(&seq).is_some()
    }
}

/// What is left of a message deleted for everyone.
fn tombstone(m: &mut pb::Message, at_ms: i64) {
    m.deleted = true;
    m.deleted_at_ms = at_ms;
    m.text.clear();
    m.file_id.clear();
    m.reactions.clear();
    m.mention_ids.clear();
}

/// How many users reacted with `r`: its `count`, or the users listed where a server sends none.
pub fn reaction_total(r: &pb::Reaction) -> u32 {
    r.count
        .max(u32::try_from(r.user_ids.len()).unwrap_or(u32::MAX))
}

/// Adds or removes one user's reaction, keeping the total; reactions nobody holds any more
/// disappear. A user beyond the listed ones (the server lists the first 100) only moves the total.
pub fn set_reaction(m: &mut pb::Message, emoji: &str, user_id: u64, added: bool) {
    match m.reactions.iter_mut().find(|r| r.emoji == emoji) {
        Some(r) if added && !r.user_ids.contains(&user_id) => {
            r.count = reaction_total(r) + 1;
            r.user_ids.push(user_id);
        }
        Some(_) if added => {}
        Some(r) => {
            let listed = r.user_ids.contains(&user_id);
            let unlisted = u32::try_from(r.user_ids.len()).unwrap_or(u32::MAX) < reaction_total(r);
            if listed || unlisted {
                r.count = reaction_total(r) - 1;
                r.user_ids.retain(|&u| u != user_id);
            }
        }
        None if added => m.reactions.push(pb::Reaction {
            emoji: emoji.into(),
            user_ids: vec![user_id],
            count: 1,
        }),
        None => {}
    }
    m.reactions.retain(|r| reaction_total(r) > 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn msg(seq: u64, text: &str) -> pb::Message {
        pb::Message {
            chat_id: 1,
            seq,
            sender_id: 7,
            kind: pb::MessageKind::Text as i32,
            text: text.into(),
            ..Default::default()
        }
    }

    fn page(seqs: impl IntoIterator<Item = u64>, end: bool) -> HistoryPage {
        HistoryPage {
            messages: seqs.into_iter().map(|s| msg(s, &format!("m{s}"))).collect(),
            end,
        }
    }

    fn event(seq: u64, body: Body) -> pb::ChatEvent {
        pb::ChatEvent {
            chat_id: 1,
            seq,
            at_ms: 5,
            actor_id: 7,
            body: Some(body),
        }
    }

    #[test]
    fn pages_extend_the_window_and_new_messages_join_at_the_latest() {
        let mut w = MessageWindow::default();
        // A live message while the first page loads is kept.
        assert!(w.apply(&event(61, Body::MessageCreated(msg(61, "live")))));
        w.merge(HistoryRange::Latest, &page(11..=60, false), None);
        assert_eq!(
            (w.first_seq(), w.last_seq(), w.len()),
            (Some(11), Some(61), 51)
        );
        assert!(w.has_older && w.at_latest);
        w.merge(HistoryRange::Before(11), &page(1..=10, true), Some(11));
        assert!(!w.has_older);
        assert_eq!(w.before(11, 3), Some(8));
        assert_eq!(w.before(2, 5), Some(1));
        assert_eq!(w.after(59, 5), Some(61));
    }

    #[test]
    fn memory_is_bounded_by_trimming_away_from_the_view() {
        let mut w = MessageWindow::default();
        w.merge(HistoryRange::Latest, &page(1001..=1050, false), None);
        let mut first: u64 = 1001;
        while first > 1 {
            let from = first.saturating_sub(u64::from(PAGE)).max(1);
            w.merge(
                HistoryRange::Before(first),
                &page(from..first, from == 1),
                Some(from),
            );
            first = from;
        }
        assert_eq!(w.len(), MAX_MESSAGES);
        assert_eq!(w.first_seq(), Some(1));
        assert!(
            !w.at_latest,
            "the newest were dropped while reading old history"
        );
        // Live messages no longer join a window that does not reach the latest.
        assert!(!w.apply(&event(2000, Body::MessageCreated(msg(2000, "x")))));
        // Scrolling back down reaches the latest again.
        w.merge(
            HistoryRange::After(300),
            &page(301..=1050, true),
            Some(1050),
        );
        assert!(w.at_latest && w.has_older);
        assert_eq!(w.last_seq(), Some(1050));
        assert_eq!(w.len(), MAX_MESSAGES);
    }

    #[test]
    fn a_latest_page_after_a_jump_replaces_a_window_it_would_leave_a_hole_in() {
        let mut w = MessageWindow::default();
        w.reset_to(&page(100..=149, false));
        assert!(!w.at_latest);
        w.merge(HistoryRange::Latest, &page(951..=1000, false), None);
        assert_eq!((w.first_seq(), w.last_seq()), (Some(951), Some(1000)));
    }

    #[test]
    fn reactions_beyond_the_listed_users_keep_their_total() {
        let mut m = msg(1, "hi");
        m.reactions = vec![pb::Reaction {
            emoji: "👍".into(),
            user_ids: (1..=100).collect(),
            count: 150,
        }];
        set_reaction(&mut m, "👍", 500, true);
        assert_eq!(reaction_total(&m.reactions[0]), 151);
        set_reaction(&mut m, "👍", 600, false);
        assert_eq!(reaction_total(&m.reactions[0]), 150);
        assert_eq!(m.reactions[0].user_ids.len(), 101);
        set_reaction(&mut m, "👍", 1, false);
        assert_eq!(reaction_total(&m.reactions[0]), 149);
        assert!(!m.reactions[0].user_ids.contains(&1));
    }

    #[test]
    fn a_placeholder_takes_no_reactions() {
        let mut w = MessageWindow::default();
        let placeholder = pb::Message {
            text: String::new(),
            from_blocked_user: true,
            ..msg(5, "")
        };
        assert!(w.apply(&event(5, Body::MessageCreated(placeholder))));
        assert!(!w.apply(&event(
            6,
            Body::ReactionChanged(pb::ReactionChanged {
                message_seq: 5,
                emoji: "👍".into(),
                user_id: 3,
                added: true,
            })
        )));
        assert!(w.get(5).unwrap().reactions.is_empty());
    }

    #[test]
    fn edits_deletions_and_reactions_apply_and_count() {
        let mut w = MessageWindow::default();
        w.merge(HistoryRange::Latest, &page([5, 6], true), None);
        let epoch = w.epoch;
        assert!(w.apply(&event(
            7,
            Body::MessageEdited(pb::MessageEdited {
                message_seq: 5,
                text: "new".into(),
                edited_at_ms: 9,
            })
        )));
        assert!(w.is_stale(epoch));
        assert_eq!(w.get(5).unwrap().text, "new");
        assert!(w.get(5).unwrap().edited);
        let react = |added| {
            event(
                8,
                Body::ReactionChanged(pb::ReactionChanged {
                    message_seq: 6,
                    emoji: "👍".into(),
                    user_id: 3,
                    added,
                }),
            )
        };
        w.apply(&react(true));
        w.apply(&react(true));
        assert_eq!(w.get(6).unwrap().reactions[0].user_ids, [3]);
        w.apply(&react(false));
        assert!(w.get(6).unwrap().reactions.is_empty());
        w.apply(&react(true));
        assert!(w.apply(&event(
            9,
            Body::MessageDeleted(pb::MessageDeleted { message_seq: 6 })
        )));
        let dead = w.get(6).unwrap();
        assert!(dead.deleted && dead.text.is_empty() && dead.reactions.is_empty());
        // An edit of a deleted message (replayed from before the deletion) changes nothing.
        assert!(!w.apply(&event(
            10,
            Body::MessageEdited(pb::MessageEdited {
                message_seq: 6,
                text: "zombie".into(),
                edited_at_ms: 1,
            })
        )));
        assert!(w.hide(5));
        assert!(!w.hide(5));
    }
}
