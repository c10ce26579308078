//! The screens before the main one: trusting a server, signing in, registering.

use super::Input;
use crate::effect::{Effect, NetCommand};
use crate::keys::Command;
use crate::model::{Model, Screen};
use crate::widgets::auth::{ACCOUNT, AuthForm, NEW_PASSWORD, RESET_CODE, TWO_FACTOR_CODE};

/// Keys on the trust screen: `y` trusts a new server; anything that means "no" quits. A
/// changed certificate can only be quit.
pub(super) fn on_trust_key(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    let Screen::Trust(prompt) = &model.screen else {
        return;
    };
    let changed = prompt.known.is_some();
    match input {
        Input::Text('y' | 'Y') if !changed => {
            effects.push(Effect::Net(NetCommand::Trust(true)));
            model.screen = Screen::Connecting {
                detail: format!("Connecting to {}…", model.server),
                retry_at_ms: None,
            };
        }
        Input::Text('n' | 'N' | 'q' | 'Q') | Input::Command(Command::Cancel | Command::Submit) => {
            if !changed {
                effects.push(Effect::Net(NetCommand::Trust(false)));
            }
            model.quit = true;
        }
        _ => {}
    }
}

/// Keys on the sign-in and registration form.
pub(super) fn on_auth_key(model: &mut Model, input: Input, effects: &mut Vec<Effect>) {
    let Screen::Auth(form) = &mut model.screen else {
        return;
    };
    if form.busy {
        return;
    }
    let fields = form.fields.len();
    match input {
        Input::Text(c) => {
            form.fields[form.focus].input.insert(c);
            form.error = None;
        }
        Input::Command(Command::ForgotPassword) if form.reset => {
            // Back to signing in, with the username when the account was one.
            let account = form.value(ACCOUNT).trim().to_string();
            let username = if account.contains('@') { "" } else { &account };
            *form = AuthForm::new(false, username);
        }
        Input::Command(Command::ForgotPassword) if !form.register => {
            let username = form.value("Username").to_string();
            *form = AuthForm::reset(&username);
        }
        Input::Command(Command::NextField) => form.focus = (form.focus + 1) % fields,
        Input::Command(Command::PrevField) => form.focus = (form.focus + fields - 1) % fields,
        Input::Command(Command::SwitchForm) if !form.reset => {
            let username = form.value("Username").to_string();
            *form = AuthForm::new(!form.register, &username);
        }
        Input::Command(Command::Submit) => {
            // On the "forgot password" form an empty code is an answer: it asks for one.
            if !form.reset && form.focus + 1 < fields && form.fields[form.focus].input.is_empty() {
                form.focus += 1;
                return;
            }
            let checked = if form.reset {
                validate_reset(form)
            } else {
                validate(form)
            };
            match checked {
                Ok(command) => {
                    form.busy = true;
                    form.error = None;
                    form.notice = None;
                    effects.push(Effect::Net(command));
                }
                Err((field, error)) => {
                    form.error = Some(error);
                    form.focus = field;
                }
            }
        }
        Input::Command(command) => {
            let input = &mut form.fields[form.focus].input;
            input.apply(command);
        }
    }
}

/// Checks the form before sending it: `Err((field index, message))` for the first problem the
/// server would refuse anyway.
fn validate(form: &AuthForm) -> Result<NetCommand, (usize, String)> {
    let username = form.value("Username").trim().to_lowercase();
    let password = form.value("Password").to_string();
    if username.is_empty() {
        return Err((0, "Enter your username.".into()));
    }
    if !form.register {
        if password.is_empty() {
            return Err((1, "Enter your password.".into()));
        }
        let two_factor_code = form.value(TWO_FACTOR_CODE).trim().to_string();
        if let Some(field) = form.field_index(TWO_FACTOR_CODE)
            && two_factor_code.is_empty()
        {
            return Err((
                field,
                "Enter the code of your authenticator app, or a recovery code.".into(),
            ));
        }
        return Ok(NetCommand::SignIn {
            username,
            password,
            two_factor_code,
        });
    }
    let valid_name = (3..=32).contains(&username.chars().count())
        && username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if !valid_name {
        return Err((
            0,
            "A username has 3 to 32 characters: letters, digits, _ and .".into(),
        ));
    }
    let email = form.value("Email").trim().to_string();
    if email.matches('@').count() != 1 || email.len() < 3 {
        return Err((1, "Enter an email address (name@example.org).".into()));
    }
    if password.len() < 8 {
        return Err((2, "A password has at least 8 characters.".into()));
    }
    if form.value("Repeat password") != password {
        return Err((3, "The two passwords differ.".into()));
    }
    Ok(NetCommand::Register {
        username,
        email,
        password,
    })
}

/// Checks the "forgot password" form: with the code empty it asks for one, else it sets the
/// new password.
fn validate_reset(form: &AuthForm) -> Result<NetCommand, (usize, String)> {
    let account = form.value(ACCOUNT).trim().to_string();
    if account.is_empty() {
        return Err((0, "Enter your username or email address.".into()));
    }
    let code = form.value(RESET_CODE).trim().to_string();
    if code.is_empty() {
        return Ok(NetCommand::RequestReset { account });
    }
    let new_password = form.value(NEW_PASSWORD).to_string();
    if new_password.len() < 8 {
        return Err((2, "A password has at least 8 characters.".into()));
    }
    Ok(NetCommand::ResetPassword {
        account,
        code,
        new_password,
    })
}
