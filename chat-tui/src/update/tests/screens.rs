//! The screens before chatting: trusting a server, signing in, registering, and what signing
//! in loads.

use chatproto::pb;

use crate::action::NetEvent;
use crate::effect::{Effect, NetCommand};
use crate::model::Screen;
use crate::testing::*;

#[test]
fn a_new_server_is_trusted_only_with_y_and_a_changed_one_only_quits() {
    let mut m = model();
    net(
        &mut m,
        NetEvent::TrustUnknown {
            address: "chat.example:4433".into(),
            fingerprint: "ab".repeat(32),
            file: "~/.config/chat-tui/known_servers".into(),
        },
    );
    assert!(keys(&mut m, "x").is_empty(), "other keys do nothing");
    assert_eq!(commands(&keys(&mut m, "y")), [NetCommand::Trust(true)]);
    assert!(matches!(m.screen, Screen::Connecting { .. }));

    let mut m = model();
    net(
        &mut m,
        NetEvent::TrustChanged {
            address: "chat.example:4433".into(),
            fingerprint: "ab".repeat(32),
            known: "cd".repeat(32),
            file: "known_servers".into(),
        },
    );
    assert!(
        commands(&keys(&mut m, "y")).is_empty(),
        "a changed certificate cannot be accepted"
    );
    assert!(!m.quit);
    assert!(keys(&mut m, "esc").contains(&Effect::Quit));
}

#[test]
fn the_sign_in_form_checks_before_sending_and_shows_refusals() {
    let mut m = model();
    net(&mut m, NetEvent::NeedSignIn { reason: None });
    type_text(&mut m, "Alice");
    keys(&mut m, "enter");
    let effects = type_text(&mut m, "secret12");
    assert!(effects.is_empty());
    let sent = commands(&keys(&mut m, "enter"));
    assert_eq!(
        sent,
        [NetCommand::SignIn {
            username: "alice".into(),
            password: "secret12".into()
        }]
    );
    assert!(
        keys(&mut m, "enter").is_empty(),
        "nothing is sent twice while busy"
    );
    net(
        &mut m,
        NetEvent::SignInFailed {
            error: "Wrong username or password.".into(),
        },
    );
    let Screen::Auth(form) = &m.screen else {
        panic!("auth screen")
    };
    assert_eq!(form.error.as_deref(), Some("Wrong username or password."));
    assert!(!form.busy);

    // Registration: the username is kept, mistakes are named locally.
    keys(&mut m, "ctrl-r");
    let Screen::Auth(form) = &m.screen else {
        panic!("auth screen")
    };
    assert!(form.register);
    assert_eq!(form.value("Username"), "Alice");
    type_text(&mut m, "alice@example.org");
    keys(&mut m, "tab");
    type_text(&mut m, "longenough");
    keys(&mut m, "tab");
    type_text(&mut m, "different!");
    assert!(commands(&keys(&mut m, "enter")).is_empty());
    let Screen::Auth(form) = &m.screen else {
        panic!("auth screen")
    };
    assert_eq!(form.error.as_deref(), Some("The two passwords differ."));
    assert_eq!(form.focus, 3);
    keys(&mut m, "ctrl-u");
    type_text(&mut m, "longenough");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        [NetCommand::Register {
            username: "alice".into(),
            email: "alice@example.org".into(),
            password: "longenough".into()
        }]
    );
}

#[test]
fn signing_in_loads_the_chats_and_selects_the_first() {
    let mut m = model();
    let effects = net(
        &mut m,
        NetEvent::SignedIn {
            me: user(ME, "alice", pb::UserStatus::Online),
            outbox: vec![pb::SendMessage {
                chat_id: TEAM,
                client_msg_id: "old-1".into(),
                text: "left from last time".into(),
                ..Default::default()
            }],
        },
    );
    assert_eq!(commands(&effects), [NetCommand::LoadChats]);
    assert_eq!(m.screen, Screen::Main);
    assert_eq!(
        m.pending.shown_in(TEAM).count(),
        1,
        "the outbox of the last run is shown"
    );
    let m = signed_in();
    assert_eq!(m.chats.selected, Some(13), "the pinned chat comes first");
    assert_eq!(m.chats.title(BOB_CHAT, &m.users), "bob");
}
