//! Calls at their edges, as an outsider would push them (spec 9.9, 10, 14.2, 14.3): screen
//! sharing and renegotiation in an active call and their refusal elsewhere, a second
//! `start_call` for the same pair, a signal flood against the per-call limit, accept and decline
//! at once on one connection, SDP and candidates at their size limits and one byte over, and a
//! block or the chat's deletion in the middle of a call.

use crate::support::*;
use chatproto::client::ClientEvent;
use chatproto::pb;
use chatproto::pb::CallEndReason as Reason;
use chatproto::pb::ErrorCode as E;
use chatproto::pb::call_signal::Kind as Signal;

/// Longest SDP and candidate field (spec 10).
const MAX_SDP: usize = 65_536;
const MAX_CANDIDATE: usize = 1024;

fn signal(call_id: u64, kind: Signal) -> pb::CallSignal {
    pb::CallSignal {
        call_id,
        from_user_id: 0,
        kind: Some(kind),
    }
}

fn share(sharing: bool) -> Signal {
    Signal::ScreenShare(pb::ScreenShare {
        sharing,
        mid: if sharing { "2".into() } else { String::new() },
    })
}

/// The next relayed signal of `call_id` on `user`'s connection.
async fn relayed(user: &User, call_id: u64) -> pb::CallSignal {
    user.wait_for(|e| match e {
        ClientEvent::CallSignal(s) if s.call_id == call_id => Some(s),
        _ => None,
    })
    .await
}

/// Alice calls Bob; it rings on Bob's connection.
async fn ringing(alice: &User, bob: &User, chat: u64) -> u64 {
    let id = alice
        .client
        .start_call(pb::StartCall {
            chat_id: chat,
            video: true,
        })
        .await
        .expect("start_call")
        .call_id;
    bob.wait_for(|e| match e {
        ClientEvent::Call(c) if c.call_id == id => Some(()),
        _ => None,
    })
    .await;
    id
}

/// Alice calls Bob and Bob answers on his connection.
async fn active(alice: &User, bob: &User, chat: u64) -> u64 {
    let id = ringing(alice, bob, chat).await;
    bob.client
        .accept_call(pb::AcceptCall { call_id: id })
        .await
        .expect("accept_call");
    id
}

#[tokio::test]
async fn screen_sharing_and_renegotiation_are_relayed_in_an_active_call_only() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let bob2 = device(&server, &bob).await;
    let id = ringing(&alice, &bob, chat).await;
    // Not active yet: refused like any signal.
    let early = alice.client.send_call_signal(signal(id, share(true))).await;
    assert_code(early, E::Conflict);
    bob.client
        .accept_call(pb::AcceptCall { call_id: id })
        .await
        .expect("accept_call");
    let first =
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
    alice
        .client
        .send_call_signal(signal(id, Signal::Offer(first.into())))
        .await
        .expect("offer");
    relayed(&bob, id).await;
    bob.client
        .send_call_signal(signal(id, Signal::Answer(first.into())))
        .await
        .expect("answer");
    relayed(&alice, id).await;

    // Bob shares his screen: a new offer from the callee's side with the screen's track, the
    // answer from the caller's side, and the screen_share signal naming the track.
    let second = format!("{first}m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\n");
    for (from, to, kind) in [
        (&bob, &alice, Signal::Offer(second.clone())),
        (&alice, &bob, Signal::Answer(second.clone())),
        (&bob, &alice, share(true)),
        (&bob, &alice, share(false)),
    ] {
        from.client
            .send_call_signal(signal(id, kind.clone()))
            .await
            .expect("renegotiation or screen share");
        let got = relayed(to, id).await;
        assert_eq!((got.from_user_id, got.kind), (from.id, Some(kind)));
    }
    // Bob's other device takes no part; Carol is no user of the call.
    let stray = bob2.client.send_call_signal(signal(id, share(true))).await;
    assert_code(stray, E::Conflict);
    let carol = register(&server, "carol").await;
    let outsider = carol.client.send_call_signal(signal(id, share(true))).await;
    assert_code(outsider, E::NotFound);
    // Over the size of a mid.
    let long_mid = Signal::ScreenShare(pb::ScreenShare {
        sharing: true,
        mid: "m".repeat(MAX_CANDIDATE + 1),
    });
    let long = alice.client.send_call_signal(signal(id, long_mid)).await;
    assert_field(long, E::TooLarge, "send_call_signal.screen_share");
    // Over: refused like any signal.
    alice
        .client
        .end_call(pb::EndCall { call_id: id })
        .await
        .expect("hang up");
    let late = alice
        .client
        .send_call_signal(signal(id, share(false)))
        .await;
    assert_code(late, E::Conflict);
}

#[tokio::test]
async fn a_connection_without_screen_share_cannot_send_one() {
    let server = start().await;
    let mut config = config(&server);
    config
        .capabilities
        .retain(|c| c != chatproto::capability::Capability::ScreenShare.name());
    let alice = register_with(config, "alice").await;
    let bob = register(&server, "bob").await;
    let chat = alice
        .client
        .create_private_chat(bob.id)
        .await
        .expect("chat")
        .id;
    let id = active(&alice, &bob, chat).await;
    let refused = alice.client.send_call_signal(signal(id, share(true))).await;
    assert_code(refused, E::FailedPrecondition);
    // Bob negotiated it: his share reaches Alice (who ignores what she does not know).
    bob.client
        .send_call_signal(signal(id, share(true)))
        .await
        .expect("share");
}

#[tokio::test]
async fn a_second_start_call_for_the_same_pair_is_a_conflict_either_way() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let id = ringing(&alice, &bob, chat).await;
    let request = pb::StartCall {
        chat_id: chat,
        video: false,
    };
    assert_code(alice.client.start_call(request).await, E::Conflict);
    // Bob calling back while Alice's call rings: he is in that call already.
    assert_code(bob.client.start_call(request).await, E::Conflict);
    // The first call is untouched and still answerable.
    let accepted = bob
        .client
        .accept_call(pb::AcceptCall { call_id: id })
        .await
        .expect("accept");
    assert_eq!(accepted.state, pb::CallState::Active as i32);
    assert_code(bob.client.start_call(request).await, E::Conflict);
}

#[tokio::test]
async fn a_signal_flood_is_rate_limited_per_call_and_user() {
    let server = start_with(&["--limit-call-signal", "1/m burst 5"]).await;
    let (alice, bob, chat) = pair(&server).await;
    let id = active(&alice, &bob, chat).await;
    let candidate = |n: u32| {
        Signal::Candidate(pb::IceCandidate {
            candidate: format!("candidate:{n} 1 udp 2122260223 192.0.2.1 {n} typ host"),
            sdp_mid: "0".into(),
            sdp_m_line_index: 0,
            username_fragment: String::new(),
        })
    };
    for n in 0..5 {
        alice
            .client
            .send_call_signal(signal(id, candidate(n)))
            .await
            .expect("within the burst");
    }
    let flood = alice
        .client
        .send_call_signal(signal(id, candidate(5)))
        .await;
    let e = assert_code(flood, E::RateLimited);
    assert!(e.retry_after.is_some(), "{e}");
    // What was allowed reached Bob (signals are unsequenced: in any order).
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(relayed(&bob, id).await.kind);
    }
    for n in 0..5 {
        assert!(
            got.contains(&Some(candidate(n))),
            "candidate {n} missing: {got:?}"
        );
    }
    // Bob's own budget is untouched.
    bob.client
        .send_call_signal(signal(id, candidate(9)))
        .await
        .expect("the other user's budget is separate");
}

/// The `call` event in ENDED of `call_id` on `user`'s connection.
async fn ended(user: &User, call_id: u64) -> pb::Call {
    user.wait_for(|e| match e {
        ClientEvent::Call(c) if c.call_id == call_id && c.state == pb::CallState::Ended as i32 => {
            Some(c)
        }
        _ => None,
    })
    .await
}

/// `user` sees active call `id` end HUNG_UP by `by`, and their signals to it are refused.
async fn hung_up_for(user: &User, id: u64, by: u64) {
    let call = ended(user, id).await;
    assert_eq!(
        (call.end_reason, call.ended_by),
        (Reason::HungUp as i32, by)
    );
    let late = user
        .client
        .send_call_signal(signal(id, Signal::Offer("v=0 late".into())))
        .await;
    assert_code(late, E::Conflict);
}

/// A block ends the private call between the two as if the blocker ended it (spec 9.2), for
/// both of them and in the chat's history; a call with someone else goes on.
#[tokio::test]
async fn a_block_ends_the_call_between_the_two() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let carol = register(&server, "carol").await;

    // Ringing on Bob's side, and Bob blocks Alice: declined by him.
    let id = ringing(&alice, &bob, chat).await;
    bob.client
        .block_user(pb::BlockUser { user_id: alice.id })
        .await
        .expect("block");
    for user in [&alice, &bob] {
        let call = ended(user, id).await;
        assert_eq!(
            (call.end_reason, call.ended_by),
            (Reason::Declined as i32, bob.id)
        );
    }
    let (_, recorded) = alice
        .chat_event(chat, |body| match body {
            pb::chat_event::Body::CallEnded(c) if c.call_id == id => Some(c.reason),
            _ => None,
        })
        .await;
    assert_eq!(recorded, Reason::Declined as i32);
    let again = alice
        .client
        .start_call(pb::StartCall {
            chat_id: chat,
            video: false,
        })
        .await;
    assert_code(again, E::PermissionDenied);

    // Active, and Alice blocks Bob: hung up by her; the call's signals are over.
    bob.client
        .unblock_user(pb::UnblockUser { user_id: alice.id })
        .await
        .expect("unblock");
    let id = active(&alice, &bob, chat).await;
    alice
        .client
        .block_user(pb::BlockUser { user_id: bob.id })
        .await
        .expect("block");
    hung_up_for(&bob, id, alice.id).await;

    // A block of a third user leaves a call going on.
    alice
        .client
        .unblock_user(pb::UnblockUser { user_id: bob.id })
        .await
        .expect("unblock");
    let id = active(&alice, &bob, chat).await;
    alice
        .client
        .block_user(pb::BlockUser { user_id: carol.id })
        .await
        .expect("block carol");
    bob.client
        .send_call_signal(signal(id, Signal::Offer("v=0 still on".into())))
        .await
        .expect("the call goes on");
    assert_eq!(
        relayed(&alice, id).await.kind,
        Some(Signal::Offer("v=0 still on".into()))
    );
}

/// Deleting the private chat ends its call, ringing or active, as if the one who deleted it
/// ended it; a server admin's deletion ends it as the caller's.
#[tokio::test]
async fn deleting_the_chat_ends_its_call() {
    let server = start().await;
    let admin = register_admin(&server, "root").await;
    let (alice, bob, chat) = pair(&server).await;
    let id = ringing(&alice, &bob, chat).await;
    bob.client
        .delete_chat(pb::DeleteChat { chat_id: chat })
        .await
        .expect("delete");
    for user in [&alice, &bob] {
        let call = ended(user, id).await;
        assert_eq!(
            (call.end_reason, call.ended_by),
            (Reason::Declined as i32, bob.id)
        );
    }

    for deleter in [&alice, &admin] {
        let chat = alice
            .client
            .create_private_chat(bob.id)
            .await
            .expect("a new private chat")
            .id;
        let id = active(&alice, &bob, chat).await;
        deleter
            .client
            .delete_chat(pb::DeleteChat { chat_id: chat })
            .await
            .expect("delete");
        hung_up_for(&bob, id, alice.id).await;
    }
}

#[tokio::test]
async fn accept_and_decline_at_once_end_in_one_consistent_outcome() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    for _ in 0..5 {
        let id = ringing(&alice, &bob, chat).await;
        let (accepted, ended) = tokio::join!(
            bob.client.accept_call(pb::AcceptCall { call_id: id }),
            bob.client.end_call(pb::EndCall { call_id: id }),
        );
        ended.expect("end_call succeeds whichever came first");
        let want = match accepted {
            // Accepted first: the end was a hang-up of the active call.
            Ok(call) => {
                assert_eq!(call.state, pb::CallState::Active as i32);
                Reason::HungUp
            }
            // Declined first: the accept found it ended.
            Err(e) => {
                assert_code::<()>(Err(e), E::Conflict);
                Reason::Declined
            }
        };
        let ended = alice
            .wait_for(|e| match e {
                ClientEvent::Call(c)
                    if c.call_id == id && c.state == pb::CallState::Ended as i32 =>
                {
                    Some(c)
                }
                _ => None,
            })
            .await;
        assert_eq!(ended.end_reason, want as i32);
    }
}

#[tokio::test]
async fn sdp_and_candidates_at_their_limit_pass_and_one_byte_over_is_too_large() {
    let server = start().await;
    let (alice, bob, chat) = pair(&server).await;
    let id = active(&alice, &bob, chat).await;
    let sdp = |len: usize| "a".repeat(len);
    let field = |len: usize, which: usize| {
        let mut c = pb::IceCandidate {
            candidate: "candidate:1 1 udp 1 192.0.2.1 1 typ host".into(),
            sdp_mid: "0".into(),
            sdp_m_line_index: 0,
            username_fragment: "u".into(),
        };
        let long = "c".repeat(len);
        match which {
            0 => c.candidate = long,
            1 => c.sdp_mid = long,
            _ => c.username_fragment = long,
        }
        Signal::Candidate(c)
    };
    alice
        .client
        .send_call_signal(signal(id, Signal::Offer(sdp(MAX_SDP))))
        .await
        .expect("an offer of 64 KiB");
    let got = relayed(&bob, id).await;
    assert_eq!(got.kind, Some(Signal::Offer(sdp(MAX_SDP))));
    let over = alice
        .client
        .send_call_signal(signal(id, Signal::Offer(sdp(MAX_SDP + 1))))
        .await;
    assert_field(over, E::TooLarge, "send_call_signal.offer");
    bob.client
        .send_call_signal(signal(id, Signal::Answer(sdp(MAX_SDP))))
        .await
        .expect("an answer of 64 KiB");
    let over = bob
        .client
        .send_call_signal(signal(id, Signal::Answer(sdp(MAX_SDP + 1))))
        .await;
    assert_field(over, E::TooLarge, "send_call_signal.answer");
    for which in 0..3 {
        alice
            .client
            .send_call_signal(signal(id, field(MAX_CANDIDATE, which)))
            .await
            .expect("a candidate field of 1024 bytes");
        let over = alice
            .client
            .send_call_signal(signal(id, field(MAX_CANDIDATE + 1, which)))
            .await;
        assert_field(over, E::TooLarge, "send_call_signal.candidate");
    }
}
