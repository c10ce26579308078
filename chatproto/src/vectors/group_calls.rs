//! The vectors of group calls (capability `group_calls`, protocol.md 14.7): Alice starts a call
//! in the group, Bob joins and offers to Alice's device, Carol joins, then all leave; the group's
//! history records the call.

use super::build::{event, ok, request, response};
use super::samples::*;
use super::{Vector, VectorError};
use crate::pb;
use crate::pb::chat_event::Body;
use crate::pb::event::Kind as Ev;
use crate::pb::request::Kind as Rq;
use crate::pb::response::Result as Rs;

const CALL: u64 = 0x5eed_ca11_0000_0002;
/// When Alice started it; Bob joined 3 s later.
const STARTED_AT: i64 = T0 + 9_000_000;
const BOB_JOINED: i64 = STARTED_AT + 3_000;
const ENDED_AT: i64 = STARTED_AT + 600_000;

/// A trimmed SDP offer (its a=mid and a=setup lines are what matters here).
const OFFER: &str = "v=0\r\no=- 7201 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Qm2x\r\na=ice-pwd:0aZk1wL5d0mJYx2qM3gGc8Ry\r\na=setup:actpass\r\na=mid:0\r\n";

fn participant(user_id: u64, device_id: u64, joined_at_ms: i64) -> pb::GroupCallParticipant {
    pb::GroupCallParticipant {
        user_id,
        device_id,
        joined_at_ms,
    }
}

/// The call after Bob joined: Alice's device 1 and Bob's device 2.
fn with_bob(device_id: u64) -> pb::GroupCall {
    pb::GroupCall {
        call_id: CALL,
        chat_id: GROUP_CHAT,
        started_by: ALICE,
        video: true,
        state: pb::CallState::Active as i32,
        started_at_ms: STARTED_AT,
        ended_at_ms: 0,
        participants: vec![
            participant(ALICE, 1, STARTED_AT),
            participant(BOB, 2, BOB_JOINED),
        ],
        device_id,
        version: 2,
        end_reason: 0,
    }
}

/// One Request per group call kind, in field-number order.
pub(super) fn requests() -> Result<Vec<Vector>, VectorError> {
    let cases: Vec<(&str, Option<&str>, pb::Request)> = vec![
        (
            "request.join_group_call",
            Some("join the group's call, or start a video call when it has none"),
            request(
                80,
                Rq::JoinGroupCall(pb::JoinGroupCall {
                    chat_id: GROUP_CHAT,
                    video: true,
                }),
            ),
        ),
        (
            "request.leave_group_call",
            None,
            request(81, Rq::LeaveGroupCall(pb::LeaveGroupCall { call_id: CALL })),
        ),
        (
            "request.send_group_call_signal",
            Some("Bob's device offers to Alice's device 1; the from_ fields are the server's"),
            request(
                82,
                Rq::SendGroupCallSignal(pb::GroupCallSignal {
                    call_id: CALL,
                    to_device_id: 1,
                    from_user_id: 0,
                    from_device_id: 0,
                    kind: Some(pb::group_call_signal::Kind::Offer(OFFER.into())),
                }),
            ),
        ),
        (
            "request.send_group_call_signal.candidate",
            Some("a trickled ICE candidate for the session with Alice's device 1"),
            request(
                84,
                Rq::SendGroupCallSignal(pb::GroupCallSignal {
                    call_id: CALL,
                    to_device_id: 1,
                    from_user_id: 0,
                    from_device_id: 0,
                    kind: Some(pb::group_call_signal::Kind::Candidate(pb::IceCandidate {
                        candidate: "candidate:1 1 udp 2122260223 192.0.2.20 50400 typ host".into(),
                        sdp_mid: "0".into(),
                        sdp_m_line_index: 0,
                        username_fragment: "Qm2x".into(),
                    })),
                }),
            ),
        ),
        (
            "request.send_group_call_signal.screen_share",
            Some("with screen_share: Bob tells device 1 that he shares his screen as mid 1"),
            request(
                85,
                Rq::SendGroupCallSignal(pb::GroupCallSignal {
                    call_id: CALL,
                    to_device_id: 1,
                    from_user_id: 0,
                    from_device_id: 0,
                    kind: Some(pb::group_call_signal::Kind::ScreenShare(pb::ScreenShare {
                        sharing: true,
                        mid: "1".into(),
                    })),
                }),
            ),
        ),
        (
            "request.get_group_call",
            Some("the group's call now, if it has one"),
            request(
                83,
                Rq::GetGroupCall(pb::GetGroupCall {
                    chat_id: GROUP_CHAT,
                }),
            ),
        ),
    ];
    cases
        .iter()
        .map(|(name, note, msg)| ok(name, *note, msg))
        .collect()
}

/// The group call answer.
pub(super) fn responses() -> Result<Vec<Vector>, VectorError> {
    let cases: Vec<(&str, Option<&str>, pb::Response)> = vec![(
        "response.group_call",
        Some("join_group_call from Bob: his device is 2"),
        response(80, Rs::GroupCall(with_bob(2))),
    )];
    cases
        .iter()
        .map(|(name, note, msg)| ok(name, *note, msg))
        .collect()
}

/// The group call events, and the history entry of an ended group call.
pub(super) fn events() -> Result<Vec<Vector>, VectorError> {
    let cases: Vec<(&str, Option<&str>, pb::Event)> = vec![
        (
            "event.group_call",
            Some("to every member's devices: Bob joined Alice's call"),
            event(Ev::GroupCall(with_bob(0))),
        ),
        (
            "event.group_call.ended",
            Some("the last participant left"),
            event(Ev::GroupCall(pb::GroupCall {
                state: pb::CallState::Ended as i32,
                ended_at_ms: ENDED_AT,
                participants: Vec::new(),
                version: 7,
                end_reason: pb::CallEndReason::HungUp as i32,
                ..with_bob(0)
            })),
        ),
        (
            "event.group_call_signal",
            Some("Alice's device answers Bob's device 2 only"),
            event(Ev::GroupCallSignal(pb::GroupCallSignal {
                call_id: CALL,
                to_device_id: 2,
                from_user_id: ALICE,
                from_device_id: 1,
                kind: Some(pb::group_call_signal::Kind::Answer(
                    OFFER.replace("a=setup:actpass", "a=setup:active"),
                )),
            })),
        ),
        (
            "event.chat.call_ended.group",
            Some("the group call in the group's history, 10 minutes from its start"),
            event(Ev::Chat(pb::ChatEvent {
                chat_id: GROUP_CHAT,
                seq: 9,
                at_ms: ENDED_AT,
                actor_id: CAROL,
                body: Some(Body::CallEnded(pb::CallEnded {
                    call_id: CALL,
                    caller_id: ALICE,
                    video: true,
                    reason: pb::CallEndReason::HungUp as i32,
                    started_at_ms: STARTED_AT,
                    duration_ms: (ENDED_AT - STARTED_AT) as u64,
                    group: true,
                })),
            })),
        ),
    ];
    cases
        .iter()
        .map(|(name, note, msg)| ok(name, *note, msg))
        .collect()
}
