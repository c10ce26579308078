//! The call state machine, every state against every action, and the paths around it.

use chatproto::pb;
use chatproto::pb::CallEndReason as Reason;

use super::machine::{CallBook, CallError, Device, ENDED_KEPT_MS, Ended, Phase, Transition};

const ALICE: u64 = 1;
const BOB: u64 = 2;
const CAROL: u64 = 3;
const DAVE: u64 = 4;
const CALL: u64 = 100;
const CHAT: u64 = 500;
const T0: i64 = 1_000;
const RING_MS: i64 = 30_000;
const ANSWER_AT: i64 = T0 + 4_000;
const NOW: i64 = T0 + 9_000;

/// Alice's device that calls, and her other one.
const A1: Device = Device {
    user_id: ALICE,
    conn_id: 11,
};
const A2: Device = Device {
    user_id: ALICE,
    conn_id: 12,
};
/// Bob's device that answers, and his other one.
const B1: Device = Device {
    user_id: BOB,
    conn_id: 21,
};
const B2: Device = Device {
    user_id: BOB,
    conn_id: 22,
};
/// Carol is no user of the call.
const C1: Device = Device {
    user_id: CAROL,
    conn_id: 31,
};

#[derive(Debug, Clone, Copy)]
enum State {
    Ringing,
    Active,
    Canceled,
    HungUp,
}

fn book_in(state: State) -> CallBook {
    let mut book = CallBook::default();
    book.start(CALL, CHAT, A1, BOB, true, T0, RING_MS)
        .expect("start");
    match state {
        State::Ringing => {}
        State::Active => {
            book.accept(CALL, B1, ANSWER_AT).expect("accept");
        }
        State::Canceled => {
            book.end(CALL, ALICE, ANSWER_AT).expect("cancel");
        }
        State::HungUp => {
            book.accept(CALL, B1, ANSWER_AT).expect("accept");
            book.end(CALL, BOB, ANSWER_AT + 1_000).expect("hang up");
        }
    }
    book
}

fn phase(t: &Transition) -> String {
    match t.call.phase {
        Phase::Ringing { .. } => "Ringing".into(),
        Phase::Active { .. } => "Active".into(),
        Phase::Ended { reason, by, .. } => format!("{reason:?} by {by}"),
    }
}

fn result(r: Result<Transition, CallError>) -> String {
    r.map_or_else(|e| format!("{e:?}"), |t| phase(&t))
}

fn optional(t: Option<Transition>) -> String {
    t.as_ref().map_or_else(|| "-".into(), phase)
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Accept(Device),
    End(u64),
    Signal(Device),
    Disconnect(Device),
    Expire(i64),
    /// The first user blocks the second.
    Block(u64, u64),
    /// The chat is deleted by the user.
    DeleteChat(u64, u64),
    /// The call's start is taken back.
    Withdraw,
}

fn apply(book: &mut CallBook, action: Action) -> String {
    match action {
        Action::Accept(d) => result(book.accept(CALL, d, NOW)),
        Action::End(user) => match book.end(CALL, user, NOW) {
            Ok(Ended::Now(t)) => phase(&t),
            Ok(Ended::Already) => "Already".into(),
            Err(e) => format!("{e:?}"),
        },
        Action::Signal(d) => book.peer(CALL, d).map_or_else(
            |e| format!("{e:?}"),
            |to| format!("to {}/{}", to.user_id, to.conn_id),
        ),
        Action::Disconnect(d) => optional(book.disconnected(d, NOW)),
        Action::Block(blocker, blocked) => optional(book.end_shared(blocker, blocked, NOW)),
        Action::DeleteChat(chat, by) => optional(book.end_in_chat(chat, &[ALICE, BOB], by, NOW)),
        Action::Withdraw => book.withdraw(CALL).to_string(),
        Action::Expire(at) => {
            let ended: Vec<String> = book.expire(at).iter().map(phase).collect();
            if ended.is_empty() {
                "-".into()
            } else {
                ended.join(",")
            }
        }
    }
}

/// The users' index agrees with the calls: a live call indexes both its users, an ended one
/// neither.
fn check_index(book: &CallBook) {
    for user in [ALICE, BOB, CAROL] {
        if let Some(call) = book.call_of(user) {
            assert!(call.is_live(), "user {user} indexed to an ended call");
        }
    }
    if let Some(call) = book.get(CALL) {
        for user in [ALICE, BOB] {
            assert_eq!(
                book.call_of(user).is_some(),
                call.is_live(),
                "index of user {user}"
            );
        }
    }
}

#[test]
fn every_state_against_every_action() {
    use Action::*;
    use State::*;
    let deadline = T0 + RING_MS;
    #[rustfmt::skip]
    let table: &[(State, Action, &str)] = &[
        (Ringing, Accept(B1), "Active"),
        (Ringing, Accept(B2), "Active"),
        (Ringing, Accept(A1), "NotTheCallee"),
        (Ringing, Accept(C1), "NotFound"),
        (Ringing, End(ALICE), "Canceled by 1"),
        (Ringing, End(BOB), "Declined by 2"),
        (Ringing, End(CAROL), "NotFound"),
        (Ringing, Signal(A1), "NotActive"),
        (Ringing, Signal(B1), "NotActive"),
        (Ringing, Signal(C1), "NotFound"),
        (Ringing, Disconnect(A1), "Disconnected by 1"),
        (Ringing, Disconnect(A2), "-"),
        (Ringing, Disconnect(B1), "-"),
        (Ringing, Disconnect(C1), "-"),
        (Ringing, Expire(deadline - 1), "-"),
        (Ringing, Expire(deadline), "Missed by 1"),
        (Ringing, Block(ALICE, BOB), "Canceled by 1"),
        (Ringing, Block(BOB, ALICE), "Declined by 2"),
        (Ringing, Block(ALICE, CAROL), "-"),
        (Ringing, Block(CAROL, BOB), "-"),
        (Ringing, DeleteChat(CHAT, BOB), "Declined by 2"),
        (Ringing, DeleteChat(CHAT, ALICE), "Canceled by 1"),
        (Ringing, DeleteChat(CHAT, CAROL), "Canceled by 1"),
        (Ringing, DeleteChat(CHAT + 1, BOB), "-"),
        (Ringing, Withdraw, "true"),

        (Active, Accept(B1), "NotRinging"),
        (Active, Accept(B2), "NotRinging"),
        (Active, Accept(A1), "NotTheCallee"),
        (Active, Accept(C1), "NotFound"),
        (Active, End(ALICE), "HungUp by 1"),
        (Active, End(BOB), "HungUp by 2"),
        (Active, End(CAROL), "NotFound"),
        (Active, Signal(A1), "to 2/21"),
        (Active, Signal(B1), "to 1/11"),
        (Active, Signal(A2), "NotTakingPart"),
        (Active, Signal(B2), "NotTakingPart"),
        (Active, Signal(C1), "NotFound"),
        (Active, Disconnect(A1), "Disconnected by 1"),
        (Active, Disconnect(B1), "Disconnected by 2"),
        (Active, Disconnect(A2), "-"),
        (Active, Disconnect(B2), "-"),
        (Active, Disconnect(C1), "-"),
        (Active, Expire(deadline), "-"),
        (Active, Block(ALICE, BOB), "HungUp by 1"),
        (Active, Block(BOB, ALICE), "HungUp by 2"),
        (Active, Block(BOB, CAROL), "-"),
        (Active, DeleteChat(CHAT, BOB), "HungUp by 2"),
        (Active, DeleteChat(CHAT, CAROL), "HungUp by 1"),
        (Active, Withdraw, "false"),

        (Canceled, Accept(B1), "NotRinging"),
        (Canceled, Accept(A1), "NotTheCallee"),
        (Canceled, Accept(C1), "NotFound"),
        (Canceled, End(ALICE), "Already"),
        (Canceled, End(BOB), "Already"),
        (Canceled, End(CAROL), "NotFound"),
        (Canceled, Signal(A1), "NotActive"),
        (Canceled, Signal(B1), "NotActive"),
        (Canceled, Disconnect(A1), "-"),
        (Canceled, Disconnect(B1), "-"),
        (Canceled, Expire(deadline), "-"),
        (Canceled, Block(BOB, ALICE), "-"),
        (Canceled, DeleteChat(CHAT, ALICE), "-"),
        (Canceled, Withdraw, "false"),

        (HungUp, Accept(B1), "NotRinging"),
        (HungUp, End(ALICE), "Already"),
        (HungUp, End(BOB), "Already"),
        (HungUp, Signal(A1), "NotActive"),
        (HungUp, Signal(B1), "NotActive"),
        (HungUp, Disconnect(A1), "-"),
        (HungUp, Disconnect(B1), "-"),
        (HungUp, Block(ALICE, BOB), "-"),
        (HungUp, Expire(deadline), "-"),
    ];
    let mut wrong = Vec::new();
    for &(state, action, expected) in table {
        let mut book = book_in(state);
        let got = apply(&mut book, action);
        check_index(&book);
        if got != expected {
            wrong.push(format!(
                "{state:?} + {action:?}: {got}, expected {expected}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_callee_in_a_call_is_busy_and_a_caller_in_a_call_is_refused() {
    let mut book = book_in(State::Ringing);
    // Dave calls Bob, who is ringing: ended at once, never rings, kept as ended calls are.
    let dave = Device {
        user_id: DAVE,
        conn_id: 41,
    };
    let busy = book
        .start(CALL + 1, CHAT + 1, dave, BOB, false, NOW, RING_MS)
        .expect("start");
    assert_eq!(phase(&busy), "Busy by 4");
    assert!(!busy.notify, "a busy call never rings");
    assert_eq!(busy.record().map(|r| r.reason), Some(Reason::Busy as i32));
    assert!(book.get(CALL + 1).is_some_and(|c| !c.is_live()));
    assert!(book.call_of(DAVE).is_none() && book.call_of(BOB).map(|c| c.id) == Some(CALL));
    assert_eq!(book.end(CALL + 1, DAVE, NOW), Ok(Ended::Already));
    assert_eq!(
        book.accept(CALL + 1, B1, NOW).map(|t| t.call.id),
        Err(CallError::NotRinging)
    );
    // Alice, in her call, cannot start another; nor can Bob.
    let err = book.start(CALL + 2, CHAT + 2, A2, CAROL, false, NOW, RING_MS);
    assert_eq!(err, Err(CallError::CallerInCall));
    assert_eq!(
        book.start(CALL + 3, CHAT, B1, ALICE, false, NOW, RING_MS),
        Err(CallError::CallerInCall)
    );
    // Ids are never reused nor 0.
    let carol = Device {
        user_id: CAROL,
        conn_id: 31,
    };
    assert_eq!(
        book.start(CALL, CHAT, carol, DAVE, false, NOW, RING_MS),
        Err(CallError::IdTaken)
    );
    assert_eq!(
        book.start(0, CHAT, carol, DAVE, false, NOW, RING_MS),
        Err(CallError::IdTaken)
    );
    // Once the call ended both are free again.
    book.end(CALL, BOB, NOW).expect("decline");
    assert!(
        book.start(CALL + 4, CHAT, B1, ALICE, false, NOW, RING_MS)
            .is_ok()
    );
}

#[test]
fn the_history_entry_carries_reason_and_duration() {
    let mut book = book_in(State::Active);
    let Ok(Ended::Now(hung_up)) = book.end(CALL, ALICE, ANSWER_AT + 95_000) else {
        panic!("hang up");
    };
    assert_eq!(
        hung_up.record(),
        Some(pb::CallEnded {
            call_id: CALL,
            caller_id: ALICE,
            video: true,
            reason: Reason::HungUp as i32,
            started_at_ms: T0,
            duration_ms: 95_000,
            group: false,
        })
    );
    let mut book = book_in(State::Ringing);
    let missed = book.expire(T0 + RING_MS);
    let record = missed.first().and_then(Transition::record).expect("missed");
    assert_eq!(
        (record.reason, record.duration_ms),
        (Reason::Missed as i32, 0)
    );
    // Live calls have no history entry yet.
    assert!(
        book_in(State::Active)
            .get(CALL)
            .and_then(|c| c.ended_event())
            .is_none()
    );
}

#[test]
fn the_wire_form_follows_the_phase() {
    let ringing = book_in(State::Ringing).get(CALL).expect("call").to_pb();
    assert_eq!(ringing.state, pb::CallState::Ringing as i32);
    assert_eq!(
        (ringing.ring_until_ms, ringing.answered_at_ms),
        (T0 + RING_MS, 0)
    );
    assert_eq!(
        (ringing.caller_id, ringing.callee_id, ringing.chat_id),
        (ALICE, BOB, CHAT)
    );
    let active = book_in(State::Active).get(CALL).expect("call").to_pb();
    assert_eq!(
        (active.state, active.answered_at_ms),
        (pb::CallState::Active as i32, ANSWER_AT)
    );
    assert_eq!(active.ring_until_ms, 0);
    let ended = book_in(State::HungUp).get(CALL).expect("call").to_pb();
    assert_eq!(ended.state, pb::CallState::Ended as i32);
    assert_eq!(ended.end_reason, Reason::HungUp as i32);
    assert_eq!(
        (ended.ended_by, ended.ended_at_ms),
        (BOB, ANSWER_AT + 1_000)
    );
    assert_eq!(ended.answered_at_ms, ANSWER_AT);
}

#[test]
fn deadlines_drive_the_timer_and_ended_calls_are_forgotten() {
    let mut book = CallBook::default();
    assert_eq!(book.next_deadline(), None);
    book.start(CALL, CHAT, A1, BOB, false, T0, RING_MS)
        .expect("start");
    assert_eq!(book.next_deadline(), Some(T0 + RING_MS));
    book.accept(CALL, B1, ANSWER_AT).expect("accept");
    assert_eq!(book.next_deadline(), None, "an active call has no deadline");
    book.end(CALL, ALICE, NOW).expect("hang up");
    assert_eq!(book.next_deadline(), Some(NOW + ENDED_KEPT_MS));
    assert!(book.expire(NOW + ENDED_KEPT_MS - 1).is_empty());
    assert!(
        book.get(CALL).is_some(),
        "an ended call is kept for a while"
    );
    assert!(book.expire(NOW + ENDED_KEPT_MS).is_empty());
    assert!(book.get(CALL).is_none());
    assert_eq!(
        book.end(CALL, ALICE, NOW + ENDED_KEPT_MS),
        Err(CallError::NotFound)
    );
}

#[test]
fn missed_calls_end_in_id_order_and_each_only_once() {
    let mut book = CallBook::default();
    let dave = Device {
        user_id: DAVE,
        conn_id: 41,
    };
    book.start(CALL + 1, CHAT, dave, CAROL, false, T0, RING_MS)
        .expect("start");
    book.start(CALL, CHAT, A1, BOB, false, T0, RING_MS)
        .expect("start");
    let ids: Vec<u64> = book
        .expire(T0 + RING_MS)
        .iter()
        .map(|t| t.call.id)
        .collect();
    assert_eq!(ids, [CALL, CALL + 1]);
    assert!(book.expire(T0 + RING_MS + 1).is_empty());
    check_index(&book);
}
