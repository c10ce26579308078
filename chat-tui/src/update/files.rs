//! File transfers: starting an upload (from a path typed into a prompt or `/upload`), saving a
//! message's file, cancelling, and what the network task reports about them. An upload that
//! the server stored goes into its chat through the outbox like any message, so it is sent once
//! even across reconnects.

use chatproto::pb;

use super::{chat, compose};
use crate::effect::{Effect, NetCommand};
use crate::model::transfers::{Direction, Transfer};
use crate::model::{Level, Model, Overlay};
use crate::widgets::dialog::{Prompt, PromptPurpose};
use crate::widgets::human_size;

/// The last component of a typed path (what the server will call the file).
fn file_name(path: &str) -> String {
    path.trim_end_matches(['/', '\\'])
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(path)
        .to_string()
}

/// Asks for the path of a file to send to the open chat.
pub(super) fn prompt_upload(model: &mut Model) {
    let Some(chat_id) = chat::current_chat(model) else {
        return;
    };
    model.overlay = Some(Overlay::Prompt(Prompt::new(
        format!(
            "Send a file to {}: its path",
            model.chats.title(chat_id, &model.users)
        ),
        PromptPurpose::Upload,
    )));
}

/// Starts uploading the file at `path` for the open chat.
pub(super) fn upload(model: &mut Model, path: String, effects: &mut Vec<Effect>) {
    let Some(chat_id) = chat::current_chat(model) else {
        return;
    };
    let token = model.ids.token();
    let name = file_name(&path);
    model.notify(Level::Info, format!("Uploading {name}… (x cancels)"));
    model.transfers.start(Transfer {
        token,
        direction: Direction::Upload,
        name,
        chat_id,
        file_id: String::new(),
        done: 0,
        total: 0,
    });
    effects.push(Effect::Net(NetCommand::Upload { token, path }));
}

/// The message whose file `/download` saves: the selected one, else the latest with a file.
fn message_with_file(model: &mut Model) -> Option<pb::Message> {
    let view = model.view.as_ref()?;
    let found = match view.selected.and_then(|s| view.window.get(s)) {
        Some(m) => Some(m.clone()),
        None => view
            .window
            .iter()
            .rev()
            .find(|m| m.attachment.is_some() && !m.deleted)
            .cloned(),
    };
    if found.is_none() {
        model.notify(Level::Error, "No file to save: select a message with one.");
    }
    found
}

/// Saves the file of the selected (or latest) message into the download directory.
pub(super) fn download(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(m) = message_with_file(model) else {
        return;
    };
    let file = match m.attachment {
        Some(file) if !m.deleted && !file.id.is_empty() => *file,
        _ if m.deleted => {
            return model.notify(Level::Error, "That message was deleted with its file.");
        }
        _ => return model.notify(Level::Error, "That message has no file."),
    };
    if model.transfers.downloading(&file.id) {
        return model.notify(Level::Info, "That file is already being saved.");
    }
    let token = model.ids.token();
    let name = if file.name.is_empty() {
        file.id.clone()
    } else {
        file.name.clone()
    };
    model.notify(Level::Info, format!("Saving {name}… (x cancels)"));
    model.transfers.start(Transfer {
        token,
        direction: Direction::Download,
        name,
        chat_id: m.chat_id,
        file_id: file.id.clone(),
        done: 0,
        total: file.size,
    });
    effects.push(Effect::Net(NetCommand::Download { token, file }));
}

/// Cancels the newest transfer.
pub(super) fn cancel(model: &mut Model, effects: &mut Vec<Effect>) {
    let Some(token) = model.transfers.latest().map(|t| t.token) else {
        return model.notify(Level::Error, "No file transfer to cancel.");
    };
    if let Some(t) = model.transfers.finish(token) {
        model.notify(
            Level::Info,
            format!("{} of {} cancelled.", t.what(), t.name),
        );
    }
    effects.push(Effect::Net(NetCommand::CancelTransfer(token)));
}

/// Progress reported by the network task.
pub(super) fn on_progress(model: &mut Model, token: u64, done: u64, total: u64) {
    model.transfers.progress(token, done, total);
}

/// An upload is stored: its message goes into the outbox.
pub(super) fn on_uploaded(
    model: &mut Model,
    token: u64,
    file: pb::FileInfo,
    effects: &mut Vec<Effect>,
) {
    let Some(t) = model.transfers.finish(token) else {
        return; // Cancelled meanwhile: the file is not sent.
    };
    model.notify(
        Level::Ok,
        format!(
            "Uploaded {} ({}); sending it.",
            t.name,
            human_size(file.size)
        ),
    );
    compose::queue(
        model,
        pb::SendMessage {
            chat_id: t.chat_id,
            kind: file.kind,
            file_id: file.id,
            ..Default::default()
        },
        effects,
    );
}

/// A download is complete.
pub(super) fn on_downloaded(model: &mut Model, token: u64, path: &str) {
    if let Some(t) = model.transfers.finish(token) {
        model.notify(Level::Ok, format!("Saved {} to {path}", t.name));
    }
}

/// A transfer failed.
pub(super) fn on_failed(model: &mut Model, token: u64, error: &str) {
    if let Some(t) = model.transfers.finish(token) {
        model.notify(
            Level::Error,
            format!("{} of {} failed: {error}", t.what(), t.name),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_last_path_component() {
        assert_eq!(file_name("~/Documents/report.pdf"), "report.pdf");
        assert_eq!(file_name("notes.txt"), "notes.txt");
        assert_eq!(file_name("C:\\tmp\\a.png"), "a.png");
        assert_eq!(file_name("/tmp/dir/"), "dir");
    }
}
