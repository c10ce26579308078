//! What a caller sees: store records turned into wire types for one viewer.
//!
//! The store keeps messages as they were sent, including the sender's `client_msg_id`; the wire
//! contract shows it only to the sender, so every message that leaves the server for someone
//! else passes through [`redact_message`] (directly or inside an event).

use chatproto::pb;

use crate::error::ApiResult;
use crate::handlers::access::chat_not_found;
use crate::state::AppState;
use crate::store::{MemberRecord, UserChat, UserChatState};

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
pub fn chat_to_pb(uc: &UserChat, viewer: u64) -> pb::Chat {
    let chat = &uc.chat;
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
        last_message: uc.last_message.clone().map(|mut m| {
            redact_message(&mut m, viewer);
            m
        }),
        member_count: chat.member_count,
        members: Vec::new(),
        state: Some(user_state_to_pb(&uc.state, uc.member.role, uc.unread_count)),
    }
}

/// Most different emoji a message takes and shows (spec 10).
pub const MAX_REACTION_EMOJI: usize = 20;

/// Most users a view of one reaction lists by id (besides the viewer); `Reaction.count` has
/// them all. Together with [`MAX_REACTION_EMOJI`] this bounds a message's size whatever the
/// size of its chat (see [`page::max`](super::page::max)).
pub const MAX_REACTION_USERS_SHOWN: usize = 100;

/// Removes what only the sender may see from a message shown to `viewer`, and caps its
/// reactions ([`cap_reactions`]).
pub fn redact_message(message: &mut pb::Message, viewer: u64) {
    if message.sender_id != viewer {
        message.client_msg_id.clear();
    }
    cap_reactions(message, viewer);
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

/// Removes what `viewer` may not see from a chat event: others' `client_msg_id`, and any
/// per-user view embedded in a `chat_created` snapshot.
pub fn redact_event(event: &mut pb::ChatEvent, viewer: u64) {
    use pb::chat_event::Body;
    match &mut event.body {
        Some(Body::MessageCreated(m)) => redact_message(m, viewer),
        Some(Body::ChatCreated(chat)) => {
            chat.state = None;
            chat.last_message = None;
        }
        _ => {}
    }
}

/// A chat event as fanned out live to every member at once: nobody's `client_msg_id` (the
/// sender has it in their response) and no per-user view.
pub fn broadcast_form(event: &pb::ChatEvent) -> pb::ChatEvent {
    let mut event = event.clone();
    redact_event(&mut event, 0);
    event
}

/// Publishes a committed chat event live to `recipients` (in its [`broadcast_form`]).
pub fn publish(state: &AppState, recipients: Vec<u64>, event: &pb::ChatEvent) {
    state
        .fanout
        .publish_chat_event(recipients, &broadcast_form(event));
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
    let mut chat = chat_to_pb(&uc, user);
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
        redact_message(&mut own, 7);
        assert_eq!(own.client_msg_id, "abc");
        let mut other = message.clone();
        redact_message(&mut other, 8);
        assert!(other.client_msg_id.is_empty());
        let event = pb::ChatEvent {
            body: Some(pb::chat_event::Body::MessageCreated(message)),
            ..Default::default()
        };
        match broadcast_form(&event).body {
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
        redact_message(&mut late, many);
        assert_eq!(late.reactions.len(), MAX_REACTION_EMOJI);
        let first = &late.reactions[0];
        assert_eq!(first.user_ids.len(), MAX_REACTION_USERS_SHOWN + 1);
        assert_eq!(first.user_ids.last(), Some(&many));
        assert_eq!(first.count, many as u32);
        let mut early = message.clone();
        redact_message(&mut early, 1);
        assert_eq!(early.reactions[0].user_ids.len(), MAX_REACTION_USERS_SHOWN);
    }
}
