//! The event loop: it owns the terminal, the model and the channel the network task reports
//! on. Each turn it waits for a terminal event, a network action or a tick, applies the actions
//! that are ready, carries out their effects, and draws the model.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{Event, EventStream, KeyEventKind, MouseButton, MouseEventKind};
use futures_util::StreamExt as _;
use ratatui::layout::{Position, Rect};
use tokio::sync::mpsc;

use crate::action::{Action, MouseAction};
use crate::effect::Effect;
use crate::model::{Clock, Ids, Model, Screen};
use crate::net::{self, NetConfig};
use crate::settings::Settings;
use crate::terminal;
use crate::ui::{self, HitMap};
use crate::update::update;

/// How often the clock ticks (typing expiry, countdowns).
const TICK: Duration = Duration::from_millis(250);
/// Actions the network task may queue before it waits for the app.
const CHANNEL: usize = 1024;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The user quit.
    Quit,
    /// The client refused to go on (a changed server certificate): the message says why.
    Refused(String),
    /// `--logout` did its work: what to tell the user.
    LoggedOut(String),
}

/// Why the app could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The terminal could not be set up or written.
    #[error("terminal: {0}")]
    Terminal(std::io::Error),
}

/// The time now, with the local time zone's offset.
pub fn clock_now() -> Clock {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Clock {
        now_ms,
        utc_offset_s: chrono::Local::now().offset().local_minus_utc(),
    }
}

/// Runs chat-tui with `settings` until the user quits.
///
/// # Errors
/// When the runtime or the terminal cannot be used.
pub fn run(settings: Settings) -> Result<Exit, AppError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(AppError::Runtime)?;
    let exit = if settings.logout {
        Ok(Exit::LoggedOut(runtime.block_on(net::logout(&settings))))
    } else {
        runtime.block_on(interactive(settings))
    };
    // Connections still closing must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(300));
    exit
}

fn history_file(settings: &Settings) -> PathBuf {
    settings
        .paths
        .server_dir(&settings.server)
        .join("input-history")
}

async fn interactive(settings: Settings) -> Result<Exit, AppError> {
    let (actions_tx, mut actions) = mpsc::channel(CHANNEL);
    let net = net::spawn(NetConfig::from_settings(&settings), actions_tx);
    let ids = Ids::new(format!("tui{:016x}", rand_prefix()));
    let mut model = Model::new(
        settings.server.clone(),
        settings.config.clone(),
        ids,
        clock_now(),
    );
    model.composer.history = history::load(&history_file(&settings));
    let mut terminal = terminal::enter().map_err(AppError::Terminal)?;
    let result = event_loop(&settings, &mut model, &mut terminal, &mut actions, &net).await;
    let left = terminal::leave().map_err(AppError::Terminal);
    let exit = result?;
    left?;
    Ok(exit)
}

fn rand_prefix() -> u64 {
    // Unique per run: the nanoseconds of the start and the process id.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

async fn event_loop(
    settings: &Settings,
    model: &mut Model,
    terminal: &mut terminal::Term,
    actions: &mut mpsc::Receiver<Action>,
    net: &mpsc::UnboundedSender<crate::effect::NetCommand>,
) -> Result<Exit, AppError> {
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut hits = HitMap::default();
    loop {
        terminal
            .draw(|frame| hits = ui::render(model, frame))
            .map_err(AppError::Terminal)?;
        let mut batch = Vec::new();
        if let Some((chat_id, top, bottom)) = hits.viewport
            && model.view.as_ref().and_then(|v| v.visible) != Some((top, bottom))
        {
            batch.push(Action::Viewport {
                chat_id,
                top,
                bottom,
            });
        }
        if batch.is_empty() {
            tokio::select! {
                event = input.next() => match event {
                    Some(Ok(event)) => batch.extend(terminal_action(event, &hits)),
                    Some(Err(e)) => return Err(AppError::Terminal(e)),
                    None => return Ok(Exit::Quit),
                },
                action = actions.recv() => match action {
                    Some(action) => batch.push(action),
                    None => return Ok(Exit::Quit),
                },
                _ = tick.tick() => batch.push(Action::Tick(clock_now())),
            }
        }
        // Everything else that is ready joins this turn, so a burst costs one frame.
        while let Ok(action) = actions.try_recv() {
            batch.push(action);
            if batch.len() >= 256 {
                break;
            }
        }
        for action in batch {
            let refused = refusal(model);
            for effect in update(model, action) {
                match effect {
                    Effect::Net(command) => {
                        let _ = net.send(command);
                    }
                    Effect::Bell => terminal::bell().map_err(AppError::Terminal)?,
                    Effect::Notify { title, body } => {
                        terminal::notify(
                            settings.config.notifications.desktop_protocol,
                            &title,
                            &body,
                        )
                        .map_err(AppError::Terminal)?;
                    }
                    Effect::SaveInputHistory(entries) => {
                        if let Err(e) = history::save(&history_file(settings), &entries) {
                            tracing::warn!(error = %e, "cannot save the input history");
                        }
                    }
                    Effect::Quit => {
                        return Ok(refused.map_or(Exit::Quit, Exit::Refused));
                    }
                }
            }
        }
    }
}

/// The message to leave with when the screen refuses a changed certificate.
fn refusal(model: &Model) -> Option<String> {
    match &model.screen {
        Screen::Trust(prompt) => prompt.known.as_ref().map(|known| {
            format!(
                "the certificate of {} changed (recorded {known}, presented {}): connection refused. \
                 If the change is expected, remove its line from {}.",
                prompt.address, prompt.fingerprint, prompt.file
            )
        }),
        _ => None,
    }
}

fn contains(area: Option<Rect>, x: u16, y: u16) -> bool {
    area.is_some_and(|a| a.contains(Position::new(x, y)))
}

/// Turns a terminal event into actions, locating mouse events with the last frame's hit map.
fn terminal_action(event: Event, hits: &HitMap) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => Some(Action::Key(key)),
        Event::Paste(text) => Some(Action::Paste(text)),
        Event::Resize(_, _) => Some(Action::Tick(clock_now())),
        Event::Mouse(mouse) => {
            let (x, y) = (mouse.column, mouse.row);
            let mouse = match mouse.kind {
                MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                    let up = mouse.kind == MouseEventKind::ScrollUp;
                    if !hits.picker_rows.is_empty() {
                        return None;
                    }
                    if contains(hits.chats_area, x, y) {
                        MouseAction::ScrollChats(if up { -1 } else { 1 })
                    } else {
                        MouseAction::ScrollMessages(if up { -3 } else { 3 })
                    }
                }
                MouseEventKind::Down(MouseButton::Left) => {
                    if let Some((_, i)) = hits
                        .picker_rows
                        .iter()
                        .find(|(r, _)| r.contains(Position::new(x, y)))
                    {
                        MouseAction::ClickPicker(*i)
                    } else if let Some((_, id)) = hits
                        .chat_rows
                        .iter()
                        .find(|(r, _)| r.contains(Position::new(x, y)))
                    {
                        MouseAction::ClickChat(*id)
                    } else if contains(hits.messages_area, x, y) {
                        let (_, seq) = hits.message_rows.iter().find(|(row, _)| *row == y)?;
                        MouseAction::ClickMessage(*seq)
                    } else if contains(hits.composer_area, x, y) {
                        MouseAction::ClickComposer
                    } else {
                        return None;
                    }
                }
                _ => return None,
            };
            Some(Action::Mouse(mouse))
        }
        _ => None,
    }
}

/// The composer's input history between runs: one entry per line, `\` and line breaks escaped.
mod history {
    use std::path::Path;

    use crate::widgets::composer::HISTORY_LEN;

    fn escape(entry: &str) -> String {
        entry.replace('\\', "\\\\").replace('\n', "\\n")
    }

    fn unescape(line: &str) -> String {
        let mut out = String::with_capacity(line.len());
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => {}
                },
                (c, false) => out.push(c),
            }
        }
        out
    }

    /// The stored entries (none when there is no file or it cannot be read).
    pub fn load(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut entries: Vec<String> = text.lines().map(unescape).collect();
        let extra = entries.len().saturating_sub(HISTORY_LEN);
        entries.drain(..extra);
        entries
    }

    /// Stores the entries (the file holds what was typed: mode 0600).
    pub fn save(
        path: &Path,
        entries: &[String],
    ) -> Result<(), chatproto::client::store::StoreError> {
        let mut text = String::new();
        for entry in entries {
            text.push_str(&escape(entry));
            text.push('\n');
        }
        chatproto::client::store::write_atomic(path, text.as_bytes(), 0o600)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn entries_with_line_breaks_and_backslashes_round_trip() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("h/input-history");
            let entries = vec![
                "one".to_string(),
                "two\nlines \\n not".to_string(),
                "\\".to_string(),
            ];
            super::save(&path, &entries).unwrap();
            assert_eq!(super::load(&path), entries);
            assert!(super::load(&dir.path().join("missing")).is_empty());
        }
    }
}
