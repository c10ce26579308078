//! Fuzzes the SDK's handling of what a server sends: event-stream frames, Sync answers and
//! GetChatEvents pages, decoded from arbitrary bytes and fed to the sans-IO [`Session`] in an
//! arbitrary order, interleaved with connects, disconnects, resyncs and timeouts; every event it
//! delivers also goes through `ClientEvent::from_pb`, as the client does.
//!
//! Besides "never panics", it checks the session's promise to the application: per chat, the
//! chat events it delivers and the ranges it reports skipped only move forward (each seq at most
//! once, in order), whatever the server sends; and a skipped range is never empty.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::session::{Output, Session, SessionConfig, UnknownChatPolicy};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// One thing the driver reports to the session. Message bytes are decoded with prost, as the
/// client decodes frames; undecodable ones are skipped (the frame decoder target covers them).
#[derive(Debug, Arbitrary)]
enum Action {
    Connected,
    ConnectFailed,
    Disconnected,
    Resync,
    /// Time passes, in milliseconds.
    Elapse(u16),
    /// A frame of the event stream.
    Event(Vec<u8>),
    /// The answer to the outstanding Sync (or to a stale id when `stale`).
    SyncResult {
        stale: bool,
        bytes: Vec<u8>,
    },
    SyncFailed,
    /// The answer to one of the outstanding fetches (chosen by index).
    FetchResult {
        which: u8,
        bytes: Vec<u8>,
    },
    FetchFailed {
        which: u8,
        retry_ms: Option<u16>,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    /// 0 = backfill, 1 = start at head, else recent with this many events.
    policy: u8,
    fetch_limit: u8,
    initial_cursors: Vec<(u8, u16)>,
    actions: Vec<Action>,
}

/// What the driver knows from the session's outputs, and what was delivered.
#[derive(Default)]
struct Driver {
    sync_id: Option<u64>,
    fetches: Vec<(u64, u64)>,
    /// Per chat: the highest seq delivered or reported skipped.
    done: HashMap<u64, u64>,
}

impl Driver {
    fn advance(&mut self, chat_id: u64, from: u64, to: u64) {
        assert!(from <= to, "empty range {from}..={to} in chat {chat_id}");
        if let Some(&done) = self.done.get(&chat_id) {
            assert!(from > done, "chat {chat_id}: {from}..={to} after {done}");
        }
        self.done.insert(chat_id, to);
    }

    fn drain(&mut self, session: &mut Session) {
        while let Some(output) = session.poll_output() {
            match output {
                Output::Sync { request_id, .. } => self.sync_id = Some(request_id),
                Output::Fetch {
                    request_id,
                    chat_id,
                    ..
                } => self.fetches.push((request_id, chat_id)),
                Output::Deliver(event) => {
                    if let Some(pb::event::Kind::Chat(chat)) = &event.kind {
                        self.advance(chat.chat_id, chat.seq, chat.seq);
                    }
                    let _ = ClientEvent::from_pb(event);
                }
                Output::Skipped {
                    chat_id,
                    from_seq,
                    to_seq,
                } => self.advance(chat_id, from_seq, to_seq),
                Output::Close => {
                    self.sync_id = None;
                    self.fetches.clear();
                }
                Output::Connect { .. } | Output::CaughtUp => {}
            }
        }
    }

    fn fetch(&mut self, which: u8) -> Option<(u64, u64)> {
        if self.fetches.is_empty() {
            return None;
        }
        let at = usize::from(which) % self.fetches.len();
        Some(self.fetches.swap_remove(at))
    }
}

fuzz_target!(|input: Input| {
    let unknown_chats = match input.policy {
        0 => UnknownChatPolicy::Backfill,
        1 => UnknownChatPolicy::StartAtHead,
        events => UnknownChatPolicy::Recent {
            events: u64::from(events),
        },
    };
    let config = SessionConfig {
        unknown_chats,
        fetch_limit: u32::from(input.fetch_limit),
        initial_cursors: input
            .initial_cursors
            .iter()
            .map(|&(chat, seq)| (u64::from(chat), u64::from(seq)))
            .collect(),
        ..SessionConfig::default()
    };
    let mut driver = Driver::default();
    for &(chat, seq) in &input.initial_cursors {
        // What the application persisted was delivered before.
        let done = driver.done.entry(u64::from(chat)).or_default();
        *done = (*done).max(u64::from(seq));
    }
    let mut session = Session::new(config);
    let mut now = Instant::now();
    driver.drain(&mut session);
    for action in input.actions {
        match action {
            Action::Connected => session.handle_connected(now),
            Action::ConnectFailed => session.handle_connect_failed(now),
            Action::Disconnected => {
                driver.sync_id = None;
                driver.fetches.clear();
                session.handle_disconnected(now);
            }
            Action::Resync => {
                driver.sync_id = None;
                driver.fetches.clear();
                session.handle_resync(now);
            }
            Action::Elapse(ms) => {
                now += Duration::from_millis(u64::from(ms));
                if session.poll_timeout().is_some_and(|at| at <= now) {
                    session.handle_timeout(now);
                }
            }
            Action::Event(bytes) => {
                if let Ok(event) = pb::Event::decode(bytes.as_slice()) {
                    session.handle_event(event, now);
                }
            }
            Action::SyncResult { stale, bytes } => {
                let id = driver.sync_id.map_or(0, |id| id + u64::from(stale));
                if let Ok(result) = pb::SyncResult::decode(bytes.as_slice()) {
                    session.handle_sync_result(id, result, now);
                }
            }
            Action::SyncFailed => {
                if let Some(id) = driver.sync_id {
                    session.handle_sync_failed(id, now);
                }
            }
            Action::FetchResult { which, bytes } => {
                if let (Some((id, chat)), Ok(list)) = (
                    driver.fetch(which),
                    pb::ChatEventList::decode(bytes.as_slice()),
                ) {
                    session.handle_fetch_result(id, chat, list, now);
                }
            }
            Action::FetchFailed { which, retry_ms } => {
                if let Some((id, chat)) = driver.fetch(which) {
                    let retry = retry_ms.map(|ms| Duration::from_millis(u64::from(ms)));
                    session.handle_fetch_failed(id, chat, retry, now);
                }
            }
        }
        driver.drain(&mut session);
    }
});
