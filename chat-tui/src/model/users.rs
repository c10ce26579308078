//! What the client knows about users: names for senders and chat titles, presence for the dots
//! of private chats. Filled lazily: ids first seen in chats and messages are asked for once.

use std::collections::{HashMap, HashSet};

use chatproto::pb;

/// At most this many profiles are kept; beyond it the directory starts over (and asks again for
/// the ones on screen), so memory stays bounded however long the client runs.
const MAX_USERS: usize = 20_000;

/// The user directory.
#[derive(Debug, Default, Clone)]
pub struct Users {
    known: HashMap<u64, pb::User>,
    asked: HashSet<u64>,
}

impl Users {
    /// The profile of `id`, if known.
    pub fn get(&self, id: u64) -> Option<&pb::User> {
        self.known.get(&id)
    }

    /// The name to show: the display name, else the username, else `user #id`.
    pub fn name(&self, id: u64) -> String {
        match self.known.get(&id) {
            Some(u) if !u.display_name.is_empty() => u.display_name.clone(),
            Some(u) if !u.username.is_empty() => u.username.clone(),
            _ => format!("user #{id}"),
        }
    }

    /// The username of `id`, if known.
    pub fn username(&self, id: u64) -> Option<&str> {
        self.known
            .get(&id)
            .map(|u| u.username.as_str())
            .filter(|n| !n.is_empty())
    }

    /// The id of the user called `username` (case-insensitive), if known.
    pub fn by_username(&self, username: &str) -> Option<u64> {
        let wanted = username.trim_start_matches('@');
        self.known
            .values()
            .find(|u| u.username.eq_ignore_ascii_case(wanted))
            .map(|u| u.id)
    }

    /// Usernames starting with `prefix`, sorted, for completion.
    pub fn usernames_with_prefix(&self, prefix: &str) -> Vec<String> {
        let prefix = prefix.to_lowercase();
        let mut names: Vec<String> = self
            .known
            .values()
            .filter(|u| u.username.starts_with(&prefix))
            .map(|u| u.username.clone())
            .collect();
        names.sort();
        names
    }

    /// Stores profiles (replacing older copies).
    pub fn upsert(&mut self, users: impl IntoIterator<Item = pb::User>) {
        for user in users {
            if self.known.len() >= MAX_USERS && !self.known.contains_key(&user.id) {
                self.known.clear();
                self.asked.clear();
            }
            self.asked.remove(&user.id);
            self.known.insert(user.id, user);
        }
    }

    /// Applies a presence change.
    pub fn set_presence(&mut self, update: &pb::PresenceUpdate) {
        if let Some(user) = self.known.get_mut(&update.user_id) {
            user.status = update.status;
            user.last_seen_at_ms = update.last_seen_at_ms;
        }
    }

    /// The ids among `ids` that are neither known nor already asked for; they count as asked.
    pub fn to_ask(&mut self, ids: impl IntoIterator<Item = u64>) -> Vec<u64> {
        let mut out = Vec::new();
        for id in ids {
            if id != 0 && !self.known.contains_key(&id) && self.asked.insert(id) {
                out.push(id);
            }
        }
        out
    }

    /// Forgets that ids were asked for (the answer was lost), so they are asked again.
    pub fn forget_asked(&mut self) {
        self.asked.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64, username: &str, display: &str) -> pb::User {
        pb::User {
            id,
            username: username.into(),
            display_name: display.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_fall_back_and_ids_are_asked_once() {
        let mut users = Users::default();
        assert_eq!(users.name(3), "user #3");
        assert_eq!(users.to_ask([3, 4, 3, 0]), [3, 4]);
        assert!(users.to_ask([3]).is_empty());
        users.upsert([user(3, "alice", ""), user(4, "bob", "Bob B.")]);
        assert_eq!(users.name(3), "alice");
        assert_eq!(users.name(4), "Bob B.");
        assert_eq!(users.by_username("@ALICE"), Some(3));
        assert_eq!(users.usernames_with_prefix("b"), ["bob"]);
        users.set_presence(&pb::PresenceUpdate {
            user_id: 4,
            status: pb::UserStatus::Online as i32,
            last_seen_at_ms: 0,
        });
        assert_eq!(users.get(4).unwrap().status, pb::UserStatus::Online as i32);
    }
}
