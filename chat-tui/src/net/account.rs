//! The signed-in user's email address (protocol.md section 18): a new verification code, the
//! code that verifies it, changing it; and, before signing in, a forgotten password's reset.

use chatproto::client::Client;
use chatproto::pb;

use super::describe::describe;
use crate::action::{NetEvent, lifetime};
use crate::effect::{AccountCommand, NetCommand};

/// Runs one request.
pub async fn run(client: &Client, command: AccountCommand) -> NetEvent {
    let failed = |what: &str, e| NetEvent::Failed(format!("{what}: {}", describe(&e)));
    match command {
        AccountCommand::RequestVerification => match client
            .request_email_verification(pb::RequestEmailVerification {})
            .await
        {
            Ok(sent) => NetEvent::Done(format!(
                "A code is on its way to your address; it works for {}. Type /verify CODE.",
                lifetime(sent.valid_for_seconds)
            )),
            Err(e) => failed("No code sent", e),
        },
        AccountCommand::Verify { code } => {
            match client.verify_email(pb::VerifyEmail { code }).await {
                Ok(me) => NetEvent::Done(format!("Your address {} is verified.", me.email)),
                Err(e) => failed("Not verified", e),
            }
        }
        AccountCommand::ChangeEmail {
            password,
            new_email,
        } => match client
            .change_email(pb::ChangeEmail {
                password,
                new_email,
            })
            .await
        {
            Ok(me) => NetEvent::Done(format!(
                "Your address is now {}. Type /verify CODE with the code emailed to it.",
                me.email
            )),
            Err(e) => failed("The address did not change", e),
        },
    }
}

/// "Forgot password" before signing in: asks for a reset code, or sets the new password with
/// one. Other commands report nothing.
pub async fn reset(client: &Client, command: NetCommand) -> NetEvent {
    let failed = |error: String| NetEvent::SignInFailed { error };
    match command {
        NetCommand::RequestReset { account } => match client
            .request_password_reset(pb::RequestPasswordReset { account })
            .await
        {
            Ok(sent) => NetEvent::ResetCodeSent {
                valid_for_seconds: sent.valid_for_seconds,
            },
            Err(e) => failed(format!("No code sent: {}", describe(&e))),
        },
        NetCommand::ResetPassword {
            account,
            code,
            new_password,
        } => match client
            .reset_password(pb::ResetPassword {
                account,
                code,
                new_password,
            })
            .await
        {
            Ok(_) => NetEvent::PasswordReset,
            Err(e) if e.code() == Some(pb::ErrorCode::PermissionDenied) => failed(
                "That code is wrong, used or expired: empty the code field to get a new one."
                    .into(),
            ),
            Err(e) => failed(format!("The password did not change: {}", describe(&e))),
        },
        _ => NetEvent::Failed("not a password reset".into()),
    }
}
