//! A typed method for every request kind of chat/1 (the authentication ones are in `auth.rs`).
//!
//! Each takes the request message and returns the specific answer; an answer of another kind is
//! a [`ClientError::Protocol`]. Whether a request may be repeated after a lost connection is
//! decided here, per kind: reads, writes that set absolute state, and SendMessage (idempotent by
//! `client_msg_id`) are; everything that could take effect twice is not.

use super::connection::result_name;
use super::{Client, ClientError, LinkState, Repeat};
use crate::io::encode_datagram;
use crate::pb;
use pb::request::Kind as K;
use pb::response::Result as R;

pub(crate) fn unexpected(request: &str, got: &R) -> ClientError {
    ClientError::Protocol(format!("{request} answered with {}", result_name(got)))
}

/// Generates one `async fn` per request kind.
macro_rules! requests {
    ($(
        $(#[$doc:meta])*
        $method:ident($req:ident) -> $answer:ident($out:ty), $repeat:ident;
    )*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $method(&self, req: pb::$req) -> Result<$out, ClientError> {
                    match self.call(K::$req(req), Repeat::$repeat).await? {
                        (_, R::$answer(answer)) => Ok(answer),
                        (_, other) => Err(unexpected(stringify!($req), &other)),
                    }
                }
            )*
        }
    };
}

requests! {
    /// Changes the password; every other session is revoked.
    change_password(ChangePassword) -> Ok(pb::Ok), Never;
    /// Lists the caller's sessions.
    list_sessions(ListSessions) -> Sessions(pb::SessionList), Safe;
    /// Revokes one of the caller's sessions.
    revoke_session(RevokeSession) -> Ok(pb::Ok), Never;
    /// Revokes every session of the caller but this one.
    revoke_other_sessions(RevokeOtherSessions) -> Ok(pb::Ok), Never;

    /// The caller's own profile.
    get_me(GetMe) -> User(pb::User), Safe;
    /// Profiles by id (unknown ids are left out).
    get_users(GetUsers) -> Users(pb::UserList), Safe;
    /// Updates the caller's profile; absent fields stay unchanged.
    update_profile(UpdateProfile) -> User(pb::User), Safe;
    /// Users whose username or display name starts with the query.
    search_users(SearchUsers) -> Users(pb::UserList), Safe;
    /// Adds a contact.
    add_contact(AddContact) -> Ok(pb::Ok), Safe;
    /// Removes a contact.
    remove_contact(RemoveContact) -> Ok(pb::Ok), Safe;
    /// The caller's contacts.
    list_contacts(ListContacts) -> Users(pb::UserList), Safe;
    /// Blocks a user.
    block_user(BlockUser) -> Ok(pb::Ok), Safe;
    /// Unblocks a user.
    unblock_user(UnblockUser) -> Ok(pb::Ok), Safe;
    /// The users the caller blocked.
    list_blocked(ListBlocked) -> Users(pb::UserList), Safe;

    /// Opens (creating on first use) the private chat with a user; asking again returns the
    /// same chat, so it is safe to repeat.
    create_private_chat_with(CreatePrivateChat) -> Chat(pb::Chat), Safe;
    /// Creates a group or channel owned by the caller.
    create_group(CreateGroup) -> Chat(pb::Chat), Never;
    /// Updates a chat's title, description or avatar.
    update_chat(UpdateChat) -> Chat(pb::Chat), Safe;
    /// Deletes a chat.
    delete_chat(DeleteChat) -> Ok(pb::Ok), Never;
    /// Adds members to a group or channel.
    add_members(AddMembers) -> Chat(pb::Chat), Never;
    /// Removes a member.
    remove_member(RemoveMember) -> Ok(pb::Ok), Never;
    /// Leaves a chat.
    leave_chat(LeaveChat) -> Ok(pb::Ok), Never;
    /// Promotes or demotes a member.
    set_member_role(SetMemberRole) -> Ok(pb::Ok), Safe;
    /// Hands the chat to another member.
    transfer_ownership(TransferOwnership) -> Ok(pb::Ok), Never;
    /// Pins, mutes or archives a chat for the caller.
    set_chat_state(SetChatState) -> Chat(pb::Chat), Safe;
    /// The caller's chats.
    list_chats(ListChats) -> Chats(pb::ChatList), Safe;
    /// One chat with its members.
    get_chat(GetChat) -> Chat(pb::Chat), Safe;

    /// Edits a message's text.
    edit_message(EditMessage) -> Message(pb::Message), Never;
    /// Deletes a message for everyone or hides it for the caller.
    delete_message(DeleteMessage) -> Ok(pb::Ok), Never;
    /// Adds or removes a reaction (adding twice is a no-op, so it is safe to repeat).
    react(React) -> Message(pb::Message), Safe;
    /// A page of messages.
    get_history(GetHistory) -> Messages(pb::MessageList), Safe;
    /// Full-text search.
    search_messages(SearchMessages) -> Messages(pb::MessageList), Safe;
    /// Moves the caller's delivered or read cursor forward (never backwards).
    mark_receipt(MarkReceipt) -> Ok(pb::Ok), Safe;
    /// Every member's receipt cursors in a chat.
    get_receipts(GetReceipts) -> Receipts(pb::ReceiptList), Safe;
    /// The edit history of a message.
    get_message_edits(GetMessageEdits) -> Edits(pb::EditList), Safe;

    /// The heads of the caller's chats. The client already syncs after every (re)connect; this
    /// is for applications that track state themselves.
    sync(Sync) -> Sync(pb::SyncResult), Safe;
    /// Chat events above a seq. The client already fills gaps itself; see [`Client::sync`].
    get_chat_events(GetChatEvents) -> Events(pb::ChatEventList), Safe;

    /// Server admins: list users.
    admin_list_users(AdminListUsers) -> Users(pb::UserList), Safe;
    /// Server admins: disable or enable an account.
    admin_set_user_disabled(AdminSetUserDisabled) -> Ok(pb::Ok), Safe;
    /// Server admins: delete an account.
    admin_delete_user(AdminDeleteUser) -> Ok(pb::Ok), Never;
    /// Server admins: set a new password (revokes every session of the user).
    admin_reset_password(AdminResetPassword) -> Ok(pb::Ok), Never;
    /// Server admins: set a user's server role.
    admin_set_role(AdminSetRole) -> Ok(pb::Ok), Safe;
    /// Server admins: a user's sessions.
    admin_list_sessions(AdminListSessions) -> Sessions(pb::SessionList), Safe;
    /// Server admins: revoke one or every session of a user.
    admin_revoke_sessions(AdminRevokeSessions) -> Ok(pb::Ok), Never;
}

impl Client {
    /// Opens (creating on first use) the private chat with `user_id`.
    pub async fn create_private_chat(&self, user_id: u64) -> Result<pb::Chat, ClientError> {
        self.create_private_chat_with(pb::CreatePrivateChat { user_id })
            .await
    }

    /// Sends a message. An empty `client_msg_id` is replaced by a random one; the id makes the
    /// send idempotent, so it is repeated after a lost connection without creating a duplicate.
    pub async fn send_message(&self, mut req: pb::SendMessage) -> Result<pb::Message, ClientError> {
        if req.client_msg_id.is_empty() {
            req.client_msg_id = new_client_msg_id();
        }
        match self.call(K::SendMessage(req), Repeat::Safe).await? {
            (_, R::Message(message)) => Ok(message),
            (_, other) => Err(unexpected("SendMessage", &other)),
        }
    }

    /// Sends a text message.
    pub async fn send_text(&self, chat_id: u64, text: &str) -> Result<pb::Message, ClientError> {
        self.send_message(pb::SendMessage {
            chat_id,
            kind: pb::MessageKind::Text as i32,
            text: text.into(),
            ..Default::default()
        })
        .await
    }

    /// Says "typing" in a chat: as a datagram when the connection negotiated datagrams, else
    /// with the SendTyping request.
    pub async fn send_typing(&self, chat_id: u64) -> Result<(), ClientError> {
        let link = match &*self.shared.link.borrow() {
            LinkState::Up(link) if link.datagrams => Some(link.clone()),
            _ => None,
        };
        if let Some(link) = link {
            let datagram = pb::Datagram {
                kind: Some(pb::datagram::Kind::Typing(pb::Typing {
                    chat_id,
                    ..Default::default()
                })),
            };
            match link.conn.send_datagram(encode_datagram(&datagram)) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::debug!(error = %e, "typing datagram not sent, using a request"),
            }
        }
        // A lost typing indicator does not matter: never repeated.
        match self
            .call(K::SendTyping(pb::SendTyping { chat_id }), Repeat::Never)
            .await?
        {
            (_, R::Ok(_)) => Ok(()),
            (_, other) => Err(unexpected("SendTyping", &other)),
        }
    }
}

/// A random 128-bit id in hex: 32 characters of `[0-9a-f]`, within SendMessage's rules.
pub fn new_client_msg_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_msg_ids_are_valid_and_distinct() {
        let a = super::new_client_msg_id();
        let b = super::new_client_msg_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
