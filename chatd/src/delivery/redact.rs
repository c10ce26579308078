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
//! - **blocked author**: for a viewer who blocked the author of the event's content (the sender
//!   of a message, the editor of an edit): the message becomes a placeholder
//!   (`from_blocked_user`, spec 9.2) that keeps its seq (so catch-up stays gap-free), its sender
//!   and its times, but carries no text, file, reply, forward origin, reactions or mentions; an
//!   edit by them carries no text.
//!
//! Both are [`redact_event`] applied for a stand-in viewer; every answer (history, catch-up,
//! chat lists, a message answered to its requester) applies the same functions
//! ([`redact_event`], [`redact_message`]) for the real viewer, so live events and answers agree
//! on what each viewer sees. This module is the one place that decides it.
//!
//! A notice (an unsequenced event: presence, receipts, typing, chat state...) has one encoding
//! and is hidden from a viewer who blocked the user it comes from when it is a receipt or a
//! typing signal.
//!
//! The member encoding is made eagerly (almost every viewer needs it); the other only when a
//! viewer needs it, from the member form, so an event relayed from another node is never
//! decoded unless a local viewer blocked its actor.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use chatproto::pb;
use chatproto::pb::chat_event::Body;

use crate::store::{Store, StoreResult};

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
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty frame (an event that could not be encoded).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Encodes one event as a frame. Events are built by the server from validated, bounded data;
/// one too large to send is a bug, logged, and an empty frame, for which delivery closes the
/// connection with RESYNC (`registry::push`).
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

/// Who an answer or a frame is for: a user and the users they blocked. Immutable; delivery
/// replaces it as a whole when their blocks change. Build it with [`load`](Self::load) for
/// anything that can carry other people's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    user_id: u64,
    /// Ascending, without duplicates.
    blocked: Vec<u64>,
}

impl Viewer {
    /// `user_id`, who blocked `blocked`.
    pub fn new(user_id: u64, blocked: impl IntoIterator<Item = u64>) -> Self {
        let mut blocked: Vec<u64> = blocked.into_iter().collect();
        blocked.sort_unstable();
        blocked.dedup();
        Viewer { user_id, blocked }
    }

    /// `user_id` with their blocks as the store has them now.
    pub async fn load(store: &dyn Store, user_id: u64) -> StoreResult<Self> {
        Ok(Viewer::new(user_id, store.blocked(user_id).await?))
    }

    /// `user_id` for an answer that carries only their own message (nobody blocks themselves).
    pub fn own(user_id: u64) -> Self {
        Viewer::new(user_id, [])
    }

    /// Someone who is nobody in particular: what every member may see (no one's
    /// `client_msg_id`, nothing blocked).
    pub fn anyone() -> Self {
        Viewer::default()
    }

    /// Every member who blocked `author`, as one viewer: the placeholder class.
    fn blockers_of(author: u64) -> Self {
        Viewer::new(0, [author])
    }

    /// The viewer's user id.
    pub fn user_id(&self) -> u64 {
        self.user_id
    }

    /// The users the viewer blocked, ascending.
    pub fn blocked(&self) -> &[u64] {
        &self.blocked
    }

    /// True when the viewer blocked `user`.
    pub fn blocks(&self, user: u64) -> bool {
        self.blocked.binary_search(&user).is_ok()
    }
}

/// Most different emoji a message takes and shows (spec 10).
pub const MAX_REACTION_EMOJI: usize = 20;

/// Most users a view of one reaction lists by id (besides the viewer); `Reaction.count` has
/// them all. Together with [`MAX_REACTION_EMOJI`] this bounds a message's size whatever the
/// size of its chat (see [`page::max`](crate::handlers::page::max)).
pub const MAX_REACTION_USERS_SHOWN: usize = 100;

/// Turns a message into what `viewer` may see: a placeholder when they blocked its sender
/// (spec 9.2); otherwise without what only the sender may see, and with its reactions capped
/// ([`cap_reactions`]).
pub fn redact_message(message: &mut pb::Message, viewer: &Viewer) {
    if viewer.blocks(message.sender_id) {
        *message = placeholder(message);
        return;
    }
    if message.sender_id != viewer.user_id {
        message.client_msg_id.clear();
    }
    cap_reactions(message, viewer.user_id);
}

/// A message as a user who blocked its sender sees it (spec 9.2): where it is in the chat, who
/// sent it and when, whether it was deleted; no content, no file, no reactions, no edits.
fn placeholder(message: &pb::Message) -> pb::Message {
    pb::Message {
        chat_id: message.chat_id,
        seq: message.seq,
        sender_id: message.sender_id,
        kind: message.kind,
        sent_at_ms: message.sent_at_ms,
        deleted: message.deleted,
        deleted_at_ms: message.deleted_at_ms,
        from_blocked_user: true,
        ..Default::default()
    }
}

/// Keeps the first [`MAX_REACTION_EMOJI`] emoji of a message and, of each, the first
/// [`MAX_REACTION_USERS_SHOWN`] users plus `viewer` when they reacted later, so a client can
/// still tell its own reactions.
pub fn cap_reactions(message: &mut pb::Message, viewer: u64) {
    message.reactions.truncate(MAX_REACTION_EMOJI);
    for reaction in &mut message.reactions {
        if reaction.user_ids.len() > MAX_REACTION_USERS_SHOWN {
            let viewer_later = reaction
                .user_ids
                .get(MAX_REACTION_USERS_SHOWN..)
                .is_some_and(|later| later.contains(&viewer));
            reaction.user_ids.truncate(MAX_REACTION_USERS_SHOWN);
            if viewer_later {
                reaction.user_ids.push(viewer);
            }
        }
    }
}

/// Removes from a chat event what `viewer` may not see: a message as [`redact_message`] shows
/// it, the text of an edit by a user they blocked (only the sender edits: the actor is the
/// author), and any per-user view embedded in a `chat_created` snapshot. `reaction_changed`
/// is not altered (spec 9.2).
pub fn redact_event(event: &mut pb::ChatEvent, viewer: &Viewer) {
    match &mut event.body {
        Some(Body::MessageCreated(m)) => redact_message(m, viewer),
        Some(Body::MessageEdited(edit)) if viewer.blocks(event.actor_id) => edit.text.clear(),
        Some(Body::ChatCreated(chat)) => {
            chat.state = None;
            chat.last_message = None;
        }
        _ => {}
    }
}

/// The user whose blockers see `event` differently: the sender of a new message, the editor of
/// an edit.
fn content_actor(event: &pb::ChatEvent) -> Option<u64> {
    match &event.body {
        Some(Body::MessageCreated(m)) => Some(m.sender_id),
        Some(Body::MessageEdited(_)) => Some(event.actor_id),
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
        redact_event(&mut event, &Viewer::anyone());
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
        if self.actor == 0 || !viewer.blocks(self.actor) {
            return &self.member;
        }
        self.blocked_actor.get_or_init(|| {
            let decoded: Result<pb::Event, _> =
                chatproto::frame::FrameDecoder::default().decode_exact(&self.member.0);
            match decoded {
                Ok(pb::Event {
                    kind: Some(pb::event::Kind::Chat(mut event)),
                }) => {
                    redact_event(&mut event, &Viewer::blockers_of(self.actor));
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
            NoticeClass::HiddenFromBlockers if viewer.blocks(self.subject) => None,
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
                    count: 1,
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
        assert!(placeholder.from_blocked_user);
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

    fn redacted(event: &pb::ChatEvent, viewer: &Viewer) -> pb::ChatEvent {
        let mut event = event.clone();
        redact_event(&mut event, viewer);
        event
    }

    #[test]
    fn client_msg_id_is_shown_only_to_the_sender() {
        let message = pb::Message {
            sender_id: 7,
            client_msg_id: "abc".into(),
            ..Default::default()
        };
        let mut own = message.clone();
        redact_message(&mut own, &Viewer::own(7));
        assert_eq!(own.client_msg_id, "abc");
        let mut other = message.clone();
        redact_message(&mut other, &Viewer::own(8));
        assert!(other.client_msg_id.is_empty());
        let event = pb::ChatEvent {
            body: Some(Body::MessageCreated(message)),
            ..Default::default()
        };
        match redacted(&event, &Viewer::anyone()).body {
            Some(Body::MessageCreated(m)) => assert!(m.client_msg_id.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reactions_are_capped_and_the_viewer_still_sees_its_own() {
        let many = MAX_REACTION_USERS_SHOWN as u64 + 50;
        let message = pb::Message {
            reactions: (0..MAX_REACTION_EMOJI + 5)
                .map(|i| pb::Reaction {
                    emoji: format!("e{i}"),
                    user_ids: (1..=many).collect(),
                    count: many as u32,
                })
                .collect(),
            ..Default::default()
        };
        let mut late = message.clone();
        redact_message(&mut late, &Viewer::own(many));
        assert_eq!(late.reactions.len(), MAX_REACTION_EMOJI);
        let first = &late.reactions[0];
        assert_eq!(first.user_ids.len(), MAX_REACTION_USERS_SHOWN + 1);
        assert_eq!(first.user_ids.last(), Some(&many));
        assert_eq!(first.count, many as u32);
        let mut early = message.clone();
        redact_message(&mut early, &Viewer::own(1));
        assert_eq!(early.reactions[0].user_ids.len(), MAX_REACTION_USERS_SHOWN);
    }

    #[test]
    fn a_blocker_gets_placeholders_without_content() {
        let message = pb::Message {
            chat_id: 3,
            seq: 9,
            sender_id: 7,
            kind: pb::MessageKind::Image as i32,
            text: "caption".into(),
            file_id: "f".into(),
            reply_to_seq: 2,
            sent_at_ms: 5,
            edited: true,
            edited_at_ms: 6,
            reactions: vec![pb::Reaction {
                emoji: "x".into(),
                user_ids: vec![1],
                count: 1,
            }],
            mention_ids: vec![1],
            client_msg_id: "c".into(),
            attachment: Some(Box::default()),
            ..Default::default()
        };
        let blocker = Viewer::new(1, [7, 4]);
        let mut seen = message.clone();
        redact_message(&mut seen, &blocker);
        assert_eq!(
            seen,
            pb::Message {
                chat_id: 3,
                seq: 9,
                sender_id: 7,
                kind: pb::MessageKind::Image as i32,
                sent_at_ms: 5,
                from_blocked_user: true,
                ..Default::default()
            }
        );
        let edit = pb::ChatEvent {
            actor_id: 7,
            body: Some(Body::MessageEdited(pb::MessageEdited {
                message_seq: 9,
                text: "new".into(),
                edited_at_ms: 8,
            })),
            ..Default::default()
        };
        match redacted(&edit, &Viewer::blockers_of(7)).body {
            Some(Body::MessageEdited(e)) => assert!(e.text.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(redacted(&edit, &Viewer::own(1)), edit);
        let mut unblocked = message.clone();
        redact_message(&mut unblocked, &Viewer::own(1));
        assert!(!unblocked.from_blocked_user && unblocked.text == "caption");
    }

    #[test]
    fn reactions_by_a_blocked_user_are_not_altered() {
        let reaction = pb::ChatEvent {
            chat_id: 3,
            seq: 10,
            actor_id: 7,
            body: Some(Body::ReactionChanged(pb::ReactionChanged {
                message_seq: 9,
                emoji: "x".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(redacted(&reaction, &Viewer::blockers_of(7)), reaction);
        let frames = ChatEventFrames::committed(reaction);
        assert_eq!(frames.actor(), 0);
    }
}
