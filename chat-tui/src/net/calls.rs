//! Call requests (signaling only): start, accept, end. A server without the capability `calls`
//! (an older one, or a cluster) is told apart before asking, so the user reads why.

use chatproto::capability::Capability;
use chatproto::client::{Client, ClientError};
use chatproto::pb;

use super::describe::describe;
use crate::action::NetEvent;
use crate::effect::NetCommand;

/// What the user reads when the server does not offer calls.
pub const NOT_OFFERED: &str = "this server does not offer calls";

/// Why a call request failed, in words; `what` names the request.
fn refused(call_id: u64, what: &str, e: &ClientError) -> NetEvent {
    let reason = match e.code() {
        Some(pb::ErrorCode::FailedPrecondition) => NOT_OFFERED.to_string(),
        Some(pb::ErrorCode::Conflict) if what == "answer" => {
            "it was answered on another device, or has ended".to_string()
        }
        Some(pb::ErrorCode::Conflict) => "you are already in a call".to_string(),
        _ => describe(e),
    };
    NetEvent::CallFailed {
        call_id,
        error: format!("Could not {what} the call: {reason}"),
    }
}

/// True unless the current connection is up without `capability` (while it is down, the
/// request itself says so).
fn offered(client: &Client, capability: Capability) -> bool {
    client
        .welcome()
        .is_none_or(|w| capability.is_in(&w.capabilities))
}

/// Runs one call command; `None` for other commands.
pub async fn run(client: &Client, command: &NetCommand) -> Option<NetEvent> {
    Some(match *command {
        NetCommand::StartCall { chat_id, video } => {
            if !offered(client, Capability::Calls) {
                return Some(NetEvent::CallFailed {
                    call_id: 0,
                    error: format!("Cannot call: {NOT_OFFERED}"),
                });
            }
            match client.start_call(pb::StartCall { chat_id, video }).await {
                Ok(call) => NetEvent::CallStarted(call),
                Err(e) => refused(0, "start", &e),
            }
        }
        NetCommand::AcceptCall(call_id) => {
            match client.accept_call(pb::AcceptCall { call_id }).await {
                Ok(call) => NetEvent::CallAccepted(call),
                Err(e) => refused(call_id, "answer", &e),
            }
        }
        NetCommand::LoadGroupCall(chat_id) => {
            if !offered(client, Capability::GroupCalls) {
                return None;
            }
            // NOT_FOUND: the group has no live call, which the screen already shows.
            let call = client
                .get_group_call(pb::GetGroupCall { chat_id })
                .await
                .ok()?;
            NetEvent::GroupCall(call)
        }
        NetCommand::EndCall(call_id) => match client.end_call(pb::EndCall { call_id }).await {
            // The `call` event in state ENDED says how it ended.
            Ok(_) => return None,
            Err(e) => refused(call_id, "end", &e),
        },
        _ => return None,
    })
}
