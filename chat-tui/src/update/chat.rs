//! The open chat: opening it, loading its history as the screen moves, jumping to a message,
//! scrolling, and telling the server what was read.

use chatproto::client::{HistoryPage, HistoryRange};
use chatproto::pb;

use crate::effect::{Effect, NetCommand};
use crate::model::view::{ChatView, Load};
use crate::model::{Focus, Level, Model};
use crate::widgets::composer::Mode;

/// Changes overtaking a history page make it be asked for again, at most this often.
const MAX_STALE_RETRIES: u32 = 3;

/// Opens `chat_id` in the message pane, loading its latest messages, members and receipts.
pub(super) fn open(model: &mut Model, chat_id: u64, effects: &mut Vec<Effect>) {
    model.chats.selected = Some(chat_id);
    if model.open_chat() == Some(chat_id) {
        model.focus = Focus::Composer;
        return;
    }
    model.view = Some(ChatView::new(chat_id));
    model.focus = Focus::Composer;
    // A reply or edit belongs to the chat it was started in.
    model.composer.mode = Mode::New;
    request(model, HistoryRange::Latest, false, effects);
    load_details(chat_id, effects);
}

/// Loads what the open chat shows beside its history: members, receipts, a live group call.
pub(super) fn load_details(chat_id: u64, effects: &mut Vec<Effect>) {
    effects.push(Effect::Net(NetCommand::LoadChat(chat_id)));
    effects.push(Effect::Net(NetCommand::LoadReceipts(chat_id)));
    effects.push(Effect::Net(NetCommand::LoadGroupCall(chat_id)));
}

/// Opens the chat of a message and shows the message selected (a search result).
pub(super) fn jump_to(model: &mut Model, chat_id: u64, seq: u64, effects: &mut Vec<Effect>) {
    if model.open_chat() != Some(chat_id) {
        model.view = Some(ChatView::new(chat_id));
        load_details(chat_id, effects);
    }
    model.chats.selected = Some(chat_id);
    model.focus = Focus::Messages;
    if let Some(view) = &mut model.view {
        view.loads.clear();
        view.selected = Some(seq);
        view.anchor = Some(seq);
        if view.window.get(seq).is_some() {
            return;
        }
        view.window.at_latest = false;
    }
    request(model, HistoryRange::Before(seq + 1), true, effects);
}

/// Asks for a page of the open chat's history.
pub(super) fn request(
    model: &mut Model,
    range: HistoryRange,
    jump: bool,
    effects: &mut Vec<Effect>,
) {
    let token = model.ids.token();
    let Some(view) = &mut model.view else {
        return;
    };
    view.loads.push(Load {
        token,
        range,
        epoch: view.window.epoch,
        attempts: 0,
        jump,
    });
    effects.push(Effect::Net(NetCommand::LoadHistory {
        chat_id: view.chat_id,
        token,
        range,
    }));
}

/// A page of history arrived.
pub(super) fn on_history(
    model: &mut Model,
    chat_id: u64,
    token: u64,
    range: HistoryRange,
    page: HistoryPage,
    effects: &mut Vec<Effect>,
) {
    let Some(view) = model.view.as_mut().filter(|v| v.chat_id == chat_id) else {
        return;
    };
    let Some(index) = view.loads.iter().position(|l| l.token == token) else {
        return;
    };
    let load = view.loads.remove(index);
    if view.window.is_stale(load.epoch) && load.attempts < MAX_STALE_RETRIES {
        // An edit, deletion or reaction arrived while the page was on its way: the page may
        // predate it, so ask again rather than show an old version.
        let token = model.ids.token();
        let Some(view) = model.view.as_mut() else {
            return;
        };
        view.loads.push(Load {
            token,
            epoch: view.window.epoch,
            attempts: load.attempts + 1,
            ..load
        });
        effects.push(Effect::Net(NetCommand::LoadHistory {
            chat_id,
            token,
            range,
        }));
        return;
    }
    let was_latest = view.window.at_latest;
    if load.jump {
        view.window.reset_to(&page);
    } else {
        let center = view.anchor.or(view.selected);
        view.window.merge(range, &page, center);
    }
    let follow_up = matches!(range, HistoryRange::After(_)) && page.end && !was_latest;
    if follow_up && let Some(last) = view.window.last_seq() {
        // Messages that arrived while this last page was on its way did not join the window
        // (it did not reach the latest yet): fetch what follows it once more.
        request(model, HistoryRange::After(last), false, effects);
    }
    let ids: Vec<u64> = page
        .messages
        .iter()
        .flat_map(|m| {
            std::iter::once(m.sender_id)
                .chain(m.forwarded_from.as_ref().map(|f| f.sender_id))
                .chain(m.reactions.iter().flat_map(|r| r.user_ids.iter().copied()))
        })
        .collect();
    ask_users(model, ids, effects);
    more_history(model, effects);
    mark_read(model, effects);
}

/// Asks for the profiles of users not known yet.
pub(super) fn ask_users(
    model: &mut Model,
    ids: impl IntoIterator<Item = u64>,
    effects: &mut Vec<Effect>,
) {
    let missing = model.users.to_ask(ids);
    if !missing.is_empty() {
        effects.push(Effect::Net(NetCommand::LoadUsers(missing)));
    }
}

/// Loads what the screen position calls for.
pub(super) fn more_history(model: &mut Model, effects: &mut Vec<Effect>) {
    let wanted = model
        .view
        .as_ref()
        .map(ChatView::wanted_loads)
        .unwrap_or_default();
    for range in wanted {
        request(model, range, false, effects);
    }
}

/// The renderer says what is on screen.
pub(super) fn on_viewport(
    model: &mut Model,
    chat_id: u64,
    top: u64,
    bottom: u64,
    effects: &mut Vec<Effect>,
) {
    let Some(view) = model.view.as_mut().filter(|v| v.chat_id == chat_id) else {
        return;
    };
    view.visible = Some((top, bottom));
    if view.anchor.is_some() {
        // The renderer may have moved the bottom to keep the selection visible.
        view.anchor = Some(bottom);
        if view.window.at_latest && view.window.last_seq() == Some(bottom) {
            view.anchor = None;
        }
    }
    more_history(model, effects);
    mark_read(model, effects);
}

/// Scrolls the messages by `n` (negative: older).
pub(super) fn scroll(model: &mut Model, n: isize, effects: &mut Vec<Effect>) {
    let Some(view) = &mut model.view else {
        return;
    };
    if n < 0 {
        view.scroll_up(n.unsigned_abs());
    } else {
        view.scroll_down(n.unsigned_abs());
    }
    more_history(model, effects);
    mark_read(model, effects);
}

/// Jumps to the latest message (reloading the latest page when the window is elsewhere).
pub(super) fn to_latest(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(view) = &mut model.view else {
        return;
    };
    view.anchor = None;
    view.selected = None;
    if !view.window.at_latest {
        view.loads
            .retain(|l| !matches!(l.range, HistoryRange::After(_)));
        if !view.loading(HistoryRange::Latest) {
            request(model, HistoryRange::Latest, false, effects);
        }
    }
    mark_read(model, effects);
}

/// When the latest message is on screen, marks the chat read up to it.
pub(super) fn mark_read(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(view) = model.view.as_ref().filter(|v| v.follows_latest()) else {
        return;
    };
    let Some(last) = view.window.last_seq() else {
        return;
    };
    let chat_id = view.chat_id;
    let read = model.chats.get(chat_id).map_or(0, |e| e.state().read_seq);
    if last > read {
        model.chats.mark_read(chat_id, last);
        effects.push(Effect::Net(NetCommand::MarkRead { chat_id, seq: last }));
    }
}

/// The selected message of the open chat, or a notice saying to select one.
pub(super) fn selected_message(model: &mut Model) -> Option<pb::Message> {
    let message = model
        .view
        .as_ref()
        .and_then(|v| v.selected.and_then(|s| v.window.get(s)))
        .cloned();
    if message.is_none() {
        model.notify(
            Level::Error,
            "Select a message first (messages pane: ↑/↓ or k/j).",
        );
    }
    message
}

/// The chat that is open, or a notice saying to open one.
pub(super) fn current_chat(model: &mut Model) -> Option<u64> {
    let id = model.open_chat().or(model.chats.selected);
    if id.is_none() {
        model.notify(Level::Error, "Open a chat first.");
    }
    id
}
