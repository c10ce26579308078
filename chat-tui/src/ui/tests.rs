//! Rendered frames of every screen, at 80×24 and at 160×48, compared with the snapshots in
//! `snapshots/` (insta). The frames are text: what a user sees, without colours.

use chatproto::client::ClientEvent;
use chatproto::pb;

use crate::action::NetEvent;
use crate::model::{ConnState, Model, Overlay};
use crate::testing::*;
use crate::widgets::dialog::{Prompt, PromptPurpose};
use crate::widgets::text_input::TextBuffer;

/// Snapshots `model` at both sizes.
fn snapshot(name: &str, model: &Model) {
    for (width, height) in [(80, 24), (160, 48)] {
        insta::assert_snapshot!(
            format!("{name}_{width}x{height}"),
            render(model, width, height)
        );
    }
}

#[test]
fn connecting() {
    let mut m = model();
    net(
        &mut m,
        NetEvent::ConnectFailed {
            error: "chat.example:4433: no answer within 5s".into(),
            retry_in_ms: Some(3_000),
        },
    );
    snapshot("connecting", &m);
}

#[test]
fn trust_a_new_server() {
    let mut m = model();
    net(
        &mut m,
        NetEvent::TrustUnknown {
            address: "chat.example:4433".into(),
            fingerprint: "3fa1".repeat(16),
            file: "~/.config/chat-tui/known_servers".into(),
        },
    );
    snapshot("trust_new", &m);
}

#[test]
fn trust_refuses_a_changed_certificate() {
    let mut m = model();
    net(
        &mut m,
        NetEvent::TrustChanged {
            address: "chat.example:4433".into(),
            fingerprint: "0bad".repeat(16),
            known: "3fa1".repeat(16),
            file: "~/.config/chat-tui/known_servers".into(),
        },
    );
    snapshot("trust_changed", &m);
}

#[test]
fn sign_in() {
    let mut m = model();
    net(
        &mut m,
        NetEvent::NeedSignIn {
            reason: Some(
                "The saved session no longer works (session revoked). Sign in again.".into(),
            ),
        },
    );
    snapshot("sign_in", &m);
}

#[test]
fn sign_in_with_a_two_factor_code() {
    let mut m = model();
    net(&mut m, NetEvent::NeedSignIn { reason: None });
    type_text(&mut m, "alice");
    keys(&mut m, "enter");
    type_text(&mut m, "secret12");
    keys(&mut m, "enter");
    net(
        &mut m,
        NetEvent::NeedTwoFactorCode {
            error: "Enter the code of your authenticator app, or a recovery code.".into(),
        },
    );
    snapshot("sign_in_two_factor", &m);
}

#[test]
fn forgot_password_after_a_code_was_sent() {
    let mut m = model();
    net(&mut m, NetEvent::NeedSignIn { reason: None });
    type_text(&mut m, "alice");
    keys(&mut m, "ctrl-f");
    keys(&mut m, "enter");
    net(
        &mut m,
        NetEvent::ResetCodeSent {
            valid_for_seconds: 900,
        },
    );
    type_text(&mut m, "k7q2-m9xd");
    snapshot("forgot_password", &m);
}

#[test]
fn two_factor_key_and_code() {
    let mut m = signed_in();
    net(
        &mut m,
        NetEvent::TwoFactorSecret {
            secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
            uri: "otpauth://totp/chat:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=chat"
                .into(),
        },
    );
    type_text(&mut m, "2870");
    snapshot("two_factor_key", &m);
}

#[test]
fn register_with_a_mistake() {
    let mut m = model();
    net(&mut m, NetEvent::NeedSignIn { reason: None });
    keys(&mut m, "ctrl-r");
    type_text(&mut m, "al");
    keys(&mut m, "enter enter");
    snapshot("register", &m);
}

#[test]
fn main_without_chats() {
    let mut m = model();
    net(
        &mut m,
        NetEvent::SignedIn {
            me: user(ME, "alice", pb::UserStatus::Online),
            max_text_chars: 0,
            outbox: vec![],
        },
    );
    client(
        &mut m,
        ClientEvent::Connected {
            address: "chat.example:4433".into(),
            node_id: "n".into(),
        },
    );
    snapshot("main_empty", &m);
}

#[test]
fn main_with_a_chat_open() {
    snapshot("main_chat", &team_open());
}

#[test]
fn main_reconnecting_with_a_selected_message_and_a_reply() {
    let mut m = team_open();
    keys(&mut m, "esc k k k k r");
    type_text(&mut m, "count me in");
    m.conn = ConnState::Reconnecting {
        at_ms: NOW + 4_200,
        reason: "timed out".into(),
    };
    m.focus = crate::model::Focus::Messages;
    m.view.as_mut().unwrap().selected = Some(6);
    snapshot("main_reconnecting", &m);
}

#[test]
fn chat_list_filter() {
    let mut m = signed_in();
    keys(&mut m, "/");
    type_text(&mut m, "a");
    snapshot("chat_filter", &m);
}

#[test]
fn help() {
    let mut m = team_open();
    keys(&mut m, "esc ?");
    snapshot("help", &m);
}

#[test]
fn reaction_picker() {
    let mut m = team_open();
    keys(&mut m, "esc k k +");
    snapshot("react", &m);
}

#[test]
fn user_search() {
    let mut m = team_open();
    keys(&mut m, "esc n");
    let effects = type_text(&mut m, "da");
    let token = commands(&effects)
        .iter()
        .rev()
        .find_map(|c| match c {
            crate::effect::NetCommand::SearchUsers { token, .. } => Some(*token),
            _ => None,
        })
        .unwrap();
    net(
        &mut m,
        NetEvent::UserResults {
            token,
            users: vec![
                pb::User {
                    display_name: "Dave D.".into(),
                    ..user(4, "dave", pb::UserStatus::Online)
                },
                user(5, "dana", pb::UserStatus::Offline),
            ],
        },
    );
    snapshot("user_search", &m);
}

#[test]
fn confirm() {
    let mut m = team_open();
    keys(&mut m, "esc k D");
    snapshot("confirm", &m);
}

#[test]
fn prompt() {
    let mut m = team_open();
    m.overlay = Some(Overlay::Prompt(Prompt {
        input: TextBuffer::with_text("Book club"),
        ..Prompt::new("New group: title", PromptPurpose::NewGroup)
    }));
    snapshot("prompt", &m);
}

#[test]
fn profile() {
    let mut m = team_open();
    m.composer.input.set("/profile");
    keys(&mut m, "enter");
    snapshot("profile", &m);
}

#[test]
fn no_color_draws_no_colours() {
    let mut m = team_open();
    m.config = crate::config::Config::parse("", true).unwrap();
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|f| {
            crate::ui::render(&m, f);
        })
        .unwrap();
    let buffer = terminal.backend().buffer();
    for cell in buffer.content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "{cell:?}");
        assert_eq!(cell.bg, ratatui::style::Color::Reset, "{cell:?}");
    }
}

#[test]
fn the_hit_map_finds_chats_and_messages() {
    let m = team_open();
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    let mut hits = crate::ui::HitMap::default();
    terminal.draw(|f| hits = crate::ui::render(&m, f)).unwrap();
    let chats: Vec<u64> = hits.chat_rows.iter().map(|(_, id)| *id).collect();
    assert_eq!(chats, [13, TEAM, BOB_CHAT, 12]);
    let (_, _, bottom) = hits.viewport.unwrap();
    assert_eq!(bottom, 9);
    assert!(hits.message_rows.iter().any(|(_, seq)| *seq == 8));
}

#[test]
fn an_attachment_row_selected() {
    let mut m = team_open();
    keys(&mut m, "esc k k");
    snapshot("attachment_selected", &m);
}

#[test]
fn transfers_in_progress() {
    let mut m = team_open();
    keys(&mut m, "esc k k s");
    m.composer
        .input
        .set("/upload ~/Documents/quarterly report 2026.pdf");
    m.focus = crate::model::Focus::Composer;
    let effects = keys(&mut m, "enter");
    for c in commands(&effects) {
        if let crate::effect::NetCommand::Upload { token, .. } = c {
            net(
                &mut m,
                NetEvent::TransferProgress {
                    token,
                    done: 1_258_291,
                    total: 2_936_012,
                },
            );
        }
    }
    snapshot("transfers", &m);
}

#[test]
fn an_incoming_call_over_the_open_chat() {
    let mut m = bob_open();
    client(
        &mut m,
        ClientEvent::Call(call(
            BOB,
            pb::CallState::Ringing,
            pb::CallEndReason::Unspecified,
            0,
        )),
    );
    tick(&mut m, NOW + 5_000);
    snapshot("call_incoming", &m);
}

#[test]
fn in_call_with_a_recorded_call_above() {
    let mut m = bob_open();
    client(
        &mut m,
        ClientEvent::Chat(pb::ChatEvent {
            chat_id: BOB_CHAT,
            seq: 3,
            at_ms: NOW - 30_000,
            actor_id: BOB,
            body: Some(pb::chat_event::Body::CallEnded(pb::CallEnded {
                call_id: 5,
                caller_id: BOB,
                video: true,
                reason: pb::CallEndReason::Missed as i32,
                started_at_ms: NOW - 60_000,
                duration_ms: 0,
                group: false,
            })),
        }),
    );
    let active = call(ME, pb::CallState::Active, pb::CallEndReason::Unspecified, 0);
    apply(
        &mut m,
        crate::action::Action::Net(NetEvent::CallStarted(call(
            ME,
            pb::CallState::Ringing,
            pb::CallEndReason::Unspecified,
            0,
        ))),
    );
    client(&mut m, ClientEvent::Call(active));
    tick(&mut m, NOW + 43_000);
    snapshot("call_active", &m);
}

#[test]
fn a_group_with_a_live_call() {
    let mut m = team_open();
    client(
        &mut m,
        ClientEvent::GroupCall(group_call(2, pb::CallState::Active, &[BOB, 3])),
    );
    snapshot("group_call_live", &m);
}
