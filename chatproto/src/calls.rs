//! Calls as one device sees them (spec section 14), sans-IO: [`CallTracker`] turns the answers
//! to `start_call` and `accept_call` and the `call` events into a small state machine per call,
//! [`CallPhase`]: incoming, outgoing, active or ended, and whether this device takes part. A
//! user interface rings on [`CallPhase::Incoming`] and stops when the phase moves on; a media
//! client drives its WebRTC stack from an active call that is [`here`](CallView::here), with the
//! SDK's `send_call_signal` and the `CallSignal` events; [`CallTracker::on_signal`] follows
//! the other device's screen sharing (chat/1.3), which a renegotiation brings as a new track.
//!
//! Group calls (spec 14.7, capability `group_calls`) are followed beside them as [`GroupView`]s,
//! from the answers to `join_group_call` and `get_group_call` and the `group_call` events: who
//! takes part, whether this device does and under which device id, and so the participant
//! devices its WebRTC stack keeps one session with each ([`GroupView::peers`]).
//!
//! Answers and events travel on different streams (spec 7.6), so they may arrive in any order:
//! a call only moves forward (ringing, active, ended; a group call by its `version`), and what
//! arrives late is ignored.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::pb;

/// Where a call is, for this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPhase {
    /// Someone calls this user: this device rings.
    Incoming,
    /// This user calls: waiting for an answer.
    Outgoing,
    /// Answered. Signaling flows between the two devices taking part.
    Active,
    /// Over, and why.
    Ended(pb::CallEndReason),
}

/// One call as this device knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    /// The call's latest state from the server.
    pub call: pb::Call,
    /// Its phase for this user.
    pub phase: CallPhase,
    /// True when this device takes part: it started the call, or accepted it. An active call
    /// that is not `here` was answered on another device of this user.
    pub here: bool,
    /// While the other device taking part shares its screen: the SDP media id of that track
    /// (empty when it did not say).
    pub remote_screen: Option<String>,
}

/// One group call as this device knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupView {
    /// The call's latest state from the server (its `device_id` is not kept: see `device_id`).
    pub call: pb::GroupCall,
    /// This device's id in the call while it takes part.
    pub device_id: Option<u64>,
}

impl GroupView {
    /// True until the call ended.
    pub fn is_live(&self) -> bool {
        self.call.state != pb::CallState::Ended as i32
    }

    /// The other participant devices, with each of which this device (when it takes part) runs
    /// one WebRTC session.
    pub fn peers(&self) -> impl Iterator<Item = &pb::GroupCallParticipant> {
        self.call
            .participants
            .iter()
            .filter(move |p| Some(p.device_id) != self.device_id)
    }
}

/// Every call of this user that this device heard of.
#[derive(Debug, Clone, Default)]
pub struct CallTracker {
    me: u64,
    calls: HashMap<u64, CallView>,
    groups: HashMap<u64, GroupView>,
}

/// How far a state is along ringing, active, ended; unknown states are not applied.
fn rank(call: &pb::Call) -> Option<u8> {
    match pb::CallState::try_from(call.state).ok()? {
        pb::CallState::Ringing => Some(1),
        pb::CallState::Active => Some(2),
        pb::CallState::Ended => Some(3),
        pb::CallState::Unspecified => None,
    }
}

impl CallTracker {
    /// The calls of user `me`.
    pub fn new(me: u64) -> Self {
        CallTracker {
            me,
            calls: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    /// The answer to this device's `start_call`: this device takes part.
    pub fn started(&mut self, call: pb::Call) -> Option<&CallView> {
        self.apply(call, true)
    }

    /// The answer to this device's `accept_call`: this device takes part.
    pub fn accepted(&mut self, call: pb::Call) -> Option<&CallView> {
        self.apply(call, true)
    }

    /// A `call` event. Returns the call when it changed.
    pub fn on_event(&mut self, call: pb::Call) -> Option<&CallView> {
        self.apply(call, false)
    }

    /// A call by id.
    pub fn get(&self, call_id: u64) -> Option<&CallView> {
        self.calls.get(&call_id)
    }

    /// The call this device rings for or takes part in, if any (ended calls are not).
    pub fn current(&self) -> Option<&CallView> {
        self.calls.values().find(|v| match v.phase {
            CallPhase::Incoming => true,
            CallPhase::Outgoing | CallPhase::Active => v.here,
            CallPhase::Ended(_) => false,
        })
    }

    /// This device's connection is gone. A call it took part in ended with it (the server ends
    /// it `DISCONNECTED`, spec 14.2), and a call that rang here may have ended meanwhile
    /// unheard: `call` events are signals, not replayed after a reconnect (spec 14.3). Both
    /// end here as `DISCONNECTED`, and are returned; whatever the server says of them later is
    /// ignored, as a call only moves forward.
    ///
    /// Group calls are forgotten: the server took this device out of the one it took part in,
    /// and what changed meanwhile was not replayed; `get_group_call` tells a chat's call again.
    pub fn connection_lost(&mut self) -> Vec<CallView> {
        self.groups.clear();
        let mut ended = Vec::new();
        for view in self.calls.values_mut() {
            let live = match view.phase {
                CallPhase::Incoming => true,
                CallPhase::Outgoing | CallPhase::Active => view.here,
                CallPhase::Ended(_) => false,
            };
            if live {
                view.call.state = pb::CallState::Ended as i32;
                view.call.end_reason = pb::CallEndReason::Disconnected as i32;
                view.phase = CallPhase::Ended(pb::CallEndReason::Disconnected);
                ended.push(view.clone());
            }
        }
        ended
    }

    /// A `call_signal` event: a screen-share change of the other device is applied to its
    /// active call, which is returned when it changed. Other signals (offers, answers,
    /// candidates) go to the WebRTC stack and change nothing here.
    pub fn on_signal(&mut self, signal: &pb::CallSignal) -> Option<&CallView> {
        let Some(pb::call_signal::Kind::ScreenShare(share)) = &signal.kind else {
            return None;
        };
        let view = self.calls.get_mut(&signal.call_id)?;
        if view.phase != CallPhase::Active || !view.here || signal.from_user_id == self.me {
            return None;
        }
        let screen = share.sharing.then(|| share.mid.clone());
        if view.remote_screen == screen {
            return None;
        }
        view.remote_screen = screen;
        Some(view)
    }

    /// Forgets ended calls, private and group.
    pub fn forget_ended(&mut self) {
        self.calls
            .retain(|_, v| !matches!(v.phase, CallPhase::Ended(_)));
        self.groups.retain(|_, v| v.is_live());
    }

    /// The answer to this device's `join_group_call` or `get_group_call`: its `device_id`
    /// says whether this device takes part. Returns the call when it changed.
    pub fn group_answer(&mut self, call: pb::GroupCall) -> Option<&GroupView> {
        let mine = (call.device_id != 0).then_some(call.device_id);
        self.apply_group(call, mine)
    }

    /// A `group_call` event. Returns the call when it changed.
    pub fn on_group_event(&mut self, call: pb::GroupCall) -> Option<&GroupView> {
        self.apply_group(call, None)
    }

    /// A group call by id.
    pub fn group(&self, call_id: u64) -> Option<&GroupView> {
        self.groups.get(&call_id)
    }

    /// The live group call of a chat, if this device heard of one.
    pub fn group_in_chat(&self, chat_id: u64) -> Option<&GroupView> {
        self.groups
            .values()
            .find(|v| v.call.chat_id == chat_id && v.is_live())
    }

    /// The live group call this device takes part in, if any.
    pub fn current_group(&self) -> Option<&GroupView> {
        self.groups
            .values()
            .find(|v| v.is_live() && v.device_id.is_some())
    }

    /// Applies a group call's state when it is newer (a higher `version`); `mine` is this
    /// device's id from an answer, which may come after the event of a later change. This
    /// device takes part while its id is among the participants.
    fn apply_group(&mut self, mut call: pb::GroupCall, mine: Option<u64>) -> Option<&GroupView> {
        call.device_id = 0;
        let view = self
            .groups
            .entry(call.call_id)
            .or_insert_with(|| GroupView {
                call: pb::GroupCall {
                    version: 0,
                    ..call.clone()
                },
                device_id: None,
            });
        let newer = view.call.version < call.version;
        let claims = mine.is_some() && view.device_id.is_none();
        if !newer && !claims {
            return None;
        }
        if newer {
            view.call = call;
        }
        let id = mine.or(view.device_id);
        view.device_id = id.filter(|id| view.call.participants.iter().any(|p| p.device_id == *id));
        Some(view)
    }

    /// Applies a newer state; `mine` marks this device as taking part (an answer to its own
    /// request, which may come after the event of the same change).
    fn apply(&mut self, call: pb::Call, mine: bool) -> Option<&CallView> {
        let new_rank = rank(&call)?;
        let phase = phase_of(&call, self.me)?;
        match self.calls.entry(call.call_id) {
            Entry::Vacant(e) => Some(e.insert(CallView {
                call,
                phase,
                here: mine,
                remote_screen: None,
            })),
            Entry::Occupied(e) => {
                let view = e.into_mut();
                let newer = rank(&view.call) < Some(new_rank);
                let claims = mine && !view.here;
                if !newer && !claims {
                    return None;
                }
                view.here |= mine;
                if newer {
                    // Sharing belongs to the active call: it ends with it.
                    if matches!(phase, CallPhase::Ended(_)) {
                        view.remote_screen = None;
                    }
                    view.call = call;
                    view.phase = phase;
                }
                Some(view)
            }
        }
    }
}

/// The phase of `call` for user `me`; `None` for an unknown state.
fn phase_of(call: &pb::Call, me: u64) -> Option<CallPhase> {
    Some(match pb::CallState::try_from(call.state).ok()? {
        pb::CallState::Ringing if call.caller_id == me => CallPhase::Outgoing,
        pb::CallState::Ringing => CallPhase::Incoming,
        pb::CallState::Active => CallPhase::Active,
        pb::CallState::Ended => CallPhase::Ended(
            pb::CallEndReason::try_from(call.end_reason).unwrap_or(pb::CallEndReason::Unspecified),
        ),
        pb::CallState::Unspecified => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: u64 = 1;
    const BOB: u64 = 2;

    fn call(state: pb::CallState, reason: pb::CallEndReason) -> pb::Call {
        pb::Call {
            call_id: 9,
            chat_id: 5,
            caller_id: ALICE,
            callee_id: BOB,
            state: state as i32,
            end_reason: reason as i32,
            ..Default::default()
        }
    }

    fn ringing() -> pb::Call {
        call(pb::CallState::Ringing, pb::CallEndReason::Unspecified)
    }
    fn active() -> pb::Call {
        call(pb::CallState::Active, pb::CallEndReason::Unspecified)
    }
    fn ended(reason: pb::CallEndReason) -> pb::Call {
        call(pb::CallState::Ended, reason)
    }

    #[test]
    fn the_caller_goes_outgoing_active_ended() {
        let mut t = CallTracker::new(ALICE);
        let v = t.started(ringing()).expect("tracked");
        assert_eq!((v.phase, v.here), (CallPhase::Outgoing, true));
        // The event of the same change brings nothing new.
        assert!(t.on_event(ringing()).is_none());
        assert_eq!(
            t.on_event(active()).map(|v| v.phase),
            Some(CallPhase::Active)
        );
        assert_eq!(t.current().map(|v| v.call.call_id), Some(9));
        let v = t.on_event(ended(pb::CallEndReason::HungUp)).expect("ended");
        assert_eq!(v.phase, CallPhase::Ended(pb::CallEndReason::HungUp));
        assert!(t.current().is_none());
        t.forget_ended();
        assert!(t.get(9).is_none());
    }

    #[test]
    fn a_callee_device_rings_and_stops_when_another_answers() {
        let mut other = CallTracker::new(BOB);
        assert_eq!(
            other.on_event(ringing()).map(|v| v.phase),
            Some(CallPhase::Incoming)
        );
        assert!(other.current().is_some(), "it rings");
        let v = other.on_event(active()).expect("answered");
        assert_eq!((v.phase, v.here), (CallPhase::Active, false));
        assert!(
            other.current().is_none(),
            "answered elsewhere: it stops ringing"
        );
    }

    #[test]
    fn answers_and_events_in_any_order_only_move_forward() {
        // The Active event overtakes the answer to accept_call.
        let mut t = CallTracker::new(BOB);
        t.on_event(ringing());
        t.on_event(active());
        let v = t.accepted(active()).expect("marked as taking part");
        assert_eq!((v.phase, v.here), (CallPhase::Active, true));
        // A late Ringing event does not move it back, nor revive an ended call.
        assert!(t.on_event(ringing()).is_none());
        t.on_event(ended(pb::CallEndReason::Disconnected));
        assert!(t.on_event(active()).is_none());
        assert_eq!(
            t.get(9).map(|v| v.phase),
            Some(CallPhase::Ended(pb::CallEndReason::Disconnected))
        );
        // Unknown states are ignored.
        let mut odd = ringing();
        odd.state = 42;
        assert!(CallTracker::new(BOB).on_event(odd).is_none());
    }

    fn share(sharing: bool, from: u64) -> pb::CallSignal {
        pb::CallSignal {
            call_id: 9,
            from_user_id: from,
            kind: Some(pb::call_signal::Kind::ScreenShare(pb::ScreenShare {
                sharing,
                mid: if sharing { "2".into() } else { String::new() },
            })),
        }
    }

    #[test]
    fn the_other_device_shares_its_screen_during_the_active_call_only() {
        let mut t = CallTracker::new(ALICE);
        t.started(ringing());
        // Not active yet: nothing to share in.
        assert!(t.on_signal(&share(true, BOB)).is_none());
        t.on_event(active());
        let v = t.on_signal(&share(true, BOB)).expect("sharing starts");
        assert_eq!(v.remote_screen.as_deref(), Some("2"));
        assert!(t.on_signal(&share(true, BOB)).is_none(), "no change");
        let v = t.on_signal(&share(false, BOB)).expect("sharing stops");
        assert_eq!(v.remote_screen, None);
        t.on_signal(&share(true, BOB));
        t.on_event(ended(pb::CallEndReason::HungUp));
        assert_eq!(t.get(9).and_then(|v| v.remote_screen.clone()), None);
        // Other signals are the WebRTC stack's.
        let offer = pb::CallSignal {
            call_id: 9,
            from_user_id: BOB,
            kind: Some(pb::call_signal::Kind::Offer("v=0".into())),
        };
        assert!(CallTracker::new(ALICE).on_signal(&offer).is_none());
    }

    #[test]
    fn a_lost_connection_ends_what_rang_or_took_part_here() {
        let mut t = CallTracker::new(BOB);
        t.on_event(ringing());
        let mut other = ringing();
        other.call_id = 10;
        other.caller_id = BOB;
        other.callee_id = ALICE;
        // Another device of bob calls alice: not this device's call.
        t.on_event(other);
        let ended = t.connection_lost();
        assert_eq!(ended.len(), 1);
        assert_eq!(
            (ended[0].call.call_id, ended[0].phase),
            (9, CallPhase::Ended(pb::CallEndReason::Disconnected))
        );
        assert!(t.current().is_none());
        assert_eq!(t.get(10).map(|v| v.phase), Some(CallPhase::Outgoing));
        // What the server said before the loss, heard late, changes nothing.
        assert!(t.on_event(active()).is_none());
        assert!(t.connection_lost().is_empty());
    }

    #[test]
    fn a_busy_call_is_ended_from_the_start() {
        let mut t = CallTracker::new(ALICE);
        let v = t.started(ended(pb::CallEndReason::Busy)).expect("tracked");
        assert_eq!(v.phase, CallPhase::Ended(pb::CallEndReason::Busy));
        assert!(t.current().is_none());
    }

    fn group(version: u64, devices: &[(u64, u64)], device_id: u64) -> pb::GroupCall {
        pb::GroupCall {
            call_id: 20,
            chat_id: 7,
            started_by: ALICE,
            state: (if devices.is_empty() {
                pb::CallState::Ended
            } else {
                pb::CallState::Active
            }) as i32,
            participants: devices
                .iter()
                .map(|&(user_id, device_id)| pb::GroupCallParticipant {
                    user_id,
                    device_id,
                    joined_at_ms: 0,
                })
                .collect(),
            device_id,
            version,
            ..Default::default()
        }
    }

    #[test]
    fn a_group_call_is_followed_by_version_with_this_devices_peers() {
        let mut t = CallTracker::new(BOB);
        // Someone started a call in the chat: this device sees it, without taking part.
        let v = t.on_group_event(group(1, &[(ALICE, 1)], 0)).expect("seen");
        assert_eq!(v.device_id, None);
        assert!(t.current_group().is_none());
        assert_eq!(t.group_in_chat(7).map(|v| v.call.call_id), Some(20));
        // The event of a third joiner overtakes the answer to this device's join.
        t.on_group_event(group(3, &[(ALICE, 1), (BOB, 2), (3, 3)], 0));
        let v = t
            .group_answer(group(2, &[(ALICE, 1), (BOB, 2)], 2))
            .expect("takes part");
        assert_eq!(v.device_id, Some(2));
        assert_eq!(v.call.version, 3, "the newer state stays");
        let peers: Vec<u64> = v.peers().map(|p| p.device_id).collect();
        assert_eq!(peers, [1, 3]);
        // A late older state changes nothing.
        assert!(
            t.on_group_event(group(2, &[(ALICE, 1), (BOB, 2)], 0))
                .is_none()
        );
        // This user left (from any device): no longer taking part; the last one ends it.
        let v = t
            .on_group_event(group(4, &[(ALICE, 1), (3, 3)], 0))
            .expect("left");
        assert_eq!(v.device_id, None);
        assert!(t.current_group().is_none());
        let v = t.on_group_event(group(6, &[], 0)).expect("ended");
        assert!(!v.is_live());
        assert!(t.group_in_chat(7).is_none());
        t.forget_ended();
        assert!(t.group(20).is_none());
    }

    #[test]
    fn a_lost_connection_forgets_group_calls() {
        let mut t = CallTracker::new(ALICE);
        t.group_answer(group(1, &[(ALICE, 1)], 1));
        assert!(t.current_group().is_some());
        t.connection_lost();
        assert!(t.group(20).is_none());
    }
}
