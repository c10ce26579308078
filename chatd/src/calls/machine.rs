//! The call state machine (spec 14.2), sans-IO: [`CallBook`] holds every live call and applies
//! transitions to it; each transition is a pure function of the book, the request and the time
//! passed in, and says what must happen next ([`Transition`]) without doing it. No clock, no
//! timers, no connections, no store: the handler layer ([`super`]) drives it.
//!
//! # One book for every node
//! The book is plain data with ordered maps, so it has one encoding ([`CallBook::to_bytes`]):
//! in cluster mode it lives in the shared store (`super::home`), and a transition on any node
//! loads it, runs the same pure function as here and stores it back with a compare-and-set.
//! Every device is a connection id whose high 32 bits name its node ([`node_of`]), so that the
//! nodes that remain end the part in calls of a node that went away ([`CallBook::node_gone`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::delivery::registry::node_of;

use chatproto::pb;
use chatproto::pb::CallEndReason as Reason;

/// How long an ended call is remembered (so `end_call` repeated after an end still succeeds).
pub const ENDED_KEPT_MS: i64 = 60_000;

/// A [`Reason`] in the book's encoding: its wire number.
pub(super) mod reason_number {
    use super::Reason;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(reason: &Reason, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(*reason as i32)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        let n = i32::deserialize(d)?;
        Reason::try_from(n).map_err(|_| serde::de::Error::custom(format!("end reason {n}")))
    }
}

/// One connection of a user: a device that can ring or take part in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Device {
    /// The user.
    pub user_id: u64,
    /// The connection, as delivery names it.
    pub conn_id: u64,
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// The callee's devices ring until `until_ms`.
    Ringing {
        /// When it becomes MISSED.
        until_ms: i64,
    },
    /// Answered on `callee_device` at `answered_at_ms`.
    Active {
        /// The callee's device taking part.
        callee_device: u64,
        /// When it was answered.
        answered_at_ms: i64,
    },
    /// Over: final.
    Ended {
        /// Why.
        #[serde(with = "reason_number")]
        reason: Reason,
        /// Who ended it (the caller for MISSED and BUSY).
        by: u64,
        /// When.
        at_ms: i64,
        /// When it had been answered, if it was.
        answered_at_ms: Option<i64>,
    },
}

/// One call: who, where, and its phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Server-made, never 0.
    pub id: u64,
    /// The private chat.
    pub chat_id: u64,
    /// The caller's device taking part (the one that started the call).
    pub caller: Device,
    /// The callee.
    pub callee_id: u64,
    /// Video or audio only.
    pub video: bool,
    /// When it was started.
    pub started_at_ms: i64,
    /// Where it is.
    pub phase: Phase,
}

impl CallRecord {
    /// The call as both users see it on the wire.
    pub fn to_pb(&self) -> pb::Call {
        let mut call = pb::Call {
            call_id: self.id,
            chat_id: self.chat_id,
            caller_id: self.caller.user_id,
            callee_id: self.callee_id,
            video: self.video,
            started_at_ms: self.started_at_ms,
            ..Default::default()
        };
        match self.phase {
            Phase::Ringing { until_ms } => {
                call.state = pb::CallState::Ringing as i32;
                call.ring_until_ms = until_ms;
            }
            Phase::Active { answered_at_ms, .. } => {
                call.state = pb::CallState::Active as i32;
                call.answered_at_ms = answered_at_ms;
            }
            Phase::Ended {
                reason,
                by,
                at_ms,
                answered_at_ms,
            } => {
                call.state = pb::CallState::Ended as i32;
                call.end_reason = reason as i32;
                call.ended_by = by;
                call.ended_at_ms = at_ms;
                call.answered_at_ms = answered_at_ms.unwrap_or(0);
            }
        }
        call
    }

    /// The history entry of an ended call (spec 14.4); `None` while it is live.
    pub fn ended_event(&self) -> Option<pb::CallEnded> {
        let Phase::Ended {
            reason,
            at_ms,
            answered_at_ms,
            ..
        } = self.phase
        else {
            return None;
        };
        let duration = answered_at_ms.map_or(0, |a| at_ms.saturating_sub(a).max(0));
        Some(pb::CallEnded {
            call_id: self.id,
            caller_id: self.caller.user_id,
            video: self.video,
            reason: reason as i32,
            started_at_ms: self.started_at_ms,
            duration_ms: u64::try_from(duration).unwrap_or(0),
            group: false,
        })
    }

    /// True while it rings or is active.
    #[cfg(test)]
    pub fn is_live(&self) -> bool {
        !matches!(self.phase, Phase::Ended { .. })
    }

    /// True when `user_id` is its caller or callee.
    fn has_user(&self, user_id: u64) -> bool {
        self.caller.user_id == user_id || self.callee_id == user_id
    }

    fn end(&mut self, reason: Reason, by: u64, now_ms: i64) {
        let answered_at_ms = match self.phase {
            Phase::Active { answered_at_ms, .. } => Some(answered_at_ms),
            _ => None,
        };
        self.phase = Phase::Ended {
            reason,
            by,
            at_ms: now_ms,
            answered_at_ms,
        };
    }
}

/// Why a request on a call is refused; each maps to one error code of spec 9.9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// No such call, or the asker is not one of its users (NOT_FOUND).
    NotFound,
    /// The caller is already in a call (CONFLICT).
    CallerInCall,
    /// The call's id is taken: pick another one and start again.
    IdTaken,
    /// The caller of a call tried to accept it (PERMISSION_DENIED).
    NotTheCallee,
    /// Accepting a call that does not ring (CONFLICT).
    NotRinging,
    /// Signaling on a call that is not active (CONFLICT).
    NotActive,
    /// Signaling from a device of a user of the call that does not take part (CONFLICT).
    NotTakingPart,
}

/// What a transition asks of the layer that drives the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The call after the transition.
    pub call: CallRecord,
    /// Send the call, as an event, to every connection of both users that negotiated `calls`
    /// (not for a call that was busy: it never rang).
    pub notify: bool,
}

impl Transition {
    /// The history entry to append to the call's chat, once it ended.
    pub fn record(&self) -> Option<pb::CallEnded> {
        self.call.ended_event()
    }
}

/// The answer to [`CallBook::end`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The call ended now.
    Now(Transition),
    /// It had already ended: nothing changes.
    Already,
}

/// Every call this node knows: live ones, and ended ones for [`ENDED_KEPT_MS`]; private calls
/// here, group calls (spec 14.7) in [`super::group`].
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallBook {
    calls: BTreeMap<u64, CallRecord>,
    /// The live call (private or group) each user is in.
    pub(super) in_call: BTreeMap<u64, u64>,
    /// Group calls, by id.
    pub(super) groups: BTreeMap<u64, super::group::GroupRecord>,
    /// The live group call of each group chat that has one.
    pub(super) group_in_chat: BTreeMap<u64, u64>,
}

/// What connections that went away ended: private calls, and group calls they left.
#[derive(Debug, Default)]
pub struct Gone {
    /// Private calls ended DISCONNECTED.
    pub calls: Vec<Transition>,
    /// Group calls its devices left (ended, when they were the last).
    pub groups: Vec<super::group::GroupRecord>,
}

impl CallBook {
    /// The book's encoding (the same book always gives the same bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Encoding plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A book from [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<CallBook, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Every connection that takes part in a live call: the caller's of a private call from
    /// its start, the callee's once it answered, and the participants of group calls.
    fn taking_part(&self) -> impl Iterator<Item = Device> + '_ {
        self.calls
            .values()
            .flat_map(|c| match c.phase {
                Phase::Ringing { .. } => vec![c.caller],
                Phase::Active { callee_device, .. } => vec![
                    c.caller,
                    Device {
                        user_id: c.callee_id,
                        conn_id: callee_device,
                    },
                ],
                Phase::Ended { .. } => Vec::new(),
            })
            .chain(self.group_devices())
    }

    /// The nodes whose connections take part in a live call.
    pub fn nodes_in_use(&self) -> Vec<u32> {
        let mut nodes: Vec<u32> = self.taking_part().map(|d| node_of(d.conn_id)).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// The connections of node `node` that take part in a live call.
    pub fn devices_on(&self, node: u32) -> Vec<Device> {
        self.taking_part()
            .filter(|d| node_of(d.conn_id) == node)
            .collect()
    }

    /// Node `node` went away: every connection of it disconnected (see
    /// [`disconnected`](Self::disconnected) and [`group_disconnected`](Self::group_disconnected)).
    pub fn node_gone(&mut self, node: u32, now_ms: i64) -> Gone {
        self.all_disconnected(&self.devices_on(node), now_ms)
    }

    /// Each of `devices` disconnected.
    pub fn all_disconnected(&mut self, devices: &[Device], now_ms: i64) -> Gone {
        let mut gone = Gone::default();
        for &device in devices {
            gone.calls.extend(self.disconnected(device, now_ms));
            gone.groups.extend(self.group_disconnected(device, now_ms));
        }
        gone
    }

    /// The call `id`, if it is known.
    #[cfg(test)]
    pub fn get(&self, id: u64) -> Option<&CallRecord> {
        self.calls.get(&id)
    }

    /// True when `id` cannot name a new call: 0, or the id of a call (private or group) known.
    pub(super) fn id_taken(&self, id: u64) -> bool {
        id == 0 || self.calls.contains_key(&id) || self.groups.contains_key(&id)
    }

    /// The live private call `user_id` is in.
    pub fn call_of(&self, user_id: u64) -> Option<&CallRecord> {
        self.in_call.get(&user_id).and_then(|id| self.calls.get(id))
    }

    /// Starts call `id` from `caller` to `callee_id` in `chat_id`, ringing for `ring_ms`. A
    /// callee already in a call makes it end BUSY at once: it never rings, and is kept as any
    /// ended call is (spec 14.2), so ending it again changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        id: u64,
        chat_id: u64,
        caller: Device,
        callee_id: u64,
        video: bool,
        now_ms: i64,
        ring_ms: i64,
    ) -> Result<Transition, CallError> {
        if self.id_taken(id) {
            return Err(CallError::IdTaken);
        }
        if self.in_call.contains_key(&caller.user_id) {
            return Err(CallError::CallerInCall);
        }
        let mut call = CallRecord {
            id,
            chat_id,
            caller,
            callee_id,
            video,
            started_at_ms: now_ms,
            phase: Phase::Ringing {
                until_ms: now_ms.saturating_add(ring_ms),
            },
        };
        if self.in_call.contains_key(&callee_id) {
            call.end(Reason::Busy, caller.user_id, now_ms);
            self.calls.insert(id, call.clone());
            return Ok(Transition {
                call,
                notify: false,
            });
        }
        self.in_call.insert(caller.user_id, id);
        self.in_call.insert(callee_id, id);
        self.calls.insert(id, call.clone());
        Ok(Transition { call, notify: true })
    }

    /// The callee accepts call `id` on `device`, which then takes part.
    pub fn accept(
        &mut self,
        id: u64,
        device: Device,
        now_ms: i64,
    ) -> Result<Transition, CallError> {
        let call = self.user_call_mut(id, device.user_id)?;
        if call.caller.user_id == device.user_id {
            return Err(CallError::NotTheCallee);
        }
        if !matches!(call.phase, Phase::Ringing { .. }) {
            return Err(CallError::NotRinging);
        }
        call.phase = Phase::Active {
            callee_device: device.conn_id,
            answered_at_ms: now_ms,
        };
        Ok(Transition {
            call: call.clone(),
            notify: true,
        })
    }

    /// `user_id` ends call `id`: CANCELED, DECLINED or HUNG_UP by its phase and who asks.
    pub fn end(&mut self, id: u64, user_id: u64, now_ms: i64) -> Result<Ended, CallError> {
        let call = self.user_call_mut(id, user_id)?;
        let reason = match call.phase {
            Phase::Ended { .. } => return Ok(Ended::Already),
            Phase::Ringing { .. } if call.caller.user_id == user_id => Reason::Canceled,
            Phase::Ringing { .. } => Reason::Declined,
            Phase::Active { .. } => Reason::HungUp,
        };
        self.finish(id, reason, user_id, now_ms)
            .map(Ended::Now)
            .ok_or(CallError::NotFound)
    }

    /// `user_id` ends the live private call they share with `other`, if there is one, as
    /// [`end`](Self::end) does (a block: spec 9.2).
    pub fn end_shared(&mut self, user_id: u64, other: u64, now_ms: i64) -> Option<Transition> {
        let call = self.call_of(user_id)?;
        if call.caller.user_id != other && call.callee_id != other {
            return None;
        }
        self.end_live(call.id, user_id, now_ms)
    }

    /// The live private call of `chat_id` that one of `users` is in ends (its chat was
    /// deleted), as [`end`](Self::end) by `by` when they are one of its users, else by its
    /// caller.
    pub fn end_in_chat(
        &mut self,
        chat_id: u64,
        users: &[u64],
        by: u64,
        now_ms: i64,
    ) -> Option<Transition> {
        let call = users
            .iter()
            .find_map(|&user| self.call_of(user).filter(|c| c.chat_id == chat_id))?;
        let ender = if by == call.caller.user_id || by == call.callee_id {
            by
        } else {
            call.caller.user_id
        };
        self.end_live(call.id, ender, now_ms)
    }

    /// [`end`](Self::end) of a call known to be live and of `user_id`: the transition.
    fn end_live(&mut self, id: u64, user_id: u64, now_ms: i64) -> Option<Transition> {
        match self.end(id, user_id, now_ms) {
            Ok(Ended::Now(transition)) => Some(transition),
            Ok(Ended::Already) | Err(_) => None,
        }
    }

    /// Takes back call `id`, started a moment ago and told to nobody (its start was refused
    /// after it was made): it leaves no trace. False when it is not ringing.
    pub fn withdraw(&mut self, id: u64) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        if !matches!(call.phase, Phase::Ringing { .. }) {
            return false;
        }
        for user in [call.caller.user_id, call.callee_id] {
            if self.in_call.get(&user) == Some(&id) {
                self.in_call.remove(&user);
            }
        }
        self.calls.remove(&id);
        true
    }

    /// The device a signal from `from` on call `id` goes to: the other device taking part.
    pub fn peer(&self, id: u64, from: Device) -> Result<Device, CallError> {
        let call = self
            .calls
            .get(&id)
            .filter(|c| c.has_user(from.user_id))
            .ok_or(CallError::NotFound)?;
        let Phase::Active { callee_device, .. } = call.phase else {
            return Err(CallError::NotActive);
        };
        let callee = Device {
            user_id: call.callee_id,
            conn_id: callee_device,
        };
        if from == call.caller {
            Ok(callee)
        } else if from == callee {
            Ok(call.caller)
        } else {
            Err(CallError::NotTakingPart)
        }
    }

    /// A connection closed: the live call it takes part in ends DISCONNECTED (the caller's
    /// device while ringing or active, the callee's accepting device while active).
    pub fn disconnected(&mut self, device: Device, now_ms: i64) -> Option<Transition> {
        let call = self.call_of(device.user_id)?;
        let takes_part = call.caller == device
            || matches!(call.phase, Phase::Active { callee_device, .. }
                if call.callee_id == device.user_id && callee_device == device.conn_id);
        let id = call.id;
        if !takes_part {
            return None;
        }
        self.finish(id, Reason::Disconnected, device.user_id, now_ms)
    }

    /// Ends every call still ringing at `now_ms` as MISSED, and forgets calls ended more than
    /// [`ENDED_KEPT_MS`] ago.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Transition> {
        self.calls.retain(|_, c| match c.phase {
            Phase::Ended { at_ms, .. } => now_ms.saturating_sub(at_ms) < ENDED_KEPT_MS,
            _ => true,
        });
        self.forget_ended_groups(now_ms);
        let mut missed: Vec<(u64, u64)> = self
            .calls
            .values()
            .filter(|c| matches!(c.phase, Phase::Ringing { until_ms } if until_ms <= now_ms))
            .map(|c| (c.id, c.caller.user_id))
            .collect();
        missed.sort_unstable();
        missed
            .into_iter()
            .filter_map(|(id, caller)| self.finish(id, Reason::Missed, caller, now_ms))
            .collect()
    }

    /// The earliest time [`expire`](Self::expire) has something to do: a ring deadline or the
    /// end of an ended call's keeping.
    pub fn next_deadline(&self) -> Option<i64> {
        self.calls
            .values()
            .filter_map(|c| match c.phase {
                Phase::Ringing { until_ms } => Some(until_ms),
                Phase::Ended { at_ms, .. } => Some(at_ms.saturating_add(ENDED_KEPT_MS)),
                Phase::Active { .. } => None,
            })
            .chain(self.group_deadline())
            .min()
    }

    fn user_call_mut(&mut self, id: u64, user_id: u64) -> Result<&mut CallRecord, CallError> {
        self.calls
            .get_mut(&id)
            .filter(|c| c.has_user(user_id))
            .ok_or(CallError::NotFound)
    }

    /// Ends call `id` and frees its users; `None` when the book does not hold it.
    fn finish(&mut self, id: u64, reason: Reason, by: u64, now_ms: i64) -> Option<Transition> {
        let call = self.calls.get_mut(&id)?;
        call.end(reason, by, now_ms);
        let call = call.clone();
        for user in [call.caller.user_id, call.callee_id] {
            if self.in_call.get(&user) == Some(&id) {
                self.in_call.remove(&user);
            }
        }
        Some(Transition { call, notify: true })
    }
}
