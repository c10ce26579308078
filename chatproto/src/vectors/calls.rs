//! The vectors of calls (capability `calls`, chat/1.2, and `screen_share`, chat/1.3): Alice calls Bob in their private chat,
//! Bob answers on one device, the two devices exchange an offer, an answer and candidates, and
//! Alice hangs up after 95 s; the chat's history records the call.

use super::build::{event, ok, request, response};
use super::samples::*;
use super::{Vector, VectorError};
use crate::pb;
use crate::pb::chat_event::Body;
use crate::pb::event::Kind as Ev;
use crate::pb::request::Kind as Rq;
use crate::pb::response::Result as Rs;

const CALL: u64 = 0x5eed_ca11_0000_0001;
/// When Alice called; Bob answered 4 s later.
const CALLED_AT: i64 = T0 + 7_200_000;
const ANSWERED_AT: i64 = CALLED_AT + 4_000;
const ENDED_AT: i64 = ANSWERED_AT + 95_000;

/// A trimmed but well-formed SDP offer for one audio section.
const OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
a=ice-ufrag:F7gI\r\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n\
a=fingerprint:sha-256 D1:2C:BE:AD:C4:F6:64:5C:25:16:11:9C:AF:E7:0F:73:79:36:4E:9C:1E:15:54:39:0C:06:8B:ED:96:86:00:39\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n";

/// The call in `state`, as both users see it.
fn call(state: pb::CallState) -> pb::Call {
    let ringing = state == pb::CallState::Ringing;
    let ended = state == pb::CallState::Ended;
    pb::Call {
        call_id: CALL,
        chat_id: PRIVATE_CHAT,
        caller_id: ALICE,
        callee_id: BOB,
        video: false,
        state: state as i32,
        end_reason: if ended {
            pb::CallEndReason::HungUp as i32
        } else {
            0
        },
        started_at_ms: CALLED_AT,
        answered_at_ms: if ringing { 0 } else { ANSWERED_AT },
        ended_at_ms: if ended { ENDED_AT } else { 0 },
        ring_until_ms: if ringing { CALLED_AT + 30_000 } else { 0 },
        ended_by: if ended { ALICE } else { 0 },
    }
}

fn candidate() -> pb::IceCandidate {
    pb::IceCandidate {
        candidate: "candidate:1 1 udp 2122260223 192.0.2.10 54400 typ host".into(),
        sdp_mid: "0".into(),
        sdp_m_line_index: 0,
        username_fragment: "F7gI".into(),
    }
}

/// One Request per call kind, in field-number order.
pub(super) fn requests() -> Result<Vec<Vector>, VectorError> {
    let cases: Vec<(&str, Option<&str>, pb::Request)> = vec![
        (
            "request.start_call",
            Some("an audio call in a private chat"),
            request(
                70,
                Rq::StartCall(pb::StartCall {
                    chat_id: PRIVATE_CHAT,
                    video: false,
                }),
            ),
        ),
        (
            "request.accept_call",
            None,
            request(71, Rq::AcceptCall(pb::AcceptCall { call_id: CALL })),
        ),
        (
            "request.end_call",
            Some("cancel, decline or hang up, by the call's state and who asks"),
            request(72, Rq::EndCall(pb::EndCall { call_id: CALL })),
        ),
        (
            "request.send_call_signal",
            Some("the caller's offer; from_user_id is left to the server"),
            request(
                73,
                Rq::SendCallSignal(pb::CallSignal {
                    call_id: CALL,
                    from_user_id: 0,
                    kind: Some(pb::call_signal::Kind::Offer(OFFER.into())),
                }),
            ),
        ),
        (
            "request.send_call_signal.candidate",
            Some("a trickled ICE candidate"),
            request(
                74,
                Rq::SendCallSignal(pb::CallSignal {
                    call_id: CALL,
                    from_user_id: 0,
                    kind: Some(pb::call_signal::Kind::Candidate(candidate())),
                }),
            ),
        ),
        (
            "request.send_call_signal.screen_share",
            Some("chat/1.3: Alice starts sharing her screen, the track of mid 1 in her new offer"),
            request(
                76,
                Rq::SendCallSignal(pb::CallSignal {
                    call_id: CALL,
                    from_user_id: 0,
                    kind: Some(pb::call_signal::Kind::ScreenShare(pb::ScreenShare {
                        sharing: true,
                        mid: "1".into(),
                    })),
                }),
            ),
        ),
        (
            "request.get_ice_servers",
            None,
            request(75, Rq::GetIceServers(pb::GetIceServers {})),
        ),
    ];
    cases
        .iter()
        .map(|(name, note, msg)| ok(name, *note, msg))
        .collect()
}

/// The call answers.
pub(super) fn responses() -> Result<Vec<Vector>, VectorError> {
    let cases: Vec<(&str, Option<&str>, pb::Response)> = vec![
        (
            "response.call",
            Some("start_call: Bob's devices ring for 30 s"),
            response(70, Rs::Call(call(pb::CallState::Ringing))),
        ),
        (
            "response.call.busy",
            Some("start_call when the callee is already in a call: ended at once, never rang"),
            response(
                76,
                Rs::Call(pb::Call {
                    state: pb::CallState::Ended as i32,
                    end_reason: pb::CallEndReason::Busy as i32,
                    ended_at_ms: CALLED_AT,
                    ring_until_ms: 0,
                    ended_by: ALICE,
                    ..call(pb::CallState::Ringing)
                }),
            ),
        ),
        (
            "response.ice_servers",
            Some(
                "STUN without credentials; TURN with expiry:user and base64(HMAC-SHA1(\"example-secret\", username))",
            ),
            response(
                75,
                Rs::IceServers(pb::IceServers {
                    servers: vec![
                        pb::IceServer {
                            urls: vec!["stun:turn.example.org:3478".into()],
                            username: String::new(),
                            credential: String::new(),
                        },
                        pb::IceServer {
                            urls: vec![
                                "turn:turn.example.org:3478?transport=udp".into(),
                                "turns:turn.example.org:5349?transport=tcp".into(),
                            ],
                            username: "1767315600:1001".into(),
                            credential: "JydyUTx7DiyEeoKppyuLVwP14II=".into(),
                        },
                    ],
                    expires_at_ms: 1_767_315_600_000,
                }),
            ),
        ),
    ];
    cases
        .iter()
        .map(|(name, note, msg)| ok(name, *note, msg))
        .collect()
}

/// The call events, and the history entry of an ended call.
pub(super) fn events() -> Result<Vec<Vector>, VectorError> {
    let cases: Vec<(&str, Option<&str>, pb::Event)> = vec![
        (
            "event.call.ringing",
            Some("to every device of both users: the callee's ring"),
            event(Ev::Call(call(pb::CallState::Ringing))),
        ),
        (
            "event.call.active",
            Some("accepted on one device: the callee's other devices stop ringing"),
            event(Ev::Call(call(pb::CallState::Active))),
        ),
        (
            "event.call.ended",
            Some("Alice hung up after 95 s"),
            event(Ev::Call(call(pb::CallState::Ended))),
        ),
        (
            "event.call_signal",
            Some("Bob's answer, relayed verbatim to Alice's device"),
            event(Ev::CallSignal(pb::CallSignal {
                call_id: CALL,
                from_user_id: BOB,
                kind: Some(pb::call_signal::Kind::Answer(
                    OFFER.replace("a=setup:actpass", "a=setup:active"),
                )),
            })),
        ),
        (
            "event.call_signal.screen_share",
            Some("chat/1.3: Alice stopped sharing her screen, relayed to Bob's device"),
            event(Ev::CallSignal(pb::CallSignal {
                call_id: CALL,
                from_user_id: ALICE,
                kind: Some(pb::call_signal::Kind::ScreenShare(pb::ScreenShare {
                    sharing: false,
                    mid: String::new(),
                })),
            })),
        ),
        (
            "event.chat.call_ended",
            Some("the call in the private chat's history"),
            event(Ev::Chat(pb::ChatEvent {
                chat_id: PRIVATE_CHAT,
                seq: 4,
                at_ms: ENDED_AT,
                actor_id: ALICE,
                body: Some(Body::CallEnded(pb::CallEnded {
                    call_id: CALL,
                    caller_id: ALICE,
                    video: false,
                    reason: pb::CallEndReason::HungUp as i32,
                    started_at_ms: CALLED_AT,
                    duration_ms: (ENDED_AT - ANSWERED_AT) as u64,
                    group: false,
                })),
            })),
        ),
    ];
    cases
        .iter()
        .map(|(name, note, msg)| ok(name, *note, msg))
        .collect()
}
