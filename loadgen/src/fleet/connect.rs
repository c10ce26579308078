//! Opening one connection: the SDK client configuration loadgen uses, the QUIC handshake with
//! Hello, then authentication (register, falling back to login for an existing name, or the
//! access token of the user's first connection), each timed; or, for a reconnect wave, the
//! SDK's resumption of a session, timed as a whole.

use std::time::{Duration, Instant};

use chatproto::capability::Capability;
use chatproto::client::{Client, ClientConfig, ClientError, RetryPolicy, Tokens};
use chatproto::pb;
use chatproto::session::UnknownChatPolicy;

use crate::config::RunConfig;
use crate::measure::RunShared;

/// How a new connection authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Register `username`, or log in when the name is taken (reusing accounts).
    RegisterOrLogin {
        /// The username.
        username: String,
        /// The password.
        password: String,
    },
    /// Prove the session of an existing connection of the same user with its access token.
    Token(String),
    /// Resume the session the way a returning SDK client does: `hello`, `authenticate` and
    /// `sync` while connecting, in one 0-RTT flight when a session ticket allows.
    Resume(Tokens),
}

/// A connection that is up and authenticated.
#[derive(Debug)]
pub struct Opened {
    /// The SDK client.
    pub client: Client,
    /// The tokens the connection holds.
    pub tokens: Tokens,
    /// QUIC + TLS handshake and Hello ([`Auth::Resume`]: with `authenticate` and `sync`).
    pub handshake: Duration,
    /// Register / login / authenticate (zero for [`Auth::Resume`]).
    pub auth: Duration,
}

/// Why a connection could not be opened, with the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The QUIC handshake or Hello failed.
    #[error("connect: {0}")]
    Connect(ClientError),
    /// Authentication failed.
    #[error("authenticate: {0}")]
    Auth(ClientError),
}

impl OpenError {
    /// The error's kind for the error counts.
    pub fn kind(&self) -> String {
        match self {
            OpenError::Connect(e) => format!("connect_{}", error_kind(e)),
            OpenError::Auth(e) => format!("auth_{}", error_kind(e)),
        }
    }

    /// The SDK error.
    pub fn client_error(&self) -> &ClientError {
        match self {
            OpenError::Connect(e) | OpenError::Auth(e) => e,
        }
    }
}

/// A short name for an SDK error: the chat/1 error code without its prefix for server answers
/// (`RATE_LIMITED`), else the failure (`timeout`, `connection_lost`, ...).
pub fn error_kind(e: &ClientError) -> String {
    match e {
        ClientError::Remote(remote) => remote
            .code
            .as_str_name()
            .trim_start_matches("ERROR_CODE_")
            .to_owned(),
        ClientError::Tls(_) => "tls".into(),
        ClientError::Config(_) => "config".into(),
        ClientError::Connect(_) => "connect".into(),
        ClientError::ServerBusy(_) => "SERVER_BUSY".into(),
        ClientError::ConnectionLost(_) => "connection_lost".into(),
        ClientError::Timeout(_) => "timeout".into(),
        ClientError::Closed(_) => "closed".into(),
        ClientError::Protocol(_) => "protocol".into(),
        ClientError::NotAuthenticated => "not_authenticated".into(),
        ClientError::LocalIo(_) => "local_io".into(),
    }
}

/// The SDK configuration of connection number `index`: its first server is picked round-robin,
/// the others are failover, and it opens on one of the run's shared UDP endpoints (so one
/// system call reads many connections' packets). Requests are never retried by the SDK (an error
/// is a result here), new chats start at their head (reused accounts carry old rooms), and no
/// datagrams are offered (loadgen never types).
pub fn client_config(config: &RunConfig, index: usize, shared: &RunShared) -> ClientConfig {
    let mut servers = config.servers.clone();
    let n = servers.len().max(1);
    servers.rotate_left(index % n);
    let mut c = ClientConfig::new(servers[0].clone(), config.tls.clone());
    c.servers = servers;
    c.server_name = config.server_name.clone();
    c.client_name = concat!("loadgen/", env!("CARGO_PKG_VERSION")).into();
    c.capabilities = vec![Capability::Redirect.name().into()];
    c.unknown_chats = UnknownChatPolicy::StartAtHead;
    c.endpoint = shared.endpoint(index);
    c.zero_rtt = config.zero_rtt;
    c.retry = RetryPolicy {
        max_retries: 0,
        max_retry_wait: Duration::ZERO,
        request_timeout: config.request_timeout,
        connect_timeout: config.request_timeout,
        ..RetryPolicy::default()
    };
    c
}

/// Connects and authenticates one connection.
pub async fn open(mut config: ClientConfig, auth: Auth) -> Result<Opened, OpenError> {
    let started = Instant::now();
    if let Auth::Resume(tokens) = &auth {
        config.tokens = Some(tokens.clone());
    }
    let client = Client::connect(config).await.map_err(OpenError::Connect)?;
    let handshake = started.elapsed();
    let started = Instant::now();
    let result = match &auth {
        // Authenticated (and synced) while connecting, or `connect` failed.
        Auth::Resume(_) => Ok(()),
        Auth::RegisterOrLogin { username, password } => {
            let register = client
                .register_user(
                    username,
                    &format!("{username}@loadgen.invalid"),
                    password,
                    "loadgen",
                )
                .await;
            match register {
                Err(e) if e.code() == Some(pb::ErrorCode::Conflict) => {
                    client.login(username, password, "loadgen").await
                }
                other => other,
            }
            .map(drop)
        }
        Auth::Token(access_token) => client.authenticate(access_token).await.map(drop),
    };
    let auth_time = started.elapsed();
    if let Err(e) = result {
        client.close().await;
        return Err(OpenError::Auth(e));
    }
    let Some(tokens) = client.tokens() else {
        client.close().await;
        return Err(OpenError::Auth(ClientError::NotAuthenticated));
    };
    Ok(Opened {
        client,
        tokens,
        handshake,
        auth: auth_time,
    })
}
