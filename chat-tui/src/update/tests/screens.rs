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
fn a_two_factor_code_is_asked_for_when_the_server_wants_one_and_sent_with_the_password() {
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
    let Screen::Auth(form) = &m.screen else {
        panic!("auth screen")
    };
    assert_eq!(form.fields.len(), 3, "a field for the code");
    assert_eq!(form.focus, 2, "focused");
    assert!(!form.busy);
    assert!(form.error.is_some());
    assert!(
        commands(&keys(&mut m, "enter")).is_empty(),
        "an empty code is not sent"
    );
    type_text(&mut m, "287082");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        [NetCommand::SignIn {
            username: "alice".into(),
            password: "secret12".into(),
            two_factor_code: "287082".into(),
        }]
    );
    // A wrong code: the field is emptied for the next one, not added twice.
    net(
        &mut m,
        NetEvent::NeedTwoFactorCode {
            error: "That code is wrong or was used already: enter the current one.".into(),
        },
    );
    let Screen::Auth(form) = &m.screen else {
        panic!("auth screen")
    };
    assert_eq!(form.fields.len(), 3);
    assert_eq!(form.value("Two-factor code"), "");
    assert_eq!(form.value("Password"), "secret12", "the password is kept");
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
            password: "secret12".into(),
            two_factor_code: String::new(),
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
            max_text_chars: 1000,
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
        m.max_text_chars, 1000,
        "the server's limit is the composer's"
    );
    assert_eq!(
        m.pending.shown_in(TEAM).count(),
        1,
        "the outbox of the last run is shown"
    );
    let m = signed_in();
    assert_eq!(m.chats.selected, Some(13), "the pinned chat comes first");
    assert_eq!(m.chats.title(BOB_CHAT, &m.users), "bob");
}
