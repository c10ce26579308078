//! One request per command: the SDK call and what it reports back. Each runs in its own task,
//! so a slow request never holds up the others.

use std::sync::Arc;

use chatproto::client::{Client, ClientError};
use chatproto::pb;

use super::describe::describe;
use crate::action::NetEvent;
use crate::effect::{NetCommand, UserRef};
use crate::model::window::PAGE;

/// Finds a user's id: a known id as is, a username by searching for it exactly.
pub async fn resolve(client: &Client, user: &UserRef) -> Result<u64, String> {
    match user {
        UserRef::Id(id) => Ok(*id),
        UserRef::Name(name) => {
            let found = client
                .search_users(pb::SearchUsers {
                    query: name.clone(),
                    limit: 20,
                    cursor: String::new(),
                })
                .await
                .map_err(|e| describe(&e))?;
            found
                .users
                .iter()
                .find(|u| u.username.eq_ignore_ascii_case(name))
                .map(|u| u.id)
                .ok_or_else(|| format!("there is no user @{name}"))
        }
    }
}

/// `@name` of a user, for feedback.
fn label(user: &UserRef) -> String {
    match user {
        UserRef::Id(id) => format!("user #{id}"),
        UserRef::Name(name) => format!("@{name}"),
    }
}

/// Runs one command and returns what to report (nothing for fire-and-forget requests).
pub async fn run(client: Arc<Client>, command: NetCommand) -> Vec<NetEvent> {
    let failed =
        |what: &str, e: &ClientError| vec![NetEvent::Failed(format!("{what}: {}", describe(e)))];
    match command {
        NetCommand::LoadChats => match client.list_all_chats(true).await {
            Ok(chats) => vec![NetEvent::Chats(chats)],
            Err(e) => failed("Could not load the chats", &e),
        },
        NetCommand::LoadChat(chat_id) => match client.get_chat(pb::GetChat { chat_id }).await {
            Ok(chat) => vec![NetEvent::Chat(chat)],
            // Gone meanwhile (deleted, left): its events say so.
            Err(_) => Vec::new(),
        },
        NetCommand::LoadHistory {
            chat_id,
            token,
            range,
        } => match client.history(chat_id, range, PAGE).await {
            Ok(page) => vec![NetEvent::History {
                chat_id,
                token,
                range,
                page,
            }],
            Err(e) => vec![NetEvent::HistoryFailed {
                chat_id,
                token,
                error: describe(&e),
            }],
        },
        NetCommand::LoadReceipts(chat_id) => {
            match client.get_receipts(pb::GetReceipts { chat_id }).await {
                Ok(list) => vec![NetEvent::Receipts {
                    chat_id,
                    receipts: list.receipts,
                }],
                // Channels have no receipts.
                Err(_) => Vec::new(),
            }
        }
        NetCommand::LoadUsers(ids) => match client.users_by_id(&ids).await {
            Ok(users) => vec![NetEvent::Users(users)],
            Err(_) => Vec::new(),
        },
        NetCommand::Edit { chat_id, seq, text } => {
            match client
                .edit_message(pb::EditMessage { chat_id, seq, text })
                .await
            {
                Ok(_) => vec![NetEvent::Done("Message edited.".into())],
                Err(e) => failed("Could not edit", &e),
            }
        }
        NetCommand::Delete {
            chat_id,
            seq,
            for_everyone,
        } => {
            match client
                .delete_message(pb::DeleteMessage {
                    chat_id,
                    seq,
                    for_everyone,
                })
                .await
            {
                Ok(_) if for_everyone => vec![NetEvent::Done("Deleted for everyone.".into())],
                Ok(_) => vec![NetEvent::Done("Deleted for you.".into())],
                Err(e) => failed("Could not delete", &e),
            }
        }
        NetCommand::React {
            chat_id,
            seq,
            emoji,
            remove,
        } => {
            let request = pb::React {
                chat_id,
                seq,
                emoji: emoji.clone(),
                remove,
            };
            match client.react(request).await {
                Ok(_) if remove => vec![NetEvent::Done(format!("Reaction {emoji} removed."))],
                Ok(_) => vec![NetEvent::Done(format!("Reacted {emoji}."))],
                Err(e) => failed("Could not react", &e),
            }
        }
        NetCommand::MarkRead { chat_id, seq } => {
            let request = pb::MarkReceipt {
                chat_id,
                kind: pb::ReceiptKind::Read as i32,
                up_to_seq: seq,
            };
            if let Err(e) = client.mark_receipt(request).await {
                tracing::debug!(chat_id, error = %e, "read receipt not sent");
            }
            Vec::new()
        }
        NetCommand::Typing(chat_id) => {
            if let Err(e) = client.send_typing(chat_id).await {
                tracing::debug!(chat_id, error = %e, "typing not sent");
            }
            Vec::new()
        }
        NetCommand::SearchUsers { token, query } => {
            match client
                .search_users(pb::SearchUsers {
                    query,
                    limit: 20,
                    cursor: String::new(),
                })
                .await
            {
                Ok(list) => vec![NetEvent::UserResults {
                    token,
                    users: list.users,
                }],
                Err(e) => failed("Search failed", &e),
            }
        }
        NetCommand::SearchMessages {
            token,
            query,
            chat_id,
        } => {
            let request = pb::SearchMessages {
                query,
                chat_id,
                limit: 50,
                cursor: String::new(),
            };
            match client.search_messages(request).await {
                Ok(list) => vec![NetEvent::MessageResults {
                    token,
                    messages: list.messages,
                }],
                Err(e) => failed("Search failed", &e),
            }
        }
        NetCommand::OpenPrivate(user) => match resolve(&client, &user).await {
            Ok(id) => match client.create_private_chat(id).await {
                Ok(chat) => vec![NetEvent::ChatOpened(chat)],
                Err(e) => failed(&format!("Could not open a chat with {}", label(&user)), &e),
            },
            Err(e) => vec![NetEvent::Failed(e)],
        },
        NetCommand::CreateGroup { kind, title } => {
            let request = pb::CreateGroup {
                kind: kind as i32,
                title: title.clone(),
                ..Default::default()
            };
            match client.create_group(request).await {
                Ok(chat) => vec![NetEvent::ChatOpened(chat)],
                Err(e) => failed(&format!("Could not create {title}"), &e),
            }
        }
        NetCommand::Invite { chat_id, user } => match resolve(&client, &user).await {
            Ok(id) => match client
                .add_members(pb::AddMembers {
                    chat_id,
                    user_ids: vec![id],
                })
                .await
            {
                Ok(chat) => vec![
                    NetEvent::Chat(chat),
                    NetEvent::Done(format!("{} invited.", label(&user))),
                ],
                Err(e) => failed(&format!("Could not invite {}", label(&user)), &e),
            },
            Err(e) => vec![NetEvent::Failed(e)],
        },
        NetCommand::Kick { chat_id, user } => match resolve(&client, &user).await {
            Ok(id) => match client
                .remove_member(pb::RemoveMember {
                    chat_id,
                    user_id: id,
                })
                .await
            {
                Ok(_) => vec![NetEvent::Done(format!("{} removed.", label(&user)))],
                Err(e) => failed(&format!("Could not remove {}", label(&user)), &e),
            },
            Err(e) => vec![NetEvent::Failed(e)],
        },
        NetCommand::Leave(chat_id) => match client.leave_chat(pb::LeaveChat { chat_id }).await {
            Ok(_) => vec![NetEvent::Done("You left the chat.".into())],
            // A private chat cannot be left, only deleted (for both members).
            Err(e)
                if matches!(
                    e.code(),
                    Some(pb::ErrorCode::PermissionDenied | pb::ErrorCode::InvalidArgument)
                ) =>
            {
                match client.delete_chat(pb::DeleteChat { chat_id }).await {
                    Ok(_) => vec![NetEvent::Done("Chat deleted.".into())],
                    Err(e) => failed("Could not leave", &e),
                }
            }
            Err(e) => failed("Could not leave", &e),
        },
        NetCommand::SetRole {
            chat_id,
            user,
            role,
        } => match resolve(&client, &user).await {
            Ok(id) => match client
                .set_member_role(pb::SetMemberRole {
                    chat_id,
                    user_id: id,
                    role: role as i32,
                })
                .await
            {
                Ok(_) if role == pb::MemberRole::Admin => {
                    vec![NetEvent::Done(format!("{} is now an admin.", label(&user)))]
                }
                Ok(_) => vec![NetEvent::Done(format!("{} is now a member.", label(&user)))],
                Err(e) => failed("Could not change the role", &e),
            },
            Err(e) => vec![NetEvent::Failed(e)],
        },
        NetCommand::Transfer { chat_id, user } => match resolve(&client, &user).await {
            Ok(id) => match client
                .transfer_ownership(pb::TransferOwnership {
                    chat_id,
                    user_id: id,
                })
                .await
            {
                Ok(_) => vec![NetEvent::Done(format!(
                    "{} now owns the chat.",
                    label(&user)
                ))],
                Err(e) => failed("Could not transfer the chat", &e),
            },
            Err(e) => vec![NetEvent::Failed(e)],
        },
        NetCommand::SetChatState {
            chat_id,
            pinned,
            muted_until_ms,
            archived,
        } => {
            let request = pb::SetChatState {
                chat_id,
                pinned,
                muted_until_ms,
                archived,
                mentions_only: None,
            };
            match client.set_chat_state(request).await {
                Ok(chat) => {
                    let what = match (pinned, muted_until_ms, archived) {
                        (Some(true), _, _) => "Pinned.",
                        (Some(false), _, _) => "Unpinned.",
                        (_, Some(0), _) => "Unmuted.",
                        (_, Some(_), _) => "Muted.",
                        (_, _, Some(true)) => "Archived.",
                        _ => "Moved out of the archive.",
                    };
                    vec![NetEvent::Chat(chat), NetEvent::Done(what.into())]
                }
                Err(e) => failed("Could not change the chat", &e),
            }
        }
        NetCommand::UpdateProfile(request) => match client.update_profile(request).await {
            Ok(me) => vec![NetEvent::Me(me), NetEvent::Done("Profile updated.".into())],
            Err(e) => failed("Could not update the profile", &e),
        },
        NetCommand::ListContacts { token } => {
            match all_users(|cursor| client.list_contacts(pb::ListContacts { limit: 0, cursor }))
                .await
            {
                Ok(users) => vec![NetEvent::UserResults { token, users }],
                Err(e) => failed("Could not load the contacts", &e),
            }
        }
        NetCommand::ListBlocked { token } => {
            match all_users(|cursor| client.list_blocked(pb::ListBlocked { limit: 0, cursor }))
                .await
            {
                Ok(users) => vec![NetEvent::UserResults { token, users }],
                Err(e) => failed("Could not load the blocked users", &e),
            }
        }
        NetCommand::AddContact(user) => {
            user_op(
                &client,
                &user,
                "added to your contacts",
                |c, id| async move {
                    c.add_contact(pb::AddContact { user_id: id })
                        .await
                        .map(drop)
                },
            )
            .await
        }
        NetCommand::RemoveContact(user) => {
            user_op(
                &client,
                &user,
                "removed from your contacts",
                |c, id| async move {
                    c.remove_contact(pb::RemoveContact { user_id: id })
                        .await
                        .map(drop)
                },
            )
            .await
        }
        NetCommand::Block(user) => {
            user_op(&client, &user, "blocked", |c, id| async move {
                c.block_user(pb::BlockUser { user_id: id }).await.map(drop)
            })
            .await
        }
        NetCommand::Unblock(user) => {
            user_op(&client, &user, "unblocked", |c, id| async move {
                c.unblock_user(pb::UnblockUser { user_id: id })
                    .await
                    .map(drop)
            })
            .await
        }
        NetCommand::ListSessions => match client.list_sessions(pb::ListSessions {}).await {
            Ok(list) => vec![NetEvent::Sessions(list.sessions)],
            Err(e) => failed("Could not list the sessions", &e),
        },
        NetCommand::RevokeSession(session_id) => match client
            .revoke_session(pb::RevokeSession { session_id })
            .await
        {
            Ok(_) => vec![NetEvent::Done(format!("Session #{session_id} revoked."))],
            Err(e) => failed("Could not revoke the session", &e),
        },
        NetCommand::ShowProfile(user) => match resolve(&client, &user).await {
            Ok(id) => match client.users_by_id(&[id]).await {
                Ok(mut users) if !users.is_empty() => vec![NetEvent::Profile(users.remove(0))],
                Ok(_) => vec![NetEvent::Failed(format!("there is no {}", label(&user)))],
                Err(e) => failed("Could not load the profile", &e),
            },
            Err(e) => vec![NetEvent::Failed(e)],
        },
        NetCommand::LoadCallRecords {
            chat_id,
            after_seq,
            up_to_seq,
        } => match client.call_records(chat_id, after_seq, up_to_seq).await {
            Ok(events) if events.is_empty() => Vec::new(),
            Ok(events) => vec![NetEvent::CallRecords { chat_id, events }],
            // The messages are there; the calls between them are a nicety.
            Err(e) => {
                tracing::debug!(chat_id, error = %e, "call records not loaded");
                Vec::new()
            }
        },
        NetCommand::TwoFactor(step) => vec![super::two_factor::run(&client, step).await],
        NetCommand::Account(step) => vec![super::account::run(&client, step).await],
        NetCommand::StartCall { .. }
        | NetCommand::AcceptCall(_)
        | NetCommand::EndCall(_)
        | NetCommand::LoadGroupCall(_) => super::calls::run(&client, &command)
            .await
            .into_iter()
            .collect(),
        // Handled by the session itself (they change what the client is, or are transfers it
        // may cancel).
        NetCommand::Trust(_)
        | NetCommand::SignIn { .. }
        | NetCommand::Register { .. }
        | NetCommand::RequestReset { .. }
        | NetCommand::ResetPassword { .. }
        | NetCommand::Queue(_)
        | NetCommand::SignOut
        | NetCommand::Upload { .. }
        | NetCommand::Download { .. }
        | NetCommand::CancelTransfer(_) => Vec::new(),
    }
}

/// A request about one user that answers `ok`, with feedback.
async fn user_op<F, Fut>(client: &Arc<Client>, user: &UserRef, done: &str, op: F) -> Vec<NetEvent>
where
    F: FnOnce(Arc<Client>, u64) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    match resolve(client, user).await {
        Ok(id) => match op(client.clone(), id).await {
            Ok(()) => vec![NetEvent::Done(format!("{} {done}.", label(user)))],
            Err(e) => vec![NetEvent::Failed(format!(
                "{}: {}",
                label(user),
                describe(&e)
            ))],
        },
        Err(e) => vec![NetEvent::Failed(e)],
    }
}

/// Every user of a paged list (contacts, blocked users): pages on until the cursor runs out.
async fn all_users<F, Fut>(mut page: F) -> Result<Vec<pb::User>, ClientError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<pb::UserList, ClientError>>,
{
    let mut users = Vec::new();
    let mut cursor = String::new();
    loop {
        let list = page(cursor).await?;
        users.extend(list.users);
        if list.next_cursor.is_empty() {
            return Ok(users);
        }
        cursor = list.next_cursor;
    }
}
