//! Email verification and the forgotten password (protocol.md section 18): `/verify`, `/email`,
//! and the "forgot password" form of the sign-in screen, with what each sends.

use crate::action::NetEvent;
use crate::effect::{AccountCommand, NetCommand};
use crate::model::{Focus, Overlay, Screen};
use crate::testing::*;
use crate::widgets::auth::AuthForm;

fn form(m: &crate::model::Model) -> &AuthForm {
    match &m.screen {
        Screen::Auth(form) => form,
        other => panic!("not the auth screen: {other:?}"),
    }
}

#[test]
fn verify_sends_the_code_or_asks_for_a_new_one() {
    let mut m = signed_in();
    m.focus = Focus::Composer;
    m.composer.input.set("/verify k7q2-m9xd");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        [NetCommand::Account(AccountCommand::Verify {
            code: "k7q2-m9xd".into()
        })]
    );
    m.composer.input.set("/verify");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        [NetCommand::Account(AccountCommand::RequestVerification)]
    );
}

#[test]
fn changing_the_address_asks_the_password_first() {
    let mut m = signed_in();
    m.focus = Focus::Composer;
    m.composer.input.set("/email not-an-address");
    assert!(commands(&keys(&mut m, "enter")).is_empty());
    assert!(m.overlay.is_none(), "refused before asking");
    m.composer.input.set("/email alice@example.com");
    assert!(commands(&keys(&mut m, "enter")).is_empty(), "asks first");
    match &m.overlay {
        Some(Overlay::Prompt(p)) => {
            assert!(p.title.contains("alice@example.com"), "{}", p.title);
            assert!(p.purpose.secret(), "the password as dots");
        }
        other => panic!("no prompt: {other:?}"),
    }
    type_text(&mut m, " secret pass ");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        [NetCommand::Account(AccountCommand::ChangeEmail {
            password: " secret pass ".into(),
            new_email: "alice@example.com".into(),
        })]
    );
    assert!(m.overlay.is_none());
}

#[test]
fn a_forgotten_password_is_reset_with_an_emailed_code() {
    let mut m = model();
    net(&mut m, NetEvent::NeedSignIn { reason: None });
    type_text(&mut m, "alice");
    keys(&mut m, "ctrl-f");
    assert!(form(&m).reset);
    assert_eq!(form(&m).value("Name or email"), "alice", "kept");
    // The code empty: enter asks for one.
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        [NetCommand::RequestReset {
            account: "alice".into()
        }]
    );
    assert!(form(&m).busy);
    net(
        &mut m,
        NetEvent::ResetCodeSent {
            valid_for_seconds: 900,
        },
    );
    let f = form(&m);
    assert!(!f.busy);
    assert_eq!(f.focus, 1, "on the code");
    assert!(
        f.notice
            .as_deref()
            .is_some_and(|n| n.contains("15 minutes"))
    );
    type_text(&mut m, "k7q2-m9xd");
    keys(&mut m, "tab");
    type_text(&mut m, "short");
    assert!(commands(&keys(&mut m, "enter")).is_empty(), "too short");
    assert!(form(&m).error.is_some());
    type_text(&mut m, " but longer");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        [NetCommand::ResetPassword {
            account: "alice".into(),
            code: "k7q2-m9xd".into(),
            new_password: "short but longer".into(),
        }]
    );
    net(&mut m, NetEvent::PasswordReset);
    let f = form(&m);
    assert!(!f.reset && !f.register, "back to signing in");
    assert_eq!(f.value("Username"), "alice");
    assert_eq!(f.focus, 1, "on the password");
    assert!(f.notice.is_some());
    // And back and forth without sending anything.
    keys(&mut m, "ctrl-f");
    assert!(form(&m).reset);
    keys(&mut m, "ctrl-f");
    assert!(!form(&m).reset);
}
