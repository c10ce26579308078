//! Group calls end to end (spec 14.7), over real QUIC: the participant list as the call's state
//! reaching every member, mesh signaling addressed to one participant device, a participant who
//! leaves and joins again with a new device id, the end when the last one leaves (recorded in
//! the group's history), the ninth participant, non-members, channels and a second device
//! refused, a user in a group call busy for private calls, and a closed connection leaving.

use crate::support::*;
use chatproto::calls::CallTracker;
use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::CallEndReason as Reason;
use chatproto::pb::ErrorCode as E;
use chatproto::pb::chat_event::Body;
use chatproto::pb::group_call_signal::Kind as Signal;
use tests::calls::{join_group_call, leave_group_call, to_device as to};

/// The next `group_call` event of `call_id` that `pick` accepts; earlier ones are skipped.
async fn group_event(
    user: &User,
    call_id: u64,
    mut pick: impl FnMut(&pb::GroupCall) -> bool,
) -> pb::GroupCall {
    user.wait_for(|e| match e {
        ClientEvent::GroupCall(c) if c.call_id == call_id && pick(&c) => Some(c),
        _ => None,
    })
    .await
}

/// The users taking part, in the order they joined.
fn users_in(call: &pb::GroupCall) -> Vec<u64> {
    call.participants.iter().map(|p| p.user_id).collect()
}

/// The next `group_call` event of `call_id` with exactly `users` taking part.
async fn with_users(user: &User, call_id: u64, users: &[u64]) -> pb::GroupCall {
    group_event(user, call_id, |c| users_in(c) == users).await
}

/// The next signal of `call_id` relayed to `user`.
async fn signal(user: &User, call_id: u64) -> pb::GroupCallSignal {
    user.wait_for(|e| match e {
        ClientEvent::GroupCallSignal(s) if s.call_id == call_id => Some(s),
        _ => None,
    })
    .await
}

async fn join(user: &User, chat_id: u64) -> pb::GroupCall {
    join_group_call(&user.client, chat_id).await
}

async fn leave(user: &User, call_id: u64) {
    leave_group_call(&user.client, call_id).await
}

#[tokio::test]
async fn a_mesh_of_three_where_one_leaves_and_rejoins_ends_with_the_last() {
    let server = start().await;
    let ([alice, bob, carol, dave], group) = group_of::<4>(&server).await;
    let chat = group.id;

    // Alice starts the call: the members learn of it, with her device as its only participant.
    let started = join(&alice, chat).await;
    let id = started.call_id;
    assert_eq!(started.state, pb::CallState::Active as i32);
    assert_eq!(
        (started.started_by, started.video, users_in(&started)),
        (alice.id, true, vec![alice.id])
    );
    let a = started.device_id;
    assert_ne!(a, 0);
    let mut dave_calls = CallTracker::new(dave.id);
    dave_calls.on_group_event(with_users(&dave, id, &[alice.id]).await);
    assert_eq!(
        dave_calls.group_in_chat(chat).map(|v| v.device_id),
        Some(None),
        "dave sees the call without taking part"
    );
    let fetched = bob
        .client
        .get_group_call(pb::GetGroupCall { chat_id: chat })
        .await
        .expect("get_group_call");
    assert_eq!((fetched.call_id, fetched.device_id), (id, 0));

    // Bob joins and, having joined later, offers to Alice's device; she answers his.
    let mut bob_calls = CallTracker::new(bob.id);
    let joined = join(&bob, chat).await;
    let b = joined.device_id;
    assert_eq!(users_in(&joined), [alice.id, bob.id]);
    let view = bob_calls.group_answer(joined).expect("tracked");
    assert_eq!(view.peers().map(|p| p.device_id).collect::<Vec<_>>(), [a]);
    let seen = with_users(&alice, id, &[alice.id, bob.id]).await;
    assert!(seen.version > started.version);
    assert_eq!(seen.device_id, 0, "events name no device");
    let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    bob.client
        .send_group_call_signal(to(id, a, Signal::Offer(offer.into())))
        .await
        .expect("offer");
    let got = signal(&alice, id).await;
    assert_eq!(
        (got.from_user_id, got.from_device_id, got.to_device_id),
        (bob.id, b, a)
    );
    assert_eq!(got.kind, Some(Signal::Offer(offer.into())));
    alice
        .client
        .send_group_call_signal(to(id, b, Signal::Answer("v=0 answer".into())))
        .await
        .expect("answer");
    let got = signal(&bob, id).await;
    assert_eq!(
        (got.from_device_id, got.kind),
        (a, Some(Signal::Answer("v=0 answer".into())))
    );

    // Carol joins and offers to each of the two: each gets only the one addressed to it.
    let c = join(&carol, chat).await.device_id;
    for device in [a, b] {
        carol
            .client
            .send_group_call_signal(to(id, device, Signal::Offer(format!("for {device}"))))
            .await
            .expect("offer");
    }
    for (user, device) in [(&alice, a), (&bob, b)] {
        let got = signal(user, id).await;
        assert_eq!(
            (got.from_device_id, got.to_device_id, got.kind),
            (c, device, Some(Signal::Offer(format!("for {device}"))))
        );
    }

    // Bob leaves: no longer in the list, his device may not signal; he joins again as a new
    // device, which the others learn.
    leave(&bob, id).await;
    with_users(&alice, id, &[alice.id, carol.id]).await;
    let after = bob
        .client
        .send_group_call_signal(to(id, a, Signal::Offer(offer.into())))
        .await;
    assert_code(after, E::Conflict);
    let again = bob
        .client
        .leave_group_call(pb::LeaveGroupCall { call_id: id })
        .await;
    assert!(again.is_ok(), "leaving twice changes nothing: {again:?}");
    let rejoined = join(&bob, chat).await;
    assert_eq!(rejoined.call_id, id, "the same call");
    assert!(![a, b, c].contains(&rejoined.device_id), "a new device id");
    let seen = with_users(&carol, id, &[alice.id, carol.id, bob.id]).await;
    assert_eq!(
        seen.participants.last().map(|p| p.device_id),
        Some(rejoined.device_id)
    );
    let view = bob_calls.group_answer(rejoined.clone()).expect("tracked");
    assert_eq!(view.device_id, Some(rejoined.device_id));
    let mut peers: Vec<u64> = view.peers().map(|p| p.device_id).collect();
    peers.sort_unstable();
    assert_eq!(peers, [a, c]);
    carol
        .client
        .send_group_call_signal(to(id, rejoined.device_id, Signal::Offer("x".into())))
        .await
        .expect("a signal to the new device");
    assert_eq!(signal(&bob, id).await.to_device_id, rejoined.device_id);

    // Everyone leaves; the last one ends it, and the group's history records it.
    leave(&alice, id).await;
    leave(&bob, id).await;
    leave(&carol, id).await;
    let ended = group_event(&dave, id, |c| c.state == pb::CallState::Ended as i32).await;
    assert_eq!(ended.end_reason, Reason::HungUp as i32);
    assert!(ended.participants.is_empty());
    assert!(ended.ended_at_ms >= ended.started_at_ms);
    dave_calls.on_group_event(ended);
    assert!(dave_calls.group_in_chat(chat).is_none());
    let (event, record) = dave
        .chat_event(chat, |b| match b {
            Body::CallEnded(c) => Some(*c),
            _ => None,
        })
        .await;
    assert_eq!(
        (record.call_id, record.group, record.caller_id, record.video),
        (id, true, alice.id, true)
    );
    assert_eq!(record.reason, Reason::HungUp as i32);
    assert_eq!(event.actor_id, carol.id, "the last to leave ended it");
    let none = dave
        .client
        .get_group_call(pb::GetGroupCall { chat_id: chat })
        .await;
    assert_code(none, E::NotFound);
    // A join now starts a new call.
    let next = join(&dave, chat).await;
    assert_ne!(next.call_id, id);
    assert_eq!(users_in(&next), [dave.id]);
}

#[tokio::test]
async fn a_ninth_participant_non_members_and_second_devices_are_refused() {
    let server = start().await;
    let (users, group) = group_of::<9>(&server).await;
    let chat = group.id;
    let call = join(&users[0], chat).await;
    for user in &users[1..8] {
        join(user, chat).await;
    }
    let full = users[8]
        .client
        .join_group_call(pb::JoinGroupCall {
            chat_id: chat,
            video: false,
        })
        .await;
    let e = assert_code(full, E::Conflict);
    assert!(e.message.contains('8'), "{e}");
    // A second device of a participant: the user is in the call already.
    let second = device(&server, &users[1]).await;
    let twice = second
        .client
        .join_group_call(pb::JoinGroupCall {
            chat_id: chat,
            video: false,
        })
        .await;
    assert_code(twice, E::Conflict);
    // Non-members learn nothing of it, and cannot join, leave or signal.
    let outsider = register(&server, "outsider").await;
    assert_chat_not_found(
        outsider
            .client
            .join_group_call(pb::JoinGroupCall {
                chat_id: chat,
                video: false,
            })
            .await,
    );
    assert_chat_not_found(
        outsider
            .client
            .get_group_call(pb::GetGroupCall { chat_id: chat })
            .await,
    );
    assert_code(
        outsider
            .client
            .leave_group_call(pb::LeaveGroupCall {
                call_id: call.call_id,
            })
            .await,
        E::NotFound,
    );
    assert_code(
        outsider
            .client
            .send_group_call_signal(to(call.call_id, call.device_id, Signal::Offer("v".into())))
            .await,
        E::NotFound,
    );
    // A participant is in a call: a private call to them is busy.
    let private = outsider
        .client
        .create_private_chat(users[2].id)
        .await
        .expect("private chat")
        .id;
    let busy = outsider
        .client
        .start_call(pb::StartCall {
            chat_id: private,
            video: false,
        })
        .await
        .expect("start_call");
    assert_eq!(
        (busy.state, busy.end_reason),
        (pb::CallState::Ended as i32, Reason::Busy as i32)
    );
    // Once one leaves, the ninth gets in.
    leave(&users[3], call.call_id).await;
    let ninth = join(&users[8], chat).await;
    assert_eq!(ninth.participants.len(), 8);
    // Channels have no group calls.
    let news = crate::support::group(&users[0], pb::ChatKind::Channel, "news", &[&users[1]]).await;
    let refused = users[0]
        .client
        .join_group_call(pb::JoinGroupCall {
            chat_id: news.id,
            video: false,
        })
        .await;
    assert_code(refused, E::PermissionDenied);
}

#[tokio::test]
async fn a_closed_connection_leaves_and_the_last_one_ends_it_disconnected() {
    let server = start().await;
    let ([alice, bob, carol], group) = group_of::<3>(&server).await;
    let chat = group.id;
    let id = join(&alice, chat).await.call_id;
    join(&bob, chat).await;
    with_users(&carol, id, &[alice.id, bob.id]).await;
    bob.client.close().await;
    with_users(&carol, id, &[alice.id]).await;
    alice.client.close().await;
    let ended = group_event(&carol, id, |c| c.state == pb::CallState::Ended as i32).await;
    assert_eq!(ended.end_reason, Reason::Disconnected as i32);
    let (_, record) = carol
        .chat_event(chat, |b| match b {
            Body::CallEnded(c) => Some(*c),
            _ => None,
        })
        .await;
    assert_eq!(
        (record.group, record.reason),
        (true, Reason::Disconnected as i32)
    );
}

#[tokio::test]
async fn connections_without_group_calls_get_none_of_it() {
    let server = start().await;
    let ([alice, bob], group) = group_of::<2>(&server).await;
    let mut older = config(&server);
    older
        .capabilities
        .retain(|c| c != chatproto::capability::Capability::GroupCalls.name());
    let bob_old = device_with(older, &bob).await;
    let refused = bob_old
        .client
        .join_group_call(pb::JoinGroupCall {
            chat_id: group.id,
            video: false,
        })
        .await;
    assert_code(refused, E::FailedPrecondition);
    let id = join(&alice, group.id).await.call_id;
    // Bob's other device hears of it; then a message, which the old device gets with no
    // group_call event before it.
    with_users(&bob, id, &[alice.id]).await;
    alice.send(group.id, "after the call started").await;
    let first = bob_old
        .wait_for(|e| match e {
            ClientEvent::GroupCall(c) => Some(Err(c)),
            ClientEvent::Chat(ev) if ev.chat_id == group.id => match ev.body {
                Some(Body::MessageCreated(m)) => Some(Ok(m.text)),
                _ => None,
            },
            _ => None,
        })
        .await;
    assert_eq!(first, Ok("after the call started".to_owned()));
}

/// A member removed from the group, or leaving it, leaves its call: the others see them go,
/// they are told too, and their signals to the call are refused. Deleting the group ends it.
#[tokio::test]
async fn members_removed_from_the_group_or_leaving_it_leave_its_call() {
    let server = start().await;
    let ([alice, bob, carol, dave], group) = group_of::<4>(&server).await;
    let call = join(&alice, group.id).await;
    let id = call.call_id;
    let a = call
        .participants
        .iter()
        .find(|p| p.user_id == alice.id)
        .expect("alice takes part")
        .device_id;
    for user in [&bob, &carol, &dave] {
        join(user, group.id).await;
    }
    alice
        .client
        .remove_member(pb::RemoveMember {
            chat_id: group.id,
            user_id: bob.id,
        })
        .await
        .expect("remove bob");
    let rest = [alice.id, carol.id, dave.id];
    with_users(&carol, id, &rest).await;
    with_users(&bob, id, &rest).await;
    let offer = Signal::Offer("v=0 offer".into());
    assert_code(
        bob.client
            .send_group_call_signal(to(id, a, offer.clone()))
            .await,
        E::NotFound,
    );

    dave.client
        .leave_chat(pb::LeaveChat { chat_id: group.id })
        .await
        .expect("dave leaves");
    with_users(&alice, id, &[alice.id, carol.id]).await;
    with_users(&dave, id, &[alice.id, carol.id]).await;
    assert_code(
        dave.client.send_group_call_signal(to(id, a, offer)).await,
        E::NotFound,
    );

    // Deleting the group takes everyone out: the call ends.
    alice
        .client
        .delete_chat(pb::DeleteChat { chat_id: group.id })
        .await
        .expect("delete the group");
    let ended = group_event(&carol, id, |c| c.state == pb::CallState::Ended as i32).await;
    assert!(ended.participants.is_empty(), "{ended:?}");
}
