//! The composer: editing, input history, completion, sending (through the outbox), editing a
//! message, and the slash commands typed into it.

use chatproto::pb;

use super::{Input, calls, chat, files, main_keys, overlay, pickers};
use crate::effect::{AccountCommand, Effect, NetCommand, UserRef};
use crate::emoji;
use crate::keys::Command;
use crate::model::{Focus, Level, Model, Overlay};
use crate::slash::{COMMANDS, Slash};
use crate::widgets::composer::Mode;
use crate::widgets::dialog::{Confirm, Info, Prompt, PromptPurpose};
use crate::widgets::picker::Purpose;

/// "Typing" is said at most this often per chat (protocol.md 4.4).
const TYPING_EVERY_MS: i64 = 3_000;

pub(super) fn on_key(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    if !matches!(input, Input::Command(Command::Complete)) {
        model.composer.completion = None;
    }
    match input {
        Input::Text(c) => {
            model.composer.input.insert(c);
            model.composer.browsing = None;
            typing(model, effects);
        }
        Input::Command(Command::Send) => send(model, effects),
        Input::Command(Command::Newline) => model.composer.input.insert('\n'),
        Input::Command(Command::HistoryPrev) => {
            if !model.composer.input.up() {
                model.composer.history_prev();
            }
        }
        Input::Command(Command::HistoryNext) => {
            if !model.composer.input.down() {
                model.composer.history_next();
            }
        }
        Input::Command(Command::Complete) => complete(model),
        Input::Command(Command::PageUp) => chat::scroll(model, -10, effects),
        Input::Command(Command::PageDown) => chat::scroll(model, 10, effects),
        Input::Command(Command::Cancel) => {
            if model.composer.mode == Mode::New {
                model.focus = Focus::Messages;
            } else {
                if matches!(model.composer.mode, Mode::Edit { .. }) {
                    model.composer.input.take();
                }
                model.composer.mode = Mode::New;
            }
        }
        Input::Command(command) => {
            model.composer.input.apply(command);
        }
    }
}

fn typing(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(chat_id) = model.open_chat() else {
        return;
    };
    // Commands and edits are not messages being written.
    if model.composer.input.text().starts_with('/')
        || matches!(model.composer.mode, Mode::Edit { .. })
    {
        return;
    }
    let (last_chat, last_ms) = model.last_typing;
    if last_chat != chat_id || model.clock.now_ms - last_ms >= TYPING_EVERY_MS {
        model.last_typing = (chat_id, model.clock.now_ms);
        effects.push(Effect::Net(NetCommand::Typing(chat_id)));
    }
}

/// Tab: completes `@user`, `#chat` or, at the start, `/command`.
fn complete(model: &mut Model) {
    let (start, word) = model.composer.input.word_before_cursor();
    let candidates: Vec<String> = if let Some(prefix) = word.strip_prefix('@') {
        model
            .users
            .usernames_with_prefix(prefix)
            .into_iter()
            .map(|u| format!("@{u} "))
            .collect()
    } else if let Some(prefix) = word.strip_prefix('#') {
        let prefix = prefix.to_lowercase();
        let mut titles: Vec<String> = model
            .chats
            .iter()
            .map(|e| model.chats.title(e.chat.id, &model.users))
            .filter(|t| t.to_lowercase().starts_with(&prefix) && !t.contains(' '))
            .map(|t| format!("#{t} "))
            .collect();
        titles.sort();
        titles
    } else if let Some(prefix) = word.strip_prefix('/').filter(|_| start == 0) {
        COMMANDS
            .iter()
            .filter(|c| c.name.starts_with(prefix))
            .map(|c| format!("/{} ", c.name))
            .collect()
    } else if let Some(prefix) = word.strip_prefix(':') {
        crate::emoji::SHORTCODES
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(_, e)| (*e).to_string())
            .collect()
    } else {
        Vec::new()
    };
    if !model.composer.complete(start, candidates) {
        model.notify(Level::Info, "Nothing to complete.");
    }
}

/// Enter: sends the text (or runs the command, or saves the edit).
fn send(model: &mut Model, effects: &mut Vec<Effect>) {
    let text = model.composer.input.text().trim_end().to_string();
    if text.trim().is_empty() {
        return;
    }
    if let Some(parsed) = crate::slash::parse(&text) {
        match parsed {
            Ok(slash) => {
                model.composer.remember(&text);
                model.composer.input.take();
                effects.push(Effect::SaveInputHistory(model.composer.history.clone()));
                run_slash(model, slash, effects);
            }
            Err(e) => model.notify(Level::Error, e),
        }
        return;
    }
    // `//text` sends `/text`.
    let body = text
        .strip_prefix('/')
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(&text);
    let text = emoji::expand(body);
    if text.chars().count() > model.max_text_chars {
        model.notify(
            Level::Error,
            format!(
                "The message is too long ({} characters, at most {}).",
                text.chars().count(),
                model.max_text_chars
            ),
        );
        return;
    }
    let Some(chat_id) = model.open_chat() else {
        model.notify(Level::Error, "Open a chat first (the chat list: enter).");
        return;
    };
    let typed = model.composer.input.take();
    model.composer.remember(typed.trim_end());
    effects.push(Effect::SaveInputHistory(model.composer.history.clone()));
    match std::mem::replace(&mut model.composer.mode, Mode::New) {
        Mode::Edit { seq } => effects.push(Effect::Net(NetCommand::Edit { chat_id, seq, text })),
        Mode::Reply { seq, .. } => queue_text(model, chat_id, text, seq, effects),
        Mode::New => queue_text(model, chat_id, text, 0, effects),
    }
}

/// Puts a text message into the outbox and shows it as "sending".
pub(super) fn queue_text(
    model: &mut Model,
    chat_id: u64,
    text: String,
    reply_to_seq: u64,
    effects: &mut Vec<Effect>,
) {
    queue(
        model,
        pb::SendMessage {
            chat_id,
            kind: pb::MessageKind::Text as i32,
            text,
            reply_to_seq,
            ..Default::default()
        },
        effects,
    );
}

/// Puts a message into the outbox; the view jumps to the latest messages, where it shows.
pub(super) fn queue(model: &mut Model, mut request: pb::SendMessage, effects: &mut Vec<Effect>) {
    request.client_msg_id = model.ids.client_msg_id();
    model.pending.push(request.clone());
    effects.push(Effect::Net(NetCommand::Queue(request.clone())));
    if model.open_chat() == Some(request.chat_id) {
        chat::to_latest(model, effects);
    }
}

fn user_id_or_name(model: &Model, user: UserRef) -> UserRef {
    match user {
        UserRef::Name(name) => match model.users.by_username(&name) {
            Some(id) => UserRef::Id(id),
            None => UserRef::Name(name),
        },
        id => id,
    }
}

/// The selected message, else my last one (for `/edit`) or the last one (for `/react`).
fn target_message(model: &mut Model, mine: bool) -> Option<pb::Message> {
    let me = model.me_id();
    let view = model.view.as_ref()?;
    view.selected
        .and_then(|s| view.window.get(s))
        .or_else(|| {
            view.window
                .iter()
                .rev()
                .find(|m| !m.deleted && (!mine || m.sender_id == me))
        })
        .cloned()
        .or_else(|| {
            model.notify(
                Level::Error,
                "No message to act on: select one in the messages pane.",
            );
            None
        })
}

/// Runs a slash command.
fn run_slash(model: &mut Model, slash: Slash, effects: &mut Vec<Effect>) {
    let net = |effects: &mut Vec<Effect>, c| effects.push(Effect::Net(c));
    match slash {
        Slash::Dm(user) => net(
            effects,
            NetCommand::OpenPrivate(user_id_or_name(model, user)),
        ),
        Slash::New => pickers::open_user_search(model, Purpose::NewPrivateChat, effects),
        Slash::Group(title) => net(
            effects,
            NetCommand::CreateGroup {
                kind: pb::ChatKind::Group,
                title,
            },
        ),
        Slash::Channel(title) => net(
            effects,
            NetCommand::CreateGroup {
                kind: pb::ChatKind::Channel,
                title,
            },
        ),
        Slash::Help => model.overlay = Some(Overlay::Help { scroll: 0 }),
        Slash::Quit => model.quit = true,
        Slash::Status(status) => net(
            effects,
            NetCommand::UpdateProfile(pb::UpdateProfile {
                status: status as i32,
                ..Default::default()
            }),
        ),
        Slash::Name(name) => net(
            effects,
            NetCommand::UpdateProfile(pb::UpdateProfile {
                display_name: Some(name),
                ..Default::default()
            }),
        ),
        Slash::Bio(bio) => net(
            effects,
            NetCommand::UpdateProfile(pb::UpdateProfile {
                bio: Some(bio),
                ..Default::default()
            }),
        ),
        Slash::Profile(None) => {
            if let Some(me) = model.me.clone() {
                model.overlay = Some(Overlay::Info(profile_info(&me, true)));
            }
        }
        Slash::Profile(Some(user)) => net(
            effects,
            NetCommand::ShowProfile(user_id_or_name(model, user)),
        ),
        Slash::Contacts => pickers::open_list(model, Purpose::Contacts, effects),
        Slash::Blocked => pickers::open_list(model, Purpose::Blocked, effects),
        Slash::AddContact(u) => net(effects, NetCommand::AddContact(user_id_or_name(model, u))),
        Slash::RemoveContact(u) => net(
            effects,
            NetCommand::RemoveContact(user_id_or_name(model, u)),
        ),
        Slash::Block(u) => net(effects, NetCommand::Block(user_id_or_name(model, u))),
        Slash::Unblock(u) => net(effects, NetCommand::Unblock(user_id_or_name(model, u))),
        Slash::Sessions => net(effects, NetCommand::ListSessions),
        Slash::TwoFactor(step) => super::two_factor::ask(model, step),
        Slash::Verify(Some(code)) => net(
            effects,
            NetCommand::Account(AccountCommand::Verify { code }),
        ),
        Slash::Verify(None) => net(
            effects,
            NetCommand::Account(AccountCommand::RequestVerification),
        ),
        Slash::Email(address) => {
            model.overlay = Some(Overlay::Prompt(Prompt {
                carry: address.clone(),
                ..Prompt::new(
                    format!("Change your email address to {address}: your password"),
                    PromptPurpose::ChangeEmailPassword,
                )
            }));
        }
        Slash::Logout => {
            model.overlay = Some(Overlay::Confirm(Confirm {
                question: "Sign out? The session is revoked and forgotten on this computer.".into(),
                command: NetCommand::SignOut,
            }));
        }
        Slash::SearchAll(words) => pickers::open_search(model, 0, &words, effects),
        Slash::Upload(path) => files::upload(model, path, effects),
        Slash::Download => files::download(model, effects),
        Slash::CancelTransfer => files::cancel(model, effects),
        Slash::Call { video } => calls::start(model, video, effects),
        Slash::HangUp => calls::hang_up(model, effects),
        other => run_chat_slash(model, other, effects),
    }
}

/// The slash commands that act on the open chat.
fn run_chat_slash(model: &mut Model, slash: Slash, effects: &mut Vec<Effect>) {
    let Some(chat_id) = chat::current_chat(model) else {
        return;
    };
    let net = |effects: &mut Vec<Effect>, c| effects.push(Effect::Net(c));
    match slash {
        Slash::Invite(u) => net(
            effects,
            NetCommand::Invite {
                chat_id,
                user: user_id_or_name(model, u),
            },
        ),
        Slash::Kick(u) => {
            let user = user_id_or_name(model, u);
            pickers::confirm_kick(model, chat_id, user);
        }
        Slash::Leave => pickers::confirm_leave(model, chat_id),
        Slash::Promote(u) => net(
            effects,
            NetCommand::SetRole {
                chat_id,
                user: user_id_or_name(model, u),
                role: pb::MemberRole::Admin,
            },
        ),
        Slash::Demote(u) => net(
            effects,
            NetCommand::SetRole {
                chat_id,
                user: user_id_or_name(model, u),
                role: pb::MemberRole::Member,
            },
        ),
        Slash::Transfer(u) => {
            let user = user_id_or_name(model, u);
            pickers::confirm_transfer(model, chat_id, user);
        }
        Slash::Members => pickers::open_members(model, chat_id),
        Slash::Reply(text) => {
            if let Some(m) = target_message(model, false) {
                queue_text(model, chat_id, emoji::expand(&text), m.seq, effects);
            }
        }
        Slash::Edit(text) => {
            if let Some(m) = target_message(model, true) {
                match main_keys::editable(model, &m) {
                    Ok(()) => net(
                        effects,
                        NetCommand::Edit {
                            chat_id,
                            seq: m.seq,
                            text: emoji::expand(&text),
                        },
                    ),
                    Err(why) => model.notify(Level::Error, why),
                }
            }
        }
        Slash::Delete => {
            if let Some(m) = target_message(model, false) {
                net(
                    effects,
                    NetCommand::Delete {
                        chat_id,
                        seq: m.seq,
                        for_everyone: false,
                    },
                );
            }
        }
        Slash::DeleteAll => {
            if let Some(m) = target_message(model, false) {
                main_keys::confirm_delete_for_everyone(model, &m);
            }
        }
        Slash::React(e) => react(model, chat_id, &e, false, effects),
        Slash::Unreact(e) => react(model, chat_id, &e, true, effects),
        Slash::Forward(name) => match model.chats.find_by_name(&name, &model.users) {
            Some(target) => {
                if let Some(m) = target_message(model, false) {
                    overlay::forward(model, &m, target, effects);
                }
            }
            None => model.notify(Level::Error, format!("No chat called {name}.")),
        },
        Slash::Search(words) => pickers::open_search(model, chat_id, &words, effects),
        Slash::Pin(pinned) => effects.push(main_keys::set_state(chat_id, Some(pinned), None, None)),
        Slash::Mute(duration) => {
            let until = duration.map_or(i64::MAX, |d| model.clock.now_ms.saturating_add(d));
            effects.push(main_keys::set_state(chat_id, None, Some(until), None));
        }
        Slash::Unmute => effects.push(main_keys::set_state(chat_id, None, Some(0), None)),
        Slash::Archive(archived) => {
            effects.push(main_keys::set_state(chat_id, None, None, Some(archived)))
        }
        _ => {}
    }
}

fn react(model: &mut Model, chat_id: u64, input: &str, remove: bool, effects: &mut Vec<Effect>) {
    let Some(emoji) = emoji::parse(input) else {
        model.notify(
            Level::Error,
            format!("{input} is not an emoji or a known :shortcode:."),
        );
        return;
    };
    if let Some(m) = target_message(model, false) {
        effects.push(Effect::Net(NetCommand::React {
            chat_id,
            seq: m.seq,
            emoji,
            remove,
        }));
    }
}

/// The lines of a profile window.
pub(super) fn profile_info(user: &pb::User, me: bool) -> Info {
    let status = match pb::UserStatus::try_from(user.status).unwrap_or(pb::UserStatus::Unspecified)
    {
        pb::UserStatus::Online => "online",
        pb::UserStatus::Away => "away",
        pb::UserStatus::Busy => "busy",
        _ => "offline",
    };
    let mut lines = vec![
        format!("Username:     @{}", user.username),
        format!(
            "Display name: {}",
            if user.display_name.is_empty() {
                "—"
            } else {
                &user.display_name
            }
        ),
        format!("Status:       {status}"),
    ];
    if !user.bio.is_empty() {
        lines.push(format!("Bio:          {}", user.bio));
    }
    if me && !user.email.is_empty() {
        lines.push(format!("Email:        {}", user.email));
    }
    if me {
        lines.push(String::new());
        lines.push("/name, /bio and /status change these.".into());
    }
    Info {
        title: if me {
            "My profile".into()
        } else {
            format!("@{}", user.username)
        },
        lines,
    }
}
