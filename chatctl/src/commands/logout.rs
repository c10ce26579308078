//! `chatctl logout`: revoke the profile's session on the server and forget the profile.

use anyhow::Context as _;
use chatproto::client::Tokens;
use serde::Serialize;

use crate::cli::ConnArgs;
use crate::error::Error;
use crate::output::Output;
use crate::profile::Profiles;
use crate::session::connect;
use crate::settings::{Settings, Sources};

/// What `logout --json` prints.
#[derive(Debug, Serialize)]
struct LoggedOut<'a> {
    profile: &'a str,
    /// False when there was no saved session.
    was_logged_in: bool,
}

/// Answers `logout` for a profile that is not saved (nothing to connect to); `None` when it is.
pub(super) fn without_profile(
    conn: &ConnArgs,
    sources: &Sources<'_>,
) -> anyhow::Result<Option<anyhow::Result<()>>> {
    let env = |k: &str| (sources.env)(k).filter(|v| !v.is_empty());
    if Profiles::from_env(&env)?.load(&conn.profile)?.is_some() {
        return Ok(None);
    }
    let output = Output::new(conn.json, &env);
    Ok(Some(output.result(
        &LoggedOut {
            profile: &conn.profile,
            was_logged_in: false,
        },
        &format!("Profile {:?} is not logged in", conn.profile),
    )))
}

pub(super) async fn run(settings: &Settings) -> anyhow::Result<()> {
    let Some(profile) = settings.saved.as_ref() else {
        return Err(Error::NotLoggedIn {
            profile: settings.profile.clone(),
        }
        .into());
    };
    // Forget the session locally whatever the server says: logging out must always work.
    settings
        .profiles
        .remove(&settings.profile)
        .context("cannot remove the profile")?;
    let revoked = async {
        let client = connect(settings, Some(Tokens::from(&profile.session))).await?;
        let result = client.logout().await;
        client.close().await;
        result.context("the server did not end the session")
    }
    .await;
    revoked.context(
        "the profile was forgotten, but its session could not be revoked on the server (it \
         expires by itself; an admin can revoke it with `chatctl users revoke-sessions`)",
    )?;
    settings.output.result(
        &LoggedOut {
            profile: &settings.profile,
            was_logged_in: true,
        },
        &format!(
            "Logged out of {}; profile {:?} forgotten",
            profile.server, settings.profile
        ),
    )
}
