//! `/2fa`: turning two-factor login on and off (protocol.md section 17) through prompts: the
//! password, then the key to add to an authenticator app and a code from it, then the recovery
//! codes to keep.

use crate::effect::{Effect, NetCommand, TwoFactorCommand};
use crate::model::{Model, Overlay};
use crate::slash::TwoFactorStep;
use crate::widgets::dialog::{Info, Prompt, PromptPurpose};

/// Opens the first prompt of `step`.
pub(super) fn ask(model: &mut Model, step: TwoFactorStep) {
    let prompt = match step {
        TwoFactorStep::On => Prompt::new(
            "Turn on two-factor login: your password",
            PromptPurpose::TwoFactorPassword,
        ),
        TwoFactorStep::Off => Prompt::new(
            "Turn off two-factor login: a code or a recovery code",
            PromptPurpose::TwoFactorDisable,
        ),
        TwoFactorStep::Codes => Prompt::new(
            "New recovery codes: a code from your authenticator app",
            PromptPurpose::TwoFactorRecoveryCodes,
        ),
    };
    model.overlay = Some(Overlay::Prompt(prompt));
}

/// The request an answer to a two-factor prompt sends; `None` for other prompts.
pub(super) fn answered(purpose: PromptPurpose, answer: String) -> Option<Effect> {
    let step = match purpose {
        PromptPurpose::TwoFactorPassword => TwoFactorCommand::Begin { password: answer },
        PromptPurpose::TwoFactorEnable => TwoFactorCommand::Enable { code: answer },
        PromptPurpose::TwoFactorDisable => TwoFactorCommand::Disable { code: answer },
        PromptPurpose::TwoFactorRecoveryCodes => {
            TwoFactorCommand::NewRecoveryCodes { code: answer }
        }
        PromptPurpose::NewGroup
        | PromptPurpose::NewChannel
        | PromptPurpose::Upload
        | PromptPurpose::ChangeEmailPassword => {
            return None;
        }
    };
    Some(Effect::Net(NetCommand::TwoFactor(step)))
}

/// The server made a secret: show it and ask for a code from the app.
pub(super) fn secret(model: &mut Model, secret: &str, uri: String) {
    // Groups of four, as authenticator apps show keys to type.
    let grouped: Vec<String> = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    model.overlay = Some(Overlay::Prompt(Prompt {
        note: vec![
            "Add this key to your authenticator app:".into(),
            format!("  {}", grouped.join(" ")),
            "or this URI (as a QR code):".into(),
            format!("  {uri}"),
            "then type the code it shows:".into(),
        ],
        ..Prompt::new(
            "Turn on two-factor login: a code",
            PromptPurpose::TwoFactorEnable,
        )
    }));
}

/// Two-factor login is on, or the recovery codes were replaced: show the codes once.
pub(super) fn recovery_codes(model: &mut Model, codes: Vec<String>) {
    let mut lines = vec![
        "Two-factor login is on. Keep these recovery codes somewhere safe:".into(),
        "each logs in once in place of a code. They are not shown again.".into(),
        String::new(),
    ];
    lines.extend(codes.into_iter().map(|c| format!("  {c}")));
    model.overlay = Some(Overlay::Info(Info {
        title: "Recovery codes".into(),
        lines,
    }));
}
