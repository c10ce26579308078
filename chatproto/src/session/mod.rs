//! The client session core, sans-IO: ordering, resume after reconnect, and reconnect timing.
//!
//! [`Session`] owns no sockets, tasks or clocks. The driver (the async [`client`](crate::client),
//! a simulation, or another runtime) feeds it what happened with `handle_*` calls, passing the
//! current time, and carries out what it asks for by draining [`Session::poll_output`] and
//! sleeping until [`Session::poll_timeout`]. This mirrors quinn-proto's design and is what lets a
//! deterministic simulation (`tests/session_sim.rs`) exercise every reconnect interleaving.
//!
//! What the session guarantees: the application sees every [`pb::ChatEvent`] exactly once, in
//! `seq` order per chat, however the server's at-least-once event stream duplicates, reorders or
//! drops them and however often the connection is lost. Unsequenced events pass through as they
//! arrive.
//!
//! # Protocol the driver follows
//! 1. Connect (QUIC, Hello, authenticate, accept the event stream), then
//!    [`handle_connected`](Session::handle_connected); on failure
//!    [`handle_connect_failed`](Session::handle_connect_failed).
//! 2. Send the [`Output::Sync`] and [`Output::Fetch`] requests it is given and report their
//!    answers (`handle_sync_*`, `handle_fetch_*`), with the request id from the output.
//! 3. Feed every frame of the event stream to [`handle_event`](Session::handle_event).
//! 4. When the connection is lost call [`handle_disconnected`](Session::handle_disconnected);
//!    [`Output::Connect`] later says when to dial again.
//!
//! # Layout
//! - `mod.rs`: [`Session`], its configuration and [`Output`].
//! - `chats.rs`: per-chat cursors, duplicate suppression, reorder buffer and gap fetches.
//! - [`backoff`]: jittered exponential reconnect delays.
//! - [`request_ids`]: request id allocation shared with the driver.

pub mod backoff;
mod chats;
pub mod request_ids;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use backoff::{Backoff, BackoffConfig};
pub use request_ids::RequestIds;

use crate::pb;
use chats::{ChatTracker, FetchPolicy, Link};

/// How many events before a chat's head [`UnknownChatPolicy::default`] starts: a brand-new
/// client shows the recent past of each chat, not its whole history.
pub const DEFAULT_RECENT_EVENTS: u64 = 50;

/// The least a client waits before dialing a server that refused it with `SERVER_BUSY`; the
/// backoff's jittered delay comes on top (protocol.md 3.7 recommends starting at 1 s).
pub const SERVER_BUSY_FLOOR: Duration = Duration::from_secs(1);

/// Where a chat starts that the server reports in a Sync answer and the session has no cursor
/// for: every chat of a brand-new client, and chats created or joined while the client was away
/// (spec 7.3, step 4). Older history is the application's to load, with `GetHistory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownChatPolicy {
    /// Fetch its events from the start (`after_seq: 0`): the application sees its whole readable
    /// history. For clients that persist cursors and want new chats complete.
    Backfill,
    /// Fetch the last `events` events (`after_seq: last_seq - events`, at least 0) and deliver
    /// from there. The default, with [`DEFAULT_RECENT_EVENTS`].
    Recent {
        /// How many events before the head to start.
        events: u64,
    },
    /// Start at the reported head: only later events are delivered. For clients that load
    /// history on demand (GetHistory) and do not persist cursors.
    StartAtHead,
}

impl Default for UnknownChatPolicy {
    fn default() -> Self {
        UnknownChatPolicy::Recent {
            events: DEFAULT_RECENT_EVENTS,
        }
    }
}

impl UnknownChatPolicy {
    /// The cursor a chat whose last seq is `last_seq` starts at.
    pub fn start(self, last_seq: u64) -> u64 {
        match self {
            UnknownChatPolicy::Backfill => 0,
            UnknownChatPolicy::Recent { events } => last_seq.saturating_sub(events),
            UnknownChatPolicy::StartAtHead => last_seq,
        }
    }
}

/// Tunables of a [`Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// Seed of the backoff jitter (use a random one in production, a fixed one in simulations).
    pub seed: u64,
    /// A connection that stayed up this long resets the backoff to its base.
    pub healthy_after: Duration,
    /// The `limit` of each GetChatEvents request.
    pub fetch_limit: u32,
    /// How long to wait before fetching again when the server claims a gap cannot be filled yet.
    pub gap_retry_delay: Duration,
    /// After this many fruitless fetches in a row a gap is reported as [`Output::Skipped`].
    pub max_gap_stalls: u32,
    /// See [`UnknownChatPolicy`].
    pub unknown_chats: UnknownChatPolicy,
    /// Cursors `(chat_id, seq)` the application persisted: delivery resumes after them.
    pub initial_cursors: Vec<(u64, u64)>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            backoff: BackoffConfig::default(),
            seed: 0,
            healthy_after: Duration::from_secs(10),
            fetch_limit: 100,
            gap_retry_delay: Duration::from_millis(500),
            max_gap_stalls: 5,
            unknown_chats: UnknownChatPolicy::default(),
            initial_cursors: Vec::new(),
        }
    }
}

/// Something the driver must do, or deliver to the application.
#[derive(Debug, Clone, PartialEq)]
// Deliver is by far the most frequent variant: boxing it would cost an allocation per event to
// shrink the rare ones.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// Dial now. `addresses` are the ones a GoAway asked for, best first; empty means "the
    /// configured servers".
    Connect {
        /// Preferred `host:port` addresses.
        addresses: Vec<String>,
    },
    /// Close the current connection (the resume failed, or the session was revoked); then
    /// report [`Session::handle_disconnected`].
    Close,
    /// The server is going away (GoAway, protocol.md 3.6): stop using the current connection
    /// and report [`Session::handle_disconnected`] at once, but do not close it: the requests in
    /// flight on it still get their answers, and the server closes it once they are answered.
    /// Closing it here would lose those answers.
    Retire,
    /// Send this Sync (a page of the resume) with this request id.
    Sync {
        /// The id to send and to report the answer with.
        request_id: u64,
        /// The request.
        sync: pb::Sync,
    },
    /// Send `GetChatEvents{chat_id, after_seq, limit}` with this request id.
    Fetch {
        /// The id to send and to report the answer with.
        request_id: u64,
        /// The chat.
        chat_id: u64,
        /// Events above this seq.
        after_seq: u64,
        /// Page size.
        limit: u32,
    },
    /// Hand this event to the application. Chat events come exactly once and in order.
    Deliver(pb::Event),
    /// The application will never see `from_seq..=to_seq` of this chat: the server refused to
    /// return them (they are not readable for this user, or fetching failed permanently).
    Skipped {
        /// The chat.
        chat_id: u64,
        /// First missing seq.
        from_seq: u64,
        /// Last missing seq.
        to_seq: u64,
    },
    /// Since the last (re)connect every chat has been delivered up to its head.
    CaughtUp,
}

/// Where the session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The driver is dialing and authenticating.
    Connecting,
    /// Connected; the Sync answer is outstanding.
    Syncing {
        /// The Sync request id.
        request_id: u64,
    },
    /// Connected and synced.
    Live,
    /// Disconnected; [`Output::Connect`] comes at this time.
    Waiting {
        /// When to dial.
        until: Instant,
    },
    /// Finished (session revoked, or stopped by the application): no more reconnects.
    Stopped,
}

/// The sans-IO client session. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    phase: Phase,
    chats: ChatTracker,
    backoff: Backoff,
    ids: RequestIds,
    out: VecDeque<Output>,
    connected_at: Option<Instant>,
    /// Set by GoAway: where and no earlier than when to reconnect.
    go_away: Option<(Vec<String>, Duration)>,
    caught_up_reported: bool,
    /// Where the outstanding Sync page starts (its `after_chat_id`).
    sync_after: u64,
}

/// Most cursors one Sync carries: 8,192 of at most 24 bytes each stay well within a request
/// frame. A client that knows more chats syncs them in parts (protocol.md 7.3, "Pages").
pub const MAX_SYNC_CURSORS: usize = 8192;

/// The first page of a Sync for `cursors` `(chat_id, seq)` given in any order (a later one of
/// the same chat wins, as in [`SessionConfig::initial_cursors`]): what a client sends before
/// its session exists, on its first connection.
pub fn first_sync_page(cursors: &[(u64, u64)]) -> pb::Sync {
    let ascending: std::collections::BTreeMap<u64, u64> = cursors.iter().copied().collect();
    chats::sync_page(
        ascending
            .into_iter()
            .map(|(chat_id, seq)| pb::ChatCursor { chat_id, seq }),
        0,
        MAX_SYNC_CURSORS,
    )
}

impl Session {
    /// A session in [`Phase::Connecting`]: the driver is expected to be dialing already.
    pub fn new(config: SessionConfig) -> Self {
        Self::with_request_ids(config, RequestIds::new())
    }

    /// Like [`new`](Self::new), drawing request ids from `ids`: a driver that replaces its
    /// session (e.g. after a logout) keeps one id sequence, so a late answer to the old session
    /// can never be taken for an answer to the new one.
    pub fn with_request_ids(config: SessionConfig, ids: RequestIds) -> Self {
        let chats = ChatTracker::new(
            FetchPolicy {
                limit: config.fetch_limit.max(1),
                retry_delay: config.gap_retry_delay,
                max_stalls: config.max_gap_stalls.max(1),
                unknown_chats: config.unknown_chats,
            },
            config.initial_cursors.iter().copied(),
        );
        Self {
            backoff: Backoff::new(config.backoff, config.seed),
            config,
            phase: Phase::Connecting,
            chats,
            ids,
            out: VecDeque::new(),
            connected_at: None,
            go_away: None,
            caught_up_reported: false,
            sync_after: 0,
        }
    }

    /// The request id allocator; give clones to whatever else sends requests, so ids stay unique.
    pub fn request_ids(&self) -> &RequestIds {
        &self.ids
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True once the session will not reconnect any more.
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// The cursor of every chat, for the application to persist and pass back as
    /// [`SessionConfig::initial_cursors`].
    pub fn cursors(&self) -> Vec<pb::ChatCursor> {
        self.chats.cursors()
    }

    /// The highest seq delivered for `chat_id`, if the chat is known.
    pub fn cursor(&self, chat_id: u64) -> Option<u64> {
        self.chats.cursor(chat_id)
    }

    /// The next thing to do, if any. Drain it after every `handle_*` call.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reconnect = match self.phase {
            Phase::Waiting { until } => Some(until),
            _ => None,
        };
        let retry = match self.phase {
            Phase::Syncing { .. } | Phase::Live => self.chats.next_retry(),
            _ => None,
        };
        match (reconnect, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: dial when the backoff elapsed, retry gap fetches that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Waiting { until } if until <= now => {
                self.phase = Phase::Connecting;
                let addresses = self
                    .go_away
                    .take()
                    .map(|(addresses, _)| addresses)
                    .unwrap_or_default();
                self.out.push_back(Output::Connect { addresses });
            }
            Phase::Syncing { .. } | Phase::Live => {
                self.chats.on_timeout(now, &self.ids, &mut self.out);
                self.check_caught_up();
            }
            _ => {}
        }
    }

    /// The driver connected and authenticated, and the event stream is open.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.phase == Phase::Stopped {
            return;
        }
        let request_id = self.ids.next_id();
        self.start_sync(request_id, now);
        self.out.push_back(Output::Sync {
            request_id,
            sync: self.sync_request(),
        });
    }

    /// Like [`handle_connected`](Self::handle_connected), for a driver that already sent the
    /// Sync, as `request_id` with the request of [`sync_request`](Self::sync_request), together
    /// with its authentication (in 0-RTT data, protocol.md 2.5): its answer comes to
    /// [`handle_sync_result`](Self::handle_sync_result) as usual.
    pub fn handle_connected_synced(&mut self, request_id: u64, now: Instant) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.start_sync(request_id, now);
    }

    fn start_sync(&mut self, request_id: u64, now: Instant) {
        self.phase = Phase::Syncing { request_id };
        self.sync_after = 0;
        self.connected_at = Some(now);
        self.caught_up_reported = false;
    }

    /// The first page of the next resume's Sync: the session's cursors from the lowest chat
    /// id, at most [`MAX_SYNC_CURSORS`].
    pub fn sync_request(&self) -> pb::Sync {
        self.chats.sync_request(0, MAX_SYNC_CURSORS)
    }

    /// Dialing, Hello or authentication failed: wait, then [`Output::Connect`] again.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.connected_at = None;
        self.schedule_reconnect(now);
    }

    /// A server refused the connection at a connection limit (`SERVER_BUSY`): like
    /// [`handle_connect_failed`](Self::handle_connect_failed), but the wait is at least
    /// [`SERVER_BUSY_FLOOR`] (protocol.md 3.7), so that a server shedding load is not hit again
    /// by the same clients within a few hundred milliseconds.
    pub fn handle_server_busy(&mut self, now: Instant) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.connected_at = None;
        self.schedule_reconnect_after(now, SERVER_BUSY_FLOOR);
    }

    /// The connection was lost (or closed after [`Output::Close`]).
    pub fn handle_disconnected(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Stopped | Phase::Waiting { .. }) {
            return;
        }
        if let Some(at) = self.connected_at.take()
            && now.saturating_duration_since(at) >= self.config.healthy_after
        {
            self.backoff.reset();
        }
        self.chats.on_disconnect();
        self.schedule_reconnect(now);
    }

    /// The server closed the connection with `RESYNC` (it dropped live events because the
    /// client read too slowly): reconnect at once and catch up. After a short-lived connection
    /// the usual backoff applies instead, so a client that cannot keep up does not reconnect in
    /// a tight loop.
    pub fn handle_resync(&mut self, now: Instant) {
        let healthy = self
            .connected_at
            .is_some_and(|at| now.saturating_duration_since(at) >= self.config.healthy_after);
        self.handle_disconnected(now);
        if healthy && matches!(self.phase, Phase::Waiting { .. }) {
            self.phase = Phase::Waiting { until: now };
        }
    }

    /// The application gives up: no more reconnects.
    pub fn stop(&mut self) {
        self.phase = Phase::Stopped;
    }

    /// One frame from the event stream.
    pub fn handle_event(&mut self, event: pb::Event, now: Instant) {
        let _ = now;
        if self.phase == Phase::Stopped {
            return;
        }
        match event.kind {
            Some(pb::event::Kind::Chat(ev)) => {
                self.chats
                    .on_live(ev, self.link(), &self.ids, &mut self.out);
                self.check_caught_up();
            }
            Some(pb::event::Kind::GoAway(ref go_away)) => {
                let delay = Duration::from_millis(u64::from(go_away.reconnect_after_ms));
                self.go_away = Some((go_away.addresses.clone(), delay));
                self.out.push_back(Output::Deliver(event));
                self.out.push_back(Output::Retire);
            }
            Some(pb::event::Kind::SessionRevoked(_)) => {
                self.out.push_back(Output::Deliver(event));
                self.out.push_back(Output::Close);
                self.phase = Phase::Stopped;
            }
            Some(_) => self.out.push_back(Output::Deliver(event)),
            // An event kind this build does not know (a newer server): nothing to deliver.
            None => {}
        }
    }

    /// The answer to the Sync request `request_id`.
    pub fn handle_sync_result(&mut self, request_id: u64, result: pb::SyncResult, now: Instant) {
        let _ = now;
        if self.phase != (Phase::Syncing { request_id }) {
            return;
        }
        let next = result.next_after_chat_id;
        // A next page that would not move forward (a broken server) ends the resume here
        // rather than asking for the same page forever.
        if next > self.sync_after {
            self.chats
                .on_heads(&result.heads, false, &self.ids, &mut self.out);
            let request_id = self.ids.next_id();
            self.phase = Phase::Syncing { request_id };
            self.sync_after = next;
            self.out.push_back(Output::Sync {
                request_id,
                sync: self.chats.sync_request(next, MAX_SYNC_CURSORS),
            });
            return;
        }
        self.phase = Phase::Live;
        self.chats
            .on_heads(&result.heads, true, &self.ids, &mut self.out);
        self.check_caught_up();
    }

    /// The Sync request `request_id` failed: without it the session cannot resume on this
    /// connection, so it asks for the connection to be closed and starts over.
    pub fn handle_sync_failed(&mut self, request_id: u64, now: Instant) {
        let _ = now;
        if self.phase != (Phase::Syncing { request_id }) {
            return;
        }
        self.out.push_back(Output::Close);
    }

    /// The answer to the fetch `request_id` for `chat_id`.
    pub fn handle_fetch_result(
        &mut self,
        request_id: u64,
        chat_id: u64,
        result: pb::ChatEventList,
        now: Instant,
    ) {
        if !matches!(self.phase, Phase::Syncing { .. } | Phase::Live) {
            return;
        }
        self.chats
            .on_fetch_result(chat_id, request_id, result, now, &self.ids, &mut self.out);
        self.check_caught_up();
    }

    /// The fetch `request_id` for `chat_id` failed. `retry_after: Some(d)` retries it after `d`
    /// (a retryable error); `None` gives the gap up and reports it as [`Output::Skipped`].
    /// A fetch lost with the connection needs no report: the resume after the reconnect redoes it.
    pub fn handle_fetch_failed(
        &mut self,
        request_id: u64,
        chat_id: u64,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        if !matches!(self.phase, Phase::Syncing { .. } | Phase::Live) {
            return;
        }
        self.chats
            .on_fetch_failed(chat_id, request_id, retry_after, now, &mut self.out);
        self.check_caught_up();
    }

    fn link(&self) -> Link {
        match self.phase {
            Phase::Live => Link::Live,
            Phase::Syncing { .. } => Link::Resuming,
            _ => Link::Down,
        }
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        self.schedule_reconnect_after(now, Duration::ZERO);
    }

    /// Waits `floor` plus the backoff's jittered delay (and a GoAway's delay, if one came).
    fn schedule_reconnect_after(&mut self, now: Instant, floor: Duration) {
        let mut delay = floor + self.backoff.next_delay();
        if let Some((_, after)) = &self.go_away {
            // The server asked for at least this long; the jitter on top keeps clients apart.
            delay += *after;
        }
        self.phase = Phase::Waiting { until: now + delay };
    }

    fn check_caught_up(&mut self) {
        if self.phase == Phase::Live && !self.caught_up_reported && self.chats.all_caught_up() {
            self.caught_up_reported = true;
            self.out.push_back(Output::CaughtUp);
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod sync_pages_tests;
