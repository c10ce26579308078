//! Keys on the main screen without an overlay: the chat list, the message pane and the
//! composer, and the actions on the selected chat or message.

use chatproto::pb;

use super::{Input, calls, chat, compose, files, pickers};
use crate::effect::{Effect, NetCommand};
use crate::keys::Command;
use crate::model::chats::Row;
use crate::model::{Focus, Level, Model, Overlay};
use crate::widgets::composer::Mode;
use crate::widgets::dialog::{Confirm, Prompt, PromptPurpose};
use crate::widgets::text_input::TextBuffer;

/// Messages a page key scrolls.
const PAGE_MESSAGES: isize = 10;

pub(super) fn on_key(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    match input {
        Input::Command(Command::Help) => model.overlay = Some(Overlay::Help { scroll: 0 }),
        Input::Command(Command::FocusNext) => model.focus = next_focus(model.focus, true),
        Input::Command(Command::FocusPrev) => model.focus = next_focus(model.focus, false),
        _ => match model.focus {
            Focus::Chats if model.chats.filter.is_some() => on_filter_key(model, input, effects),
            Focus::Chats => on_chats_key(model, input, effects),
            Focus::Messages => on_messages_key(model, input, effects),
            Focus::Composer => compose::on_key(model, input, effects),
        },
    }
}

fn next_focus(focus: Focus, forward: bool) -> Focus {
    match (focus, forward) {
        (Focus::Chats, true) | (Focus::Composer, false) => Focus::Messages,
        (Focus::Messages, true) | (Focus::Chats, false) => Focus::Composer,
        (Focus::Composer, true) | (Focus::Messages, false) => Focus::Chats,
    }
}

/// Moves the highlight of the chat list by `delta` rows (chats only).
pub(super) fn move_chat_selection(model: &mut Model, delta: isize) {
    let chats: Vec<u64> = model
        .chats
        .rows(&model.users)
        .into_iter()
        .filter_map(|r| match r {
            Row::Chat(id) => Some(id),
            Row::Archived(_) => None,
        })
        .collect();
    if chats.is_empty() {
        return;
    }
    let current = model
        .chats
        .selected
        .and_then(|id| chats.iter().position(|&c| c == id));
    let index = match current {
        None => 0,
        Some(i) => i.saturating_add_signed(delta).min(chats.len() - 1),
    };
    model.chats.selected = Some(chats[index]);
}

fn on_chats_key(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    let Input::Command(command) = input else {
        return;
    };
    match command {
        Command::Up => move_chat_selection(model, -1),
        Command::Down => move_chat_selection(model, 1),
        Command::Top => move_chat_selection(model, isize::MIN / 2),
        Command::Bottom => move_chat_selection(model, isize::MAX / 2),
        Command::Open => {
            if model.chats.selected.is_none() {
                move_chat_selection(model, 0);
            }
            if let Some(id) = model.chats.selected {
                chat::open(model, id, effects);
            }
        }
        Command::Filter => model.chats.filter = Some(TextBuffer::default()),
        Command::ToggleArchived => model.chats.show_archived = !model.chats.show_archived,
        Command::FocusComposer => model.focus = Focus::Composer,
        other => on_chat_action(model, other, model.chats.selected, effects),
    }
}

/// Typing a filter for the chat list: the list narrows with every key; enter opens the
/// highlighted chat, esc drops the filter.
fn on_filter_key(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    let Some(filter) = &mut model.chats.filter else {
        return;
    };
    match input {
        Input::Text(c) => filter.insert(c),
        Input::Command(Command::Cancel) => {
            model.chats.filter = None;
            return;
        }
        Input::Command(Command::Up) => return move_chat_selection(model, -1),
        Input::Command(Command::Down) => return move_chat_selection(model, 1),
        Input::Command(Command::Open) => {
            let id = model.chats.selected;
            model.chats.filter = None;
            if let Some(id) = id {
                chat::open(model, id, effects);
            }
            return;
        }
        Input::Command(c) => {
            filter.apply(c);
        }
    }
    // Keep the highlight on a chat that matches.
    let rows = model.chats.rows(&model.users);
    let visible = |id| rows.contains(&Row::Chat(id));
    if !model.chats.selected.is_some_and(visible) {
        model.chats.selected = rows.iter().find_map(|r| match r {
            Row::Chat(id) => Some(*id),
            Row::Archived(_) => None,
        });
    }
}

/// Actions on a chat that both the chat list and the message pane offer.
fn on_chat_action(
    model: &mut Model,
    command: Command,
    chat_id: Option<u64>,
    effects: &mut Vec<Effect>,
) {
    match command {
        Command::NewChat => pickers::open_user_search(
            model,
            crate::widgets::picker::Purpose::NewPrivateChat,
            effects,
        ),
        Command::NewGroup => {
            model.overlay = Some(Overlay::Prompt(Prompt::new(
                "New group: title",
                PromptPurpose::NewGroup,
            )));
        }
        Command::MeMenu => pickers::open_me_menu(model),
        Command::Pin | Command::Mute | Command::Archive | Command::ChatMenu => {
            let Some(chat_id) = chat_id else {
                model.notify(Level::Error, "Select a chat first.");
                return;
            };
            let Some(state) = model.chats.get(chat_id).map(|e| e.state()) else {
                return;
            };
            let now = model.clock.now_ms;
            match command {
                Command::Pin => effects.push(set_state(chat_id, Some(!state.pinned), None, None)),
                Command::Archive => {
                    effects.push(set_state(chat_id, None, None, Some(!state.archived)))
                }
                Command::Mute if state.muted_until_ms > now => {
                    effects.push(set_state(chat_id, None, Some(0), None));
                }
                Command::Mute => pickers::open_mute(model, chat_id),
                _ => pickers::open_chat_menu(model, chat_id),
            }
        }
        _ => {}
    }
}

/// A SetChatState request.
pub(super) fn set_state(
    chat_id: u64,
    pinned: Option<bool>,
    muted_until_ms: Option<i64>,
    archived: Option<bool>,
) -> Effect {
    Effect::Net(NetCommand::SetChatState {
        chat_id,
        pinned,
        muted_until_ms,
        archived,
    })
}

fn on_messages_key(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    let Input::Command(command) = input else {
        return;
    };
    let open = model.open_chat();
    match command {
        Command::Up => select(model, -1, effects),
        Command::Down => select(model, 1, effects),
        Command::PageUp => chat::scroll(model, -PAGE_MESSAGES, effects),
        Command::PageDown => chat::scroll(model, PAGE_MESSAGES, effects),
        Command::Top => {
            if let Some(view) = &mut model.view {
                view.selected = view.window.first_seq();
                view.anchor = view.window.first_seq();
            }
            chat::more_history(model, effects);
        }
        Command::Bottom => chat::to_latest(model, effects),
        Command::FocusComposer => model.focus = Focus::Composer,
        Command::FocusPrev => model.focus = Focus::Chats,
        Command::Cancel => match model.view.as_mut().filter(|v| v.selected.is_some()) {
            Some(view) => view.selected = None,
            None => model.focus = Focus::Chats,
        },
        Command::Reply => {
            if let Some(m) = chat::selected_message(model) {
                start_reply(model, &m);
            }
        }
        Command::EditMessage => {
            if let Some(m) = chat::selected_message(model) {
                start_edit(model, &m);
            }
        }
        Command::DeleteForMe => {
            if let Some(m) = chat::selected_message(model) {
                effects.push(Effect::Net(NetCommand::Delete {
                    chat_id: m.chat_id,
                    seq: m.seq,
                    for_everyone: false,
                }));
            }
        }
        Command::DeleteForEveryone => {
            if let Some(m) = chat::selected_message(model) {
                confirm_delete_for_everyone(model, &m);
            }
        }
        Command::React => {
            if let Some(m) = chat::selected_message(model) {
                pickers::open_reactions(model, &m);
            }
        }
        Command::Forward => {
            if let Some(m) = chat::selected_message(model) {
                pickers::open_forward(model, &m);
            }
        }
        Command::Search => {
            if let Some(chat_id) = chat::current_chat(model) {
                pickers::open_search(model, chat_id, "", effects);
            }
        }
        Command::SearchAll => pickers::open_search(model, 0, "", effects),
        Command::Upload => files::prompt_upload(model),
        Command::Download => {
            if chat::selected_message(model).is_some() {
                files::download(model, effects);
            }
        }
        Command::CancelTransfer => files::cancel(model, effects),
        Command::HangUp => calls::hang_up(model, effects),
        other => on_chat_action(model, other, open, effects),
    }
}

fn select(model: &mut Model, delta: isize, effects: &mut Vec<Effect>) {
    if let Some(view) = &mut model.view {
        view.move_selection(delta);
    }
    chat::more_history(model, effects);
}

/// Binds the composer to a reply to `m`.
pub(super) fn start_reply(model: &mut Model, m: &pb::Message) {
    if m.deleted {
        model.notify(Level::Error, "That message was deleted.");
        return;
    }
    let preview = format!(
        "{}: {}",
        model.users.name(m.sender_id),
        crate::widgets::shorten(&crate::widgets::messages::preview(m), 30)
    );
    model.composer.mode = Mode::Reply {
        seq: m.seq,
        preview,
    };
    model.focus = Focus::Composer;
}

/// Puts my message `m` into the composer to edit it.
pub(super) fn start_edit(model: &mut Model, m: &pb::Message) {
    if let Err(why) = editable(model, m) {
        model.notify(Level::Error, why);
        return;
    }
    model.composer.mode = Mode::Edit { seq: m.seq };
    model.composer.input.set(m.text.clone());
    model.focus = Focus::Composer;
}

/// Whether I may edit `m`, and why not.
pub(super) fn editable(model: &Model, m: &pb::Message) -> Result<(), &'static str> {
    if m.sender_id != model.me_id() {
        Err("You can only edit your own messages.")
    } else if m.deleted {
        Err("That message was deleted.")
    } else if m.forwarded_from.is_some() {
        Err("Forwarded messages cannot be edited.")
    } else {
        Ok(())
    }
}

/// Asks before deleting `m` for everyone.
pub(super) fn confirm_delete_for_everyone(model: &mut Model, m: &pb::Message) {
    model.overlay = Some(Overlay::Confirm(Confirm {
        question: format!(
            "Delete \"{}\" for everyone? Its text and reactions are removed for all members.",
            crate::widgets::shorten(&crate::widgets::messages::preview(m), 40)
        ),
        command: NetCommand::Delete {
            chat_id: m.chat_id,
            seq: m.seq,
            for_everyone: true,
        },
    }));
}
