//! A signed-in connection for one command: with a password it logs in for this command alone
//! (and logs out at the end), else it resumes the profile's session and saves the tokens again
//! if they were refreshed.

use anyhow::Context as _;
use chatproto::client::{Client, ClientConfig, Tokens};

use crate::error::Error;
use crate::profile::Session;
use crate::settings::Settings;

/// How long one connection attempt may take before the server counts as unavailable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A connected client for `settings`, with `tokens` to resume (none: not signed in yet).
///
/// # Errors
/// The server cannot be reached, or refuses the tokens.
pub async fn connect(settings: &Settings, tokens: Option<Tokens>) -> anyhow::Result<Client> {
    if settings.verification.is_insecure() {
        eprintln!(
            "chatctl: WARNING: --insecure: the server certificate is NOT verified; anyone on the \
             network path can take the admin session (development only)"
        );
    }
    let mut config = ClientConfig::new(settings.server.clone(), settings.verification.clone());
    config.server_name = settings.server_name.clone();
    config.client_name = concat!("chatctl/", env!("CARGO_PKG_VERSION")).into();
    config.tokens = tokens;
    // One command, one connection: a lost connection is reported, not waited out.
    config.retry.reconnect = false;
    config.retry.connect_timeout = CONNECT_TIMEOUT;
    Client::connect(config)
        .await
        .with_context(|| format!("cannot connect to {}", settings.server))
}

/// Logs `user` in on `client` with `password` and the two-factor code of `settings`, if any;
/// an account with two-factor login and no code says how to give one.
pub async fn log_in(
    client: &Client,
    settings: &Settings,
    user: &str,
    password: &str,
) -> anyhow::Result<()> {
    let code = settings.two_factor_code.as_deref().unwrap_or("");
    match client
        .login_with_code(user, password, code, &chat_cli::device_name("chatctl"))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.needs_two_factor_code() && code.is_empty() => Err(anyhow::Error::new(e)
            .context(format!(
                "{user} has two-factor login: give the current code of its authenticator app \
                 (or a recovery code) with --two-factor-code CODE or CHATCTL_TWO_FACTOR_CODE"
            ))),
        Err(e) if e.needs_two_factor_code() => Err(anyhow::Error::new(e).context(format!(
            "cannot log in as {user}: the two-factor code is wrong or was used already"
        ))),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot log in as {user}"))),
    }
}

/// A signed-in admin connection.
#[derive(Debug)]
pub struct Admin {
    client: Client,
    /// Logged in with a password for this command: log out at the end.
    one_shot: bool,
}

impl Admin {
    /// Signs in as `settings` says.
    ///
    /// # Errors
    /// [`Error::NotLoggedIn`] without a password or a saved session; a connection or login
    /// failure.
    pub async fn sign_in(settings: &Settings) -> anyhow::Result<Self> {
        if let Some(password) = &settings.password {
            let user = settings
                .user
                .as_deref()
                .ok_or_else(|| Error::Usage("a password was given but no --user".into()))?;
            let client = connect(settings, None).await?;
            log_in(&client, settings, user, password).await?;
            return Ok(Self {
                client,
                one_shot: true,
            });
        }
        let profile = settings
            .session_profile()
            .ok_or_else(|| Error::NotLoggedIn {
                profile: settings.profile.clone(),
            })?;
        let client = connect(settings, Some(Tokens::from(&profile.session))).await;
        // A refresh while connecting spent the saved refresh token: save the new one at once.
        if let Ok(client) = &client {
            save_tokens(settings, client)?;
        }
        Ok(Self {
            client: client.context("the saved session was not accepted")?,
            one_shot: false,
        })
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Ends the command: saves refreshed tokens, or logs out a one-command session; closes.
    /// Called after the answer was reported: a failure here must not hide what the server
    /// did (an operator would repeat a request that is not repeat-safe).
    ///
    /// # Errors
    /// The profile cannot be written.
    pub async fn finish(self, settings: &Settings) -> anyhow::Result<()> {
        let result = if self.one_shot {
            // The session was only for this command; a failure leaves it to expire.
            let _ = self.client.logout().await;
            Ok(())
        } else {
            save_tokens(settings, &self.client)
        };
        self.client.close().await;
        result
    }
}

/// Saves the client's tokens into the profile when they changed (a refresh).
fn save_tokens(settings: &Settings, client: &Client) -> anyhow::Result<()> {
    let (Some(tokens), Some(profile)) = (client.tokens(), settings.session_profile()) else {
        return Ok(());
    };
    let session = Session::from(&tokens);
    if session == profile.session || tokens.refresh_token.is_empty() {
        return Ok(());
    }
    let mut profile = profile.clone();
    profile.session = session;
    settings
        .profiles
        .save(&settings.profile, &profile)
        .context(
            "the command was carried out, but its refreshed session could not be saved: \
             sign in again (chatctl login)",
        )?;
    Ok(())
}
