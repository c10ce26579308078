//! What a caller sees: store records turned into wire types for one viewer.
//!
//! The store keeps messages as they were sent. Two things depend on who looks: only the sender
//! sees a message's `client_msg_id`, and a user who blocked the sender gets a placeholder
//! instead of the message (spec 9.2). Both are decided in one place,
//! [`crate::delivery::redact`], which every message and event that leaves the server passes
//! through with its [`Viewer`]: answers and catch-up here, live events in delivery.

use chatproto::pb;

use crate::delivery::redact::{Viewer, redact_message};
use crate::error::ApiResult;
use crate::handlers::access::chat_not_found;
use crate::state::AppState;
use crate::store::{ChatRecord, MemberRecord, UserChat, UserChatState};

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
        mentions_only: state.mentions_only,
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
    let mut chat = chat_to_pb(&uc, &Viewer::load(&*state.store, user).await?);
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
