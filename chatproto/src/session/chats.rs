//! Per-chat ordering: cursors, duplicate suppression, the reorder buffer and gap filling.
//!
//! Every chat event has a `(chat_id, seq)` and a chat's seqs are gap-free. For each chat the
//! tracker keeps the highest seq handed to the application (the cursor), a buffer of events that
//! arrived ahead of a gap, and the highest seq known to exist (the target). Whenever the target is
//! ahead of the cursor and no fetch is running, it asks for `GetChatEvents{after_seq: cursor}`.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::{Output, UnknownChatPolicy};
use crate::pb;

/// Where a chat's gap fetch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchState {
    Idle,
    InFlight { request_id: u64 },
    RetryAt(Instant),
}

#[derive(Debug)]
struct ChatState {
    /// The highest seq delivered. `None` while the chat was only seen during a resume, before the
    /// Sync answer said whether to backfill it.
    cursor: Option<u64>,
    /// Events above `cursor + 1`, waiting for the gap below them to be filled.
    buffer: BTreeMap<u64, pb::ChatEvent>,
    /// The highest seq known to exist and be readable (never below the cursor).
    target: u64,
    fetch: FetchState,
    /// Fetches in a row that did not close a gap the buffer proves exists.
    stalls: u32,
    /// The cursor was chosen by the [`UnknownChatPolicy`], not delivered: seqs the first fetch
    /// leaves out (history from before the user joined) are not reported as skipped.
    chosen_start: bool,
}

impl ChatState {
    fn new(cursor: Option<u64>) -> Self {
        Self {
            cursor,
            buffer: BTreeMap::new(),
            target: cursor.unwrap_or(0),
            fetch: FetchState::Idle,
            stalls: 0,
            chosen_start: false,
        }
    }

    fn caught_up(&self) -> bool {
        matches!(self.cursor, Some(c) if c >= self.target)
            && self.buffer.is_empty()
            && self.fetch == FetchState::Idle
    }
}

/// Tunables of gap filling.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchPolicy {
    pub limit: u32,
    pub retry_delay: Duration,
    pub max_stalls: u32,
    pub unknown_chats: UnknownChatPolicy,
}

/// The ordering state of every chat the session knows.
#[derive(Debug)]
pub(crate) struct ChatTracker {
    // BTreeMap: deterministic iteration keeps simulations reproducible.
    chats: BTreeMap<u64, ChatState>,
    policy: FetchPolicy,
}

/// What the tracker may do right now, decided by the connection phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// No connection: buffer only.
    Down,
    /// Connected, the Sync answer is outstanding: unknown chats stay pending.
    Resuming,
    /// Connected and synced.
    Live,
}

impl ChatTracker {
    pub fn new(policy: FetchPolicy, initial: impl IntoIterator<Item = (u64, u64)>) -> Self {
        let chats = initial
            .into_iter()
            .map(|(chat_id, seq)| (chat_id, ChatState::new(Some(seq))))
            .collect();
        Self { chats, policy }
    }

    /// The cursors to report in Sync: every chat with an established cursor.
    pub fn cursors(&self) -> Vec<pb::ChatCursor> {
        self.chats
            .iter()
            .filter_map(|(&chat_id, st)| st.cursor.map(|seq| pb::ChatCursor { chat_id, seq }))
            .collect()
    }

    /// The Sync of the chats above `after`: the cursors of the lowest `max` of them by chat id
    /// (see [`sync_page`]).
    pub fn sync_request(&self, after: u64, max: usize) -> pb::Sync {
        use std::ops::Bound;
        let above = self
            .chats
            .range((Bound::Excluded(after), Bound::Unbounded))
            .filter_map(|(&chat_id, st)| st.cursor.map(|seq| pb::ChatCursor { chat_id, seq }));
        sync_page(above, after, max)
    }

    /// The cursor of one chat, if established.
    pub fn cursor(&self, chat_id: u64) -> Option<u64> {
        self.chats.get(&chat_id).and_then(|st| st.cursor)
    }

    /// True when every chat is delivered up to its target with nothing buffered or in flight.
    pub fn all_caught_up(&self) -> bool {
        self.chats.values().all(ChatState::caught_up)
    }

    /// The earliest fetch retry, if any.
    pub fn next_retry(&self) -> Option<Instant> {
        self.chats
            .values()
            .filter_map(|st| match st.fetch {
                FetchState::RetryAt(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// A sequenced event from the event stream.
    pub fn on_live(
        &mut self,
        ev: pb::ChatEvent,
        link: Link,
        ids: &super::RequestIds,
        out: &mut VecDeque<Output>,
    ) {
        let chat_id = ev.chat_id;
        if ev.seq == 0 {
            // seq starts at 1; a 0 is a server bug and cannot be placed in the order.
            return;
        }
        let st = self
            .chats
            .entry(chat_id)
            .or_insert_with(|| ChatState::new(None));
        if st.cursor.is_none() {
            if link == Link::Live {
                // The first event of a chat we did not know: start here, no backfill.
                st.cursor = Some(ev.seq - 1);
                st.target = st.target.max(ev.seq - 1);
            } else {
                // Wait for the Sync answer to decide where this chat starts.
                st.target = st.target.max(ev.seq);
                st.buffer.entry(ev.seq).or_insert(ev);
                return;
            }
        }
        accept(st, ev, out);
        drain(st, out);
        if link != Link::Down {
            maybe_fetch(chat_id, st, &self.policy, ids, out);
        }
    }

    /// A page of the Sync answer: raise targets, settle pending chats, start fetches. After
    /// the last page (`complete`) the chats the answer did not report settle too.
    pub fn on_heads(
        &mut self,
        heads: &[pb::ChatHead],
        complete: bool,
        ids: &super::RequestIds,
        out: &mut VecDeque<Output>,
    ) {
        for head in heads {
            let st = self
                .chats
                .entry(head.chat_id)
                .or_insert_with(|| ChatState::new(None));
            if st.cursor.is_none() {
                let start = self.policy.unknown_chats.start(head.last_seq);
                // Never past an event that is buffered but not delivered yet.
                let first_buffered = st.buffer.keys().next().map(|s| s - 1);
                st.cursor = Some(first_buffered.map_or(start, |b| b.min(start)));
                st.chosen_start = true;
            }
            st.target = st.target.max(head.last_seq);
        }
        if !complete {
            // A later page may report the other chats: only these move on now.
            for head in heads {
                if let Some(st) = self.chats.get_mut(&head.chat_id) {
                    settle(head.chat_id, st, &self.policy, ids, out);
                }
            }
            return;
        }
        // Chats seen live during the resume that Sync did not report (created after the server
        // took its snapshot): they start at their first event.
        for st in self.chats.values_mut() {
            if st.cursor.is_none() {
                let start = st.buffer.keys().next().map_or(0, |s| s - 1);
                st.cursor = Some(start);
            }
        }
        for (&chat_id, st) in &mut self.chats {
            settle(chat_id, st, &self.policy, ids, out);
        }
    }

    /// The answer to a fetch. Answers that do not match the chat's running fetch (a previous
    /// connection's) are ignored.
    pub fn on_fetch_result(
        &mut self,
        chat_id: u64,
        request_id: u64,
        list: pb::ChatEventList,
        now: Instant,
        ids: &super::RequestIds,
        out: &mut VecDeque<Output>,
    ) {
        let Some(st) = self.chats.get_mut(&chat_id) else {
            return;
        };
        if st.fetch != (FetchState::InFlight { request_id }) {
            return;
        }
        st.fetch = FetchState::Idle;
        let Some(before) = st.cursor else {
            return;
        };
        for ev in list.events {
            if ev.chat_id != chat_id || ev.seq == 0 {
                continue;
            }
            let cursor = st.cursor.unwrap_or(before);
            if ev.seq > cursor + 1 {
                // The server answers contiguously above after_seq, so the missing seqs are ones
                // this user may not read (e.g. from before joining). Say so, except for the start
                // of a chat's history.
                skip_through(chat_id, st, ev.seq - 1, cursor > 0 && !st.chosen_start, out);
            }
            accept(st, ev, out);
            drain(st, out);
        }
        st.chosen_start = false;
        let after = st.cursor.unwrap_or(before);
        st.target = st.target.max(after);
        let progressed = after > before;
        if progressed {
            st.stalls = 0;
        }
        if list.more {
            if !progressed {
                st.stalls += 1;
            }
        } else if st.buffer.is_empty() {
            // The server has nothing beyond what we hold: a head that promised more was stale or
            // counted events we may not read.
            st.target = after;
        } else if !progressed {
            st.stalls += 1;
        }
        if st.stalls == 0 {
            maybe_fetch(chat_id, st, &self.policy, ids, out);
        } else if st.stalls >= self.policy.max_stalls {
            give_up(chat_id, st, out);
        } else {
            st.fetch = FetchState::RetryAt(now + self.policy.retry_delay);
        }
    }

    /// A fetch failed. `retry_after: None` means it will never succeed: the gap is skipped.
    pub fn on_fetch_failed(
        &mut self,
        chat_id: u64,
        request_id: u64,
        retry_after: Option<Duration>,
        now: Instant,
        out: &mut VecDeque<Output>,
    ) {
        let Some(st) = self.chats.get_mut(&chat_id) else {
            return;
        };
        if st.fetch != (FetchState::InFlight { request_id }) {
            return;
        }
        match retry_after {
            Some(delay) => st.fetch = FetchState::RetryAt(now + delay),
            None => {
                st.fetch = FetchState::Idle;
                give_up(chat_id, st, out);
            }
        }
    }

    /// Fires due fetch retries.
    pub fn on_timeout(
        &mut self,
        now: Instant,
        ids: &super::RequestIds,
        out: &mut VecDeque<Output>,
    ) {
        for (&chat_id, st) in &mut self.chats {
            if let FetchState::RetryAt(at) = st.fetch
                && at <= now
            {
                st.fetch = FetchState::Idle;
                maybe_fetch(chat_id, st, &self.policy, ids, out);
            }
        }
    }

    /// The connection is gone: running fetches will never be answered.
    pub fn on_disconnect(&mut self) {
        for st in self.chats.values_mut() {
            st.fetch = FetchState::Idle;
            st.stalls = 0;
        }
    }
}

/// Places one event whose chat has a cursor: deliver, buffer, or drop as a duplicate.
fn accept(st: &mut ChatState, ev: pb::ChatEvent, out: &mut VecDeque<Output>) {
    let Some(cursor) = st.cursor else {
        return;
    };
    if ev.seq <= cursor {
        return;
    }
    st.target = st.target.max(ev.seq);
    if ev.seq == cursor + 1 {
        st.cursor = Some(ev.seq);
        st.buffer.remove(&ev.seq);
        deliver(ev, out);
    } else {
        st.buffer.entry(ev.seq).or_insert(ev);
    }
}

/// Releases buffered events that have become contiguous with the cursor.
fn drain(st: &mut ChatState, out: &mut VecDeque<Output>) {
    let Some(mut cursor) = st.cursor else {
        return;
    };
    while let Some(entry) = st.buffer.first_entry() {
        let seq = *entry.key();
        if seq <= cursor {
            entry.remove();
        } else if seq == cursor + 1 {
            cursor = seq;
            deliver(entry.remove(), out);
        } else {
            break;
        }
    }
    st.cursor = Some(cursor);
}

/// The Sync of the chats above `after`, from `ascending` cursors (by chat id): the lowest `max`
/// of them, the range bounded by the last of those when more remain (protocol.md 7.3, "Pages").
pub(super) fn sync_page(
    ascending: impl IntoIterator<Item = pb::ChatCursor>,
    after: u64,
    max: usize,
) -> pb::Sync {
    let mut cursors: Vec<pb::ChatCursor> = Vec::new();
    let mut through_chat_id = 0;
    for cursor in ascending.into_iter().filter(|c| c.chat_id > after) {
        if cursors.len() == max {
            through_chat_id = cursors.last().map_or(0, |c| c.chat_id);
            break;
        }
        cursors.push(cursor);
    }
    pb::Sync {
        cursors,
        after_chat_id: after,
        through_chat_id,
    }
}

/// Delivers what a chat has buffered in order and fetches up to its target.
fn settle(
    chat_id: u64,
    st: &mut ChatState,
    policy: &FetchPolicy,
    ids: &super::RequestIds,
    out: &mut VecDeque<Output>,
) {
    drain(st, out);
    if let Some(c) = st.cursor {
        st.target = st.target.max(c);
    }
    maybe_fetch(chat_id, st, policy, ids, out);
}

/// Starts a fetch when the chat is behind its target and none is running.
fn maybe_fetch(
    chat_id: u64,
    st: &mut ChatState,
    policy: &FetchPolicy,
    ids: &super::RequestIds,
    out: &mut VecDeque<Output>,
) {
    let Some(cursor) = st.cursor else {
        return;
    };
    if st.fetch != FetchState::Idle || cursor >= st.target {
        return;
    }
    let request_id = ids.next_id();
    st.fetch = FetchState::InFlight { request_id };
    out.push_back(Output::Fetch {
        request_id,
        chat_id,
        after_seq: cursor,
        limit: policy.limit,
    });
}

/// Abandons every gap of the chat: buffered events are delivered and the holes between them are
/// reported as skipped.
fn give_up(chat_id: u64, st: &mut ChatState, out: &mut VecDeque<Output>) {
    st.stalls = 0;
    st.fetch = FetchState::Idle;
    if let Some(&last) = st.buffer.keys().next_back() {
        skip_through(chat_id, st, last, true, out);
    }
    // Whatever else the head promised is unreachable for now; the next Sync raises it again.
    st.target = st.cursor.unwrap_or(0);
}

/// Moves the cursor up to `to`, delivering buffered events on the way and reporting each hole
/// (except the first one when `report_first` is false).
fn skip_through(
    chat_id: u64,
    st: &mut ChatState,
    to: u64,
    report_first: bool,
    out: &mut VecDeque<Output>,
) {
    let mut cursor = st.cursor.unwrap_or(0);
    let mut report = report_first;
    while cursor < to {
        let next = st.buffer.first_key_value().map(|(&s, _)| s);
        match next {
            Some(seq) if seq <= to => {
                if seq > cursor + 1 && report {
                    out.push_back(Output::Skipped {
                        chat_id,
                        from_seq: cursor + 1,
                        to_seq: seq - 1,
                    });
                }
                if let Some(ev) = st.buffer.remove(&seq)
                    && seq > cursor
                {
                    cursor = seq;
                    deliver(ev, out);
                }
            }
            _ => {
                if report {
                    out.push_back(Output::Skipped {
                        chat_id,
                        from_seq: cursor + 1,
                        to_seq: to,
                    });
                }
                cursor = to;
            }
        }
        report = true;
    }
    st.cursor = Some(cursor);
    st.target = st.target.max(cursor);
}

fn deliver(ev: pb::ChatEvent, out: &mut VecDeque<Output>) {
    out.push_back(Output::Deliver(pb::Event {
        kind: Some(pb::event::Kind::Chat(ev)),
    }));
}
