//! Unit tests of the resume's Sync in pages (protocol.md 7.3, "Pages").

use super::tests::{delivered, drain, fetches, live, with_cursors};
use super::*;

fn head(chat_id: u64, last_seq: u64) -> pb::ChatHead {
    pb::ChatHead {
        chat_id,
        last_seq,
        member: true,
    }
}

fn page(heads: Vec<pb::ChatHead>, next_after_chat_id: u64) -> pb::SyncResult {
    pb::SyncResult {
        heads,
        next_after_chat_id,
        ..Default::default()
    }
}

/// The Sync outputs among `out`, with their request ids.
fn syncs(out: &[Output]) -> Vec<(u64, pb::Sync)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Sync { request_id, sync } => Some((*request_id, sync.clone())),
            _ => None,
        })
        .collect()
}

/// Each page's heads move on at once; the next page is asked for with the cursors above the
/// previous one; a chat seen live but reported only on a later page waits for that page; the
/// resume is over only after the last page.
#[test]
fn the_resume_asks_for_pages_until_the_answer_is_complete() {
    let now = Instant::now();
    let mut s = Session::new(with_cursors(&[(1, 10), (2, 5), (3, 7)]));
    s.handle_connected(now);
    let first = syncs(&drain(&mut s));
    assert_eq!(first.len(), 1);
    let (id, sync) = first[0].clone();
    assert_eq!(sync.cursors.len(), 3);
    assert_eq!((sync.after_chat_id, sync.through_chat_id), (0, 0));

    // Chat 9 is new to this client and shows up live before its page.
    s.handle_event(live(9, 4), now);
    s.handle_sync_result(id, page(vec![head(1, 12), head(2, 5)], 2), now);
    let out = drain(&mut s);
    let f = fetches(&out);
    assert_eq!(f.len(), 1, "chat 1 fetches at once: {out:?}");
    assert_eq!((f[0].1, f[0].2), (1, 10));
    assert!(delivered(&out).is_empty(), "chat 9 waits for its page");
    assert!(!out.contains(&Output::CaughtUp));
    let next = syncs(&out);
    assert_eq!(next.len(), 1);
    let (id, sync) = next[0].clone();
    assert_eq!(sync.after_chat_id, 2);
    assert_eq!(
        sync.cursors,
        [pb::ChatCursor { chat_id: 3, seq: 7 }],
        "only the cursors above the page"
    );

    s.handle_sync_result(id, page(vec![head(3, 7), head(9, 4)], 0), now);
    let out = drain(&mut s);
    assert!(syncs(&out).is_empty(), "the answer is complete");
    // Chat 9 starts at the default policy's recent past, so its live event waits behind a
    // fetch of what came before it.
    let f = fetches(&out);
    assert_eq!(f.len(), 1, "{out:?}");
    assert_eq!((f[0].1, f[0].2), (9, 0));
    s.handle_fetch_result(f[0].0, 9, super::tests::list(9, [1, 2, 3], false), now);
    let out = drain(&mut s);
    assert_eq!(delivered(&out), [(9, 1), (9, 2), (9, 3), (9, 4)]);
}

/// A session that knows more chats than one Sync carries sends the lowest ones and bounds the
/// range by the last of them; the next page carries the rest.
#[test]
fn more_cursors_than_fit_go_in_parts() {
    let now = Instant::now();
    let known: Vec<(u64, u64)> = (1..=MAX_SYNC_CURSORS as u64 + 5)
        .map(|id| (id, 1))
        .collect();
    let mut s = Session::new(with_cursors(&known));
    let first = s.sync_request();
    assert_eq!(first.cursors.len(), MAX_SYNC_CURSORS);
    assert_eq!(first.through_chat_id, MAX_SYNC_CURSORS as u64);
    s.handle_connected(now);
    let (id, sync) = syncs(&drain(&mut s))[0].clone();
    assert_eq!(sync, first);
    // The server answers the bounded range and points past it.
    let heads = (1..=MAX_SYNC_CURSORS as u64)
        .map(|id| head(id, 1))
        .collect();
    s.handle_sync_result(id, page(heads, MAX_SYNC_CURSORS as u64), now);
    let (_, rest) = syncs(&drain(&mut s))[0].clone();
    assert_eq!(rest.after_chat_id, MAX_SYNC_CURSORS as u64);
    assert_eq!(rest.through_chat_id, 0);
    let ids: Vec<u64> = rest.cursors.iter().map(|c| c.chat_id).collect();
    let want: Vec<u64> = (MAX_SYNC_CURSORS as u64 + 1..=MAX_SYNC_CURSORS as u64 + 5).collect();
    assert_eq!(ids, want);
}

/// An answer whose next page would not move forward ends the resume instead of asking for the
/// same page again and again.
#[test]
fn a_next_page_that_does_not_move_forward_ends_the_resume() {
    let now = Instant::now();
    let mut s = Session::new(with_cursors(&[(1, 3)]));
    s.handle_connected(now);
    let (id, _) = syncs(&drain(&mut s))[0].clone();
    s.handle_sync_result(id, page(vec![head(1, 3)], 0), now);
    assert_eq!(s.phase(), Phase::Live);

    s.handle_disconnected(now);
    s.handle_connected(now);
    let (id, _) = syncs(&drain(&mut s))[0].clone();
    s.handle_sync_result(id, page(vec![head(1, 3)], 5), now);
    let (id, sync) = syncs(&drain(&mut s))[0].clone();
    assert_eq!(sync.after_chat_id, 5);
    s.handle_sync_result(id, page(Vec::new(), 5), now);
    assert!(syncs(&drain(&mut s)).is_empty());
    assert_eq!(s.phase(), Phase::Live);
}
