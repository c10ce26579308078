//! What a caller sees: store records turned into wire types for one viewer.
//!
//! The store keeps messages as they were sent. Two things depend on who looks: only the sender
//! sees a message's `client_msg_id`, and a user who blocked the sender gets a placeholder
//! instead of the message (spec 9.2). Every message and chat event that leaves the server passes
//! through [`redact_message`] / [`redact_event`] with its [`Viewer`] — in answers, in catch-up,
//! and live, where [`publish`] sends the broadcast form to most members and the placeholder form
//! to those who blocked the author.

use chatproto::pb;

use crate::error::ApiResult;
use crate::handlers::access::chat_not_found;
use crate::state::AppState;
use crate::store::{ChatRecord, MemberRecord, UserChat, UserChatState};

/// Who an answer or event is for: a user and the users they blocked. Build it with
/// [`load`](Self::load) for anything that can carry other people's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer {
    id: u64,
    /// Ascending.
    blocked: Vec<u64>,
}

impl Viewer {
    /// `id` with their blocks as they are now.
    pub async fn load(state: &AppState, id: u64) -> ApiResult<Self> {
        let mut blocked = state.store.blocked(id).await?;
        blocked.sort_unstable();
        Ok(Self { id, blocked })
    }

    /// `id` for an answer that carries only their own message (nobody blocks themselves).
    pub fn own(id: u64) -> Self {
        Self {
            id,
            blocked: Vec::new(),
        }
    }

    /// Every member at once, as a live event is broadcast: nobody's `client_msg_id`.
    fn everyone() -> Self {
        Self::default()
    }

    /// The members who blocked `author`, as one viewer: the live placeholder copy.
    fn blockers_of(author: u64) -> Self {
        Self {
            id: 0,
            blocked: vec![author],
        }
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

/// The wire form of a membership row.
pub fn member_to_pb(m: &MemberRecord) -> pb::Member {
    pb::Member {
        user_id: m.user_id,
        role: m.role as i32,
        joined_at_ms: m.joined_at_ms,
    }
}

/// The caller's own view of a chat.
pub fn user_state_to_pb(
    state: &UserChatState,
    role: pb::MemberRole,
    unread_count: u32,
) -> pb::ChatUserState {
    pb::ChatUserState {
        role: role as i32,
        pinned: state.pinned,
        muted_until_ms: state.muted_until_ms,
        archived: state.archived,
        delivered_seq: state.delivered_seq,
        read_seq: state.read_seq,
        unread_count,
    }
}

/// A chat as `viewer` sees it (without the member list).
pub fn chat_to_pb(uc: &UserChat, viewer: &Viewer) -> pb::Chat {
    pb::Chat {
        last_message: uc.last_message.clone().map(|mut m| {
            redact_message(&mut m, viewer);
            m
        }),
        state: Some(user_state_to_pb(&uc.state, uc.member.role, uc.unread_count)),
        ..chat_outside_view(&uc.chat)
    }
}

/// A chat as a server admin who is not in it sees it (`admin_list_chats`, `admin_get_chat`):
/// what every member sees of the chat itself, no message and no member's own state.
pub fn chat_outside_view(chat: &ChatRecord) -> pb::Chat {
    pb::Chat {
        id: chat.id,
        kind: chat.kind as i32,
        title: chat.title.clone(),
        description: chat.description.clone(),
        avatar_file_id: chat.avatar_file_id.clone(),
        owner_id: chat.owner_id,
        created_at_ms: chat.created_at_ms,
        last_seq: chat.last_seq,
        last_activity_ms: chat.last_activity_ms,
        last_message: None,
        member_count: chat.member_count,
        members: Vec::new(),
        state: None,
    }
}

/// Most different emoji a message takes and shows (spec 10).
pub const MAX_REACTION_EMOJI: usize = 20;

/// Most users a view of one reaction lists by id (besides the viewer); `Reaction.count` has
/// them all. Together with [`MAX_REACTION_EMOJI`] this bounds a message's size whatever the
/// size of its chat (see [`page::max`](super::page::max)).
pub const MAX_REACTION_USERS_SHOWN: usize = 100;

/// Turns a message into what `viewer` may see: a placeholder when they blocked its sender;
/// otherwise without what only the sender may see, and with its reactions capped
/// ([`cap_reactions`]).
pub fn redact_message(message: &mut pb::Message, viewer: &Viewer) {
    if viewer.blocks(message.sender_id) {
        *message = placeholder(message);
        return;
    }
    if message.sender_id != viewer.id {
        message.client_msg_id.clear();
    }
    cap_reactions(message, viewer.id);
}

/// A message as a user who blocked its sender sees it (spec 9.2): where it is in the chat, who
/// sent it and when, whether it was deleted; no content, no reactions, no edits.
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

/// Removes what `viewer` may not see from a chat event: a message as [`redact_message`] shows
/// it, the text of an edit by a user they blocked, and any per-user view embedded in a
/// `chat_created` snapshot.
pub fn redact_event(event: &mut pb::ChatEvent, viewer: &Viewer) {
    use pb::chat_event::Body;
    match &mut event.body {
        Some(Body::MessageCreated(m)) => redact_message(m, viewer),
        // Only the sender edits a message: the actor is its author.
        Some(Body::MessageEdited(edit)) if viewer.blocks(event.actor_id) => edit.text.clear(),
        Some(Body::ChatCreated(chat)) => {
            chat.state = None;
            chat.last_message = None;
        }
        _ => {}
    }
}

/// `event` as `viewer` sees it.
fn redacted(event: &pb::ChatEvent, viewer: &Viewer) -> pb::ChatEvent {
    let mut event = event.clone();
    redact_event(&mut event, viewer);
    event
}

/// The author whose blockers see `event` differently: the sender of a new message, the
/// editor of an edit.
fn content_author(event: &pb::ChatEvent) -> Option<u64> {
    use pb::chat_event::Body;
    match &event.body {
        Some(Body::MessageCreated(m)) => Some(m.sender_id),
        Some(Body::MessageEdited(_)) => Some(event.actor_id),
        _ => None,
    }
}

/// Publishes a committed chat event live to `recipients`: the broadcast form (nobody's
/// `client_msg_id`, no per-user view) and, for recipients who blocked the author of a message
/// in it, the placeholder form. When the blocks cannot be read, the event is not sent live at
/// all (rather than to someone who must not see it): members get it at their next catch-up.
pub async fn publish(state: &AppState, mut recipients: Vec<u64>, event: &pb::ChatEvent) {
    let mut blockers_copy = None;
    if let Some(author) = content_author(event) {
        let blockers = match state.store.blocked_by(author).await {
            Ok(blockers) => blockers,
            Err(e) => {
                tracing::warn!(error = %e, chat_id = event.chat_id, seq = event.seq, "blocks unreadable: event not sent live");
                return;
            }
        };
        if !blockers.is_empty() {
            let (masked, rest): (Vec<u64>, Vec<u64>) = recipients
                .into_iter()
                .partition(|r| blockers.binary_search(r).is_ok());
            recipients = rest;
            blockers_copy = Some((masked, redacted(event, &Viewer::blockers_of(author))));
        }
    }
    state.fanout.publish_chat_event(
        recipients,
        &redacted(event, &Viewer::everyone()),
        blockers_copy
            .as_ref()
            .map(|(users, e)| (users.as_slice(), e)),
    );
}

/// The chat as `user` sees it now, optionally with its member list; NOT_FOUND "chat not found"
/// when they are not a member.
pub async fn chat_view(
    state: &AppState,
    chat_id: u64,
    user: u64,
    with_members: bool,
) -> ApiResult<pb::Chat> {
    let uc = state
        .store
        .user_chat(chat_id, user)
        .await?
        .ok_or_else(chat_not_found)?;
    if uc.member.left_at_seq.is_some() {
        return Err(chat_not_found());
    }
    let mut chat = chat_to_pb(&uc, &Viewer::load(state, user).await?);
    if with_members {
        chat.members = state
            .store
            .members(chat_id)
            .await?
            .iter()
            .map(member_to_pb)
            .collect();
    }
    Ok(chat)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            body: Some(pb::chat_event::Body::MessageCreated(message)),
            ..Default::default()
        };
        match redacted(&event, &Viewer::everyone()).body {
            Some(pb::chat_event::Body::MessageCreated(m)) => assert!(m.client_msg_id.is_empty()),
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
            ..Default::default()
        };
        let blocker = Viewer {
            id: 1,
            blocked: vec![4, 7],
        };
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
            body: Some(pb::chat_event::Body::MessageEdited(pb::MessageEdited {
                message_seq: 9,
                text: "new".into(),
                edited_at_ms: 8,
            })),
            ..Default::default()
        };
        match redacted(&edit, &Viewer::blockers_of(7)).body {
            Some(pb::chat_event::Body::MessageEdited(e)) => assert!(e.text.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(redacted(&edit, &Viewer::own(1)), edit);
        let mut unblocked = message.clone();
        redact_message(&mut unblocked, &Viewer::own(1));
        assert!(!unblocked.from_blocked_user && unblocked.text == "caption");
    }
}
