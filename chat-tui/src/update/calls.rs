//! Calls, signaling only: `/call` in a private chat, the prompt of an incoming call (accept,
//! decline), hanging up, and what the server says about each call. Where a call is comes from
//! the SDK's tracker, which orders answers and events; this turns each change into what the
//! user sees: the prompt, the status line's words, the bell.

use chatproto::calls::{CallPhase, CallView};
use chatproto::client::{HistoryPage, HistoryRange};
use chatproto::pb;

use super::Input;
use super::chat;
use crate::effect::{Effect, NetCommand};
use crate::keys::Command;
use crate::model::calls::{LoggedCall, clock, kind, peer_name};
use crate::model::{Level, Model};

/// `/call` (audio) or `/call video` in the open private chat.
pub(super) fn start(model: &mut Model, video: bool, effects: &mut Vec<Effect>) {
    let Some(chat_id) = chat::current_chat(model) else {
        return;
    };
    let private = model
        .chats
        .get(chat_id)
        .is_some_and(|c| c.kind() == pb::ChatKind::Private);
    if !private {
        return model.notify(Level::Error, "Calls are for private chats: open one first.");
    }
    if model.calls.dialing.is_some() || model.calls.mine().is_some() {
        return model.notify(Level::Error, "You are already in a call (/hangup ends it).");
    }
    model.calls.dialing = Some(chat_id);
    let who = model.chats.title(chat_id, &model.users);
    model.notify(Level::Info, format!("Calling {who} ({})…", kind(video)));
    effects.push(Effect::Net(NetCommand::StartCall { chat_id, video }));
}

/// Keys while the incoming-call prompt is up: accept or decline; nothing else.
pub(super) fn on_prompt_key(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    match input {
        Input::Command(Command::AcceptCall) => accept(model, effects),
        Input::Command(Command::DeclineCall | Command::HangUp) => decline(model, effects),
        _ => {}
    }
}

/// Answers the ringing call on this device.
fn accept(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(call_id) = model.calls.ringing().map(|v| v.call.call_id) else {
        return;
    };
    model.calls.answered.insert(call_id);
    model.notify(Level::Info, "Answering…");
    effects.push(Effect::Net(NetCommand::AcceptCall(call_id)));
}

/// Declines the ringing call (for every device of this user).
fn decline(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(call_id) = model.calls.ringing().map(|v| v.call.call_id) else {
        return;
    };
    model.calls.answered.insert(call_id);
    model.notify(Level::Info, "Declining…");
    effects.push(Effect::Net(NetCommand::EndCall(call_id)));
}

/// The hang-up key and `/hangup`: ends this device's call (cancels it while it rings), or
/// declines the ringing one.
pub(super) fn hang_up(model: &mut Model, effects: &mut Vec<Effect>) {
    if model.calls.ringing().is_some() {
        return decline(model, effects);
    }
    let Some(call_id) = model.calls.mine().map(|v| v.call.call_id) else {
        let text = if model.calls.dialing.is_some() {
            "The call is being placed; hang up once it rings."
        } else {
            "No call to end."
        };
        return model.notify(Level::Error, text);
    };
    model.notify(Level::Info, "Ending the call…");
    effects.push(Effect::Net(NetCommand::EndCall(call_id)));
}

/// The answer to `/call`.
pub(super) fn on_started(model: &mut Model, call: pb::Call, effects: &mut Vec<Effect>) {
    model.calls.dialing = None;
    let before = phase(model, call.call_id);
    if let Some(view) = model.calls.tracker.started(call).cloned() {
        changed(model, before, &view, effects);
    }
}

/// The answer to accepting.
pub(super) fn on_accepted(model: &mut Model, call: pb::Call, effects: &mut Vec<Effect>) {
    let before = phase(model, call.call_id);
    if let Some(view) = model.calls.tracker.accepted(call).cloned() {
        changed(model, before, &view, effects);
    }
}

/// A `call` event: a call of this user rings, was answered, or ended.
pub(super) fn on_event(model: &mut Model, call: pb::Call, effects: &mut Vec<Effect>) {
    let before = phase(model, call.call_id);
    if let Some(view) = model.calls.tracker.on_event(call).cloned() {
        changed(model, before, &view, effects);
    }
}

/// A call request failed. An answer that failed brings the prompt back while the call still
/// rings.
pub(super) fn on_failed(model: &mut Model, call_id: u64, error: String) {
    if call_id == 0 {
        model.calls.dialing = None;
    }
    model.calls.answered.remove(&call_id);
    model.notify(Level::Error, error);
}

/// The connection is gone: this device's call ended with it, and a ringing call may have ended
/// unheard (call events are not replayed): both end here, with a word.
pub(super) fn on_connection_lost(model: &mut Model) {
    model.calls.dialing = None;
    model.calls.answered.clear();
    for view in model.calls.tracker.connection_lost() {
        let peer = peer_name(model, &view.call);
        model.notify(
            Level::Error,
            format!("Call with {peer} ended: the connection was lost."),
        );
    }
}

/// A `call_ended` chat event: the call as its chat's history records it.
pub(super) fn on_logged(model: &mut Model, event: &pb::ChatEvent, call: &pb::CallEnded) {
    model.calls.log.insert(
        (event.chat_id, event.seq),
        LoggedCall {
            call: *call,
            at_ms: event.at_ms,
        },
    );
}

/// With a page of a private chat's history, asks for the calls recorded among its messages
/// (`get_history` answers messages only): from the message below the page (the chat's start at
/// its end) up to the message above it (everything, for the latest page).
pub(super) fn load_records(
    model: &Model,
    chat_id: u64,
    range: HistoryRange,
    page: &HistoryPage,
    effects: &mut Vec<Effect>,
) {
    let private = model
        .chats
        .get(chat_id)
        .is_some_and(|c| c.kind() == pb::ChatKind::Private);
    if !private {
        return;
    }
    let first = page.messages.first().map_or(0, |m| m.seq);
    let last = page.messages.last().map_or(0, |m| m.seq);
    let below = if page.end { 0 } else { first.saturating_sub(1) };
    let (after_seq, up_to_seq) = match range {
        HistoryRange::Latest => (below, u64::MAX),
        HistoryRange::Before(seq) => (below, seq.saturating_sub(1)),
        HistoryRange::After(seq) if page.end => (seq, u64::MAX),
        HistoryRange::After(seq) => (seq, last),
    };
    if after_seq < up_to_seq {
        effects.push(Effect::Net(NetCommand::LoadCallRecords {
            chat_id,
            after_seq,
            up_to_seq,
        }));
    }
}

/// Where a call was for this device before a change: its phase and whether it took part.
fn phase(model: &Model, call_id: u64) -> Option<(CallPhase, bool)> {
    model.calls.tracker.get(call_id).map(|v| (v.phase, v.here))
}

/// Tells the user what a change means for this device. Calls this device neither rang for nor
/// took part in (another device's) pass silently.
fn changed(
    model: &mut Model,
    before: Option<(CallPhase, bool)>,
    view: &CallView,
    effects: &mut Vec<Effect>,
) {
    let call = &view.call;
    // A call may come before its chat and its caller are known: the prompt shows the name as
    // soon as the profile is there.
    chat::ask_users(model, [call.caller_id, call.callee_id], effects);
    let peer = peer_name(model, call);
    let rang_here = matches!(before, Some((CallPhase::Incoming, _)));
    let took_part = view.here || before.is_some_and(|(_, here)| here);
    let answered_here = model.calls.answered.remove(&call.call_id);
    match view.phase {
        CallPhase::Incoming => {
            model.notify(
                Level::Info,
                format!("{peer} is calling ({})", kind(call.video)),
            );
            ring(model, &peer, call.video, effects);
        }
        CallPhase::Outgoing if view.here => {
            model.notify(Level::Info, format!("Ringing {peer}… (/hangup cancels)"));
        }
        CallPhase::Outgoing => {}
        CallPhase::Active if view.here => {
            model.notify(Level::Ok, format!("In call with {peer}."));
        }
        CallPhase::Active if rang_here => {
            model.notify(Level::Info, "Answered on another device.");
        }
        CallPhase::Active => {}
        CallPhase::Ended(reason) if took_part || rang_here => {
            let (level, text) = ended_text(model, call, reason, &peer, answered_here);
            model.notify(level, text);
        }
        CallPhase::Ended(_) => {}
    }
}

/// Why a call this device rang for or took part in ended, in words.
fn ended_text(
    model: &Model,
    call: &pb::Call,
    reason: pb::CallEndReason,
    peer: &str,
    declined_here: bool,
) -> (Level, String) {
    use pb::CallEndReason as R;
    let caller = call.caller_id == model.me_id();
    let by_me = call.ended_by == model.me_id();
    let length = clock(call.ended_at_ms - call.answered_at_ms);
    match reason {
        R::HungUp if by_me => (Level::Info, format!("Call with {peer} ended · {length}.")),
        R::HungUp => (Level::Info, format!("{peer} hung up · {length}.")),
        R::Canceled if caller => (Level::Info, "Call cancelled.".into()),
        R::Canceled => (Level::Info, format!("Missed call: {peer} hung up.")),
        R::Declined if caller => (Level::Error, format!("{peer} declined the call.")),
        R::Declined if declined_here => (Level::Info, "Call declined.".into()),
        R::Declined => (Level::Info, "Declined on another device.".into()),
        R::Missed if caller => (Level::Error, format!("{peer} did not answer.")),
        R::Missed => (Level::Info, format!("Missed call from {peer}.")),
        R::Busy => (Level::Error, format!("{peer} is busy in another call.")),
        R::Disconnected => (
            Level::Error,
            format!("Call with {peer} ended: a connection was lost."),
        ),
        R::Unspecified => (Level::Info, format!("Call with {peer} ended.")),
    }
}

/// Rings for an incoming call: the bell and a desktop notification, as configured (a call
/// rings even in a muted chat, and is not held back by the bell's once-a-second limit).
fn ring(model: &mut Model, peer: &str, video: bool, effects: &mut Vec<Effect>) {
    let settings = &model.config.notifications;
    if settings.bell {
        effects.push(Effect::Bell);
    }
    if settings.desktop {
        effects.push(Effect::Notify {
            title: "Incoming call".into(),
            body: format!("{peer} is calling ({})", kind(video)),
        });
    }
    model.last_bell_ms = model.clock.now_ms;
}
