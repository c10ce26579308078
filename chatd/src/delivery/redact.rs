//! Per-recipient redaction: what each viewer may see of an event, encoded once per class of
//! viewer rather than once per recipient.
//!
//! The only thing a connection's [`Outbox`](super::outbox::Outbox) accepts is a [`Frame`], and
//! the only way to get one is to ask an event's frames for the frame of a given [`Viewer`]
//! ([`ChatEventFrames::frame_for`], [`NoticeFrames::frame_for`]). Frames are built in this
//! module only, so no path from a handler to a connection can skip the redaction for the user
//! at the other end.
//!
//! # Classes
//! A chat event has at most two encodings:
//! - **member**: what every member sees live. Nobody's `client_msg_id` (the sender has it in
//!   their response) and no per-user view inside a `chat_created` snapshot;
//! - **blocked actor**: for a viewer who blocked the event's actor (the sender of a message, the
//!   editor, the reactor): the message becomes a placeholder that keeps its seq (so catch-up stays
//!   gap-free) and its sender, but carries no text, file, mentions, forward origin or reactions.
//!   An edit by them carries no text and a reaction by them no emoji.
//!
//! Both are [`event_for`] applied for a stand-in viewer; history and catch-up apply the same
//! functions ([`event_for`], [`message_for`]) for the real viewer, so live events, history and
//! catch-up agree on what each viewer sees.
//!
//! A notice (an unsequenced event: presence, receipts, typing, chat state...) has one encoding
//! and is hidden from a viewer who blocked the user it comes from when it is a receipt or a
//! typing signal.
//!
//! The member encoding is made eagerly (almost every viewer needs it); the other only when a
//! viewer needs it, from the member form, so an event relayed from another node is never
//! decoded unless a local viewer blocked its actor.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use chatproto::pb;
use chatproto::pb::chat_event::Body;

/// An event frame that has passed redaction for the viewers it is handed to. Cheap to clone
/// (shared bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// The encoded frame, to write on an event stream (or relay to another node).
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty frame (an event that could not be encoded).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Encodes one event as a frame. Events are built by the server from validated, bounded data;
/// one too large to send is a bug, logged and sent as nothing.
fn encode(event: &pb::Event) -> Frame {
    Frame(
        chatproto::io::encode_frames([event], chatproto::frame::MAX_FRAME_BYTES).unwrap_or_else(
            |e| {
                tracing::error!(error = %e, "event too large to send");
                Bytes::new()
            },
        ),
    )
}

fn chat_event(event: pb::ChatEvent) -> pb::Event {
    pb::Event {
        kind: Some(pb::event::Kind::Chat(event)),
    }
}

/// What redaction needs to know about the user a frame goes to: who they are and whom they
/// blocked. Immutable; replaced as a whole when their blocks change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    user_id: u64,
    blocked: HashSet<u64>,
}

impl Viewer {
    /// `user_id`, who blocked `blocked`.
    pub fn new(user_id: u64, blocked: impl IntoIterator<Item = u64>) -> Self {
        Viewer {
            user_id,
            blocked: blocked.into_iter().collect(),
        }
    }

    /// Someone who is nobody in particular: what every member may see (no one's
    /// `client_msg_id`, nothing blocked).
    pub fn anyone() -> Self {
        Viewer::default()
    }

    /// The viewer's user id.
    pub fn user_id(&self) -> u64 {
        self.user_id
    }

    /// True when the viewer blocked `user`.
    pub fn has_blocked(&self, user: u64) -> bool {
        self.blocked.contains(&user)
    }
}

/// Removes from `message` what `viewer` may not see: someone else's `client_msg_id`, and the
/// content of a message whose sender the viewer blocked (a placeholder: seq, sender, kind and
/// times stay).
pub fn message_for(message: &mut pb::Message, viewer: &Viewer) {
    if viewer.has_blocked(message.sender_id) {
        message.text.clear();
        message.file_id.clear();
        message.reactions.clear();
        message.mention_ids.clear();
        message.forwarded_from = None;
    }
    if message.sender_id != viewer.user_id {
        message.client_msg_id.clear();
    }
}

/// Removes from a chat event what `viewer` may not see: see [`message_for`]; no per-user view
/// inside a `chat_created` snapshot; no text in an edit and no emoji in a reaction by someone
/// the viewer blocked.
pub fn event_for(event: &mut pb::ChatEvent, viewer: &Viewer) {
    let blocked_actor = viewer.has_blocked(event.actor_id);
    match &mut event.body {
        Some(Body::MessageCreated(m)) => message_for(m, viewer),
        Some(Body::ChatCreated(chat)) => {
            chat.state = None;
            chat.last_message = None;
        }
        Some(Body::MessageEdited(edited)) if blocked_actor => edited.text.clear(),
        Some(Body::ReactionChanged(reaction)) if blocked_actor => reaction.emoji.clear(),
        _ => {}
    }
}

/// The user whose blocks change what a viewer sees of `event`: the author of its content.
fn content_actor(event: &pb::ChatEvent) -> Option<u64> {
    match &event.body {
        Some(Body::MessageCreated(m)) => Some(m.sender_id),
        Some(Body::MessageEdited(_) | Body::ReactionChanged(_)) => Some(event.actor_id),
        _ => None,
    }
}

/// One committed chat event, encoded for each class of viewer that needs it.
#[derive(Debug)]
pub struct ChatEventFrames {
    chat_id: u64,
    seq: u64,
    /// See [`content_actor`]; 0 when no viewer's blocks change the event.
    actor: u64,
    member: Frame,
    blocked_actor: OnceLock<Frame>,
}

impl ChatEventFrames {
    /// The frames of an event as committed (it may still hold what only some viewers may see).
    pub fn committed(mut event: pb::ChatEvent) -> Arc<Self> {
        event_for(&mut event, &Viewer::anyone());
        let (chat_id, seq) = (event.chat_id, event.seq);
        let actor = content_actor(&event).unwrap_or(0);
        Arc::new(ChatEventFrames {
            chat_id,
            seq,
            actor,
            member: encode(&chat_event(event)),
            blocked_actor: OnceLock::new(),
        })
    }

    /// The frames of an event another node committed, from its member frame (see
    /// [`member_frame`](Self::member_frame)), for relays. Viewers still get their own class.
    pub fn relayed(chat_id: u64, seq: u64, actor: u64, member_frame: Bytes) -> Arc<Self> {
        Arc::new(ChatEventFrames {
            chat_id,
            seq,
            actor,
            member: Frame(member_frame),
            blocked_actor: OnceLock::new(),
        })
    }

    /// The chat.
    pub fn chat_id(&self) -> u64 {
        self.chat_id
    }

    /// The event's seq.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The user whose blockers see a placeholder (0: none).
    pub fn actor(&self) -> u64 {
        self.actor
    }

    /// The member frame, which other nodes turn back into frames with [`relayed`](Self::relayed).
    pub fn member_frame(&self) -> &Frame {
        &self.member
    }

    /// The frame `viewer` gets.
    pub fn frame_for(&self, viewer: &Viewer) -> &Frame {
        if self.actor == 0 || !viewer.has_blocked(self.actor) {
            return &self.member;
        }
        self.blocked_actor.get_or_init(|| {
            let decoded: Result<pb::Event, _> =
                chatproto::frame::FrameDecoder::default().decode_exact(&self.member.0);
            match decoded {
                Ok(pb::Event {
                    kind: Some(pb::event::Kind::Chat(mut event)),
                }) => {
                    event_for(&mut event, &Viewer::new(0, [self.actor]));
                    encode(&chat_event(event))
                }
                // Our own encoding: this cannot fail; if it did, the viewer gets nothing rather
                // than what they blocked (a gap they fill from the store).
                other => {
                    tracing::error!(?other, "cannot decode a relayed chat event");
                    Frame(Bytes::new())
                }
            }
        })
    }
}

/// Whether a notice is hidden from viewers who blocked its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoticeClass {
    /// Everyone it is addressed to gets it.
    Everyone,
    /// Hidden from viewers who blocked the subject (receipts, typing).
    HiddenFromBlockers,
}

/// One unsequenced event, encoded once.
#[derive(Debug)]
pub struct NoticeFrames {
    frame: Frame,
    subject: u64,
    class: NoticeClass,
}

impl NoticeFrames {
    /// The frames of `event`.
    pub(super) fn new(event: &pb::Event) -> Arc<Self> {
        let (subject, class) = match &event.kind {
            Some(pb::event::Kind::Receipt(r)) => (r.user_id, NoticeClass::HiddenFromBlockers),
            Some(pb::event::Kind::Typing(t)) => (t.user_id, NoticeClass::HiddenFromBlockers),
            Some(pb::event::Kind::Presence(p)) => (p.user_id, NoticeClass::Everyone),
            _ => (0, NoticeClass::Everyone),
        };
        Arc::new(NoticeFrames {
            frame: encode(event),
            subject,
            class,
        })
    }

    /// A notice another node encoded (see [`frame`](Self::frame)), for relays.
    pub fn relayed(frame: Bytes, subject: u64, hidden_from_blockers: bool) -> Arc<Self> {
        Arc::new(NoticeFrames {
            frame: Frame(frame),
            subject,
            class: if hidden_from_blockers {
                NoticeClass::HiddenFromBlockers
            } else {
                NoticeClass::Everyone
            },
        })
    }

    /// The encoded notice, for other nodes.
    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// The user the notice is about or from (0: none).
    pub fn subject(&self) -> u64 {
        self.subject
    }

    /// True when viewers who blocked the subject do not get it.
    pub fn hidden_from_blockers(&self) -> bool {
        self.class == NoticeClass::HiddenFromBlockers
    }

    /// The frame `viewer` gets, if any.
    pub fn frame_for(&self, viewer: &Viewer) -> Option<&Frame> {
        match self.class {
            NoticeClass::HiddenFromBlockers if viewer.has_blocked(self.subject) => None,
            _ => Some(&self.frame),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn decode(frame: &Frame) -> pb::Event {
        chatproto::frame::FrameDecoder::default()
            .decode_exact(frame.bytes())
            .expect("decode")
    }

    fn message_event(sender: u64) -> pb::ChatEvent {
        pb::ChatEvent {
            chat_id: 3,
            seq: 9,
            actor_id: sender,
            body: Some(Body::MessageCreated(pb::Message {
                chat_id: 3,
                seq: 9,
                sender_id: sender,
                text: "secret".into(),
                file_id: "f".repeat(32),
                client_msg_id: "c1".into(),
                mention_ids: vec![5],
                reactions: vec![pb::Reaction {
                    emoji: "👍".into(),
                    user_ids: vec![5],
                }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn message_of(frame: &Frame) -> pb::Message {
        match decode(frame).kind {
            Some(pb::event::Kind::Chat(pb::ChatEvent {
                body: Some(Body::MessageCreated(m)),
                ..
            })) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn members_never_see_the_client_msg_id_and_blockers_see_a_placeholder() {
        let frames = ChatEventFrames::committed(message_event(7));
        let member = Viewer::new(8, []);
        let sender = Viewer::new(7, []);
        let blocker = Viewer::new(5, [7]);
        let seen = message_of(frames.frame_for(&member));
        assert_eq!(seen.text, "secret");
        assert!(seen.client_msg_id.is_empty());
        assert_eq!(frames.frame_for(&sender), frames.frame_for(&member));
        let placeholder = message_of(frames.frame_for(&blocker));
        assert_eq!((placeholder.seq, placeholder.sender_id), (9, 7));
        assert!(placeholder.text.is_empty() && placeholder.file_id.is_empty());
        assert!(placeholder.reactions.is_empty() && placeholder.mention_ids.is_empty());
        // Encoded once per class, whatever the number of viewers.
        assert!(std::ptr::eq(
            frames.frame_for(&blocker),
            frames.frame_for(&Viewer::new(6, [7]))
        ));
    }

    #[test]
    fn relayed_frames_redact_like_committed_ones() {
        let committed = ChatEventFrames::committed(message_event(7));
        let relayed = ChatEventFrames::relayed(
            3,
            9,
            committed.actor(),
            committed.member_frame().bytes().clone(),
        );
        let blocker = Viewer::new(5, [7]);
        assert_eq!(
            relayed.frame_for(&blocker),
            committed.frame_for(&blocker),
            "the placeholder is derived from the member form"
        );
    }

    #[test]
    fn events_without_content_look_the_same_to_blockers() {
        let event = pb::ChatEvent {
            chat_id: 3,
            seq: 4,
            actor_id: 7,
            body: Some(Body::MemberRemoved(pb::MemberRemoved {
                user_id: 8,
                left: false,
            })),
            ..Default::default()
        };
        let frames = ChatEventFrames::committed(event);
        assert_eq!(frames.actor(), 0);
        assert_eq!(
            frames.frame_for(&Viewer::new(5, [7])),
            frames.frame_for(&Viewer::new(6, []))
        );
    }

    #[test]
    fn receipts_and_typing_are_hidden_from_blockers_presence_is_not() {
        let receipt = NoticeFrames::new(&pb::Event {
            kind: Some(pb::event::Kind::Receipt(pb::ReceiptUpdate {
                chat_id: 1,
                user_id: 7,
                delivered_seq: 2,
                read_seq: 2,
            })),
        });
        assert!(receipt.frame_for(&Viewer::new(5, [7])).is_none());
        assert!(receipt.frame_for(&Viewer::new(5, [6])).is_some());
        let presence = NoticeFrames::new(&pb::Event {
            kind: Some(pb::event::Kind::Presence(pb::PresenceUpdate {
                user_id: 7,
                ..Default::default()
            })),
        });
        assert!(presence.frame_for(&Viewer::new(5, [7])).is_some());
    }
}
