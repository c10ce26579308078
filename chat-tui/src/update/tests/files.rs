//! File transfers: upload by key and by command, saving a message's file, progress, cancelling,
//! and the feedback of success and failure.

use chatproto::pb;

use crate::action::NetEvent;
use crate::effect::{Effect, NetCommand};
use crate::model::transfers::Direction;
use crate::model::{Level, Model, Overlay};
use crate::testing::*;
use crate::widgets::dialog::PromptPurpose;

fn notice(m: &Model) -> (Level, String) {
    let n = m.notice.as_ref().expect("a notice");
    (n.level, n.text.clone())
}

fn upload_token(effects: &[Effect]) -> (u64, String) {
    commands(effects)
        .into_iter()
        .find_map(|c| match c {
            NetCommand::Upload { token, path } => Some((token, path)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no upload in {effects:?}"))
}

fn slash(m: &mut Model, line: &str) -> Vec<Effect> {
    m.focus = crate::model::Focus::Composer;
    m.composer.input.set(line);
    keys(m, "enter")
}

#[test]
fn saving_the_selected_messages_file_shows_progress_and_where_it_went() {
    let mut m = team_open();
    keys(&mut m, "esc k k");
    assert_eq!(m.view.as_ref().unwrap().selected, Some(8));
    let effects = keys(&mut m, "s");
    let (token, file) = match &commands(&effects)[..] {
        [NetCommand::Download { token, file }] => (*token, file.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(file.id, "f_whiteboard");
    let t = m.transfers.latest().unwrap();
    assert_eq!(
        (t.direction, t.name.as_str(), t.total),
        (Direction::Download, "whiteboard.png", 48_213)
    );
    assert!(notice(&m).1.starts_with("Saving whiteboard.png"));

    // Asking again while it runs starts nothing.
    assert!(commands(&keys(&mut m, "s")).is_empty());
    assert_eq!(notice(&m).1, "That file is already being saved.");

    net(
        &mut m,
        NetEvent::TransferProgress {
            token,
            done: 24_000,
            total: 48_213,
        },
    );
    assert_eq!(m.transfers.latest().unwrap().done, 24_000);
    net(
        &mut m,
        NetEvent::Downloaded {
            token,
            path: "~/Downloads/whiteboard (1).png".into(),
        },
    );
    assert!(m.transfers.is_empty());
    assert_eq!(
        notice(&m),
        (
            Level::Ok,
            "Saved whiteboard.png to ~/Downloads/whiteboard (1).png".into()
        )
    );
}

#[test]
fn a_message_without_a_file_has_nothing_to_save() {
    let mut m = team_open();
    keys(&mut m, "esc k");
    assert!(commands(&keys(&mut m, "s")).is_empty());
    assert_eq!(
        notice(&m),
        (Level::Error, "That message has no file.".into())
    );
    // Without a selection, /download takes the latest message with a file.
    m.view.as_mut().unwrap().selected = None;
    let effects = slash(&mut m, "/download");
    assert!(matches!(
        &commands(&effects)[..],
        [NetCommand::Download { file, .. }] if file.id == "f_whiteboard"
    ));
}

#[test]
fn an_uploaded_file_goes_to_its_chat_through_the_outbox() {
    let mut m = team_open();
    let (token, path) = upload_token(&slash(&mut m, "/upload ~/docs/report.pdf"));
    assert_eq!(path, "~/docs/report.pdf");
    let t = m.transfers.latest().unwrap();
    assert_eq!(
        (t.direction, t.name.as_str(), t.chat_id),
        (Direction::Upload, "report.pdf", TEAM)
    );
    net(
        &mut m,
        NetEvent::TransferProgress {
            token,
            done: 1 << 20,
            total: 3 << 20,
        },
    );
    let pending_before = m.pending.len();
    let effects = net(
        &mut m,
        NetEvent::Uploaded {
            token,
            file: pb::FileInfo {
                id: "f_report".into(),
                name: "report.pdf".into(),
                mime: "application/pdf".into(),
                size: 3 << 20,
                kind: pb::MessageKind::File as i32,
                ..Default::default()
            },
        },
    );
    let queued = commands(&effects)
        .into_iter()
        .find_map(|c| match c {
            NetCommand::Queue(request) => Some(request),
            _ => None,
        })
        .expect("the file message is queued");
    assert_eq!(
        (queued.chat_id, queued.kind, queued.file_id.as_str()),
        (TEAM, pb::MessageKind::File as i32, "f_report")
    );
    assert!(!queued.client_msg_id.is_empty());
    assert_eq!(m.pending.len(), pending_before + 1);
    assert!(m.transfers.is_empty());
    assert_eq!(
        notice(&m),
        (
            Level::Ok,
            "Uploaded report.pdf (3.0 MiB); sending it.".into()
        )
    );
}

#[test]
fn the_upload_key_asks_for_a_path() {
    let mut m = team_open();
    keys(&mut m, "esc u");
    assert!(matches!(
        &m.overlay,
        Some(Overlay::Prompt(p)) if p.purpose == PromptPurpose::Upload && p.title.contains("team")
    ));
    type_text(&mut m, "'/tmp/a b.txt'");
    let (_, path) = upload_token(&keys(&mut m, "enter"));
    assert_eq!(path, "/tmp/a b.txt", "quotes of a dropped path are removed");
    assert!(m.overlay.is_none());
}

#[test]
fn a_cancelled_transfer_stops_and_its_late_result_is_ignored() {
    let mut m = team_open();
    let (token, _) = upload_token(&slash(&mut m, "/upload big.iso"));
    keys(&mut m, "esc");
    let effects = keys(&mut m, "x");
    assert_eq!(commands(&effects), [NetCommand::CancelTransfer(token)]);
    assert!(m.transfers.is_empty());
    assert_eq!(
        notice(&m),
        (Level::Info, "Upload of big.iso cancelled.".into())
    );
    let late = net(
        &mut m,
        NetEvent::Uploaded {
            token,
            file: pb::FileInfo::default(),
        },
    );
    assert!(late.is_empty(), "nothing is sent for a cancelled upload");
    keys(&mut m, "x");
    assert_eq!(
        notice(&m),
        (Level::Error, "No file transfer to cancel.".into())
    );
    // /cancel does the same.
    let (token, _) = upload_token(&slash(&mut m, "/upload big.iso"));
    assert_eq!(
        commands(&slash(&mut m, "/cancel")),
        [NetCommand::CancelTransfer(token)]
    );
}

#[test]
fn failures_are_reported_in_words() {
    let mut m = team_open();
    let (token, _) = upload_token(&slash(&mut m, "/upload ~/nope.txt"));
    net(
        &mut m,
        NetEvent::TransferFailed {
            token,
            error: "there is no file ~/nope.txt".into(),
        },
    );
    assert!(m.transfers.is_empty());
    assert_eq!(
        notice(&m),
        (
            Level::Error,
            "Upload of nope.txt failed: there is no file ~/nope.txt".into()
        )
    );
    slash(&mut m, "/upload");
    assert_eq!(
        notice(&m),
        (
            Level::Error,
            "the path is missing — usage: /upload PATH".into()
        )
    );
}
