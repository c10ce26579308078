//! The update function: `update(&mut model, action) -> effects`. It is pure: no I/O, no clock,
//! no randomness (time and ids come in through the model and the actions), so every behaviour
//! of the client can be tested by feeding actions and looking at the model and the effects.
//!
//! # Layout
//! - `mod.rs`: dispatch, key resolution through the key table, mouse, ticks.
//! - `forms`: the trust and sign-in screens. `main_keys`: the panes of the main screen.
//! - `compose`: sending, completion and slash commands. `pickers`: opening pickers, menus and
//!   confirmations; `overlay`: keys in them and what choosing does. `chat`: opening chats, history windows, read receipts.
//! - `events`: what the network task reports, including the SDK's chat events.
//! - `files`: uploads, downloads, their progress and cancelling. `calls`: starting, answering
//!   and ending calls, and what the server says about them.

mod calls;
mod chat;
mod compose;
mod events;
mod files;
mod forms;
mod main_keys;
mod overlay;
mod pickers;
mod two_factor;

#[cfg(test)]
mod tests;

use crossterm::event::KeyEvent;

use crate::action::{Action, MouseAction};
use crate::effect::Effect;
use crate::keys::{Command, Context, Key};
use crate::model::{Focus, Model, Overlay, Screen};

/// A key press, as the focused context reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// A bound command.
    Command(Command),
    /// A character for a text input.
    Text(char),
}

/// Resolves a key through the key table: the focused contexts first, then, in a text input,
/// printable characters are text, and only then the global bindings.
pub(crate) fn resolve(model: &Model, event: &KeyEvent) -> Option<Input> {
    let contexts = crate::ui::contexts(model);
    let key = Key::from_event(event);
    let (global, local): (Vec<Context>, Vec<Context>) =
        contexts.iter().partition(|c| **c == Context::Global);
    if let Some(command) = model.config.keymap.lookup(&local, key) {
        return Some(Input::Command(command));
    }
    if contexts.contains(&Context::Edit)
        && let Some(c) = key.text()
    {
        return Some(Input::Text(c));
    }
    model
        .config
        .keymap
        .lookup(&global, key)
        .map(Input::Command)
        .or_else(|| key.text().map(Input::Text))
}

/// Applies one action to the model and returns what must be done outside.
pub fn update(model: &mut Model, action: Action) -> Vec<Effect> {
    let mut effects = Vec::new();
    match action {
        Action::Key(event) => {
            if let Some(input) = resolve(model, &event) {
                on_input(model, input, &mut effects);
            }
        }
        Action::Paste(text) => on_paste(model, &text),
        Action::Mouse(mouse) => on_mouse(model, mouse, &mut effects),
        Action::Tick(clock) => {
            model.clock = clock;
            model.typing.expire(clock.now_ms);
            if model
                .notice
                .as_ref()
                .is_some_and(|n| n.until_ms <= clock.now_ms)
            {
                model.notice = None;
            }
        }
        Action::Viewport {
            chat_id,
            top,
            bottom,
        } => {
            chat::on_viewport(model, chat_id, top, bottom, &mut effects);
        }
        Action::Net(event) => events::on_net(model, event, &mut effects),
    }
    if model.quit && !effects.contains(&Effect::Quit) {
        effects.push(Effect::Quit);
    }
    effects
}

fn on_input(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    if input == Input::Command(Command::Quit) {
        model.quit = true;
        return;
    }
    match &model.screen {
        Screen::Connecting { .. } => {}
        Screen::Trust(_) => forms::on_trust_key(model, input, effects),
        Screen::Auth(_) => forms::on_auth_key(model, input, effects),
        // An incoming call's prompt is over everything else until it is answered or gone.
        Screen::Main if model.calls.ringing().is_some() => {
            calls::on_prompt_key(model, input, effects)
        }
        Screen::Main if model.overlay.is_some() => overlay::on_key(model, input, effects),
        Screen::Main => main_keys::on_key(model, input, effects),
    }
}

fn on_paste(model: &mut Model, text: &str) {
    if model.calls.ringing().is_some() {
        return; // The call's prompt takes keys only.
    }
    match (&mut model.screen, &mut model.overlay) {
        (Screen::Auth(form), _) => {
            if let Some(field) = form.fields.get_mut(form.focus) {
                field.input.insert_str(&text.replace(['\r', '\n'], ""));
            }
        }
        (Screen::Main, Some(Overlay::Picker(p))) => {
            p.query.insert_str(&text.replace(['\r', '\n'], " "))
        }
        (Screen::Main, Some(Overlay::Prompt(p))) => {
            p.input.insert_str(&text.replace(['\r', '\n'], " "))
        }
        (Screen::Main, None) => {
            model.focus = Focus::Composer;
            model
                .composer
                .input
                .insert_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
        }
        _ => {}
    }
}

fn on_mouse(model: &mut Model, mouse: MouseAction, effects: &mut Vec<Effect>) {
    if model.screen != Screen::Main || model.calls.ringing().is_some() {
        return;
    }
    if let Some(Overlay::Picker(picker)) = &mut model.overlay {
        if let MouseAction::ClickPicker(i) = mouse {
            picker.selected = i;
            overlay::choose(model, effects);
        }
        return;
    }
    if model.overlay.is_some() {
        return;
    }
    match mouse {
        MouseAction::ScrollChats(n) => main_keys::move_chat_selection(model, n as isize),
        MouseAction::ScrollMessages(n) => chat::scroll(model, n as isize, effects),
        MouseAction::ClickChat(id) => {
            model.chats.selected = Some(id);
            chat::open(model, id, effects);
        }
        MouseAction::ClickMessage(seq) => {
            model.focus = Focus::Messages;
            if let Some(view) = &mut model.view {
                view.selected = Some(seq);
            }
        }
        MouseAction::ClickComposer => model.focus = Focus::Composer,
        MouseAction::ClickPicker(_) => {}
    }
}
