//! `chatctl login`: log in with a password and save the profile and its session.

use anyhow::Context as _;
use serde::Serialize;

use crate::error::Error;
use crate::profile::{Profile, Session};
use crate::session::{connect, log_in};
use crate::settings::Settings;

/// What `login --json` prints.
#[derive(Debug, Serialize)]
struct LoggedIn<'a> {
    profile: &'a str,
    server: &'a str,
    user: &'a str,
    user_id: u64,
    session_id: u64,
}

pub(super) async fn run(settings: &Settings) -> anyhow::Result<()> {
    let user = settings
        .user
        .as_deref()
        .ok_or_else(|| Error::Usage("login needs --user NAME".into()))?;
    let password = settings.password.as_deref().ok_or_else(|| {
        Error::Usage(
            "login needs the password: --password-stdin, or CHATCTL_PASSWORD in the environment"
                .into(),
        )
    })?;
    let client = connect(settings, None).await?;
    let login = log_in(&client, settings, user, password).await;
    let tokens = client.tokens();
    client.close().await;
    login?;
    let tokens = tokens.context("logged in, but the client holds no tokens")?;
    let (pin, ca, insecure) = certificate_check(settings);
    let profile = Profile {
        server: settings.server.clone(),
        pin,
        ca,
        server_name: settings.server_name.clone(),
        insecure,
        user: user.to_owned(),
        session: Session::from(&tokens),
    };
    let path = settings
        .profiles
        .save(&settings.profile, &profile)
        .context("cannot save the profile")?;
    settings.output.result(
        &LoggedIn {
            profile: &settings.profile,
            server: &settings.server,
            user,
            user_id: tokens.user_id,
            session_id: tokens.session_id,
        },
        &format!(
            "Logged in to {} as {user}; profile {:?} saved in {}",
            settings.server,
            settings.profile,
            path.display()
        ),
    )
}

/// The profile fields of the verification in force.
fn certificate_check(settings: &Settings) -> (Option<String>, Option<std::path::PathBuf>, bool) {
    use chatproto::fingerprint::format_fingerprint;
    use chatproto::tls::Verification;
    match &settings.verification {
        Verification::Pin(pin) => (Some(format_fingerprint(pin)), None, false),
        // Saved absolute: later commands may run from another directory. The file was read
        // already (the login connected with it), so it exists.
        Verification::CaFile(path) => (
            None,
            Some(std::path::absolute(path).unwrap_or_else(|_| path.clone())),
            false,
        ),
        // Not reachable from the flags; saved as insecure would be wrong, so save nothing.
        Verification::CaPem(_) => (None, None, false),
        Verification::InsecureDangerous => (None, None, true),
    }
}
