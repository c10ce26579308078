//! Unit tests of the session core: each drives one ordering or reconnect rule by hand.

use super::*;

pub(super) fn chat_event(chat_id: u64, seq: u64) -> pb::ChatEvent {
    pb::ChatEvent {
        chat_id,
        seq,
        at_ms: seq as i64,
        actor_id: 1,
        body: None,
    }
}

pub(super) fn live(chat_id: u64, seq: u64) -> pb::Event {
    pb::Event {
        kind: Some(pb::event::Kind::Chat(chat_event(chat_id, seq))),
    }
}

pub(super) fn list(
    chat_id: u64,
    seqs: impl IntoIterator<Item = u64>,
    more: bool,
) -> pb::ChatEventList {
    pb::ChatEventList {
        events: seqs.into_iter().map(|s| chat_event(chat_id, s)).collect(),
        more,
    }
}

pub(super) fn drain(s: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

pub(super) fn delivered(out: &[Output]) -> Vec<(u64, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Deliver(pb::Event {
                kind: Some(pb::event::Kind::Chat(ev)),
            }) => Some((ev.chat_id, ev.seq)),
            _ => None,
        })
        .collect()
}

pub(super) fn fetches(out: &[Output]) -> Vec<(u64, u64, u64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Fetch {
                request_id,
                chat_id,
                after_seq,
                ..
            } => Some((*request_id, *chat_id, *after_seq)),
            _ => None,
        })
        .collect()
}

pub(super) fn sync_id(out: &[Output]) -> u64 {
    out.iter()
        .find_map(|o| match o {
            Output::Sync { request_id, .. } => Some(*request_id),
            _ => None,
        })
        .expect("a Sync output")
}

/// A session connected and synced with the given cursors, outputs drained.
fn live_session(config: SessionConfig, now: Instant) -> Session {
    let heads: Vec<pb::ChatHead> = config
        .initial_cursors
        .iter()
        .map(|&(chat_id, seq)| pb::ChatHead {
            chat_id,
            last_seq: seq,
            member: true,
        })
        .collect();
    let mut s = Session::new(config);
    s.handle_connected(now);
    let id = sync_id(&drain(&mut s));
    s.handle_sync_result(
        id,
        pb::SyncResult {
            heads,
            ..Default::default()
        },
        now,
    );
    let out = drain(&mut s);
    assert_eq!(out, vec![Output::CaughtUp]);
    s
}

pub(super) fn with_cursors(cursors: &[(u64, u64)]) -> SessionConfig {
    SessionConfig {
        initial_cursors: cursors.to_vec(),
        ..SessionConfig::default()
    }
}

#[test]
fn in_order_events_pass_and_duplicates_are_dropped() {
    let now = Instant::now();
    let mut s = live_session(with_cursors(&[(1, 0)]), now);
    for seq in [1, 2, 2, 1, 3] {
        s.handle_event(live(1, seq), now);
    }
    let out = drain(&mut s);
    assert_eq!(delivered(&out), [(1, 1), (1, 2), (1, 3)]);
    assert!(fetches(&out).is_empty());
    assert_eq!(s.cursor(1), Some(3));
}

#[test]
fn a_gap_is_fetched_and_buffered_events_follow_in_order() {
    let now = Instant::now();
    let mut s = live_session(with_cursors(&[(1, 2)]), now);
    s.handle_event(live(1, 5), now);
    s.handle_event(live(1, 6), now);
    let out = drain(&mut s);
    assert!(delivered(&out).is_empty());
    let f = fetches(&out);
    assert_eq!(f.len(), 1, "one fetch per gap, not per buffered event");
    let (req, chat, after) = f[0];
    assert_eq!((chat, after), (1, 2));
    // The answer overlaps what is buffered; nothing may come twice.
    s.handle_fetch_result(req, 1, list(1, [3, 4, 5], false), now);
    let out = drain(&mut s);
    assert_eq!(delivered(&out), [(1, 3), (1, 4), (1, 5), (1, 6)]);
    assert!(
        !out.contains(&Output::CaughtUp),
        "CaughtUp is reported once per connection"
    );
    assert_eq!(s.cursor(1), Some(6));
}

#[test]
fn the_first_event_of_an_unknown_chat_starts_it_without_backfill() {
    let now = Instant::now();
    let mut s = live_session(SessionConfig::default(), now);
    s.handle_event(live(9, 40), now);
    s.handle_event(live(9, 41), now);
    let out = drain(&mut s);
    assert_eq!(delivered(&out), [(9, 40), (9, 41)]);
    assert!(fetches(&out).is_empty());
}

#[test]
fn resume_pages_until_caught_up_while_live_events_wait() {
    let now = Instant::now();
    let mut s = Session::new(with_cursors(&[(1, 10), (2, 5)]));
    s.handle_connected(now);
    let out = drain(&mut s);
    let Some(Output::Sync { request_id, sync }) = out.first().cloned() else {
        panic!("expected Sync first, got {out:?}");
    };
    assert_eq!((sync.after_chat_id, sync.through_chat_id), (0, 0));
    assert_eq!(
        sync.cursors,
        [
            pb::ChatCursor {
                chat_id: 1,
                seq: 10
            },
            pb::ChatCursor { chat_id: 2, seq: 5 }
        ]
    );
    // A live event overtakes the Sync answer.
    s.handle_event(live(1, 16), now);
    s.handle_sync_result(
        request_id,
        pb::SyncResult {
            heads: vec![
                pb::ChatHead {
                    chat_id: 1,
                    last_seq: 15,
                    member: true,
                },
                pb::ChatHead {
                    chat_id: 2,
                    last_seq: 5,
                    member: true,
                },
            ],
            ..Default::default()
        },
        now,
    );
    let out = drain(&mut s);
    assert!(delivered(&out).is_empty());
    let f = fetches(&out);
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].1, f[0].2), (1, 10));
    s.handle_fetch_result(f[0].0, 1, list(1, [11, 12], true), now);
    let out = drain(&mut s);
    assert_eq!(delivered(&out), [(1, 11), (1, 12)]);
    let f = fetches(&out);
    assert_eq!((f[0].1, f[0].2), (1, 12), "pages on from the new cursor");
    assert!(!out.contains(&Output::CaughtUp));
    s.handle_fetch_result(f[0].0, 1, list(1, [13, 14, 15, 16], false), now);
    let out = drain(&mut s);
    assert_eq!(delivered(&out), [(1, 13), (1, 14), (1, 15), (1, 16)]);
    assert_eq!(out.last(), Some(&Output::CaughtUp));
}

#[test]
fn a_chat_first_seen_during_resume_is_backfilled_from_the_start() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default());
    s.handle_connected(now);
    let id = sync_id(&drain(&mut s));
    s.handle_event(live(7, 3), now);
    assert!(
        delivered(&drain(&mut s)).is_empty(),
        "held until the Sync answer"
    );
    s.handle_sync_result(
        id,
        pb::SyncResult {
            heads: vec![pb::ChatHead {
                chat_id: 7,
                last_seq: 3,
                member: true,
            }],
            ..Default::default()
        },
        now,
    );
    let out = drain(&mut s);
    let f = fetches(&out);
    assert_eq!((f[0].1, f[0].2), (7, 0));
    s.handle_fetch_result(f[0].0, 7, list(7, [1, 2, 3], false), now);
    assert_eq!(delivered(&drain(&mut s)), [(7, 1), (7, 2), (7, 3)]);
}

#[test]
fn start_at_head_skips_history_but_keeps_buffered_events() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig {
        unknown_chats: UnknownChatPolicy::StartAtHead,
        ..SessionConfig::default()
    });
    s.handle_connected(now);
    let id = sync_id(&drain(&mut s));
    // Seq 21 arrived live before the answer that reports head 21: it must still be delivered.
    s.handle_event(live(7, 21), now);
    s.handle_sync_result(
        id,
        pb::SyncResult {
            heads: vec![
                pb::ChatHead {
                    chat_id: 7,
                    last_seq: 21,
                    member: true,
                },
                pb::ChatHead {
                    chat_id: 8,
                    last_seq: 4,
                    member: true,
                },
            ],
            ..Default::default()
        },
        now,
    );
    let out = drain(&mut s);
    assert_eq!(delivered(&out), [(7, 21)]);
    assert!(fetches(&out).is_empty());
    assert_eq!(s.cursor(8), Some(4));
    assert!(out.contains(&Output::CaughtUp));
}

#[test]
fn answers_from_a_previous_connection_are_ignored() {
    let now = Instant::now();
    let mut s = live_session(with_cursors(&[(1, 0)]), now);
    s.handle_event(live(1, 3), now);
    let (old_req, _, _) = fetches(&drain(&mut s))[0];
    s.handle_disconnected(now);
    let Phase::Waiting { until } = s.phase() else {
        panic!("expected Waiting, got {:?}", s.phase());
    };
    s.handle_timeout(until);
    assert_eq!(
        drain(&mut s),
        [Output::Connect {
            addresses: Vec::new()
        }]
    );
    s.handle_connected(until);
    let sync = sync_id(&drain(&mut s));
    // The old fetch's answer shows up late: it must not be applied (or double-applied later).
    s.handle_fetch_result(old_req, 1, list(1, [1, 2, 3], false), until);
    assert!(delivered(&drain(&mut s)).is_empty());
    s.handle_sync_result(
        sync,
        pb::SyncResult {
            heads: vec![pb::ChatHead {
                chat_id: 1,
                last_seq: 3,
                member: true,
            }],
            ..Default::default()
        },
        until,
    );
    let f = fetches(&drain(&mut s));
    assert_eq!((f[0].1, f[0].2), (1, 0));
    s.handle_fetch_result(f[0].0, 1, list(1, [1, 2, 3], false), until);
    assert_eq!(delivered(&drain(&mut s)), [(1, 1), (1, 2), (1, 3)]);
}

#[test]
fn a_permanently_failed_fetch_reports_the_gap_and_releases_the_buffer() {
    let now = Instant::now();
    let mut s = live_session(with_cursors(&[(1, 1)]), now);
    s.handle_event(live(1, 4), now);
    s.handle_event(live(1, 5), now);
    let (req, _, _) = fetches(&drain(&mut s))[0];
    s.handle_fetch_failed(req, 1, None, now);
    let out = drain(&mut s);
    assert_eq!(
        out[0],
        Output::Skipped {
            chat_id: 1,
            from_seq: 2,
            to_seq: 3
        }
    );
    assert_eq!(delivered(&out), [(1, 4), (1, 5)]);
}

#[test]
fn a_retryable_fetch_failure_retries_after_the_delay() {
    let now = Instant::now();
    let mut s = live_session(with_cursors(&[(1, 1)]), now);
    s.handle_event(live(1, 3), now);
    let (req, _, _) = fetches(&drain(&mut s))[0];
    s.handle_fetch_failed(req, 1, Some(Duration::from_millis(300)), now);
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_millis(300)));
    s.handle_timeout(now + Duration::from_millis(299));
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(now + Duration::from_millis(300));
    let f = fetches(&drain(&mut s));
    assert_eq!((f[0].1, f[0].2), (1, 1));
    assert_ne!(f[0].0, req, "a retry is a new request");
}

#[test]
fn a_gap_the_server_cannot_fill_is_retried_then_skipped() {
    let now = Instant::now();
    let config = SessionConfig {
        max_gap_stalls: 3,
        ..with_cursors(&[(1, 1)])
    };
    let delay = config.gap_retry_delay;
    let mut s = live_session(config, now);
    s.handle_event(live(1, 4), now);
    let mut t = now;
    for attempt in 0..3 {
        let f = fetches(&drain(&mut s));
        assert_eq!(f.len(), 1, "attempt {attempt}");
        s.handle_fetch_result(f[0].0, 1, list(1, [], false), t);
        if attempt < 2 {
            assert_eq!(s.poll_timeout(), Some(t + delay));
            t += delay;
            s.handle_timeout(t);
        }
    }
    let out = drain(&mut s);
    assert_eq!(
        out[0],
        Output::Skipped {
            chat_id: 1,
            from_seq: 2,
            to_seq: 3
        }
    );
    assert_eq!(delivered(&out), [(1, 4)]);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn seqs_the_server_leaves_out_are_reported_except_at_the_start() {
    let now = Instant::now();
    let mut s = Session::new(with_cursors(&[(1, 2)]));
    s.handle_connected(now);
    let id = sync_id(&drain(&mut s));
    s.handle_sync_result(
        id,
        pb::SyncResult {
            heads: vec![
                pb::ChatHead {
                    chat_id: 1,
                    last_seq: 9,
                    member: true,
                },
                pb::ChatHead {
                    chat_id: 2,
                    last_seq: 9,
                    member: true,
                },
            ],
            ..Default::default()
        },
        now,
    );
    let out = drain(&mut s);
    for (req, chat, _) in fetches(&out) {
        // Both answers start at 8: chat 1 had a cursor (2), chat 2 is new (joined at 8).
        s.handle_fetch_result(req, chat, list(chat, [8, 9], false), now);
    }
    let out = drain(&mut s);
    let skipped: Vec<&Output> = out
        .iter()
        .filter(|o| matches!(o, Output::Skipped { .. }))
        .collect();
    assert_eq!(
        skipped,
        [&Output::Skipped {
            chat_id: 1,
            from_seq: 3,
            to_seq: 7
        }]
    );
    assert_eq!(delivered(&out), [(1, 8), (1, 9), (2, 8), (2, 9)]);
}

#[test]
fn go_away_retires_the_connection_and_reconnects_to_its_addresses_after_its_delay() {
    let now = Instant::now();
    let mut s = live_session(SessionConfig::default(), now);
    let go_away = pb::Event {
        kind: Some(pb::event::Kind::GoAway(pb::GoAway {
            reason: "draining".into(),
            addresses: vec!["b:1".into()],
            reconnect_after_ms: 1000,
        })),
    };
    s.handle_event(go_away.clone(), now);
    assert_eq!(drain(&mut s), [Output::Deliver(go_away), Output::Retire]);
    s.handle_disconnected(now);
    let Phase::Waiting { until } = s.phase() else {
        panic!("expected Waiting");
    };
    let wait = until - now;
    assert!(
        wait >= Duration::from_millis(1000) && wait <= Duration::from_millis(1200),
        "{wait:?}"
    );
    s.handle_timeout(until);
    assert_eq!(
        drain(&mut s),
        [Output::Connect {
            addresses: vec!["b:1".into()]
        }]
    );
}

#[test]
fn session_revoked_stops_for_good() {
    let now = Instant::now();
    let mut s = live_session(SessionConfig::default(), now);
    let revoked = pb::Event {
        kind: Some(pb::event::Kind::SessionRevoked(pb::SessionRevoked {
            reason: "password changed".into(),
        })),
    };
    s.handle_event(revoked.clone(), now);
    assert_eq!(drain(&mut s), [Output::Deliver(revoked), Output::Close]);
    s.handle_disconnected(now);
    assert!(s.is_stopped());
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(now + Duration::from_secs(3600));
    assert!(drain(&mut s).is_empty());
}

#[test]
fn backoff_grows_on_failures_and_resets_after_a_healthy_connection() {
    let config = SessionConfig::default();
    let healthy = config.healthy_after;
    let ceilings = config.backoff;
    let mut now = Instant::now();
    let mut s = Session::new(config);
    s.handle_connect_failed(now);
    for attempt in 0..8 {
        let Phase::Waiting { until } = s.phase() else {
            panic!("expected Waiting");
        };
        assert!(
            until - now <= ceilings.ceiling(attempt),
            "attempt {attempt}"
        );
        now = until;
        s.handle_timeout(now);
        assert!(matches!(drain(&mut s)[..], [Output::Connect { .. }]));
        s.handle_connect_failed(now);
    }
    // Up long enough to count as healthy: the next delay is back in the base window.
    let Phase::Waiting { until } = s.phase() else {
        panic!("expected Waiting");
    };
    s.handle_timeout(until);
    s.handle_connected(until);
    now = until + healthy;
    s.handle_disconnected(now);
    let Phase::Waiting { until } = s.phase() else {
        panic!("expected Waiting");
    };
    assert!(until - now <= ceilings.base);
}

#[test]
fn a_short_lived_connection_does_not_reset_the_backoff() {
    let mut now = Instant::now();
    let mut s = Session::new(SessionConfig::default());
    for _ in 0..6 {
        s.handle_connect_failed(now);
        let Phase::Waiting { until } = s.phase() else {
            panic!("expected Waiting");
        };
        now = until;
        s.handle_timeout(now);
    }
    s.handle_connected(now);
    s.handle_disconnected(now + Duration::from_millis(10));
    // Seven delays handed out; none was reset, so the ceiling is base * 2^6.
    let mut b = Backoff::new(BackoffConfig::default(), 0);
    for _ in 0..7 {
        b.next_delay();
    }
    assert_eq!(b.attempt(), 7);
    let Phase::Waiting { until } = s.phase() else {
        panic!("expected Waiting");
    };
    // Same seed, same sequence: the session's 7th delay equals a fresh backoff's 7th.
    let mut fresh = Backoff::new(BackoffConfig::default(), 0);
    let seventh = (0..7).map(|_| fresh.next_delay()).last();
    assert_eq!(Some(until - now - Duration::from_millis(10)), seventh);
}

#[test]
fn unsequenced_events_pass_through_and_unknown_kinds_are_ignored() {
    let now = Instant::now();
    let mut s = live_session(SessionConfig::default(), now);
    let typing = pb::Event {
        kind: Some(pb::event::Kind::Typing(pb::Typing {
            chat_id: 1,
            user_id: 2,
            expires_in_ms: 5000,
        })),
    };
    s.handle_event(typing.clone(), now);
    s.handle_event(typing.clone(), now);
    s.handle_event(pb::Event { kind: None }, now);
    assert_eq!(
        drain(&mut s),
        [Output::Deliver(typing.clone()), Output::Deliver(typing)]
    );
}

/// A new session synced with the given heads; returns the fetches it asked for.
fn fetches_after_sync(
    config: SessionConfig,
    heads: &[(u64, u64)],
) -> (Session, Vec<(u64, u64, u64)>) {
    let now = Instant::now();
    let mut s = Session::new(config);
    s.handle_connected(now);
    let id = sync_id(&drain(&mut s));
    let heads = heads
        .iter()
        .map(|&(chat_id, last_seq)| pb::ChatHead {
            chat_id,
            last_seq,
            member: true,
        })
        .collect();
    s.handle_sync_result(
        id,
        pb::SyncResult {
            heads,
            ..Default::default()
        },
        now,
    );
    let f = fetches(&drain(&mut s));
    (s, f)
}

#[test]
fn a_new_client_starts_each_chat_in_the_recent_past_by_default() {
    assert_eq!(
        UnknownChatPolicy::default(),
        UnknownChatPolicy::Recent {
            events: DEFAULT_RECENT_EVENTS
        }
    );
    let (mut s, f) = fetches_after_sync(SessionConfig::default(), &[(1, 1000), (2, 20)]);
    let starts: Vec<(u64, u64)> = f.iter().map(|&(_, chat, after)| (chat, after)).collect();
    assert_eq!(starts, [(1, 1000 - DEFAULT_RECENT_EVENTS), (2, 0)]);
    // The user joined chat 1 at 990: the first page starts there and nothing is "skipped".
    let now = Instant::now();
    s.handle_fetch_result(f[0].0, 1, list(1, 990..=1000, false), now);
    let out = drain(&mut s);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Skipped { .. })),
        "{out:?}"
    );
    assert_eq!(delivered(&out).first(), Some(&(1, 990)));
    // Later gaps in the same chat are reported again.
    s.handle_event(live(1, 1003), now);
    let f = fetches(&drain(&mut s));
    s.handle_fetch_result(f[0].0, 1, list(1, [1003], false), now);
    let out = drain(&mut s);
    assert!(
        out.contains(&Output::Skipped {
            chat_id: 1,
            from_seq: 1001,
            to_seq: 1002
        }),
        "{out:?}"
    );
}

#[test]
fn the_client_chooses_how_far_back() {
    for (policy, start) in [
        (UnknownChatPolicy::Backfill, 0),
        (UnknownChatPolicy::Recent { events: 10 }, 90),
        (UnknownChatPolicy::Recent { events: 500 }, 0),
        (UnknownChatPolicy::StartAtHead, 100),
    ] {
        let config = SessionConfig {
            unknown_chats: policy,
            ..SessionConfig::default()
        };
        let (s, f) = fetches_after_sync(config, &[(5, 100)]);
        if start == 100 {
            assert!(f.is_empty(), "{policy:?}: {f:?}");
            assert_eq!(s.cursor(5), Some(100));
        } else {
            assert_eq!((f[0].1, f[0].2), (5, start), "{policy:?}");
        }
    }
}

#[test]
fn a_busy_server_is_dialed_again_no_sooner_than_the_floor() {
    let config = SessionConfig::default();
    let ceilings = config.backoff;
    let mut now = Instant::now();
    let mut s = Session::new(config);
    for attempt in 0..4 {
        s.handle_server_busy(now);
        let Phase::Waiting { until } = s.phase() else {
            panic!("expected Waiting");
        };
        let waited = until - now;
        assert!(
            waited >= SERVER_BUSY_FLOOR && waited <= SERVER_BUSY_FLOOR + ceilings.ceiling(attempt),
            "attempt {attempt}: {waited:?}"
        );
        now = until;
        s.handle_timeout(now);
        assert!(matches!(drain(&mut s)[..], [Output::Connect { .. }]));
    }
    // Other failures keep the short backoff: a busy refusal is what earns the floor.
    let mut other = Session::new(SessionConfig::default());
    other.handle_connect_failed(now);
    let Phase::Waiting { until } = other.phase() else {
        panic!("expected Waiting");
    };
    assert!(until - now <= ceilings.base && ceilings.base < SERVER_BUSY_FLOOR);
}
