//! The network task: everything that talks to chatd, through the chatproto SDK only. It turns
//! [`NetCommand`]s from the update function into requests and reports back with
//! [`Action::Net`] on the app's channel.
//!
//! Its life: decide how to trust the server (a pin, a CA, or the known-servers file: a new
//! server's fingerprint is shown and must be accepted; a changed one is refused), connect (with
//! the saved session when there is one), sign in if needed, then serve requests, forward the
//! SDK's events, keep the session file current and run the outbox, until the session ends.
//!
//! # Layout
//! - `mod.rs`: the task's phases. [`session`]: a signed-in session (commands, events, outbox).
//! - [`requests`]: one SDK call per command. [`files`]: uploads and downloads. [`calls`]:
//!   call signaling.
//!   [`describe`]: errors in words.

pub mod account;
pub mod calls;
pub mod describe;
pub mod files;
pub mod requests;
pub mod session;
pub mod two_factor;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chatproto::client::store::{KnownServers, TokenFile, TrustCheck, fetch_fingerprint};
use chatproto::client::{Client, ClientConfig, ClientError, RetryPolicy};
use chatproto::fingerprint::{Fingerprint, format_fingerprint};
use chatproto::pb;
use chatproto::session::{Backoff, BackoffConfig, UnknownChatPolicy};
use chatproto::tls::Verification;
use tokio::sync::mpsc;

use crate::action::{Action, NetEvent};
use crate::effect::NetCommand;
use crate::paths::{Paths, display};
use crate::settings::{Settings, Trust};
use describe::describe;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect delays: quick at first, never more than 10 s apart (someone is waiting).
const BACKOFF: BackoffConfig = BackoffConfig {
    base: Duration::from_millis(500),
    factor: 2,
    cap: Duration::from_secs(10),
};

/// What the network task needs to know.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// `host:port`.
    pub server: String,
    /// The TLS name, when not the host.
    pub server_name: Option<String>,
    /// How the certificate is checked.
    pub trust: Trust,
    /// Where files go.
    pub paths: Paths,
    /// The device name for sign-in.
    pub device: String,
    /// Where downloads go.
    pub download_dir: PathBuf,
}

impl NetConfig {
    /// The network settings of a run.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            server: settings.server.clone(),
            server_name: settings.server_name.clone(),
            trust: settings.trust.clone(),
            paths: settings.paths.clone(),
            device: settings.device.clone(),
            download_dir: settings.download_dir.clone(),
        }
    }

    fn session_file(&self) -> TokenFile {
        TokenFile::new(self.paths.session_file(&self.server))
    }

    fn outbox_file(&self, user_id: u64) -> PathBuf {
        self.paths.user_dir(&self.server, user_id).join("outbox")
    }

    /// The SDK configuration for this server.
    pub fn client_config(
        &self,
        verification: Verification,
        tokens: Option<chatproto::client::Tokens>,
    ) -> ClientConfig {
        let mut config = ClientConfig::new(self.server.clone(), verification);
        config.server_name.clone_from(&self.server_name);
        config.client_name = concat!("chat-tui/", env!("CARGO_PKG_VERSION")).into();
        config.tokens = tokens;
        // The client loads history as it is shown: new chats start at their head.
        config.unknown_chats = UnknownChatPolicy::StartAtHead;
        config.retry = RetryPolicy {
            backoff: BACKOFF,
            connect_timeout: CONNECT_TIMEOUT,
            ..RetryPolicy::default()
        };
        config
    }
}

/// The sending half of the app's action channel.
pub type Actions = mpsc::Sender<Action>;

/// Reports an event to the app; false when the app is gone.
pub(crate) async fn report(actions: &Actions, event: NetEvent) -> bool {
    actions.send(Action::Net(event)).await.is_ok()
}

/// Starts the network task; it reads commands from the returned sender.
pub fn spawn(config: NetConfig, actions: Actions) -> mpsc::UnboundedSender<NetCommand> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(config, actions, rx));
    tx
}

async fn run(
    config: NetConfig,
    actions: Actions,
    mut commands: mpsc::UnboundedReceiver<NetCommand>,
) {
    let Some(verification) = verification(&config, &actions, &mut commands).await else {
        return;
    };
    loop {
        let Some((client, me)) = connect(&config, &verification, &actions, &mut commands).await
        else {
            return;
        };
        match session::run(&config, client, me, &actions, &mut commands).await {
            session::End::SignedOut => continue,
            session::End::Quit => return,
        }
    }
}

/// Decides how to verify the server; with trust on first use, shows the fingerprint of a new
/// server and waits for the user's answer. `None`: do not connect (refused, or the app quit).
async fn verification(
    config: &NetConfig,
    actions: &Actions,
    commands: &mut mpsc::UnboundedReceiver<NetCommand>,
) -> Option<Verification> {
    match &config.trust {
        Trust::Pin(pin) => return Some(Verification::Pin(*pin)),
        Trust::Ca(path) => return Some(Verification::CaFile(path.clone())),
        Trust::Insecure => return Some(Verification::InsecureDangerous),
        Trust::KnownServers => {}
    }
    let path = config.paths.known_servers();
    let file = display(&path);
    let mut known = match KnownServers::load(&path) {
        Ok(known) => known,
        Err(e) => {
            report(
                actions,
                NetEvent::ConnectFailed {
                    error: e.to_string(),
                    retry_in_ms: None,
                },
            )
            .await;
            return None;
        }
    };
    let fp = fetch(config, actions).await?;
    match known.check(&config.server, &fp) {
        TrustCheck::Trusted => return Some(Verification::Pin(fp)),
        TrustCheck::Changed { known } => {
            let event = NetEvent::TrustChanged {
                address: config.server.clone(),
                fingerprint: format_fingerprint(&fp),
                known: format_fingerprint(&known),
                file,
            };
            report(actions, event).await;
            return None;
        }
        TrustCheck::Unknown => {}
    }
    let event = NetEvent::TrustUnknown {
        address: config.server.clone(),
        fingerprint: format_fingerprint(&fp),
        file,
    };
    if !report(actions, event).await {
        return None;
    }
    loop {
        match commands.recv().await? {
            NetCommand::Trust(true) => break,
            NetCommand::Trust(false) => return None,
            _ => {}
        }
    }
    if let Err(e) = known.trust(&config.server, fp) {
        report(
            actions,
            NetEvent::Failed(format!("The server is trusted for this run only: {e}")),
        )
        .await;
    }
    Some(Verification::Pin(fp))
}

/// The server's fingerprint, retrying with backoff while it cannot be reached.
async fn fetch(config: &NetConfig, actions: &Actions) -> Option<Fingerprint> {
    let mut backoff = Backoff::new(BACKOFF, rand_seed());
    loop {
        match fetch_fingerprint(
            &config.server,
            config.server_name.as_deref(),
            CONNECT_TIMEOUT,
        )
        .await
        {
            Ok(fp) => return Some(fp),
            Err(e) => {
                if !retry_later(actions, &mut backoff, &e).await {
                    return None;
                }
            }
        }
    }
}

/// Says why connecting failed and when it is tried again, then waits that long. False when the
/// app is gone.
async fn retry_later(actions: &Actions, backoff: &mut Backoff, error: &ClientError) -> bool {
    let delay = backoff.next_delay().max(Duration::from_millis(200));
    let event = NetEvent::ConnectFailed {
        error: describe(error),
        retry_in_ms: Some(delay.as_millis() as u64),
    };
    if !report(actions, event).await {
        return false;
    }
    tokio::time::sleep(delay).await;
    true
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Connects and gets a signed-in session: the saved one, or one from the sign-in screen.
async fn connect(
    config: &NetConfig,
    verification: &Verification,
    actions: &Actions,
    commands: &mut mpsc::UnboundedReceiver<NetCommand>,
) -> Option<(Arc<Client>, pb::User)> {
    let session_file = config.session_file();
    let mut backoff = Backoff::new(BACKOFF, rand_seed());
    let mut note = None;
    loop {
        let tokens = match session_file.load() {
            Ok(tokens) => tokens,
            Err(e) => {
                note = Some(format!(
                    "The saved session is unreadable ({e}); sign in again."
                ));
                let _ = session_file.clear();
                None
            }
        };
        let had_tokens = tokens.is_some();
        match Client::connect(config.client_config(verification.clone(), tokens)).await {
            Ok(client) => {
                let client = Arc::new(client);
                if had_tokens {
                    match client.get_me(pb::GetMe {}).await {
                        Ok(me) => return Some((client, me)),
                        Err(e) if e.code() == Some(pb::ErrorCode::Unauthenticated) => {
                            let _ = session_file.clear();
                            note = Some("The saved session no longer works. Sign in again.".into());
                        }
                        Err(e) => {
                            // The session may be fine; the server is not: try again.
                            if !retry_later(actions, &mut backoff, &e).await {
                                return None;
                            }
                            continue;
                        }
                    }
                }
                if !report(
                    actions,
                    NetEvent::NeedSignIn {
                        reason: note.take(),
                    },
                )
                .await
                {
                    return None;
                }
                return sign_in(config, client, actions, commands).await;
            }
            Err(ClientError::Remote(e))
                if had_tokens && e.code == pb::ErrorCode::Unauthenticated =>
            {
                // The saved session was revoked or expired: forget it, connect without it.
                let _ = session_file.clear();
                note = Some(format!(
                    "The saved session no longer works ({}). Sign in again.",
                    e.message
                ));
            }
            Err(e) => {
                if !retry_later(actions, &mut backoff, &e).await {
                    return None;
                }
            }
        }
    }
}

/// Waits for the sign-in or registration form and carries it out until it succeeds.
async fn sign_in(
    config: &NetConfig,
    client: Arc<Client>,
    actions: &Actions,
    commands: &mut mpsc::UnboundedReceiver<NetCommand>,
) -> Option<(Arc<Client>, pb::User)> {
    loop {
        // The client's events are taken meanwhile: an unauthenticated connection is closed
        // after a few seconds and made again, and each time is an event; left unread, they
        // would fill the client's queue while the form waits, and stop its connecting.
        let command = loop {
            tokio::select! {
                command = commands.recv() => break command?,
                // None: the client is closed, for good.
                event = client.next_event() => { event?; }
            }
        };
        let result = match command {
            NetCommand::SignIn {
                username,
                password,
                two_factor_code,
            } => {
                let signed_in = client
                    .login_with_code(&username, &password, &two_factor_code, &config.device)
                    .await;
                if let Err(e) = &signed_in
                    && e.needs_two_factor_code()
                {
                    let error = if two_factor_code.is_empty() {
                        "Enter the code of your authenticator app, or a recovery code."
                    } else {
                        "That code is wrong or was used already: enter the current one."
                    };
                    let event = NetEvent::NeedTwoFactorCode {
                        error: error.into(),
                    };
                    if !report(actions, event).await {
                        return None;
                    }
                    continue;
                }
                signed_in
            }
            NetCommand::Register {
                username,
                email,
                password,
            } => {
                client
                    .register_user(&username, &email, &password, &config.device)
                    .await
            }
            command @ (NetCommand::RequestReset { .. } | NetCommand::ResetPassword { .. }) => {
                if !report(actions, account::reset(&client, command).await).await {
                    return None;
                }
                continue;
            }
            _ => continue,
        };
        match result {
            Ok(auth) => {
                if let Some(tokens) = client.tokens()
                    && let Err(e) = config.session_file().save(&tokens)
                {
                    report(
                        actions,
                        NetEvent::Failed(format!("The session will not be remembered: {e}")),
                    )
                    .await;
                }
                let me = auth.user.unwrap_or_default();
                return Some((client, me));
            }
            Err(e) => {
                let error = match e.code() {
                    Some(pb::ErrorCode::Unauthenticated) => {
                        "Wrong username or password.".to_string()
                    }
                    Some(pb::ErrorCode::Conflict) => "That username is taken.".to_string(),
                    _ => {
                        let text = describe(&e);
                        let mut chars = text.chars();
                        chars
                            .next()
                            .map_or(String::new(), |c| c.to_uppercase().chain(chars).collect())
                    }
                };
                if !report(actions, NetEvent::SignInFailed { error }).await {
                    return None;
                }
            }
        }
    }
}

/// `--logout`: revokes the saved session on the server (when it can be reached) and forgets
/// it. Returns what to tell the user.
pub async fn logout(settings: &Settings) -> String {
    let config = NetConfig::from_settings(settings);
    let file = config.session_file();
    let tokens = match file.load() {
        Ok(Some(tokens)) => tokens,
        Ok(None) => return format!("No saved session for {}.", config.server),
        Err(e) => {
            let _ = file.clear();
            return format!("Forgot an unreadable session for {} ({e}).", config.server);
        }
    };
    let verification = match &config.trust {
        Trust::Pin(pin) => Some(Verification::Pin(*pin)),
        Trust::Ca(path) => Some(Verification::CaFile(path.clone())),
        Trust::Insecure => Some(Verification::InsecureDangerous),
        Trust::KnownServers => KnownServers::load(config.paths.known_servers())
            .ok()
            .and_then(|k| k.get(&config.server))
            .map(Verification::Pin),
    };
    let revoked = match verification {
        None => Err("the server is not in the known-servers file".to_string()),
        Some(v) => {
            let mut client_config = config.client_config(v, Some(tokens));
            client_config.retry.reconnect = false;
            let attempt = async {
                let client = Client::connect(client_config)
                    .await
                    .map_err(|e| describe(&e))?;
                client.logout().await.map_err(|e| describe(&e))?;
                client.close().await;
                Ok::<(), String>(())
            };
            tokio::time::timeout(Duration::from_secs(15), attempt)
                .await
                .unwrap_or_else(|_| Err("no answer within 15 s".into()))
        }
    };
    let cleared = file.clear();
    match (revoked, cleared) {
        (_, Err(e)) => format!("Could not remove the session file: {e}"),
        (Ok(()), Ok(())) => format!(
            "Signed out of {}: the session is revoked and forgotten.",
            config.server
        ),
        (Err(why), Ok(())) => format!(
            "Forgot the session for {}; it could not be revoked on the server ({why}).",
            config.server
        ),
    }
}
