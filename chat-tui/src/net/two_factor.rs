//! Two-factor login of the signed-in user (protocol.md section 17): each step's request and
//! what it reports back.

use chatproto::client::Client;
use chatproto::pb;

use super::describe::describe;
use crate::action::NetEvent;
use crate::effect::TwoFactorCommand;

/// Runs one step.
pub async fn run(client: &Client, command: TwoFactorCommand) -> NetEvent {
    let failed = |what: &str, e| NetEvent::Failed(format!("{what}: {}", describe(&e)));
    match command {
        TwoFactorCommand::Begin { password } => {
            match client
                .begin_two_factor(pb::BeginTwoFactor { password })
                .await
            {
                Ok(setup) => NetEvent::TwoFactorSecret {
                    secret: setup.secret,
                    uri: setup.otpauth_uri,
                },
                Err(e) => failed("Could not begin two-factor login", e),
            }
        }
        TwoFactorCommand::Enable { code } => {
            match client.enable_two_factor(pb::EnableTwoFactor { code }).await {
                Ok(codes) => NetEvent::RecoveryCodes(codes.codes),
                Err(e) => failed("Two-factor login is not on", e),
            }
        }
        TwoFactorCommand::Disable { code } => {
            match client
                .disable_two_factor(pb::DisableTwoFactor { code })
                .await
            {
                Ok(_) => NetEvent::Done("Two-factor login is off.".into()),
                Err(e) => failed("Two-factor login is still on", e),
            }
        }
        TwoFactorCommand::NewRecoveryCodes { code } => match client
            .regenerate_recovery_codes(pb::RegenerateRecoveryCodes { code })
            .await
        {
            Ok(codes) => NetEvent::RecoveryCodes(codes.codes),
            Err(e) => failed("No new recovery codes", e),
        },
    }
}
