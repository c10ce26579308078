//! `/2fa`: the prompts of turning two-factor login on and off, and what each sends.

use crate::action::NetEvent;
use crate::effect::{NetCommand, TwoFactorCommand};
use crate::model::{Focus, Overlay};
use crate::testing::*;

fn step(command: TwoFactorCommand) -> Vec<NetCommand> {
    vec![NetCommand::TwoFactor(command)]
}

fn prompt_title(m: &crate::model::Model) -> String {
    match &m.overlay {
        Some(Overlay::Prompt(p)) => p.title.clone(),
        other => panic!("no prompt: {other:?}"),
    }
}

#[test]
fn turning_on_asks_the_password_shows_the_key_asks_a_code_and_shows_the_recovery_codes() {
    let mut m = signed_in();
    m.focus = Focus::Composer;
    m.composer.input.set("/2fa on");
    assert!(commands(&keys(&mut m, "enter")).is_empty(), "asks first");
    assert!(prompt_title(&m).contains("password"));
    type_text(&mut m, " secret pass ");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        step(TwoFactorCommand::Begin {
            password: " secret pass ".into()
        }),
        "the password as typed"
    );
    assert!(m.overlay.is_none());
    net(
        &mut m,
        NetEvent::TwoFactorSecret {
            secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
            uri: "otpauth://totp/chat:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
        },
    );
    let Some(Overlay::Prompt(p)) = &m.overlay else {
        panic!("a prompt for the code")
    };
    assert!(
        p.note.iter().any(|l| l.contains("GEZD GNBV GY3T")),
        "{:?}",
        p.note
    );
    assert!(
        p.note.iter().any(|l| l.contains("otpauth://totp/")),
        "{:?}",
        p.note
    );
    type_text(&mut m, " 287082 ");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        step(TwoFactorCommand::Enable {
            code: "287082".into()
        })
    );
    net(
        &mut m,
        NetEvent::RecoveryCodes(vec!["7hq2m-0zk4d".into(), "x3v9p-ttb1e".into()]),
    );
    let Some(Overlay::Info(info)) = &m.overlay else {
        panic!("the recovery codes")
    };
    assert!(info.lines.iter().any(|l| l.contains("7hq2m-0zk4d")));
    assert!(info.lines.iter().any(|l| l.contains("x3v9p-ttb1e")));
}

#[test]
fn turning_off_and_new_codes_ask_a_code_and_a_bad_argument_is_explained() {
    let mut m = signed_in();
    m.focus = Focus::Composer;
    m.composer.input.set("/2fa off");
    keys(&mut m, "enter");
    assert!(prompt_title(&m).contains("recovery code"));
    type_text(&mut m, "7hq2m-0zk4d");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        step(TwoFactorCommand::Disable {
            code: "7hq2m-0zk4d".into()
        })
    );
    m.composer.input.set("/2fa codes");
    keys(&mut m, "enter");
    type_text(&mut m, "081804");
    assert_eq!(
        commands(&keys(&mut m, "enter")),
        step(TwoFactorCommand::NewRecoveryCodes {
            code: "081804".into()
        })
    );
    m.composer.input.set("/2fa maybe");
    assert!(commands(&keys(&mut m, "enter")).is_empty());
    assert!(m.overlay.is_none());
    let notice = m.notice.as_ref().expect("a notice").text.clone();
    assert!(notice.contains("on, off or codes"), "{notice}");
}
