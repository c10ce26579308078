//! Who talks to whom: users split into consecutive rooms of `room_size` (a private chat is a room
//! of two), each user with `connections_per_user` connections. Every message goes to every
//! connection of every other member of the sender's room.

use std::ops::Range;

/// The rooms of a run and, once created, their chat ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    users: u32,
    room_size: u32,
    connections_per_user: u32,
    chat_ids: Vec<u64>,
}

impl Topology {
    /// `users` in rooms of `room_size` (which divides `users`; the configuration checks it).
    pub fn new(users: u32, room_size: u32, connections_per_user: u32) -> Self {
        Self {
            users,
            room_size: room_size.max(1),
            connections_per_user: connections_per_user.max(1),
            chat_ids: Vec::new(),
        }
    }

    /// Number of rooms.
    pub fn rooms(&self) -> u32 {
        self.users / self.room_size
    }

    /// Members per room.
    pub fn room_size(&self) -> u32 {
        self.room_size
    }

    /// Number of users.
    pub fn users(&self) -> u32 {
        self.users
    }

    /// The room of `user`.
    pub fn room_of(&self, user: u32) -> u32 {
        user / self.room_size
    }

    /// The users of `room`.
    pub fn members(&self, room: u32) -> Range<u32> {
        let start = room * self.room_size;
        start..(start + self.room_size).min(self.users)
    }

    /// Connections each message is expected at: every connection of every other member.
    pub fn recipients(&self) -> u32 {
        (self.room_size - 1) * self.connections_per_user
    }

    /// Records the chat id of every room, in room order.
    pub fn set_chat_ids(&mut self, chat_ids: Vec<u64>) {
        self.chat_ids = chat_ids;
    }

    /// The chat of `room` (0 before the rooms exist).
    pub fn chat_id(&self, room: u32) -> u64 {
        self.chat_ids.get(room as usize).copied().unwrap_or(0)
    }

    /// True when a message of `sender` in chat `chat_id` is expected at a connection of
    /// `receiver`.
    pub fn expects(&self, receiver: u32, sender: u32, chat_id: u64) -> bool {
        receiver != sender
            && receiver < self.users
            && sender < self.users
            && self.room_of(receiver) == self.room_of(sender)
            && chat_id != 0
            && self.chat_id(self.room_of(sender)) == chat_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_fill_consecutive_rooms() {
        let mut t = Topology::new(20, 5, 2);
        assert_eq!(t.rooms(), 4);
        assert_eq!(t.room_of(0), 0);
        assert_eq!(t.room_of(4), 0);
        assert_eq!(t.room_of(5), 1);
        assert_eq!(t.members(3), 15..20);
        assert_eq!(t.recipients(), 8);
        t.set_chat_ids(vec![11, 12, 13, 14]);
        assert_eq!(t.chat_id(1), 12);
        assert_eq!(t.chat_id(9), 0);
    }

    #[test]
    fn only_other_members_of_the_senders_room_expect_its_messages() {
        let mut t = Topology::new(4, 2, 1);
        assert!(!t.expects(1, 0, 0), "no rooms yet");
        t.set_chat_ids(vec![100, 200]);
        assert!(t.expects(1, 0, 100));
        assert!(!t.expects(0, 0, 100), "the sender's own echo");
        assert!(!t.expects(2, 0, 100), "another room");
        assert!(!t.expects(1, 0, 200), "the wrong chat");
        assert!(!t.expects(1, 9, 100), "an unknown sender");
    }
}
