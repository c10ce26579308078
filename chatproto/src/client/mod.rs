//! The async chat/1 client SDK (tokio + quinn).
//!
//! [`Client::connect`] opens a QUIC connection to the first reachable server, says Hello (and
//! follows a redirect), and starts a background task that keeps the connection alive: when it is
//! lost, the client reconnects with jittered backoff, authenticates again (access token, else
//! refresh token) and resumes the event stream through the sans-IO [`session`](crate::session),
//! so the application sees every chat event exactly once and in order.
//!
//! # Slow consumers
//! Events wait for [`Client::next_event`] in a queue of [`ClientConfig::event_queue`] events
//! (plus at most one catch-up page being delivered). When the application does not take them,
//! the queue fills and the client stops reading the server's event stream; typing datagrams
//! that find the queue full are dropped (they are safe to lose). Nothing else is buffered: the
//! server, whose queue per connection is bounded too, closes the connection of a client that
//! does not read. Once the application takes events again, the client reconnects and catches up
//! from its cursors, so no chat event is lost or delivered twice; meanwhile reconnects and
//! catch-up requests wait too.
//!
//! Every request kind of `spec/chat.proto` has a typed method (`send_message`, `get_history`,
//! ...). Requests that are safe to repeat are retried across reconnects; UNAVAILABLE and
//! RATE_LIMITED answers are retried after the server's hint.
//!
//! ```no_run
//! use chatproto::client::{Client, ClientConfig, ClientEvent};
//! use chatproto::fingerprint::parse_fingerprint;
//! use chatproto::tls::Verification;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pin = parse_fingerprint("3f:a1:...")?;
//! let client = Client::connect(ClientConfig::new("chat.example:4433", Verification::Pin(pin))).await?;
//! client.login("alice", "correct horse battery", "laptop").await?;
//! let chat = client.create_private_chat(42).await?;
//! client.send_text(chat.id, "hello").await?;
//! while let Some(event) = client.next_event().await {
//!     match event {
//!         ClientEvent::Chat(ev) => println!("chat {} seq {}: {:?}", ev.chat_id, ev.seq, ev.body),
//!         ClientEvent::TokensRefreshed(tokens) => { /* persist tokens */ }
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`config`]: [`ClientConfig`], [`Tokens`], [`RetryPolicy`].
//! - [`error`]: [`ClientError`] and [`RemoteError`].
//! - [`events`]: [`ClientEvent`], what [`Client::next_event`] returns.
//! - `connection.rs`: dialing, Hello (in 0-RTT data when a session ticket allows), redirects,
//!   failover, one request per stream.
//! - `establish.rs`: a connection made ready: Hello, re-authentication, and for a returning
//!   client `authenticate` and `sync` in the first flight (protocol.md 2.5).
//! - `reconnect.rs`: the background task (session, event stream, reconnect).
//! - `auth.rs`: register, login, refresh, authenticate, logout.
//! - `requests.rs`: the typed method of every other request kind.
//! - `files.rs`: file upload and download with progress and resume (capability `files`).
//! - `paging.rs`: reads that span requests: every page of the chat list, history windows,
//!   profiles and presence for many ids.
//! - [`store`]: files a client keeps between runs: trusted servers (trust on first use), the
//!   session's tokens, the outbox of unacknowledged messages.

mod auth;
mod backup;
pub mod config;
mod connection;
pub mod error;
mod establish;
pub mod events;
mod files;
mod paging;
mod reconnect;
mod requests;
pub mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

pub use crate::session::{DEFAULT_RECENT_EVENTS, UnknownChatPolicy};
pub use config::{ClientConfig, DEFAULT_EVENT_QUEUE, RetryPolicy, Tokens};
pub use error::{ClientError, RemoteError};
pub use events::ClientEvent;
pub use paging::{HistoryPage, HistoryRange};
pub use requests::new_client_msg_id;

use crate::pb;
use crate::request::{Repeat, RequestMessage};
use crate::session::{Backoff, RequestIds, SessionConfig};
use connection::{CallError, Dialer, EncodedRequest, SharedLink, into_result};
use reconnect::{Command, Driver};

/// The state of the connection, as the request side sees it.
#[derive(Debug, Clone)]
pub(crate) enum LinkState {
    Up(SharedLink),
    /// Reconnecting.
    Down,
    /// Stopped for good, with the reason.
    Closed(String),
}

/// What the driver task and the request side share.
#[derive(Debug)]
pub(crate) struct Shared {
    dialer: Dialer,
    ids: RequestIds,
    link: watch::Sender<LinkState>,
    tokens: Mutex<Option<Tokens>>,
    /// The datagram reader's way to the event queue (the driver has its own sender); taken
    /// when the driver ends, so that `next_event` returns `None` after the last event.
    events: Mutex<Option<mpsc::Sender<ClientEvent>>>,
}

impl Shared {
    fn set_link(&self, state: LinkState) {
        self.link.send_replace(state);
    }

    fn tokens(&self) -> Option<Tokens> {
        self.tokens.lock().ok().and_then(|t| t.clone())
    }

    fn set_tokens(&self, tokens: Option<Tokens>) {
        if let Ok(mut t) = self.tokens.lock() {
            *t = tokens;
        }
    }

    /// Queues an event that is safe to lose (a typing datagram): dropped when the queue is full.
    fn emit_lossy(&self, event: ClientEvent) {
        if let Ok(events) = self.events.lock()
            && let Some(tx) = events.as_ref()
        {
            // Full: a slow consumer; closed: nobody listens any more. Either way, drop it.
            let _ = tx.try_send(event);
        }
    }

    /// No more events: `next_event` returns `None` once the queued ones are taken.
    fn end_events(&self) {
        if let Ok(mut events) = self.events.lock() {
            events.take();
        }
    }

    /// The current connection, waiting while the client reconnects.
    async fn wait_link(&self) -> Result<SharedLink, ClientError> {
        let mut rx = self.link.subscribe();
        let state = rx
            .wait_for(|s| !matches!(s, LinkState::Down))
            .await
            .map_err(|_| ClientError::Closed("client dropped".into()))?;
        match &*state {
            LinkState::Up(link) => Ok(link.clone()),
            LinkState::Closed(reason) => Err(ClientError::Closed(reason.clone())),
            LinkState::Down => Err(ClientError::Closed("unreachable link state".into())),
        }
    }

    /// Waits until a connection newer than `generation` is up.
    async fn wait_link_after(&self, generation: u64) -> Result<SharedLink, ClientError> {
        let mut rx = self.link.subscribe();
        let state = rx
            .wait_for(|s| match s {
                LinkState::Up(link) => link.generation > generation,
                LinkState::Down => false,
                LinkState::Closed(_) => true,
            })
            .await
            .map_err(|_| ClientError::Closed("client dropped".into()))?;
        match &*state {
            LinkState::Up(link) => Ok(link.clone()),
            LinkState::Closed(reason) => Err(ClientError::Closed(reason.clone())),
            LinkState::Down => Err(ClientError::Closed("unreachable link state".into())),
        }
    }
}

/// A connected chat/1 client. Share it behind an `Arc` to call it from many tasks.
#[derive(Debug)]
pub struct Client {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    events: tokio::sync::Mutex<mpsc::Receiver<ClientEvent>>,
    /// `Limits.max_page_size` of the first connection (100 when not announced).
    page_size: u32,
}

impl Client {
    /// Connects to the first server of `config.servers` that answers Hello (following a Welcome
    /// redirect), authenticating with `config.tokens` when given, and starts the background task.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let ids = RequestIds::new();
        let dialer = Dialer::new(config.clone(), ids.clone())?;
        let (events_tx, events_rx) = mpsc::channel(config.event_queue.max(1));
        let (link_tx, _) = watch::channel(LinkState::Down);
        let shared = Arc::new(Shared {
            dialer,
            ids,
            link: link_tx,
            tokens: Mutex::new(config.tokens.clone()),
            events: Mutex::new(Some(events_tx.clone())),
        });
        let sync = establish::EarlySync {
            request_id: shared.ids.next_id(),
            sync: crate::session::first_sync_page(&config.cursors),
        };
        let first = establish::establish(&shared, &[], 0, config.tokens.clone(), Some(sync))
            .await
            .map_err(ClientError::from)?;
        let page = first
            .link
            .welcome
            .limits
            .as_ref()
            .map_or(0, |l| l.max_page_size);
        let session_config = SessionConfig {
            backoff: config.retry.backoff,
            seed: rand::random(),
            fetch_limit: if page == 0 { 100 } else { page.min(100) },
            unknown_chats: config.unknown_chats,
            initial_cursors: config.cursors.clone(),
            ..SessionConfig::default()
        };
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let driver = Driver::new(shared.clone(), session_config, commands_rx, events_tx);
        tokio::spawn(driver.run(first));
        // The driver publishes the first link; wait for it so requests can start at once.
        shared.wait_link().await?;
        Ok(Self {
            shared,
            commands,
            events: tokio::sync::Mutex::new(events_rx),
            page_size: if page == 0 { 100 } else { page },
        })
    }

    /// The next event; `None` once the client is closed and every event was taken.
    pub async fn next_event(&self) -> Option<ClientEvent> {
        self.events.lock().await.recv().await
    }

    /// The next event if one is ready, without waiting.
    pub fn try_next_event(&self) -> Option<ClientEvent> {
        self.events.try_lock().ok()?.try_recv().ok()
    }

    /// The Welcome of the current connection, if connected.
    pub fn welcome(&self) -> Option<pb::Welcome> {
        match &*self.shared.link.borrow() {
            LinkState::Up(link) => Some(link.welcome.clone()),
            _ => None,
        }
    }

    /// The `host:port` of the current connection, if connected.
    pub fn server_address(&self) -> Option<String> {
        match &*self.shared.link.borrow() {
            LinkState::Up(link) => Some(link.address.clone()),
            _ => None,
        }
    }

    /// True when the current connection negotiated datagrams (typing goes as datagrams).
    pub fn datagrams_enabled(&self) -> bool {
        matches!(&*self.shared.link.borrow(), LinkState::Up(link) if link.datagrams)
    }

    /// True when the current connection resumed an earlier TLS session and sent its first
    /// requests (`hello`, and with tokens `authenticate` and `sync`) in 0-RTT data, which the
    /// server accepted: they were answered after one round trip (protocol.md 2.5).
    pub fn zero_rtt(&self) -> bool {
        matches!(&*self.shared.link.borrow(), LinkState::Up(link) if link.zero_rtt)
    }

    /// The tokens in force, if authenticated. Persist them to resume later.
    pub fn tokens(&self) -> Option<Tokens> {
        self.shared.tokens()
    }

    /// Moves the client's UDP sockets to new ones, as after a network change (a phone going
    /// from Wi-Fi to mobile data): call it when the system reports that the network changed.
    /// The connection migrates (protocol.md 2.4): same session, no reconnect, no gap; requests
    /// in flight carry on. Returns the new local addresses.
    ///
    /// # Errors
    /// [`ClientError::Connect`] when no new socket could be bound.
    pub fn rebind(&self) -> Result<Vec<std::net::SocketAddr>, ClientError> {
        self.shared.dialer.rebind()
    }

    /// The cursor of every chat (highest seq delivered), to persist and pass back as
    /// [`ClientConfig::cursors`].
    pub async fn cursors(&self) -> Result<Vec<pb::ChatCursor>, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Cursors(tx))
            .map_err(|_| ClientError::Closed("client closed".into()))?;
        rx.await
            .map_err(|_| ClientError::Closed("client closed".into()))
    }

    /// Closes the connection and stops reconnecting. Pending requests fail with
    /// [`ClientError::Closed`].
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close);
        let mut rx = self.shared.link.subscribe();
        let _ = rx.wait_for(|s| matches!(s, LinkState::Closed(_))).await;
    }

    /// Sends one request, retrying as the retry policy allows, within the request timeout.
    /// Returns the generation of the connection that answered and the result.
    /// The request is encoded once: every attempt sends the same frame.
    pub(crate) async fn call(
        &self,
        kind: pb::request::Kind,
    ) -> Result<(u64, pb::response::Result), ClientError> {
        let timeout = self.shared.dialer.config().retry.request_timeout;
        let repeat = kind.repeat();
        let request = EncodedRequest::new(self.shared.ids.next_id(), kind)?;
        tokio::time::timeout(timeout, self.call_retrying(&request, repeat))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    /// Sends a request and returns its typed answer; whether it is repeated after a lost
    /// connection follows its kind (see [`crate::request`]). Every request kind also has a named
    /// method (`get_history`, `send_message`, ...).
    pub async fn request<R: RequestMessage>(&self, req: R) -> Result<R::Answer, ClientError> {
        let (_, result) = self.call(req.into_kind()).await?;
        requests::answer::<R>(result)
    }

    async fn call_retrying(
        &self,
        request: &EncodedRequest,
        repeat: Repeat,
    ) -> Result<(u64, pb::response::Result), ClientError> {
        let policy = &self.shared.dialer.config().retry;
        let mut backoff = Backoff::new(policy.backoff, rand::random());
        let mut link = self.shared.wait_link().await?;
        let mut attempt = 0;
        loop {
            let error = match link.send(request).await {
                Ok(response) => match into_result(response) {
                    Ok(result) => return Ok((link.generation, result)),
                    Err(e) => e,
                },
                Err(CallError::Lost(reason)) => {
                    if repeat == Repeat::Never || !policy.reconnect || attempt >= policy.max_retries
                    {
                        return Err(ClientError::ConnectionLost(reason));
                    }
                    attempt += 1;
                    link = self.shared.wait_link_after(link.generation).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match &error {
                ClientError::Remote(remote)
                    if remote.is_retryable() && attempt < policy.max_retries =>
                {
                    let wait = remote.retry_after.unwrap_or_else(|| backoff.next_delay());
                    if wait > policy.max_retry_wait {
                        return Err(error);
                    }
                    attempt += 1;
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                    link = self.shared.wait_link().await?;
                }
                _ => return Err(error),
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // The driver ends when it sees this (or the dropped command channel) and closes the
        // endpoints.
        let _ = self.commands.send(Command::Close);
    }
}

impl Tokens {
    /// The tokens of an AuthResult; fields the result leaves empty keep the values of `previous`.
    pub fn from_auth(auth: &pb::AuthResult, previous: &Tokens) -> Self {
        Self {
            user_id: auth.user.as_ref().map_or(previous.user_id, |u| u.id),
            session_id: if auth.session_id == 0 {
                previous.session_id
            } else {
                auth.session_id
            },
            access_token: if auth.access_token.is_empty() {
                previous.access_token.clone()
            } else {
                auth.access_token.clone()
            },
            access_expires_at_ms: if auth.access_token.is_empty() {
                previous.access_expires_at_ms
            } else {
                auth.access_expires_at_ms
            },
            refresh_token: if auth.refresh_token.is_empty() {
                previous.refresh_token.clone()
            } else {
                auth.refresh_token.clone()
            },
        }
    }
}
