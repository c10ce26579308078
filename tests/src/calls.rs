//! Group call requests the suites make again and again (spec 14.7), on any SDK client.

use chatproto::client::Client;
use chatproto::pb;
use chatproto::pb::group_call_signal::Kind;

/// Joins the group call of `chat_id` (starting a video call when it has none).
///
/// # Panics
/// When the server refuses.
pub async fn join_group_call(client: &Client, chat_id: u64) -> pb::GroupCall {
    client
        .join_group_call(pb::JoinGroupCall {
            chat_id,
            video: true,
        })
        .await
        .expect("join_group_call")
}

/// Leaves group call `call_id`.
///
/// # Panics
/// When the server refuses.
pub async fn leave_group_call(client: &Client, call_id: u64) {
    client
        .leave_group_call(pb::LeaveGroupCall { call_id })
        .await
        .expect("leave_group_call");
}

/// A signal of `kind` in group call `call_id` to its device `to_device_id`.
pub fn to_device(call_id: u64, to_device_id: u64, kind: Kind) -> pb::GroupCallSignal {
    pb::GroupCallSignal {
        call_id,
        to_device_id,
        kind: Some(kind),
        ..Default::default()
    }
}

/// Sends an offer `text` in group call `call_id` to its device `to_device_id`.
///
/// # Panics
/// When the server refuses.
pub async fn offer_to_device(client: &Client, call_id: u64, to_device_id: u64, text: &str) {
    client
        .send_group_call_signal(to_device(call_id, to_device_id, Kind::Offer(text.into())))
        .await
        .expect("send_group_call_signal");
}
