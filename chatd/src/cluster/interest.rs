//! Which chats this node must hear about: for every chat, the users connected here who are its
//! members. A chat's channel is subscribed while that set is not empty, and released when it
//! empties. Pure bookkeeping; the broker turns the "first"/"last" answers into (un)subscriptions.

use std::collections::{HashMap, HashSet};

/// The local users of each chat and the chats of each local user.
#[derive(Debug, Default)]
pub struct Interest {
    chats: HashMap<u64, HashSet<u64>>,
    users: HashMap<u64, HashSet<u64>>,
}

impl Interest {
    /// Records that `user` (connected here) is a member of `chat`. True when the chat had no local
    /// member before (subscribe its channel).
    pub fn add(&mut self, chat: u64, user: u64) -> bool {
        self.users.entry(user).or_default().insert(chat);
        let members = self.chats.entry(chat).or_default();
        let first = members.is_empty();
        members.insert(user);
        first
    }

    /// Forgets that `user` is a member of `chat`. True when the chat has no local member left
    /// (release its channel).
    pub fn remove(&mut self, chat: u64, user: u64) -> bool {
        if let Some(chats) = self.users.get_mut(&user) {
            chats.remove(&chat);
            if chats.is_empty() {
                self.users.remove(&user);
            }
        }
        let Some(members) = self.chats.get_mut(&chat) else {
            return false;
        };
        if !members.remove(&user) {
            return false;
        }
        if members.is_empty() {
            self.chats.remove(&chat);
            return true;
        }
        false
    }

    /// Forgets `user` (their last connection here closed). Returns the chats left without local
    /// members.
    pub fn remove_user(&mut self, user: u64) -> Vec<u64> {
        let chats = self.users.remove(&user).unwrap_or_default();
        let mut emptied = Vec::new();
        for chat in chats {
            if let Some(members) = self.chats.get_mut(&chat) {
                members.remove(&user);
                if members.is_empty() {
                    self.chats.remove(&chat);
                    emptied.push(chat);
                }
            }
        }
        emptied.sort_unstable();
        emptied
    }

    /// Forgets a chat (deleted). True when it had local members (release its channel).
    pub fn remove_chat(&mut self, chat: u64) -> bool {
        let Some(members) = self.chats.remove(&chat) else {
            return false;
        };
        for user in members {
            if let Some(chats) = self.users.get_mut(&user) {
                chats.remove(&chat);
                if chats.is_empty() {
                    self.users.remove(&user);
                }
            }
        }
        true
    }

    /// True when some local user is a member of `chat`.
    #[cfg(test)]
    pub fn has_chat(&self, chat: u64) -> bool {
        self.chats.contains_key(&chat)
    }

    /// Chats with local members.
    #[cfg(test)]
    pub fn chat_count(&self) -> usize {
        self.chats.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats_are_held_while_any_local_member_is() {
        let mut i = Interest::default();
        assert!(i.add(10, 1));
        assert!(!i.add(10, 2));
        assert!(!i.add(10, 2), "idempotent");
        assert!(i.add(11, 1));
        assert!(!i.remove(10, 1));
        assert!(i.has_chat(10));
        assert!(i.remove(10, 2));
        assert!(!i.has_chat(10));
        assert!(!i.remove(10, 2), "already gone");
        assert_eq!(i.chat_count(), 1);
    }

    #[test]
    fn removing_a_user_releases_only_chats_they_held_alone() {
        let mut i = Interest::default();
        for chat in [1, 2, 3] {
            i.add(chat, 7);
        }
        i.add(2, 8);
        assert_eq!(i.remove_user(7), [1, 3]);
        assert!(i.has_chat(2));
        assert!(i.remove_user(7).is_empty());
    }

    #[test]
    fn deleting_a_chat_forgets_it_for_everyone() {
        let mut i = Interest::default();
        i.add(5, 1);
        i.add(5, 2);
        i.add(6, 2);
        assert!(i.remove_chat(5));
        assert!(!i.remove_chat(5));
        assert_eq!(i.remove_user(1), Vec::<u64>::new());
        assert_eq!(i.remove_user(2), [6]);
        assert_eq!(i.chat_count(), 0);
    }
}
