//! The background task of a [`Client`](super::Client): it owns the sans-IO [`Session`], reads the
//! event stream and datagrams, sends the session's Sync and fetch requests, notices lost
//! connections and reconnects (`establish`: dial, Hello, re-authenticate; then it accepts the
//! event stream) with the session's backoff.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::connection::SharedLink;
use super::error::ClientError;
use super::establish::{DialError, Dialed, EarlySync, establish};
use super::events::ClientEvent;
use super::requests::answer;
use super::{LinkState, Shared};
use crate::error::CloseCode;
use crate::io::{FrameReader, ReadFrameError, decode_datagram};
use crate::pb;
use crate::session::{Output, Phase, Session, SessionConfig};

/// How long a connection retired by GoAway stays open for the requests in flight on it when
/// the server does not close it (a server closes it once they are answered).
const RETIRE_GRACE: Duration = Duration::from_secs(30);

/// How long a closed connection's events, already received, may take to reach the driver
/// before the close is handled without them (see [`Driver::closing`]). They are in local
/// buffers, so only an application that stops taking events makes this wait expire.
const CLOSE_DRAIN: Duration = Duration::from_secs(5);

/// Delay before retrying a fetch that failed for a reason other than a server answer.
const FETCH_RETRY: Duration = Duration::from_secs(1);
/// Results of the driver's tasks waiting for it at most. The event stream's reader waits when
/// it is full, which is how a slow consumer stops the reading of the event stream.
const INPUT_QUEUE: usize = 64;

/// What the application side asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    /// Authentication succeeded on the link of this generation, for this user.
    Authenticated { generation: u64, user_id: u64 },
    /// The session was logged out: forget it.
    LoggedOut,
    /// Report the current cursors.
    Cursors(oneshot::Sender<Vec<pb::ChatCursor>>),
    /// Shut down.
    Close,
}

/// Results of the driver's own tasks.
#[derive(Debug)]
enum Input {
    Dialed(Result<Dialed, DialError>),
    Event {
        generation: u64,
        event: pb::Event,
    },
    EventStreamEnded {
        generation: u64,
        /// Why, when not by its FIN; and whether the server broke the protocol (a bad frame).
        error: Option<(String, bool)>,
    },
    SyncDone {
        generation: u64,
        request_id: u64,
        result: Result<pb::SyncResult, ClientError>,
    },
    FetchDone {
        generation: u64,
        request_id: u64,
        chat_id: u64,
        result: Result<pb::ChatEventList, ClientError>,
    },
}

/// The driver task's state.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    session: Session,
    session_config: SessionConfig,
    link: Option<SharedLink>,
    /// Event stream readers of `link` that have not reported their end yet.
    readers: usize,
    /// `link`'s connection ended while its readers were still handing over events: a server
    /// closes right after the client acknowledged its last event (a GoAway, a revocation's
    /// farewell), which can be before the reader passed it on. The close is handled once the
    /// readers end, or at the deadline.
    closing: Option<(quinn::ConnectionError, tokio::time::Instant)>,
    /// A connection the server asked to leave (GoAway), kept open until the server closes it
    /// (its requests in flight are answered then) or the deadline passes.
    retired: Option<(quinn::Connection, tokio::time::Instant)>,
    server_index: usize,
    /// The user of the authenticated session, if any.
    user_id: Option<u64>,
    /// The last user that authenticated: a different one starts a fresh session.
    last_user: Option<u64>,
    commands: mpsc::UnboundedReceiver<Command>,
    inputs_tx: mpsc::Sender<Input>,
    inputs: mpsc::Receiver<Input>,
    /// Events for the application, in order, waiting for room in its queue.
    outbox: VecDeque<ClientEvent>,
    /// The application's queue; its capacity also bounds `outbox`.
    events: mpsc::Sender<ClientEvent>,
}

impl Driver {
    pub fn new(
        shared: Arc<Shared>,
        session_config: SessionConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::Sender<ClientEvent>,
    ) -> Self {
        let (inputs_tx, inputs) = mpsc::channel(INPUT_QUEUE);
        Self {
            session: Session::with_request_ids(session_config.clone(), shared.ids.clone()),
            shared,
            session_config,
            link: None,
            readers: 0,
            closing: None,
            retired: None,
            server_index: 0,
            user_id: None,
            last_user: None,
            commands,
            inputs_tx,
            inputs,
            outbox: VecDeque::new(),
            events,
        }
    }

    /// Queues an event for the application.
    fn emit(&mut self, event: ClientEvent) {
        self.outbox.push_back(event);
    }

    fn now() -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }

    /// Runs until the client is closed or dropped, starting with the connection `Client::connect`
    /// established.
    pub async fn run(mut self, first: Dialed) {
        self.link_up(first);
        loop {
            self.flush();
            if self.session.is_stopped() && self.link.is_none() && self.retired.is_none() {
                // Revoked, credentials refused, or reconnecting disabled: nothing more can come.
                break;
            }
            let retired = self.retired.clone();
            let retired_done = async move {
                match retired {
                    Some((conn, deadline)) => {
                        let _ = tokio::time::timeout_at(deadline, conn.closed()).await;
                        conn
                    }
                    None => std::future::pending().await,
                }
            };
            let closed = {
                let link = self.link.clone();
                async move {
                    match link {
                        Some(link) => link.conn.closed().await,
                        None => std::future::pending().await,
                    }
                }
            };
            let closing_deadline = self.closing.as_ref().map(|(_, deadline)| *deadline);
            let drain_expired = async move {
                match closing_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let timeout = self.session.poll_timeout();
            let sleep = async move {
                match timeout {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            // While the application's events wait, nothing new is taken in (see "Slow
            // consumers" in the client documentation).
            let room = self.outbox.len() < self.events.max_capacity();
            let events = self.events.clone();
            tokio::select! {
                command = self.commands.recv() => match command {
                    None | Some(Command::Close) => break,
                    Some(command) => self.on_command(command),
                },
                permit = events.reserve(), if !self.outbox.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.outbox.pop_front() {
                            permit.send(event);
                        }
                    }
                    // The Client is gone: nobody listens.
                    Err(_) => self.outbox.clear(),
                },
                Some(input) = self.inputs.recv(), if room => self.on_input(input),
                error = closed, if self.closing.is_none() => self.on_closed(error),
                () = drain_expired => self.finish_close(),
                conn = retired_done => {
                    // Closed by the server once its requests were answered, or given up on.
                    conn.close(CloseCode::NoError.into(), b"retired");
                    self.retired = None;
                }
                () = sleep => self.session.handle_timeout(Self::now()),
            }
        }
        if let Some(link) = self.link.take() {
            link.conn.close(CloseCode::NoError.into(), b"client closed");
        }
        if let Some((conn, _)) = self.retired.take() {
            conn.close(CloseCode::NoError.into(), b"client closed");
        }
        let closed = matches!(&*self.shared.link.borrow(), LinkState::Closed(_));
        if !closed {
            self.shared
                .set_link(LinkState::Closed("client closed".into()));
        }
        self.shared.dialer.close();
        self.shared.end_events();
        // What is still queued goes out as the application takes it (or with the Client).
        for event in self.outbox.drain(..) {
            if self.events.send(event).await.is_err() {
                break;
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Authenticated {
                generation,
                user_id,
            } => {
                let Some(link) = self.link.clone() else {
                    return;
                };
                if link.generation != generation {
                    return;
                }
                if self.last_user.is_some_and(|u| u != user_id) {
                    // Another account: the previous one's cursors mean nothing for it.
                    let config = SessionConfig {
                        initial_cursors: Vec::new(),
                        seed: rand::random(),
                        ..self.session_config.clone()
                    };
                    self.session = Session::with_request_ids(config, self.shared.ids.clone());
                }
                self.user_id = Some(user_id);
                self.last_user = Some(user_id);
                self.spawn_event_reader(&link);
                self.session.handle_connected(Self::now());
            }
            Command::LoggedOut => {
                self.user_id = None;
                let config = SessionConfig {
                    initial_cursors: Vec::new(),
                    seed: rand::random(),
                    ..self.session_config.clone()
                };
                self.session = Session::with_request_ids(config, self.shared.ids.clone());
            }
            Command::Cursors(reply) => {
                let _ = reply.send(self.session.cursors());
            }
            Command::Close => {}
        }
    }

    fn on_input(&mut self, input: Input) {
        let now = Self::now();
        let current = self.link.as_ref().map(|l| l.generation);
        match input {
            Input::Dialed(Ok(dialed)) => self.link_up(dialed),
            Input::Dialed(Err(DialError::Transient(e))) => {
                tracing::debug!(error = %e, "reconnect failed");
                if matches!(e, ClientError::ServerBusy(_)) {
                    self.session.handle_server_busy(now);
                } else {
                    self.session.handle_connect_failed(now);
                }
                self.announce_reconnect(now);
            }
            Input::Dialed(Err(DialError::AuthRejected(reason))) => {
                tracing::warn!(%reason, "credentials refused on reconnect; stopping");
                self.session.stop();
                self.shared.set_tokens(None);
                self.emit(ClientEvent::AuthFailed {
                    reason: reason.clone(),
                });
                self.shared.set_link(LinkState::Closed(format!(
                    "authentication refused: {reason}"
                )));
            }
            Input::Event { generation, event } if Some(generation) == current => {
                self.session.handle_event(event, now);
            }
            Input::EventStreamEnded { generation, error } if Some(generation) == current => {
                self.readers = self.readers.saturating_sub(1);
                if self.closing.is_some() {
                    if self.readers == 0 {
                        self.finish_close();
                    }
                    return;
                }
                // A clean finish follows Logout (or precedes the server closing the
                // connection) and needs nothing; a broken stream leaves the session blind, so
                // reconnect.
                let Some((e, violation)) = error else { return };
                // When the connection itself ended, its close code says what to do next.
                match self.link.as_ref().and_then(|l| l.conn.close_reason()) {
                    Some(closed) => self.link_closed(&closed),
                    // A bad frame is the server's fault, and the close says so (spec 4.2).
                    None if violation => self.close_link(
                        CloseCode::ProtocolViolation,
                        &format!("bad event frame: {e}"),
                    ),
                    None => {
                        self.close_link(CloseCode::NoError, &format!("event stream failed: {e}"))
                    }
                }
            }
            Input::SyncDone {
                generation,
                request_id,
                result,
            } if Some(generation) == current => match result {
                Ok(sync) => self.session.handle_sync_result(request_id, sync, now),
                // Logged out (or revoked) while the sync was in flight: there is nothing to
                // resume until the next authentication, which starts a new sync. Reconnecting
                // would only break the logout that is under way.
                Err(ClientError::Remote(e)) if e.code == pb::ErrorCode::Unauthenticated => {
                    tracing::debug!("sync refused: the connection is no longer authenticated");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "sync failed");
                    self.session.handle_sync_failed(request_id, now);
                }
            },
            Input::FetchDone {
                generation,
                request_id,
                chat_id,
                result,
            } if Some(generation) == current => match result {
                Ok(list) => self
                    .session
                    .handle_fetch_result(request_id, chat_id, list, now),
                Err(ClientError::ConnectionLost(_)) => {}
                Err(ClientError::Remote(e)) if e.is_retryable() => {
                    let after = e.retry_after.unwrap_or(FETCH_RETRY);
                    self.session
                        .handle_fetch_failed(request_id, chat_id, Some(after), now);
                }
                Err(ClientError::Remote(e)) => {
                    tracing::warn!(chat_id, error = %e, "catching up a chat failed");
                    self.session
                        .handle_fetch_failed(request_id, chat_id, None, now);
                }
                Err(e) => {
                    tracing::debug!(chat_id, error = %e, "fetch failed, retrying");
                    self.session
                        .handle_fetch_failed(request_id, chat_id, Some(FETCH_RETRY), now);
                }
            },
            // Anything else belongs to a connection that is already gone.
            _ => {}
        }
    }

    /// Carries out the session's outputs.
    fn flush(&mut self) {
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Connect { addresses } => self.spawn_reconnect(addresses),
                Output::Retire => self.retire_link(),
                Output::Close => {
                    let reason = if self.session.is_stopped() {
                        "session revoked"
                    } else {
                        "the resume failed"
                    };
                    self.close_link(CloseCode::NoError, reason);
                }
                Output::Sync { request_id, sync } => {
                    let kind = pb::request::Kind::Sync(sync);
                    self.spawn_request(request_id, kind, move |generation, result| {
                        Input::SyncDone {
                            generation,
                            request_id,
                            result: result.and_then(answer::<pb::Sync>),
                        }
                    });
                }
                Output::Fetch {
                    request_id,
                    chat_id,
                    after_seq,
                    limit,
                } => {
                    let kind = pb::request::Kind::GetChatEvents(pb::GetChatEvents {
                        chat_id,
                        after_seq,
                        limit,
                    });
                    self.spawn_request(request_id, kind, move |generation, result| {
                        Input::FetchDone {
                            generation,
                            request_id,
                            chat_id,
                            result: result.and_then(answer::<pb::GetChatEvents>),
                        }
                    });
                }
                Output::Deliver(event) => {
                    if let Some(event) = ClientEvent::from_pb(event) {
                        if matches!(event, ClientEvent::SessionRevoked(_)) {
                            self.shared.set_tokens(None);
                        }
                        self.emit(event);
                    }
                }
                Output::Skipped {
                    chat_id,
                    from_seq,
                    to_seq,
                } => self.emit(ClientEvent::Skipped {
                    chat_id,
                    from_seq,
                    to_seq,
                }),
                Output::CaughtUp => self.emit(ClientEvent::CaughtUp),
            }
        }
    }

    fn spawn_request(
        &self,
        request_id: u64,
        kind: pb::request::Kind,
        done: impl FnOnce(u64, Result<pb::response::Result, ClientError>) -> Input + Send + 'static,
    ) {
        let Some(link) = self.link.clone() else {
            return;
        };
        let tx = self.inputs_tx.clone();
        // A server that never answers must not leave the resume waiting forever: timed out, it
        // is retried as any failure is.
        let timeout = self.shared.dialer.config().retry.request_timeout;
        tokio::spawn(async move {
            let result = tokio::time::timeout(timeout, link.call_ok(request_id, kind))
                .await
                .unwrap_or(Err(ClientError::Timeout(timeout)));
            let _ = tx.send(done(link.generation, result)).await;
        });
    }

    fn spawn_reconnect(&mut self, addresses: Vec<String>) {
        let shared = self.shared.clone();
        let tx = self.inputs_tx.clone();
        let start = self.server_index;
        let tokens = self.user_id.and(self.shared.tokens());
        let sync = EarlySync {
            request_id: self.shared.ids.next_id(),
            sync: self.session.sync_request(),
        };
        self.shared.set_link(LinkState::Down);
        tokio::spawn(async move {
            let result = establish(&shared, &addresses, start, tokens, Some(sync)).await;
            let _ = tx.send(Input::Dialed(result)).await;
        });
    }

    /// Reads the event stream of `link` once the server opens it. The stream becomes visible
    /// only when the server first writes to it, so nothing waits for it: the resume (Sync)
    /// starts at once and live events join whenever they come.
    fn spawn_event_reader(&mut self, link: &SharedLink) {
        self.readers += 1;
        let tx = self.inputs_tx.clone();
        let link = link.clone();
        let generation = link.generation;
        let max_frame_bytes = link.max_receive_bytes();
        tokio::spawn(async move {
            // The end is always reported: the driver waits for it before it handles a close.
            let error = match link.conn.accept_uni().await {
                Ok(recv) => {
                    drop(link);
                    let mut reader = FrameReader::new(recv, max_frame_bytes);
                    loop {
                        match reader.read::<pb::Event>().await {
                            Ok(event) => {
                                // Waits while the driver's queue is full: a slow consumer.
                                let input = Input::Event { generation, event };
                                if tx.send(input).await.is_err() {
                                    return;
                                }
                            }
                            Err(ReadFrameError::Finished) => break None,
                            Err(e @ ReadFrameError::Frame(_)) => break Some((e.to_string(), true)),
                            Err(e) => break Some((e.to_string(), false)),
                        }
                    }
                }
                // The connection is gone.
                Err(e) => Some((e.to_string(), false)),
            };
            let _ = tx.send(Input::EventStreamEnded { generation, error }).await;
        });
    }

    fn spawn_datagram_reader(&self, link: SharedLink) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            while let Ok(bytes) = link.conn.read_datagram().await {
                match decode_datagram(&bytes) {
                    Ok(pb::Datagram {
                        kind: Some(pb::datagram::Kind::Typing(typing)),
                    }) => shared.emit_lossy(ClientEvent::Typing(typing)),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "undecodable datagram dropped"),
                }
            }
        });
    }

    /// A connection is ready: publish it and, when authenticated, start the resume.
    fn link_up(&mut self, dialed: Dialed) {
        let link: SharedLink = Arc::new(dialed.link);
        self.server_index = dialed.server_index;
        if let Some(tokens) = dialed.refreshed {
            self.shared.set_tokens(Some(tokens.clone()));
            self.emit(ClientEvent::TokensRefreshed(tokens));
        }
        self.emit(ClientEvent::Connected {
            address: link.address.clone(),
            node_id: link.welcome.node_id.clone(),
        });
        if link.datagrams {
            self.spawn_datagram_reader(link.clone());
        }
        self.link = Some(link.clone());
        self.readers = 0;
        self.closing = None;
        if let Some(user_id) = dialed.user_id {
            self.user_id = Some(user_id);
            self.last_user = Some(user_id);
        }
        let generation = link.generation;
        if dialed.authenticated {
            self.spawn_event_reader(&link);
            match dialed.early_sync {
                Some((request_id, result)) => {
                    self.session
                        .handle_connected_synced(request_id, Self::now());
                    self.on_input(Input::SyncDone {
                        generation,
                        request_id,
                        result,
                    });
                }
                None => self.session.handle_connected(Self::now()),
            }
        }
        self.shared.set_link(LinkState::Up(link));
    }

    /// The connection ended. What its readers still hold was sent before the close, so it
    /// goes to the application first: the close waits for them (at most [`CLOSE_DRAIN`]).
    fn on_closed(&mut self, error: quinn::ConnectionError) {
        if self.readers == 0 {
            self.link_closed(&error);
            return;
        }
        // Requests wait for the next connection instead of failing on this one.
        self.shared.set_link(LinkState::Down);
        self.closing = Some((error, tokio::time::Instant::now() + CLOSE_DRAIN));
    }

    /// Handles the close [`on_closed`](Self::on_closed) put off.
    fn finish_close(&mut self) {
        if let Some((error, _)) = self.closing.take() {
            self.link_closed(&error);
        }
    }

    /// The connection ended: its close code (protocol.md 6.4) decides what comes next.
    fn link_closed(&mut self, error: &quinn::ConnectionError) {
        let code = match error {
            quinn::ConnectionError::ApplicationClosed(close) => {
                CloseCode::from_code(close.error_code.into_inner())
            }
            _ => None,
        };
        match code {
            Some(CloseCode::SessionRevoked) => {
                // Normally the SessionRevoked event came first; the code alone says the same.
                self.session.stop();
                self.shared.set_tokens(None);
                self.link_lost(error.to_string(), false);
            }
            Some(CloseCode::Resync) => {
                tracing::info!("the server dropped live events: reconnecting to catch up");
                self.link_lost(error.to_string(), true);
            }
            _ => self.link_lost(error.to_string(), false),
        }
    }

    /// Forgets the link and, unless the session is over, schedules the reconnect: at once for a
    /// `resync`, after the backoff otherwise.
    fn link_lost(&mut self, reason: String, resync: bool) {
        self.link = None;
        self.readers = 0;
        self.closing = None;
        tracing::info!(%reason, "connection lost");
        self.emit(ClientEvent::Disconnected {
            reason: reason.clone(),
        });
        if self.session.is_stopped() {
            self.shared.set_link(LinkState::Closed(reason));
            return;
        }
        if !self.shared.dialer.config().retry.reconnect {
            self.session.stop();
            self.shared
                .set_link(LinkState::Closed(format!("connection lost: {reason}")));
            return;
        }
        self.shared.set_link(LinkState::Down);
        let now = Self::now();
        if resync {
            self.session.handle_resync(now);
        } else {
            self.session.handle_disconnected(now);
        }
        self.announce_reconnect(now);
    }

    /// Tells the application when the next attempt comes, if one is scheduled.
    fn announce_reconnect(&mut self, now: std::time::Instant) {
        if let Phase::Waiting { until } = self.session.phase() {
            self.emit(ClientEvent::Reconnecting {
                after: until.saturating_duration_since(now),
            });
        }
    }

    /// Stops using the link without closing it (GoAway, protocol.md 3.6): new requests wait for
    /// the next connection, while those in flight finish on this one, which the server closes
    /// once they are answered. A server that does not is given [`RETIRE_GRACE`].
    fn retire_link(&mut self) {
        if let Some(link) = &self.link {
            let deadline = tokio::time::Instant::now() + RETIRE_GRACE;
            if let Some((older, _)) = self.retired.replace((link.conn.clone(), deadline)) {
                older.close(CloseCode::NoError.into(), b"retired");
            }
            self.link_lost("server going away".into(), false);
        }
    }

    fn close_link(&mut self, code: CloseCode, reason: &str) {
        if let Some(link) = &self.link {
            link.conn.close(code.into(), reason.as_bytes());
        }
        if self.link.is_some() {
            self.link_lost(reason.to_string(), false);
        }
    }
}
