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

/// Removes what only the sender may see from a message shown to `viewer`.
pub fn redact_message(message: &mut pb::Message, viewer: u64) {
    if message.sender_id != viewer {
        message.client_msg_id.clear();
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
}
