//! Windows over the main screen: opening the pickers, typing in them, choosing, prompts and
//! confirmations.

use chatproto::pb;

use super::{Input, chat, compose, pickers};
use crate::effect::{AccountCommand, Effect, NetCommand, UserRef};
use crate::keys::Command;
use crate::model::{Level, Model, Overlay};
use crate::widgets::dialog::{Confirm, Info, PromptPurpose};
use crate::widgets::picker::{Item, Picker, Purpose, Value};

/// Rows a page key moves in a list.
const PAGE_ROWS: isize = 10;

pub(super) fn on_key(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    let Some(overlay) = &mut model.overlay else {
        return;
    };
    match overlay {
        Overlay::Help { scroll } => match input {
            Input::Command(Command::Up) => *scroll = scroll.saturating_sub(1),
            Input::Command(Command::Down) => *scroll = scroll.saturating_add(1),
            Input::Command(Command::PageUp) => *scroll = scroll.saturating_sub(PAGE_ROWS as u16),
            Input::Command(Command::PageDown) => *scroll = scroll.saturating_add(PAGE_ROWS as u16),
            Input::Command(Command::Cancel | Command::Help | Command::Open) | Input::Text('q') => {
                model.overlay = None;
            }
            _ => {}
        },
        Overlay::Info(_) => {
            if matches!(
                input,
                Input::Command(Command::Cancel | Command::Open) | Input::Text('q')
            ) {
                model.overlay = None;
            }
        }
        Overlay::Confirm(confirm) => match input {
            Input::Text('y' | 'Y') => {
                let command = confirm.command.clone();
                model.overlay = None;
                effects.push(Effect::Net(command));
            }
            Input::Text('n' | 'N') | Input::Command(Command::Cancel) => model.overlay = None,
            _ => {}
        },
        Overlay::Prompt(prompt) => match input {
            Input::Text(c) => prompt.input.insert(c),
            Input::Command(Command::Cancel) => model.overlay = None,
            Input::Command(Command::Submit) => {
                let purpose = prompt.purpose;
                let carry = std::mem::take(&mut prompt.carry);
                // A password is taken as typed; other answers without surrounding spaces.
                let answer = if purpose.secret() {
                    prompt.input.text().to_string()
                } else {
                    prompt.input.text().trim().to_string()
                };
                if answer.is_empty() {
                    return;
                }
                model.overlay = None;
                let kind = match purpose {
                    PromptPurpose::NewGroup => pb::ChatKind::Group,
                    PromptPurpose::NewChannel => pb::ChatKind::Channel,
                    PromptPurpose::Upload => {
                        return match crate::slash::path(&answer) {
                            Ok(path) => super::files::upload(model, path, effects),
                            Err(e) => model.notify(Level::Error, e),
                        };
                    }
                    PromptPurpose::ChangeEmailPassword => {
                        effects.push(Effect::Net(NetCommand::Account(
                            AccountCommand::ChangeEmail {
                                password: answer,
                                new_email: carry,
                            },
                        )));
                        return;
                    }
                    PromptPurpose::TwoFactorPassword
                    | PromptPurpose::TwoFactorEnable
                    | PromptPurpose::TwoFactorDisable
                    | PromptPurpose::TwoFactorRecoveryCodes => {
                        effects.extend(super::two_factor::answered(purpose, answer));
                        return;
                    }
                };
                effects.push(Effect::Net(NetCommand::CreateGroup {
                    kind,
                    title: answer,
                }));
            }
            Input::Command(c) => {
                prompt.input.apply(c);
            }
        },
        Overlay::Picker(picker) => match input {
            Input::Text(c) => {
                picker.query.insert(c);
                query_changed(model, effects);
            }
            Input::Command(Command::Up) => picker.move_by(-1),
            Input::Command(Command::Down) => picker.move_by(1),
            Input::Command(Command::PageUp) => picker.move_by(-PAGE_ROWS),
            Input::Command(Command::PageDown) => picker.move_by(PAGE_ROWS),
            Input::Command(Command::Open) => choose(model, effects),
            Input::Command(Command::Cancel) => model.overlay = None,
            Input::Command(c) => {
                if picker.query.apply(c) {
                    query_changed(model, effects);
                }
            }
        },
    }
}

/// The query of a picker changed: filter again, or ask the server.
pub(super) fn query_changed(model: &mut Model, effects: &mut Vec<Effect>) {
    let token = model.ids.token();
    let Some(Overlay::Picker(picker)) = &mut model.overlay else {
        return;
    };
    picker.selected = 0;
    if picker.remote.is_none() {
        return;
    }
    let query = picker.query.text().trim().to_string();
    if query.is_empty() {
        picker.items.clear();
        picker.loading = false;
        return;
    }
    let command = match &picker.purpose {
        Purpose::Search { chat_id } => NetCommand::SearchMessages {
            token,
            query,
            chat_id: *chat_id,
        },
        Purpose::NewPrivateChat | Purpose::Invite(_) | Purpose::AddContact => {
            NetCommand::SearchUsers {
                token,
                query: query.trim_start_matches('@').to_string(),
            }
        }
        // Lists loaded once (contacts, blocked users) filter locally.
        _ => return,
    };
    picker.remote = Some(token);
    picker.loading = true;
    effects.push(Effect::Net(command));
}

/// Queues the forward of `m` to `target`.
pub(super) fn forward(model: &mut Model, m: &pb::Message, target: u64, effects: &mut Vec<Effect>) {
    let request = pb::SendMessage {
        chat_id: target,
        forward: Some(pb::MessageRef {
            chat_id: m.chat_id,
            seq: m.seq,
        }),
        ..Default::default()
    };
    compose::queue(model, request, effects);
    let title = model.chats.title(target, &model.users);
    model.notify(Level::Info, format!("Forwarding to {title}…"));
}

/// Enter (or a click) in a picker: do what it is for with the highlighted item.
pub(super) fn choose(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(Overlay::Picker(picker)) = &model.overlay else {
        return;
    };
    let Some(item) = picker.chosen().cloned() else {
        return;
    };
    let purpose = picker.purpose.clone();
    model.overlay = None;
    let net = |effects: &mut Vec<Effect>, c| effects.push(Effect::Net(c));
    match (purpose, item.value) {
        (Purpose::NewPrivateChat | Purpose::Contacts, Value::User(id)) => {
            net(effects, NetCommand::OpenPrivate(UserRef::Id(id)))
        }
        (Purpose::Invite(chat_id), Value::User(id)) => net(
            effects,
            NetCommand::Invite {
                chat_id,
                user: UserRef::Id(id),
            },
        ),
        (Purpose::AddContact, Value::User(id)) => {
            net(effects, NetCommand::AddContact(UserRef::Id(id)))
        }
        (Purpose::Blocked, Value::User(id)) => net(effects, NetCommand::Unblock(UserRef::Id(id))),
        (Purpose::Kick(chat_id), Value::User(id)) => {
            pickers::confirm_kick(model, chat_id, UserRef::Id(id))
        }
        (Purpose::Transfer(chat_id), Value::User(id)) => {
            pickers::confirm_transfer(model, chat_id, UserRef::Id(id))
        }
        (Purpose::Promote(chat_id), Value::User(id)) => net(
            effects,
            NetCommand::SetRole {
                chat_id,
                user: UserRef::Id(id),
                role: pb::MemberRole::Admin,
            },
        ),
        (Purpose::Demote(chat_id), Value::User(id)) => net(
            effects,
            NetCommand::SetRole {
                chat_id,
                user: UserRef::Id(id),
                role: pb::MemberRole::Member,
            },
        ),
        (Purpose::Forward { chat_id, seq }, Value::Chat(target)) => {
            let message = model
                .view
                .as_ref()
                .and_then(|v| v.window.get(seq))
                .cloned()
                .unwrap_or(pb::Message {
                    chat_id,
                    seq,
                    ..Default::default()
                });
            forward(model, &message, target, effects);
        }
        (Purpose::React { chat_id, seq }, Value::Text(emoji)) => {
            let me = model.me_id();
            let remove = model
                .view
                .as_ref()
                .and_then(|v| v.window.get(seq))
                .is_some_and(|m| {
                    m.reactions
                        .iter()
                        .any(|r| r.emoji == emoji && r.user_ids.contains(&me))
                });
            net(
                effects,
                NetCommand::React {
                    chat_id,
                    seq,
                    emoji,
                    remove,
                },
            );
        }
        (Purpose::Search { .. }, Value::Message { chat_id, seq }) => {
            chat::jump_to(model, chat_id, seq, effects)
        }
        (Purpose::Sessions, Value::Session(id)) => {
            model.overlay = Some(Overlay::Confirm(Confirm {
                question: format!("Revoke session #{id}? That device is signed out."),
                command: NetCommand::RevokeSession(id),
            }));
        }
        (Purpose::Status, Value::Text(status)) => {
            let status = match status.as_str() {
                "online" => pb::UserStatus::Online,
                "away" => pb::UserStatus::Away,
                "busy" => pb::UserStatus::Busy,
                _ => pb::UserStatus::Offline,
            };
            net(
                effects,
                NetCommand::UpdateProfile(pb::UpdateProfile {
                    status: status as i32,
                    ..Default::default()
                }),
            );
        }
        (Purpose::Mute(chat_id), Value::Text(duration)) => {
            let until = crate::slash::parse_duration(&duration)
                .map_or(i64::MAX, |d| model.clock.now_ms.saturating_add(d));
            effects.push(super::main_keys::set_state(
                chat_id,
                None,
                Some(until),
                None,
            ));
        }
        (Purpose::Members(chat_id), Value::User(id)) => {
            pickers::open_member_actions(model, chat_id, id)
        }
        (Purpose::MemberAction { chat_id, user_id }, Value::Text(action)) => {
            let user = UserRef::Id(user_id);
            match action.as_str() {
                "message" => net(effects, NetCommand::OpenPrivate(user)),
                "profile" => net(effects, NetCommand::ShowProfile(user)),
                "promote" => net(
                    effects,
                    NetCommand::SetRole {
                        chat_id,
                        user,
                        role: pb::MemberRole::Admin,
                    },
                ),
                "demote" => net(
                    effects,
                    NetCommand::SetRole {
                        chat_id,
                        user,
                        role: pb::MemberRole::Member,
                    },
                ),
                "transfer" => pickers::confirm_transfer(model, chat_id, user),
                "kick" => pickers::confirm_kick(model, chat_id, user),
                _ => {
                    model.overlay = Some(Overlay::Confirm(Confirm {
                        question: format!(
                            "Block {}? They can no longer message you.",
                            model.users.name(user_id)
                        ),
                        command: NetCommand::Block(user),
                    }));
                }
            }
        }
        (Purpose::ChatMenu(chat_id), Value::Text(action)) => {
            let state = model
                .chats
                .get(chat_id)
                .map(|e| e.state())
                .unwrap_or_default();
            match action.as_str() {
                "members" => pickers::open_members(model, chat_id),
                "invite" => pickers::open_user_search(model, Purpose::Invite(chat_id), effects),
                "pin" => effects.push(super::main_keys::set_state(
                    chat_id,
                    Some(!state.pinned),
                    None,
                    None,
                )),
                "mute" if state.muted_until_ms > model.clock.now_ms => {
                    effects.push(super::main_keys::set_state(chat_id, None, Some(0), None));
                }
                "mute" => pickers::open_mute(model, chat_id),
                "archive" => effects.push(super::main_keys::set_state(
                    chat_id,
                    None,
                    None,
                    Some(!state.archived),
                )),
                "search" => pickers::open_search(model, chat_id, "", effects),
                _ => pickers::confirm_leave(model, chat_id),
            }
        }
        (Purpose::MeMenu, Value::Text(action)) => match action.as_str() {
            "status" => {
                let items = pickers::text_items(&[
                    ("Online", "online"),
                    ("Away", "away"),
                    ("Busy", "busy"),
                    ("Invisible (appear offline)", "offline"),
                ]);
                model.overlay = Some(Overlay::Picker(Picker::local(
                    "My status",
                    Purpose::Status,
                    items,
                )));
            }
            "profile" => {
                if let Some(me) = model.me.clone() {
                    model.overlay = Some(Overlay::Info(compose::profile_info(&me, true)));
                }
            }
            "contacts" => pickers::open_list(model, Purpose::Contacts, effects),
            "add_contact" => pickers::open_user_search(model, Purpose::AddContact, effects),
            "blocked" => pickers::open_list(model, Purpose::Blocked, effects),
            "sessions" => net(effects, NetCommand::ListSessions),
            _ => {
                model.overlay = Some(Overlay::Confirm(Confirm {
                    question: "Sign out? The session is revoked and forgotten on this computer."
                        .into(),
                    command: NetCommand::SignOut,
                }));
            }
        },
        _ => {}
    }
}

/// Fills a picker that was waiting for the server.
pub(super) fn fill(model: &mut Model, token: u64, items: Vec<Item>) {
    if let Some(Overlay::Picker(picker)) = &mut model.overlay
        && picker.remote == Some(token)
    {
        picker.items = items;
        picker.loading = false;
        picker.selected = 0;
        if matches!(picker.purpose, Purpose::Contacts | Purpose::Blocked) {
            // A list loaded once: from now on the query filters it here.
            picker.remote = None;
            picker.empty = "nothing matches".into();
        }
    }
}

/// Shows a profile.
pub(super) fn show_profile(model: &mut Model, user: &pb::User) {
    let me = user.id == model.me_id();
    let info: Info = compose::profile_info(user, me);
    model.overlay = Some(Overlay::Info(info));
}
