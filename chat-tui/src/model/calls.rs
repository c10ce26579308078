//! Calls as the screen shows them (signaling only: chat-tui carries no audio nor video). The
//! SDK's [`CallTracker`] decides where each call is from the answers and the `call` events in
//! whatever order they arrive; this adds what only the screen needs: the `/call` waiting for its
//! answer, the incoming calls this device already answered (their prompt is gone while the
//! answer travels), and the calls recorded in chats' histories.

use std::collections::{BTreeMap, BTreeSet};

use chatproto::calls::{CallPhase, CallTracker, CallView};
use chatproto::pb;

/// Everything about calls.
#[derive(Debug, Clone, Default)]
pub struct Calls {
    /// The calls of this user, from the SDK.
    pub tracker: CallTracker,
    /// A `start_call` sent and not answered yet: its chat.
    pub dialing: Option<u64>,
    /// Incoming calls this device accepted or declined; their prompt stays hidden until the
    /// server's answer or event moves them on.
    pub answered: BTreeSet<u64>,
    /// Ended calls recorded in chats' histories: `(chat_id, seq)` → the record and its time.
    pub log: BTreeMap<(u64, u64), LoggedCall>,
}

/// A `call_ended` chat event, as the message pane shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCall {
    /// The record.
    pub call: pb::CallEnded,
    /// When it was recorded (the chat event's time).
    pub at_ms: i64,
}

impl Calls {
    /// The calls of user `me` (after signing in).
    pub fn new(me: u64) -> Self {
        Self {
            tracker: CallTracker::new(me),
            ..Self::default()
        }
    }

    /// The incoming call whose prompt is up, if any.
    pub fn ringing(&self) -> Option<&CallView> {
        self.tracker
            .current()
            .filter(|v| v.phase == CallPhase::Incoming && !self.answered.contains(&v.call.call_id))
    }

    /// The call this device takes part in (calling or answered), if any.
    pub fn mine(&self) -> Option<&CallView> {
        self.tracker.current().filter(|v| v.here)
    }

    /// The recorded calls of a chat with seqs in `range`, oldest first.
    pub fn logged_in(
        &self,
        chat_id: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> impl DoubleEndedIterator<Item = (u64, &LoggedCall)> {
        self.log
            .range((chat_id, *range.start())..=(chat_id, *range.end()))
            .map(|(&(_, seq), c)| (seq, c))
    }
}

/// The other user of a call, by name.
pub fn peer_name(model: &super::Model, call: &pb::Call) -> String {
    let peer = if call.caller_id == model.me_id() {
        call.callee_id
    } else {
        call.caller_id
    };
    model.users.name(peer)
}

/// "audio" or "video".
pub fn kind(video: bool) -> &'static str {
    if video { "video" } else { "audio" }
}

/// A duration as `mm:ss`, or `h:mm:ss` from an hour on.
pub fn clock(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// A call's length in one word or two: "42 s", "3 min".
fn length(duration_ms: u64) -> String {
    let minutes = duration_ms / 60_000;
    if minutes == 0 {
        format!("{} s", duration_ms / 1000)
    } else {
        format!("{minutes} min")
    }
}

/// A recorded call in one line, for the message pane: "missed audio call", "video call · 3
/// min", "group audio call · 12 min". `me` tells who called (an outgoing call nobody answered
/// reads "no answer").
pub fn summary(call: &pb::CallEnded, me: u64) -> String {
    let kind = kind(call.video);
    if call.group {
        return format!("group {kind} call · {}", length(call.duration_ms));
    }
    let outgoing = call.caller_id == me;
    let reason = pb::CallEndReason::try_from(call.reason).unwrap_or(pb::CallEndReason::Unspecified);
    if call.duration_ms > 0 {
        return format!("{kind} call · {}", length(call.duration_ms));
    }
    let what = match reason {
        pb::CallEndReason::Missed | pb::CallEndReason::Canceled if !outgoing => {
            return format!("missed {kind} call");
        }
        pb::CallEndReason::Missed => " · no answer",
        pb::CallEndReason::Canceled => " · cancelled",
        pb::CallEndReason::Declined => " · declined",
        pb::CallEndReason::Busy => " · busy",
        pb::CallEndReason::Disconnected => " · dropped",
        pb::CallEndReason::HungUp | pb::CallEndReason::Unspecified => "",
    };
    let direction = if outgoing { "outgoing" } else { "incoming" };
    format!("{direction} {kind} call{what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(caller_id: u64, reason: pb::CallEndReason, duration_ms: u64) -> pb::CallEnded {
        pb::CallEnded {
            call_id: 1,
            caller_id,
            video: false,
            reason: reason as i32,
            started_at_ms: 0,
            duration_ms,
            group: false,
        }
    }

    #[test]
    fn recorded_calls_read_as_one_line() {
        use pb::CallEndReason as R;
        assert_eq!(summary(&ended(2, R::Missed, 0), 1), "missed audio call");
        assert_eq!(
            summary(&ended(1, R::Missed, 0), 1),
            "outgoing audio call · no answer"
        );
        assert_eq!(summary(&ended(2, R::Canceled, 0), 1), "missed audio call");
        assert_eq!(
            summary(&ended(2, R::Declined, 0), 1),
            "incoming audio call · declined"
        );
        assert_eq!(
            summary(&ended(1, R::Busy, 0), 1),
            "outgoing audio call · busy"
        );
        let mut video = ended(1, R::HungUp, 185_000);
        video.video = true;
        assert_eq!(summary(&video, 1), "video call · 3 min");
        assert_eq!(
            summary(&ended(1, R::HungUp, 42_000), 2),
            "audio call · 42 s"
        );
        let mut group = ended(2, R::HungUp, 720_000);
        group.group = true;
        assert_eq!(summary(&group, 1), "group audio call · 12 min");
    }

    #[test]
    fn durations_read_as_a_clock() {
        assert_eq!(clock(42_500), "00:42");
        assert_eq!(clock(61_000), "01:01");
        assert_eq!(clock(3_723_000), "1:02:03");
        assert_eq!(clock(-5), "00:00");
    }
}
