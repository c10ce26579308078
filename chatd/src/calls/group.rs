//! Group calls (spec 14.7), sans-IO like [`super::machine`]: a group chat has at most one live
//! group call, joined by up to [`MAX_PARTICIPANTS`] devices (one per user), each pair of which
//! runs its own WebRTC session (a mesh); the server relays each signal to the one participant
//! device it names. The call starts with its first participant and ends when the last one
//! leaves. The transitions live on [`CallBook`], whose per-user index makes a user in a group
//! call busy for private calls and the other way round.

use chatproto::pb;
use chatproto::pb::CallEndReason as Reason;
use serde::{Deserialize, Serialize};

use super::machine::{CallBook, Device, ENDED_KEPT_MS, reason_number};

/// Most devices in one group call (spec 10).
pub const MAX_PARTICIPANTS: usize = 8;

/// One device taking part in a group call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// The connection taking part.
    pub device: Device,
    /// Its name in the call (spec: `GroupCallParticipant.device_id`), unique in the call.
    pub device_id: u64,
    /// When it joined.
    pub joined_at_ms: i64,
}

/// How a group call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEnd {
    /// HUNG_UP or DISCONNECTED.
    #[serde(with = "reason_number")]
    pub reason: Reason,
    /// When.
    pub at_ms: i64,
}

/// One group call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Server-made, never 0, unique among calls of both kinds.
    pub id: u64,
    /// The group chat.
    pub chat_id: u64,
    /// Its first participant's user.
    pub started_by: u64,
    /// Video or audio only.
    pub video: bool,
    /// When its first participant joined.
    pub started_at_ms: i64,
    /// The devices taking part now, in the order they joined.
    pub participants: Vec<Participant>,
    /// Once over: why, and when.
    pub ended: Option<GroupEnd>,
    /// Bumped by every change.
    pub version: u64,
    /// Device ids handed out so far (the next one is this plus one).
    pub joins: u64,
    /// The user who left last (who ended it, once it ended).
    pub last_left: u64,
}

impl GroupRecord {
    /// The call on the wire; `asker` is the connection an answer goes to (`None` for events).
    pub fn to_pb(&self, asker: Option<Device>) -> pb::GroupCall {
        let (state, end_reason, ended_at_ms) = match self.ended {
            Some(GroupEnd { reason, at_ms }) => (pb::CallState::Ended, reason as i32, at_ms),
            None => (pb::CallState::Active, 0, 0),
        };
        pb::GroupCall {
            call_id: self.id,
            chat_id: self.chat_id,
            started_by: self.started_by,
            video: self.video,
            state: state as i32,
            started_at_ms: self.started_at_ms,
            ended_at_ms,
            participants: self
                .participants
                .iter()
                .map(|p| pb::GroupCallParticipant {
                    user_id: p.device.user_id,
                    device_id: p.device_id,
                    joined_at_ms: p.joined_at_ms,
                })
                .collect(),
            device_id: asker
                .and_then(|d| self.participant(d))
                .map_or(0, |p| p.device_id),
            version: self.version,
            end_reason,
        }
    }

    /// The history entry of an ended group call (spec 14.4, 14.7); `None` while it is live.
    pub fn ended_event(&self) -> Option<pb::CallEnded> {
        let GroupEnd { reason, at_ms } = self.ended?;
        Some(pb::CallEnded {
            call_id: self.id,
            caller_id: self.started_by,
            video: self.video,
            reason: reason as i32,
            started_at_ms: self.started_at_ms,
            duration_ms: u64::try_from(at_ms.saturating_sub(self.started_at_ms)).unwrap_or(0),
            group: true,
        })
    }

    /// The participant on connection `device`.
    pub fn participant(&self, device: Device) -> Option<&Participant> {
        self.participants.iter().find(|p| p.device == device)
    }

    /// Takes `user_id`'s device out; the call ends with `reason` when it was the last one.
    /// False when the user did not take part.
    fn remove(&mut self, user_id: u64, reason: Reason, now_ms: i64) -> bool {
        let before = self.participants.len();
        self.participants.retain(|p| p.device.user_id != user_id);
        if self.participants.len() == before {
            return false;
        }
        self.version += 1;
        self.last_left = user_id;
        if self.participants.is_empty() {
            self.ended = Some(GroupEnd {
                reason,
                at_ms: now_ms,
            });
        }
        true
    }
}

/// Why a request on a group call is refused; each maps to one error code of spec 9.9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupError {
    /// No such group call (NOT_FOUND).
    NotFound,
    /// The user is already in a call, private or group (CONFLICT).
    InCall,
    /// The call has [`MAX_PARTICIPANTS`] already (CONFLICT).
    Full,
    /// The id picked for a new call is taken: pick another one.
    IdTaken,
    /// Signaling on an ended call, or from a connection that does not take part (CONFLICT).
    NotTakingPart,
    /// A signal to a device that does not take part (NOT_FOUND, `to_device_id`).
    NoSuchDevice,
}

/// Where a group call's signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The sender's participant (its `device_id` goes into the event).
    pub from: Participant,
    /// The addressee.
    pub to: Participant,
}

impl CallBook {
    /// The group call `id`, live or ended recently.
    pub fn group(&self, id: u64) -> Option<&GroupRecord> {
        self.groups.get(&id)
    }

    /// The live group call of `chat_id`.
    pub fn group_of_chat(&self, chat_id: u64) -> Option<&GroupRecord> {
        self.group_in_chat
            .get(&chat_id)
            .and_then(|id| self.groups.get(id))
    }

    /// `device` joins the live group call of `chat_id`, or starts one as call `new_id` (then of
    /// kind `video`) when the chat has none. Answers the call after the change.
    pub fn join_group(
        &mut self,
        chat_id: u64,
        device: Device,
        video: bool,
        new_id: u64,
        now_ms: i64,
    ) -> Result<GroupRecord, GroupError> {
        if self.in_call.contains_key(&device.user_id) {
            return Err(GroupError::InCall);
        }
        let id = match self.group_in_chat.get(&chat_id) {
            Some(&id) => id,
            None => {
                if self.id_taken(new_id) {
                    return Err(GroupError::IdTaken);
                }
                self.groups.insert(
                    new_id,
                    GroupRecord {
                        id: new_id,
                        chat_id,
                        started_by: device.user_id,
                        video,
                        started_at_ms: now_ms,
                        participants: Vec::new(),
                        ended: None,
                        version: 0,
                        joins: 0,
                        last_left: 0,
                    },
                );
                self.group_in_chat.insert(chat_id, new_id);
                new_id
            }
        };
        let call = self.groups.get_mut(&id).ok_or(GroupError::NotFound)?;
        if call.participants.len() >= MAX_PARTICIPANTS {
            return Err(GroupError::Full);
        }
        call.joins += 1;
        call.version += 1;
        call.participants.push(Participant {
            device,
            device_id: call.joins,
            joined_at_ms: now_ms,
        });
        let call = call.clone();
        self.in_call.insert(device.user_id, id);
        Ok(call)
    }

    /// `user_id` leaves group call `id` (from any of their devices). `Ok(None)` when they did
    /// not take part: nothing changes.
    pub fn leave_group(
        &mut self,
        id: u64,
        user_id: u64,
        now_ms: i64,
    ) -> Result<Option<GroupRecord>, GroupError> {
        let call = self.groups.get_mut(&id).ok_or(GroupError::NotFound)?;
        if !call.remove(user_id, Reason::HungUp, now_ms) {
            return Ok(None);
        }
        let call = call.clone();
        self.after_leaving(&call, user_id);
        Ok(Some(call))
    }

    /// Where a signal from `from` to the participant `to_device_id` of group call `id` goes.
    pub fn group_route(
        &self,
        id: u64,
        from: Device,
        to_device_id: u64,
    ) -> Result<Route, GroupError> {
        let call = self.groups.get(&id).ok_or(GroupError::NotFound)?;
        let from = *call.participant(from).ok_or(GroupError::NotTakingPart)?;
        let to = *call
            .participants
            .iter()
            .find(|p| p.device_id == to_device_id && p.device_id != from.device_id)
            .ok_or(GroupError::NoSuchDevice)?;
        Ok(Route { from, to })
    }

    /// A connection closed: it leaves the group call it took part in; the call ends
    /// DISCONNECTED when it was the last one.
    pub fn group_disconnected(&mut self, device: Device, now_ms: i64) -> Option<GroupRecord> {
        let id = *self.in_call.get(&device.user_id)?;
        let call = self.groups.get_mut(&id)?;
        call.participant(device)?;
        call.remove(device.user_id, Reason::Disconnected, now_ms);
        let call = call.clone();
        self.after_leaving(&call, device.user_id);
        Some(call)
    }

    /// Takes back group call `id` that `device` started a moment ago by joining, while nothing
    /// else happened to it (its only change, told to nobody: the join was refused after it was
    /// made): it leaves no trace, not even an ended call. False otherwise: the device leaves
    /// like any participant then.
    pub fn withdraw_group(&mut self, id: u64, device: Device) -> bool {
        let Some(call) = self.groups.get(&id) else {
            return false;
        };
        let only_start = call.version == 1
            && call.ended.is_none()
            && matches!(call.participants.as_slice(), [p] if p.device == device);
        if !only_start {
            return false;
        }
        let chat_id = call.chat_id;
        self.groups.remove(&id);
        if self.group_in_chat.get(&chat_id) == Some(&id) {
            self.group_in_chat.remove(&chat_id);
        }
        if self.in_call.get(&device.user_id) == Some(&id) {
            self.in_call.remove(&device.user_id);
        }
        true
    }

    /// Frees the user who left `call`, and the chat when the call ended.
    fn after_leaving(&mut self, call: &GroupRecord, user_id: u64) {
        if self.in_call.get(&user_id) == Some(&call.id) {
            self.in_call.remove(&user_id);
        }
        if call.ended.is_some() && self.group_in_chat.get(&call.chat_id) == Some(&call.id) {
            self.group_in_chat.remove(&call.chat_id);
        }
    }

    /// Forgets group calls ended more than [`ENDED_KEPT_MS`] ago.
    pub(super) fn forget_ended_groups(&mut self, now_ms: i64) {
        self.groups.retain(|_, c| match c.ended {
            Some(end) => now_ms.saturating_sub(end.at_ms) < ENDED_KEPT_MS,
            None => true,
        });
    }

    /// When the earliest ended group call is to be forgotten.
    pub(super) fn group_deadline(&self) -> Option<i64> {
        self.groups
            .values()
            .filter_map(|c| c.ended.map(|end| end.at_ms.saturating_add(ENDED_KEPT_MS)))
            .min()
    }

    /// Every device taking part in a live group call.
    pub(super) fn group_devices(&self) -> impl Iterator<Item = Device> + '_ {
        self.groups
            .values()
            .flat_map(|c| c.participants.iter().map(|p| p.device))
    }
}
