//! The messages in the outbox as the screen shows them ("sending…"), until the server's answer
//! turns them into real messages.
//!
//! The outbox sends one message at a time, oldest first, and the server's event for a sent
//! message can arrive before its answer. Live events carry no `client_msg_id`, so an event from
//! me that matches the oldest queued message of its chat (same text, same reply) is taken as its
//! echo: the entry stops being shown, so the message is on screen once, not twice. The answer
//! then removes the entry for good.

use chatproto::pb;

/// One unacknowledged message.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingMessage {
    /// The request as queued, with its `client_msg_id`.
    pub request: pb::SendMessage,
    /// The seq of the message the server created for it, once its echo was seen.
    pub echoed: Option<u64>,
}

/// The outbox as shown.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    entries: Vec<PendingMessage>,
}

impl Pending {
    /// Shows a newly queued message.
    pub fn push(&mut self, request: pb::SendMessage) {
        if !self
            .entries
            .iter()
            .any(|e| e.request.client_msg_id == request.client_msg_id)
        {
            self.entries.push(PendingMessage {
                request,
                echoed: None,
            });
        }
    }

    /// The server answered (or refused) the message: it is no longer pending.
    pub fn remove(&mut self, client_msg_id: &str) -> Option<PendingMessage> {
        let index = self
            .entries
            .iter()
            .position(|e| e.request.client_msg_id == client_msg_id)?;
        Some(self.entries.remove(index))
    }

    /// A message of mine was created in a chat: if it is the echo of the oldest pending message
    /// of that chat, hide that entry.
    pub fn on_own_message(&mut self, m: &pb::Message) {
        if let Some(entry) = self
            .entries
            .iter_mut()
            .find(|e| e.request.chat_id == m.chat_id && e.echoed.is_none())
            && (m.client_msg_id == entry.request.client_msg_id
                || (m.client_msg_id.is_empty() && same_content(m, &entry.request)))
        {
            entry.echoed = Some(m.seq);
        }
    }

    /// The entries of `chat_id` still to be shown as pending, oldest first.
    pub fn shown_in(&self, chat_id: u64) -> impl Iterator<Item = &pb::SendMessage> {
        self.entries
            .iter()
            .filter(move |e| e.request.chat_id == chat_id && e.echoed.is_none())
            .map(|e| &e.request)
    }

    /// How many messages wait.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Whether a message is what `request` asked for: the same forward, or the same text and reply.
fn same_content(m: &pb::Message, request: &pb::SendMessage) -> bool {
    match (&request.forward, &m.forwarded_from) {
        (Some(source), Some(from)) => source.chat_id == from.chat_id && source.seq == from.seq,
        (Some(_), None) | (None, Some(_)) => false,
        (None, None) => m.text == request.text && m.reply_to_seq == request.reply_to_seq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str, chat_id: u64, text: &str) -> pb::SendMessage {
        pb::SendMessage {
            chat_id,
            client_msg_id: id.into(),
            text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_echo_hides_the_entry_and_the_answer_removes_it() {
        let mut p = Pending::default();
        p.push(request("a", 1, "hi"));
        p.push(request("a", 1, "hi"));
        p.push(request("b", 1, "hi"));
        assert_eq!(p.len(), 2);
        let echo = pb::Message {
            chat_id: 1,
            seq: 8,
            text: "hi".into(),
            ..Default::default()
        };
        p.on_own_message(&echo);
        let shown: Vec<_> = p.shown_in(1).map(|r| r.client_msg_id.as_str()).collect();
        assert_eq!(
            shown,
            ["b"],
            "only the oldest is in flight, so only it can echo"
        );
        assert_eq!(p.remove("a").unwrap().echoed, Some(8));
        assert!(p.remove("a").is_none());
        // Another text is not an echo.
        p.on_own_message(&pb::Message {
            text: "other".into(),
            ..echo
        });
        assert_eq!(p.shown_in(1).count(), 1);
        // A forward echoes with its source.
        p.push(pb::SendMessage {
            chat_id: 2,
            client_msg_id: "f".into(),
            forward: Some(pb::MessageRef { chat_id: 1, seq: 8 }),
            ..Default::default()
        });
        p.on_own_message(&pb::Message {
            chat_id: 2,
            seq: 3,
            text: "copied".into(),
            forwarded_from: Some(pb::ForwardedFrom {
                chat_id: 1,
                seq: 8,
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(p.shown_in(2).count(), 0);
    }
}
