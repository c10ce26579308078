//! Who is typing where, until their indicator expires.

use std::collections::BTreeMap;

/// Typing indicators: `(chat, user)` → expiry (ms since the epoch).
#[derive(Debug, Default, Clone)]
pub struct Typing {
    until: BTreeMap<(u64, u64), i64>,
}

impl Typing {
    /// `user` types in `chat` until `until_ms`.
    pub fn set(&mut self, chat_id: u64, user_id: u64, until_ms: i64) {
        self.until.insert((chat_id, user_id), until_ms);
    }

    /// `user` stopped (they sent the message).
    pub fn clear(&mut self, chat_id: u64, user_id: u64) {
        self.until.remove(&(chat_id, user_id));
    }

    /// Drops expired indicators; true when something changed.
    pub fn expire(&mut self, now_ms: i64) -> bool {
        let before = self.until.len();
        self.until.retain(|_, until| *until > now_ms);
        before != self.until.len()
    }

    /// The users typing in `chat`, by id.
    pub fn in_chat(&self, chat_id: u64) -> Vec<u64> {
        self.until
            .range((chat_id, 0)..=(chat_id, u64::MAX))
            .map(|(&(_, user), _)| user)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicators_expire_and_are_per_chat() {
        let mut t = Typing::default();
        t.set(1, 10, 5_000);
        t.set(1, 11, 9_000);
        t.set(2, 10, 9_000);
        assert_eq!(t.in_chat(1), [10, 11]);
        assert!(t.expire(6_000));
        assert_eq!(t.in_chat(1), [11]);
        assert!(!t.expire(6_000));
        t.clear(2, 10);
        assert!(t.in_chat(2).is_empty());
    }
}
