//! The group call transitions: joining, the limit, leaving and joining again, signaling
//! routes, disconnection, and the per-user index shared with private calls.

use chatproto::pb::CallEndReason as Reason;

use super::group::{GroupEnd, GroupError, MAX_PARTICIPANTS, Route};
use super::machine::{CallBook, CallError, Device, ENDED_KEPT_MS};

const CHAT: u64 = 700;
const PRIVATE: u64 = 701;
const T0: i64 = 1_000;

fn dev(user_id: u64) -> Device {
    Device {
        user_id,
        conn_id: user_id * 10,
    }
}

#[test]
fn the_first_join_starts_it_and_each_join_gets_a_new_device_id() {
    let mut book = CallBook::default();
    let first = book.join_group(CHAT, dev(1), true, 50, T0).expect("start");
    assert_eq!((first.id, first.started_by, first.video), (50, 1, true));
    assert_eq!(first.participants[0].device_id, 1);
    // The chat's live call is joined, whatever id and kind the joiner proposed.
    let second = book
        .join_group(CHAT, dev(2), false, 51, T0 + 1)
        .expect("join");
    assert_eq!((second.id, second.video, second.version), (50, true, 2));
    assert_eq!(second.to_pb(Some(dev(2))).device_id, 2);
    assert_eq!(second.to_pb(None).device_id, 0);
    // Leaving and joining again: a new device id, at the end of the list.
    assert!(book.leave_group(50, 1, T0 + 2).expect("leave").is_some());
    assert_eq!(book.leave_group(50, 1, T0 + 3), Ok(None), "left already");
    let back = book
        .join_group(CHAT, dev(1), false, 52, T0 + 4)
        .expect("rejoin");
    let ids: Vec<(u64, u64)> = back
        .participants
        .iter()
        .map(|p| (p.device.user_id, p.device_id))
        .collect();
    assert_eq!(ids, [(2, 2), (1, 3)]);
}

#[test]
fn at_most_eight_one_device_per_user_and_a_user_in_one_call_at_a_time() {
    let mut book = CallBook::default();
    for user in 1..=MAX_PARTICIPANTS as u64 {
        book.join_group(CHAT, dev(user), false, 60, T0)
            .expect("join");
    }
    assert_eq!(
        book.join_group(CHAT, dev(9), false, 61, T0),
        Err(GroupError::Full)
    );
    let other_device = Device {
        user_id: 1,
        conn_id: 99,
    };
    assert_eq!(
        book.join_group(CHAT, other_device, false, 61, T0),
        Err(GroupError::InCall)
    );
    // In a group call: busy for a private call, and cannot start one.
    let busy = book
        .start(70, PRIVATE, dev(9), 1, false, T0, 30_000)
        .expect("busy call");
    assert!(!busy.notify);
    assert_eq!(
        book.start(71, PRIVATE, dev(2), 9, false, T0, 30_000),
        Err(CallError::CallerInCall)
    );
    // In a private call: cannot join a group call. Ids are not shared between the kinds.
    book.start(72, PRIVATE, dev(9), 10, false, T0, 30_000)
        .expect("ringing");
    assert_eq!(
        book.join_group(CHAT + 1, dev(10), false, 80, T0),
        Err(GroupError::InCall)
    );
    assert_eq!(
        book.join_group(CHAT + 1, dev(11), false, 72, T0),
        Err(GroupError::IdTaken)
    );
}

#[test]
fn signals_go_between_participant_devices_only() {
    let mut book = CallBook::default();
    book.join_group(CHAT, dev(1), false, 90, T0).expect("start");
    book.join_group(CHAT, dev(2), false, 91, T0).expect("join");
    let Route { from, to } = book.group_route(90, dev(2), 1).expect("route");
    assert_eq!((from.device_id, to.device), (2, dev(1)));
    assert_eq!(
        book.group_route(90, dev(2), 2),
        Err(GroupError::NoSuchDevice)
    );
    assert_eq!(
        book.group_route(90, dev(2), 7),
        Err(GroupError::NoSuchDevice)
    );
    let other_device = Device {
        user_id: 2,
        conn_id: 98,
    };
    assert_eq!(
        book.group_route(90, other_device, 1),
        Err(GroupError::NotTakingPart)
    );
    assert_eq!(book.group_route(91, dev(2), 1), Err(GroupError::NotFound));
}

#[test]
fn the_last_to_leave_ends_it_and_a_closed_connection_leaves() {
    let mut book = CallBook::default();
    book.join_group(CHAT, dev(1), false, 40, T0).expect("start");
    book.join_group(CHAT, dev(2), false, 41, T0).expect("join");
    // Another connection of user 2 closing changes nothing.
    let other = Device {
        user_id: 2,
        conn_id: 97,
    };
    assert!(book.group_disconnected(other, T0 + 1).is_none());
    let left = book.group_disconnected(dev(2), T0 + 2).expect("left");
    assert!(left.ended.is_none());
    let ended = book
        .leave_group(40, 1, T0 + 10)
        .expect("leave")
        .expect("changed");
    assert_eq!(
        ended.ended,
        Some(GroupEnd {
            reason: Reason::HungUp,
            at_ms: T0 + 10
        })
    );
    assert_eq!(ended.last_left, 1);
    let record = ended.ended_event().expect("recorded");
    assert_eq!(
        (record.group, record.duration_ms, record.caller_id),
        (true, 10, 1)
    );
    assert!(book.group_of_chat(CHAT).is_none());
    // A new join starts a new call; the ended one is kept, then forgotten.
    let next = book
        .join_group(CHAT, dev(1), false, 42, T0 + 11)
        .expect("new");
    assert_eq!(next.id, 42);
    assert!(book.group(40).is_some());
    assert_eq!(book.next_deadline(), Some(T0 + 10 + ENDED_KEPT_MS));
    book.expire(T0 + 10 + ENDED_KEPT_MS);
    assert!(book.group(40).is_none());
    // The last one's connection closing ends it DISCONNECTED.
    let gone = book.group_disconnected(dev(1), T0 + 20).expect("left");
    assert_eq!(
        gone.ended,
        Some(GroupEnd {
            reason: Reason::Disconnected,
            at_ms: T0 + 20
        })
    );
}

#[test]
fn a_gone_node_ends_what_its_connections_took_part_in_and_the_book_round_trips() {
    let here = |user_id: u64| Device {
        user_id,
        conn_id: (5 << 32) | user_id,
    };
    let there = |user_id: u64| Device {
        user_id,
        conn_id: (6 << 32) | user_id,
    };
    let mut book = CallBook::default();
    // A group call with a device on each node, a private call ringing from the gone node, and
    // one active between the two nodes.
    book.join_group(CHAT, there(1), false, 10, T0)
        .expect("start");
    book.join_group(CHAT, here(2), false, 11, T0).expect("join");
    book.start(20, PRIVATE, there(3), 4, false, T0, 30_000)
        .expect("ringing");
    book.start(21, PRIVATE + 1, here(5), 6, false, T0, 30_000)
        .expect("ringing");
    book.accept(21, there(6), T0 + 1).expect("active");
    assert_eq!(book.nodes_in_use(), [5, 6]);
    let copy = CallBook::from_bytes(&book.to_bytes()).expect("decode");
    assert_eq!(copy, book);
    assert_eq!(copy.to_bytes(), book.to_bytes());

    let gone = book.node_gone(6, T0 + 2);
    let mut ended: Vec<u64> = gone.calls.iter().map(|t| t.call.id).collect();
    ended.sort_unstable();
    assert_eq!(ended, [20, 21]);
    assert_eq!(gone.groups.len(), 1);
    let left: Vec<u64> = gone.groups[0]
        .participants
        .iter()
        .map(|p| p.device.user_id)
        .collect();
    assert_eq!(left, [2], "the call goes on without the gone node's device");
    assert_eq!(book.nodes_in_use(), [5]);
    assert!(book.node_gone(6, T0 + 3).calls.is_empty(), "nothing twice");
}

#[test]
fn a_refused_join_that_started_the_call_is_taken_back_without_a_trace() {
    let mut book = CallBook::default();
    let started = book.join_group(CHAT, dev(1), true, 80, T0).expect("start");
    // Not by another device, and not once something else happened to the call.
    assert!(!book.withdraw_group(80, dev(2)));
    book.join_group(CHAT, dev(2), false, 81, T0 + 1)
        .expect("join");
    assert!(!book.withdraw_group(80, dev(1)), "another joined since");
    assert!(book.leave_group(80, 2, T0 + 2).expect("leave").is_some());
    assert!(!book.withdraw_group(80, dev(1)), "the leave changed it too");

    // The start alone: gone, the chat and the user free, nothing ended to record.
    let mut book = CallBook::default();
    book.join_group(CHAT, dev(1), true, started.id, T0)
        .expect("start");
    assert!(book.withdraw_group(started.id, dev(1)));
    assert!(book.group(started.id).is_none());
    assert!(book.group_of_chat(CHAT).is_none());
    assert!(!book.in_call.contains_key(&1));
    let again = book
        .join_group(CHAT, dev(1), false, 82, T0 + 3)
        .expect("a new call");
    assert_eq!((again.id, again.version), (82, 1));
}
