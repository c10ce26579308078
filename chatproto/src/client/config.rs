//! Client configuration: servers, TLS verification, capabilities, stored tokens and retry policy.

use std::time::Duration;

use crate::capability::Capability;
use crate::session::{BackoffConfig, UnknownChatPolicy};
use crate::tls::Verification;

/// The default of [`ClientConfig::event_queue`].
pub const DEFAULT_EVENT_QUEUE: usize = 1024;

/// The tokens of an authenticated session. Persist them (securely) to resume without a password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Tokens {
    /// The user the session belongs to.
    pub user_id: u64,
    /// The session id.
    pub session_id: u64,
    /// A short-lived JWT.
    pub access_token: String,
    /// When the access token expires, in ms since the Unix epoch (0: unknown).
    pub access_expires_at_ms: i64,
    /// The single-use refresh token.
    pub refresh_token: String,
}

impl std::fmt::Debug for Tokens {
    // Tokens are secrets: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .field("access_expires_at_ms", &self.access_expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// When and how requests are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Reconnect automatically after the connection is lost (with re-authentication and resume).
    pub reconnect: bool,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// Attempts per request beyond the first, for UNAVAILABLE / RATE_LIMITED answers and for
    /// safe requests whose connection was lost.
    pub max_retries: u32,
    /// A RATE_LIMITED or UNAVAILABLE answer asking to wait longer than this is returned to the
    /// caller instead of being waited out.
    pub max_retry_wait: Duration,
    /// A whole request, including retries and waiting for a reconnect, fails after this long.
    pub request_timeout: Duration,
    /// One connection attempt (QUIC handshake, Hello, authentication) fails after this long.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            reconnect: true,
            backoff: BackoffConfig::default(),
            max_retries: 5,
            max_retry_wait: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything [`Client::connect`](super::Client::connect) needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` addresses of the service, tried in order (and in rotation on reconnect).
    pub servers: Vec<String>,
    /// The TLS server name to verify; `None` uses the host part of each address.
    pub server_name: Option<String>,
    /// How the server certificate is verified.
    pub verification: Verification,
    /// Software name and version sent in Hello, e.g. `"chat-tui/0.1.0"` (at most 64 bytes).
    pub client_name: String,
    /// Capability names offered in Hello (by default every [`Capability`] of chat/1.0).
    pub capabilities: Vec<String>,
    /// Tokens of a previous login: the client authenticates with them while connecting.
    pub tokens: Option<Tokens>,
    /// Cursors `(chat_id, seq)` the application persisted: delivery resumes after them.
    pub cursors: Vec<(u64, u64)>,
    /// Where chats start that the client has no cursor for when a resume reports them (all of
    /// them for a new client): by default the last [`DEFAULT_RECENT_EVENTS`] events of each
    /// (see [`UnknownChatPolicy`] and spec 7.3).
    ///
    /// [`DEFAULT_RECENT_EVENTS`]: crate::session::DEFAULT_RECENT_EVENTS
    pub unknown_chats: UnknownChatPolicy,
    /// Retries, reconnects and timeouts.
    pub retry: RetryPolicy,
    /// How many events wait for [`Client::next_event`](super::Client::next_event) at most; see
    /// "Slow consumers" in the [client documentation](super).
    pub event_queue: usize,
    /// A UDP endpoint to open the connections on, shared with other clients of this process
    /// (a program running many clients, like a load generator, then reads many connections'
    /// packets per system call); `None`, the default, binds one per client. A shared endpoint is
    /// not closed when the client closes.
    pub endpoint: Option<quinn::Endpoint>,
    /// Send the first requests of a connection (`hello`, `authenticate` with the access token,
    /// `sync`) in 0-RTT data when a session ticket from an earlier connection allows it, so they
    /// are answered after one round trip (protocol.md 2.5). On by default; without it a
    /// returning client still resumes (no certificate exchange) but waits for the handshake.
    pub zero_rtt: bool,
}

impl ClientConfig {
    /// A configuration for one server with the default capabilities and policies.
    pub fn new(server: impl Into<String>, verification: Verification) -> Self {
        Self {
            servers: vec![server.into()],
            server_name: None,
            verification,
            client_name: concat!("chatproto/", env!("CARGO_PKG_VERSION")).into(),
            capabilities: Capability::ALL.iter().map(|c| c.name().into()).collect(),
            tokens: None,
            cursors: Vec::new(),
            unknown_chats: UnknownChatPolicy::default(),
            event_queue: DEFAULT_EVENT_QUEUE,
            retry: RetryPolicy::default(),
            endpoint: None,
            zero_rtt: true,
        }
    }

    /// True when `cap` is offered in Hello.
    pub fn offers(&self, cap: Capability) -> bool {
        cap.is_in(&self.capabilities)
    }
}
