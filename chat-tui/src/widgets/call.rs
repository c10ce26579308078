//! Calls on screen: the prompt of an incoming call, drawn over whatever is up, and the call in
//! the status bar ("in call with alice · 00:42", its duration from the server's answer time).

use chatproto::calls::CallPhase;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget as _};

use crate::keys::{Command, Context, Keymap};
use crate::model::calls::{clock, kind, peer_name};
use crate::model::{Level, Model};

/// The keys of `command` in `context`, as a hint ("a/y").
fn keys(keymap: &Keymap, context: Context, command: Command) -> String {
    let keys: Vec<String> = keymap
        .keys_of(context, command)
        .iter()
        .map(ToString::to_string)
        .collect();
    keys.join("/")
}

/// Draws the prompt of the ringing call, if one rings.
pub fn render_prompt(model: &Model, area: Rect, buf: &mut Buffer) {
    let Some(view) = model.calls.ringing() else {
        return;
    };
    let theme = &model.config.theme;
    let call = &view.call;
    let caller = peer_name(model, call);
    let keymap = &model.config.keymap;
    let hint = format!(
        " {} answer · {} decline ",
        keys(keymap, Context::Call, Command::AcceptCall),
        keys(keymap, Context::Call, Command::DeclineCall)
    );
    let rect = super::centered(area, area.width.saturating_sub(4).min(50), 5);
    Clear.render(rect, buf);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(Span::styled(
            format!(" Incoming {} call ", kind(call.video)),
            theme.accent(),
        ))
        .title_bottom(Span::styled(hint, theme.dim()));
    let inner = block.inner(rect);
    block.render(rect, buf);
    let left = (call.ring_until_ms - model.clock.now_ms).max(0) / 1000;
    let lines = vec![
        Line::from(vec![
            Span::styled(format!("☎ {caller}"), theme.accent()),
            Span::raw(" is calling you"),
        ]),
        Line::from(Span::styled(
            format!("chat: {}", model.chats.title(call.chat_id, &model.users)),
            theme.dim(),
        )),
        Line::from(Span::styled(
            format!("rings {left} s more · no audio here: signaling only"),
            theme.dim(),
        )),
    ];
    Paragraph::new(lines).render(inner, buf);
}

/// A group's live call as the open chat's title says it: who takes part.
pub fn group_call_text(model: &Model, chat_id: u64) -> Option<String> {
    let view = model.calls.tracker.group_in_chat(chat_id)?;
    let names: Vec<String> = view
        .call
        .participants
        .iter()
        .map(|p| model.users.name(p.user_id))
        .collect();
    let kind = if view.call.video {
        "video call"
    } else {
        "call"
    };
    Some(format!("☎ {kind} going on: {}", names.join(", ")))
}

/// This device's call as the status bar says it, if there is one.
pub fn status_text(model: &Model) -> Option<(String, Level)> {
    if let Some(chat_id) = model.calls.dialing {
        let who = model.chats.title(chat_id, &model.users);
        return Some((format!("☎ calling {who}…"), Level::Info));
    }
    let view = model.calls.mine()?;
    let peer = peer_name(model, &view.call);
    let hang_up = match keys(&model.config.keymap, Context::Messages, Command::HangUp) {
        k if k.is_empty() => "/hangup".to_string(),
        k => format!("{k} or /hangup"),
    };
    Some(match view.phase {
        CallPhase::Active => {
            let length = clock(model.clock.now_ms - view.call.answered_at_ms);
            (
                format!("☎ in call with {peer} · {length} ({hang_up} ends it)"),
                Level::Ok,
            )
        }
        _ => (format!("☎ ringing {peer}…"), Level::Info),
    })
}
