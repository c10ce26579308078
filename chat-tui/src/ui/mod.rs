//! Rendering: the whole screen from a reference to the model. Besides drawing, it reports where
//! things landed ([`HitMap`]), so mouse clicks can be mapped back to chats and messages, and
//! what part of the open chat is on screen (which drives lazy history loading).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};

use crate::keys::Context;
use crate::model::{Focus, Model, Overlay, Screen};
use crate::widgets::{
    auth, call, chat_list, composer, dialog, help, messages, picker, screens, status, transfers,
};

/// Where things are on the last frame.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HitMap {
    /// The chat list pane.
    pub chats_area: Option<Rect>,
    /// Rows of the chat list.
    pub chat_rows: Vec<(Rect, u64)>,
    /// The message pane.
    pub messages_area: Option<Rect>,
    /// `(row, seq)` of drawn message rows.
    pub message_rows: Vec<(u16, u64)>,
    /// The composer.
    pub composer_area: Option<Rect>,
    /// Rows of an open picker.
    pub picker_rows: Vec<(Rect, usize)>,
    /// The open chat and its oldest and newest message on screen.
    pub viewport: Option<(u64, u64, u64)>,
}

/// The key contexts in force, most specific first (for key lookup and the help overlay).
pub fn contexts(model: &Model) -> Vec<Context> {
    match (&model.screen, &model.overlay) {
        (Screen::Auth(_) | Screen::Trust(_), _) => {
            vec![Context::Form, Context::Edit, Context::Global]
        }
        (Screen::Connecting { .. }, _) => vec![Context::Global],
        (Screen::Main, _) if model.calls.ringing().is_some() => {
            vec![Context::Call, Context::Global]
        }
        (Screen::Main, Some(Overlay::Picker(_) | Overlay::Help { .. })) => {
            vec![Context::List, Context::Edit, Context::Global]
        }
        (Screen::Main, Some(Overlay::Prompt(_))) => {
            vec![Context::Form, Context::Edit, Context::Global]
        }
        (Screen::Main, Some(_)) => vec![Context::Global],
        (Screen::Main, None) => pane_contexts(model),
    }
}

/// The contexts of the focused pane of the main screen.
fn pane_contexts(model: &Model) -> Vec<Context> {
    match model.focus {
        Focus::Chats if model.chats.filter.is_some() => {
            vec![Context::List, Context::Edit, Context::Global]
        }
        Focus::Chats => vec![Context::Chats, Context::Global],
        Focus::Messages => vec![Context::Messages, Context::Global],
        Focus::Composer => vec![Context::Composer, Context::Edit, Context::Global],
    }
}

/// Draws the screen.
pub fn render(model: &Model, frame: &mut Frame<'_>) -> HitMap {
    let area = frame.area();
    let mut hits = HitMap::default();
    let theme = &model.config.theme;
    let mut cursor: Option<Position> = None;
    match &model.screen {
        Screen::Connecting {
            detail,
            retry_at_ms,
        } => {
            let left = retry_at_ms.map(|at| ((at - model.clock.now_ms).max(0) + 999) / 1000);
            screens::render_connecting(detail, left, theme, area, frame.buffer_mut());
        }
        Screen::Trust(prompt) => screens::render_trust(prompt, theme, area, frame.buffer_mut()),
        Screen::Auth(form) => {
            cursor = Some(auth::render(
                form,
                &model.server,
                theme,
                area,
                frame.buffer_mut(),
            ));
        }
        Screen::Main => cursor = render_main(model, area, frame, &mut hits),
    }
    if let Some(position) = cursor {
        frame.set_cursor_position(position);
    }
    hits
}

fn render_main(
    model: &Model,
    area: Rect,
    frame: &mut Frame<'_>,
    hits: &mut HitMap,
) -> Option<Position> {
    let theme = &model.config.theme;
    let composer_height = model
        .composer
        .height(area.width)
        .min(area.height.saturating_sub(4));
    let [top, progress, typing, composer_area, status_area] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(transfers::height(model)),
        Constraint::Length(1),
        Constraint::Length(composer_height),
        Constraint::Length(1),
    ])
    .areas(area);
    let narrow = area.width < 56;
    let list_width = (area.width * 3 / 10).clamp(20, 32);
    let (list_area, messages_area) = if narrow {
        if model.focus == Focus::Chats {
            (Some(top), None)
        } else {
            (None, Some(top))
        }
    } else {
        let [l, m] =
            Layout::horizontal([Constraint::Length(list_width), Constraint::Min(10)]).areas(top);
        (Some(l), Some(m))
    };
    let mut cursor = None;
    let no_overlay = model.overlay.is_none();
    if let Some(list_area) = list_area {
        let (rows, filter_cursor) = chat_list::render(
            model,
            model.focus == Focus::Chats && no_overlay,
            list_area,
            frame.buffer_mut(),
        );
        hits.chats_area = Some(list_area);
        hits.chat_rows = rows;
        if model.focus == Focus::Chats && no_overlay {
            cursor = filter_cursor;
        }
    }
    if let Some(messages_area) = messages_area {
        let drawn = messages::render(
            model,
            model.focus == Focus::Messages && no_overlay,
            messages_area,
            frame.buffer_mut(),
        );
        hits.messages_area = Some(messages_area);
        hits.message_rows = drawn.rows;
        if let (Some(view), Some((top, bottom))) = (&model.view, drawn.visible) {
            hits.viewport = Some((view.chat_id, top, bottom));
        }
    }
    transfers::render(model, progress, frame.buffer_mut());
    status::render_typing(model, typing, frame.buffer_mut());
    let title = match model.open_chat() {
        Some(id) => match call::group_call_text(model, id) {
            Some(call) => format!("Message {} · {call}", model.chats.title(id, &model.users)),
            None => format!("Message {}", model.chats.title(id, &model.users)),
        },
        None => "Message".to_string(),
    };
    let composer_cursor = composer::render(
        &model.composer,
        &title,
        model.focus == Focus::Composer && no_overlay,
        theme,
        composer_area,
        frame.buffer_mut(),
    );
    hits.composer_area = Some(composer_area);
    if model.focus == Focus::Composer && no_overlay {
        cursor = composer_cursor;
    }
    status::render_status(model, status_area, frame.buffer_mut());
    match &model.overlay {
        None => {}
        Some(Overlay::Help { scroll }) => {
            let mut under = pane_contexts(model);
            under.retain(|c| *c != Context::Global);
            help::render(
                &model.config.keymap,
                &under,
                *scroll,
                theme,
                area,
                frame.buffer_mut(),
            );
        }
        Some(Overlay::Picker(p)) => {
            let (c, rows) = picker::render(p, theme, area, frame.buffer_mut());
            hits.picker_rows = rows;
            cursor = Some(c);
        }
        Some(Overlay::Prompt(p)) => {
            cursor = Some(dialog::render_prompt(p, theme, area, frame.buffer_mut()))
        }
        Some(Overlay::Confirm(c)) => dialog::render_confirm(c, theme, area, frame.buffer_mut()),
        Some(Overlay::Info(i)) => dialog::render_info(i, theme, area, frame.buffer_mut()),
    }
    if model.calls.ringing().is_some() {
        call::render_prompt(model, area, frame.buffer_mut());
        cursor = None;
    }
    cursor
}

#[cfg(test)]
mod tests;
