//! The chat list: every chat of the user with its unread count, pin, mute and archive state,
//! the other member of private chats (for their name and presence), in display order.

use std::collections::HashMap;

use chatproto::pb;

use super::users::Users;
use crate::widgets::text_input::TextBuffer;

/// One chat of the list.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatEntry {
    /// The chat as the server last described it (with the user's own state).
    pub chat: pb::Chat,
    /// For a private chat: the other member, once known.
    pub peer: Option<u64>,
    /// An unread message mentions the user.
    pub mentioned: bool,
}

impl ChatEntry {
    /// The chat's kind.
    pub fn kind(&self) -> pb::ChatKind {
        pb::ChatKind::try_from(self.chat.kind).unwrap_or(pb::ChatKind::Unspecified)
    }

    /// The user's own state of the chat.
    pub fn state(&self) -> pb::ChatUserState {
        self.chat.state.unwrap_or_default()
    }

    fn state_mut(&mut self) -> &mut pb::ChatUserState {
        self.chat.state.get_or_insert_with(Default::default)
    }

    /// Muted at `now_ms`.
    pub fn muted(&self, now_ms: i64) -> bool {
        self.state().muted_until_ms > now_ms
    }

    /// The user's role in the chat.
    pub fn role(&self) -> pb::MemberRole {
        pb::MemberRole::try_from(self.state().role).unwrap_or(pb::MemberRole::Unspecified)
    }
}

/// A row of the chat list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// A chat.
    Chat(u64),
    /// The heading of the archived section, with how many chats it holds.
    Archived(usize),
}

/// The chat list.
#[derive(Debug, Default, Clone)]
pub struct ChatList {
    entries: HashMap<u64, ChatEntry>,
    /// The highlighted chat.
    pub selected: Option<u64>,
    /// The filter being typed, while filtering.
    pub filter: Option<TextBuffer>,
    /// Whether the archived chats are listed under their heading.
    pub show_archived: bool,
}

impl ChatList {
    /// The chat `id`, if listed.
    pub fn get(&self, id: u64) -> Option<&ChatEntry> {
        self.entries.get(&id)
    }

    /// The chat `id`, if listed.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut ChatEntry> {
        self.entries.get_mut(&id)
    }

    /// How many chats are listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no chat is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every listed chat.
    pub fn iter(&self) -> impl Iterator<Item = &ChatEntry> {
        self.entries.values()
    }

    /// The name shown for a chat: its title, or the other member's name for a private chat.
    pub fn title(&self, id: u64, users: &Users) -> String {
        match self.entries.get(&id) {
            Some(e) if e.kind() == pb::ChatKind::Private => match e.peer {
                Some(peer) => users.name(peer),
                None => format!("private chat #{id}"),
            },
            Some(e) if !e.chat.title.is_empty() => e.chat.title.clone(),
            _ => format!("chat #{id}"),
        }
    }

    /// The chat whose title (or private peer's username) is `name`, ignoring case and a
    /// leading `#` or `@`.
    pub fn find_by_name(&self, name: &str, users: &Users) -> Option<u64> {
        let wanted = name.trim_start_matches(['#', '@']).to_lowercase();
        let mut ids: Vec<u64> = self.entries.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().find(|&id| {
            let entry = &self.entries[&id];
            self.title(id, users).to_lowercase() == wanted
                || entry
                    .peer
                    .and_then(|p| users.username(p))
                    .is_some_and(|u| u == wanted)
        })
    }

    /// Stores what ListChats returned, keeping what only the client knows (private peers,
    /// mention marks). Chats it does not list stay: the answer may predate a chat created
    /// since, and chats that are gone say so with their own events (removal, deletion).
    pub fn merge_all(&mut self, chats: Vec<pb::Chat>) {
        for chat in chats {
            let previous = self.entries.remove(&chat.id);
            let mut entry = ChatEntry {
                peer: previous.as_ref().and_then(|p| p.peer),
                mentioned: previous.as_ref().is_some_and(|p| p.mentioned),
                chat,
            };
            entry.peer = entry.peer.or_else(|| peer_of(&entry.chat, None));
            if entry.state().unread_count == 0 {
                entry.mentioned = false;
            }
            self.entries.insert(entry.chat.id, entry);
        }
        if self
            .selected
            .is_some_and(|id| !self.entries.contains_key(&id))
        {
            self.selected = None;
        }
    }

    /// Stores one chat (from GetChat, CreateGroup, ...), learning a private chat's peer from its
    /// members.
    pub fn upsert(&mut self, chat: pb::Chat, me: u64) {
        let peer = peer_of(&chat, Some(me));
        match self.entries.get_mut(&chat.id) {
            Some(entry) => {
                let state = entry.chat.state;
                let last_message = entry.chat.last_message.clone();
                entry.chat = chat;
                // A chat without a user view (a chat_created snapshot) keeps the one we had.
                if entry.chat.state.is_none() {
                    entry.chat.state = state;
                }
                if entry.chat.last_message.is_none() {
                    entry.chat.last_message = last_message;
                }
                entry.peer = peer.or(entry.peer);
            }
            None => {
                self.entries.insert(
                    chat.id,
                    ChatEntry {
                        chat,
                        peer,
                        mentioned: false,
                    },
                );
            }
        }
    }

    /// Removes a chat (deleted, left, removed from it).
    pub fn remove(&mut self, id: u64) -> Option<ChatEntry> {
        if self.selected == Some(id) {
            self.selected = None;
        }
        self.entries.remove(&id)
    }

    /// Private chats whose other member is not known yet (GetChat tells).
    pub fn missing_peers(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .entries
            .values()
            .filter(|e| e.kind() == pb::ChatKind::Private && e.peer.is_none())
            .map(|e| e.chat.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Records a new message of a listed chat. `unread` says whether it counts as unread (from
    /// someone else, not read on screen). Returns false when the chat is not listed.
    pub fn on_message(&mut self, m: &pb::Message, me: u64, unread: bool, at_ms: i64) -> bool {
        let Some(entry) = self.entries.get_mut(&m.chat_id) else {
            return false;
        };
        entry.chat.last_seq = entry.chat.last_seq.max(m.seq);
        entry.chat.last_activity_ms = entry.chat.last_activity_ms.max(at_ms.max(m.sent_at_ms));
        entry.chat.last_message = Some(m.clone());
        if entry.kind() == pb::ChatKind::Private && m.sender_id != me && entry.peer.is_none() {
            entry.peer = Some(m.sender_id);
        }
        if unread {
            let state = entry.state_mut();
            state.unread_count = state.unread_count.saturating_add(1);
            if m.mention_ids.contains(&me) {
                entry.mentioned = true;
            }
        }
        true
    }

    /// Everything up to `seq` of a chat was read (here or on another device).
    pub fn mark_read(&mut self, chat_id: u64, seq: u64) {
        if let Some(entry) = self.entries.get_mut(&chat_id) {
            let state = entry.state_mut();
            state.read_seq = state.read_seq.max(seq);
            state.delivered_seq = state.delivered_seq.max(seq);
            if state.read_seq >= entry.chat.last_seq {
                entry.state_mut().unread_count = 0;
                entry.mentioned = false;
            }
        }
    }

    /// The user's own state of a chat changed (here or on another device).
    pub fn set_state(&mut self, chat_id: u64, state: pb::ChatUserState) {
        if let Some(entry) = self.entries.get_mut(&chat_id) {
            entry.chat.state = Some(state);
        }
    }

    /// The rows in display order: unarchived chats (pinned first, then the most recently
    /// active), then the archived section. A filter keeps the chats whose name contains it.
    pub fn rows(&self, users: &Users) -> Vec<Row> {
        let filter = self
            .filter
            .as_ref()
            .map(|f| f.text().to_lowercase())
            .filter(|f| !f.is_empty());
        let mut chats: Vec<&ChatEntry> = self
            .entries
            .values()
            .filter(|e| {
                filter
                    .as_ref()
                    .is_none_or(|f| self.title(e.chat.id, users).to_lowercase().contains(f))
            })
            .collect();
        chats.sort_by(|a, b| {
            let (sa, sb) = (a.state(), b.state());
            sa.archived
                .cmp(&sb.archived)
                .then(sb.pinned.cmp(&sa.pinned))
                .then(b.chat.last_activity_ms.cmp(&a.chat.last_activity_ms))
                .then(b.chat.id.cmp(&a.chat.id))
        });
        let archived = chats.iter().filter(|e| e.state().archived).count();
        let mut rows = Vec::with_capacity(chats.len() + 1);
        let show_archived = self.show_archived || filter.is_some();
        for e in chats {
            if e.state().archived {
                if !rows.contains(&Row::Archived(archived)) {
                    rows.push(Row::Archived(archived));
                }
                if !show_archived {
                    break;
                }
            }
            rows.push(Row::Chat(e.chat.id));
        }
        rows
    }
}

/// The other member of a private chat, from its member list.
fn peer_of(chat: &pb::Chat, me: Option<u64>) -> Option<u64> {
    if chat.kind != pb::ChatKind::Private as i32 {
        return None;
    }
    let me = me?;
    chat.members.iter().map(|m| m.user_id).find(|&id| id != me)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn chat(id: u64, title: &str, activity: i64) -> pb::Chat {
        pb::Chat {
            id,
            kind: pb::ChatKind::Group as i32,
            title: title.into(),
            last_activity_ms: activity,
            state: Some(pb::ChatUserState::default()),
            ..Default::default()
        }
    }

    #[test]
    fn rows_put_pinned_first_then_recent_then_archived_under_a_heading() {
        let mut list = ChatList::default();
        let mut pinned = chat(1, "pinned", 1);
        pinned.state.as_mut().unwrap().pinned = true;
        let mut archived = chat(2, "old", 100);
        archived.state.as_mut().unwrap().archived = true;
        list.merge_all(vec![
            pinned,
            archived,
            chat(3, "recent", 50),
            chat(4, "older", 10),
        ]);
        let users = Users::default();
        assert_eq!(
            list.rows(&users),
            [Row::Chat(1), Row::Chat(3), Row::Chat(4), Row::Archived(1)]
        );
        list.show_archived = true;
        assert_eq!(list.rows(&users).last(), Some(&Row::Chat(2)));
        list.filter = Some(TextBuffer::with_text("OL"));
        assert_eq!(
            list.rows(&users),
            [Row::Chat(4), Row::Archived(1), Row::Chat(2)]
        );
    }

    #[test]
    fn private_chats_are_named_after_the_peer() {
        let mut list = ChatList::default();
        let mut users = Users::default();
        users.upsert([pb::User {
            id: 9,
            username: "bob".into(),
            ..Default::default()
        }]);
        let private = pb::Chat {
            id: 5,
            kind: pb::ChatKind::Private as i32,
            members: vec![
                pb::Member {
                    user_id: 1,
                    ..Default::default()
                },
                pb::Member {
                    user_id: 9,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        list.merge_all(vec![pb::Chat {
            members: vec![],
            ..private.clone()
        }]);
        assert_eq!(list.missing_peers(), [5]);
        assert_eq!(list.title(5, &users), "private chat #5");
        list.upsert(private, 1);
        assert_eq!(list.title(5, &users), "bob");
        assert_eq!(list.find_by_name("@bob", &users), Some(5));
        assert!(list.missing_peers().is_empty());
    }

    #[test]
    fn unread_counts_and_mentions_follow_messages_and_reads() {
        let mut list = ChatList::default();
        let mut c = chat(1, "team", 0);
        c.last_seq = 4;
        list.merge_all(vec![c]);
        let m = pb::Message {
            chat_id: 1,
            seq: 5,
            sender_id: 2,
            mention_ids: vec![1],
            ..Default::default()
        };
        assert!(list.on_message(&m, 1, true, 10));
        let e = list.get(1).unwrap();
        assert_eq!(
            (e.state().unread_count, e.mentioned, e.chat.last_seq),
            (1, true, 5)
        );
        list.mark_read(1, 5);
        let e = list.get(1).unwrap();
        assert_eq!((e.state().unread_count, e.mentioned), (0, false));
        assert!(!list.on_message(&pb::Message { chat_id: 99, ..m }, 1, true, 10));
    }
}
