//! Calls end to end (spec section 14), over real QUIC: a callee with two devices, accepting on
//! one stops the other ringing, offer, answer and candidates relayed verbatim to the device
//! taking part only; decline, busy, missed after a short ring timeout; non-members, group chats
//! and blocked users refused; the ended call in the chat's history; ICE servers with TURN
//! credentials.

use crate::support::*;
use chatproto::calls::{CallPhase, CallTracker};
use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::CallEndReason as Reason;
use chatproto::pb::ErrorCode as E;
use chatproto::pb::call_signal::Kind as Signal;
use chatproto::pb::chat_event::Body;

/// The next `call` event about `call_id` in `state`; earlier ones are skipped.
async fn call_in(user: &User, call_id: u64, state: pb::CallState) -> pb::Call {
    user.wait_for(|e| match e {
        ClientEvent::Call(c) if c.call_id == call_id && c.state == state as i32 => Some(c),
        _ => None,
    })
    .await
}

/// The next relayed signal of `call_id`.
async fn signal(user: &User, call_id: u64) -> pb::CallSignal {
    user.wait_for(|e| match e {
        ClientEvent::CallSignal(s) if s.call_id == call_id => Some(s),
        _ => None,
    })
    .await
}

/// The `call_ended` entry of `chat_id`'s history.
async fn recorded(user: &User, chat_id: u64) -> (pb::ChatEvent, pb::CallEnded) {
    user.chat_event(chat_id, |b| match b {
        Body::CallEnded(c) => Some(*c),
        _ => None,
    })
    .await
}

async fn call(caller: &User, chat_id: u64, video: bool) -> pb::Call {
    caller
        .client
        .start_call(pb::StartCall { chat_id, video })
        .await
        .expect("start_call")
}

fn send_signal(call_id: u64, kind: Signal) -> pb::CallSignal {
    pb::CallSignal {
        call_id,
        from_user_id: 0,
        kind: Some(kind),
    }
}

#[tokio::test]
async fn accepting_on_one_device_stops_the_other_and_signaling_reaches_only_it() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let bob2 = device(&server, &bob).await;
    let call = call(&alice, chat, true).await;
    let mut alice_calls = CallTracker::new(alice.id);
    let mut bob2_calls = CallTracker::new(bob.id);
    let placed = alice_calls.started(call).map(|v| (v.phase, v.here));
    assert_eq!(placed, Some((CallPhase::Outgoing, true)));
    assert_eq!(call.state, pb::CallState::Ringing as i32);
    assert_eq!(
        (call.caller_id, call.callee_id, call.video),
        (alice.id, bob.id, true)
    );
    assert!(call.ring_until_ms > call.started_at_ms);
    let id = call.call_id;
    // Both of Bob's devices ring; the SDK's tracker shows it as incoming.
    assert_eq!(
        call_in(&bob, id, pb::CallState::Ringing).await.chat_id,
        chat
    );
    let rings = bob2_calls.on_event(call_in(&bob2, id, pb::CallState::Ringing).await);
    assert_eq!(rings.map(|v| v.phase), Some(CallPhase::Incoming));
    let accepted = bob
        .client
        .accept_call(pb::AcceptCall { call_id: id })
        .await
        .expect("accept");
    assert_eq!(accepted.state, pb::CallState::Active as i32);
    // The other device stops ringing, the caller learns the answer; a second accept is refused.
    let elsewhere = bob2_calls.on_event(call_in(&bob2, id, pb::CallState::Active).await);
    assert_eq!(
        elsewhere.map(|v| (v.phase, v.here)),
        Some((CallPhase::Active, false))
    );
    assert!(
        bob2_calls.current().is_none(),
        "answered elsewhere: no longer rings"
    );
    alice_calls.on_event(call_in(&alice, id, pb::CallState::Active).await);
    assert_eq!(
        alice_calls.current().map(|v| v.phase),
        Some(CallPhase::Active)
    );
    let again = bob2
        .client
        .accept_call(pb::AcceptCall { call_id: id })
        .await;
    assert_code(again, E::Conflict);

    // Offer, answer and candidates both ways, verbatim, between the two devices taking part.
    let offer =
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
    let answer = offer.replace("o=- 1 2", "o=- 3 4");
    let candidate = pb::IceCandidate {
        candidate: "candidate:1 1 udp 2122260223 192.0.2.1 54400 typ host".into(),
        sdp_mid: "0".into(),
        sdp_m_line_index: 0,
        username_fragment: "F7gI".into(),
    };
    alice
        .client
        .send_call_signal(send_signal(id, Signal::Offer(offer.into())))
        .await
        .expect("offer");
    let got = signal(&bob, id).await;
    assert_eq!(
        (got.from_user_id, got.kind),
        (alice.id, Some(Signal::Offer(offer.into())))
    );
    bob.client
        .send_call_signal(send_signal(id, Signal::Answer(answer.clone())))
        .await
        .expect("answer");
    let got = signal(&alice, id).await;
    assert_eq!(
        (got.from_user_id, got.kind),
        (bob.id, Some(Signal::Answer(answer)))
    );
    for (from, to) in [(&alice, &bob), (&bob, &alice)] {
        from.client
            .send_call_signal(send_signal(id, Signal::Candidate(candidate.clone())))
            .await
            .expect("candidate");
        let got = signal(to, id).await;
        assert_eq!(got.kind, Some(Signal::Candidate(candidate.clone())));
    }
    // Bob's other device takes no part.
    let stray = bob2
        .client
        .send_call_signal(send_signal(id, Signal::Offer(offer.into())))
        .await;
    assert_code(stray, E::Conflict);
    let empty = alice
        .client
        .send_call_signal(pb::CallSignal {
            call_id: id,
            ..Default::default()
        })
        .await;
    assert_field(empty, E::InvalidArgument, "send_call_signal.kind");

    // Alice hangs up: every device hears it, and the chat's history records it.
    alice
        .client
        .end_call(pb::EndCall { call_id: id })
        .await
        .expect("hang up");
    for device in [&alice, &bob] {
        let ended = call_in(device, id, pb::CallState::Ended).await;
        assert_eq!(
            (ended.end_reason, ended.ended_by),
            (Reason::HungUp as i32, alice.id)
        );
        let (event, record) = recorded(device, chat).await;
        assert_eq!((event.actor_id, record.call_id), (alice.id, id));
        assert_eq!((record.reason, record.video), (Reason::HungUp as i32, true));
    }
    // Bob's other device got the end, and none of the signaling before it.
    let seen = bob2
        .wait_for(|e| match e {
            ClientEvent::CallSignal(s) => Some(Err(s)),
            ClientEvent::Call(c) if c.state == pb::CallState::Ended as i32 => Some(Ok(c)),
            _ => None,
        })
        .await;
    assert!(
        seen.is_ok(),
        "a device not taking part got signaling: {seen:?}"
    );
    // Ending again changes nothing; signaling on an ended call is refused.
    alice
        .client
        .end_call(pb::EndCall { call_id: id })
        .await
        .expect("again");
    let late = alice
        .client
        .send_call_signal(send_signal(id, Signal::Offer(offer.into())))
        .await;
    assert_code(late, E::Conflict);
}

#[tokio::test]
async fn declining_on_one_device_ends_the_call_everywhere() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let bob2 = device(&server, &bob).await;
    let id = call(&alice, chat, false).await.call_id;
    call_in(&bob, id, pb::CallState::Ringing).await;
    call_in(&bob2, id, pb::CallState::Ringing).await;
    bob2.client
        .end_call(pb::EndCall { call_id: id })
        .await
        .expect("decline");
    for device in [&alice, &bob, &bob2] {
        let ended = call_in(device, id, pb::CallState::Ended).await;
        assert_eq!(
            (ended.end_reason, ended.ended_by),
            (Reason::Declined as i32, bob.id)
        );
    }
    let (_, record) = recorded(&alice, chat).await;
    assert_eq!(
        (record.reason, record.duration_ms),
        (Reason::Declined as i32, 0)
    );
    let late = bob.client.accept_call(pb::AcceptCall { call_id: id }).await;
    assert_code(late, E::Conflict);
}

#[tokio::test]
async fn a_callee_in_a_call_is_busy_and_a_caller_cannot_start_a_second() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let carol = register(&server, "carol").await;
    let carol_bob = carol
        .client
        .create_private_chat(bob.id)
        .await
        .expect("chat")
        .id;
    let first = call(&alice, chat, false).await.call_id;
    call_in(&bob, first, pb::CallState::Ringing).await;
    let busy = call(&carol, carol_bob, false).await;
    assert_eq!(busy.state, pb::CallState::Ended as i32);
    assert_eq!(busy.end_reason, Reason::Busy as i32);
    let (_, record) = recorded(&carol, carol_bob).await;
    assert_eq!(
        (record.reason, record.caller_id),
        (Reason::Busy as i32, carol.id)
    );
    let second = alice
        .client
        .start_call(pb::StartCall {
            chat_id: chat,
            video: false,
        })
        .await;
    assert_code(second, E::Conflict);
    // Once the first call is over, Carol gets through.
    alice
        .client
        .end_call(pb::EndCall { call_id: first })
        .await
        .expect("cancel");
    let (_, canceled) = recorded(&bob, chat).await;
    assert_eq!(canceled.reason, Reason::Canceled as i32);
    assert_eq!(
        call(&carol, carol_bob, false).await.state,
        pb::CallState::Ringing as i32
    );
}

#[tokio::test]
async fn an_unanswered_call_is_missed_after_the_ring_timeout() {
    let server = start_with(&["--call-ring-timeout", "1s"]).await;
    let (alice, bob, chat) = pair(&server).await;
    let call = call(&alice, chat, false).await;
    assert_eq!(call.ring_until_ms - call.started_at_ms, 1000);
    for device in [&alice, &bob] {
        let ended = call_in(device, call.call_id, pb::CallState::Ended).await;
        assert_eq!(
            (ended.end_reason, ended.ended_by),
            (Reason::Missed as i32, alice.id)
        );
        assert!(ended.ended_at_ms >= call.ring_until_ms);
    }
    let (event, record) = recorded(&bob, chat).await;
    assert_eq!(
        (event.actor_id, record.reason),
        (alice.id, Reason::Missed as i32)
    );
}

#[tokio::test]
async fn non_members_group_chats_and_blocks_are_refused() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let carol = register(&server, "carol").await;
    let outsider = carol
        .client
        .start_call(pb::StartCall {
            chat_id: chat,
            video: false,
        })
        .await;
    assert_code(outsider, E::NotFound);
    let team = group(&alice, pb::ChatKind::Group, "team", &[&bob]).await;
    let in_group = alice
        .client
        .start_call(pb::StartCall {
            chat_id: team.id,
            video: false,
        })
        .await;
    assert_code(in_group, E::PermissionDenied);
    // A call Carol is no user of does not exist for her.
    let id = call(&alice, chat, false).await.call_id;
    assert_code(
        carol.client.end_call(pb::EndCall { call_id: id }).await,
        E::NotFound,
    );
    assert_code(
        carol
            .client
            .accept_call(pb::AcceptCall { call_id: id })
            .await,
        E::NotFound,
    );
    assert_code(
        alice
            .client
            .accept_call(pb::AcceptCall { call_id: id })
            .await,
        E::PermissionDenied,
    );
    alice
        .client
        .end_call(pb::EndCall { call_id: id })
        .await
        .expect("cancel");
    // Bob blocks Alice: she cannot call him, nor he her.
    bob.client
        .block_user(pb::BlockUser { user_id: alice.id })
        .await
        .expect("block");
    let blocked = alice
        .client
        .start_call(pb::StartCall {
            chat_id: chat,
            video: false,
        })
        .await;
    assert_code(blocked, E::PermissionDenied);
    let blocker = bob
        .client
        .start_call(pb::StartCall {
            chat_id: chat,
            video: false,
        })
        .await;
    assert_code(blocker, E::PermissionDenied);
}

#[tokio::test]
async fn without_the_capability_call_requests_are_refused() {
    let server = start().await;
    let mut config = config(&server);
    config
        .capabilities
        .retain(|c| c != chatproto::capability::Capability::Calls.name());
    let alice = register_with(config, "alice").await;
    let ice = alice.client.get_ice_servers(pb::GetIceServers {}).await;
    assert_code(ice, E::FailedPrecondition);
}

#[tokio::test]
async fn ice_servers_carry_turn_credentials_from_the_secret_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("turn.secret");
    std::fs::write(&secret, "example-secret\n").expect("write");
    let urls = "stun:turn.example.org:3478,turn:turn.example.org:3478?transport=udp";
    let server = start_with(&[
        "--ice-servers",
        urls,
        "--turn-secret-file",
        &secret.to_string_lossy(),
        "--turn-credential-ttl",
        "1h",
    ])
    .await;
    let alice = register(&server, "alice").await;
    let before_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let ice = alice
        .client
        .get_ice_servers(pb::GetIceServers {})
        .await
        .expect("ice");
    let [stun, turn] = ice.servers.as_slice() else {
        panic!("a STUN and a TURN server: {ice:?}");
    };
    assert_eq!(stun.urls, ["stun:turn.example.org:3478"]);
    assert!(stun.username.is_empty() && stun.credential.is_empty());
    assert_eq!(turn.urls, ["turn:turn.example.org:3478?transport=udp"]);
    let (expiry, user) = turn.username.split_once(':').expect("expiry:user");
    assert_eq!(user, alice.id.to_string());
    let expiry: i64 = expiry.parse().expect("unix seconds");
    assert!(
        (before_s + 3600..before_s + 3700).contains(&expiry),
        "{expiry}"
    );
    assert_eq!(ice.expires_at_ms, expiry * 1000);
    // base64 of a 20-byte HMAC-SHA1.
    assert_eq!(turn.credential.len(), 28);
    assert!(turn.credential.ends_with('='));
}

#[tokio::test]
async fn a_device_taking_part_that_goes_away_ends_the_call() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let bob2 = device(&server, &bob).await;
    let id = call(&alice, chat, false).await.call_id;
    call_in(&bob2, id, pb::CallState::Ringing).await;
    bob.client
        .accept_call(pb::AcceptCall { call_id: id })
        .await
        .expect("accept");
    bob.client.close().await;
    for device in [&alice, &bob2] {
        let ended = call_in(device, id, pb::CallState::Ended).await;
        assert_eq!(
            (ended.end_reason, ended.ended_by),
            (Reason::Disconnected as i32, bob.id)
        );
    }
    let (_, record) = recorded(&alice, chat).await;
    assert_eq!(record.reason, Reason::Disconnected as i32);
}
