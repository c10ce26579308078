//! Live signals end to end: delivery to every device of every member, typing by datagram and by
//! request (never to the typist's own devices, never across a block, rate-limited), and presence
//! (to contacts and chat peers, not to users the subject blocked).

use crate::support::*;
use chatproto::client::ClientEvent;
use chatproto::pb;
use pb::ErrorCode as E;

/// Waits for `user`'s next typing signal or next message in `chat_id`, whichever comes first.
async fn typing_or_message(user: &User, chat_id: u64) -> Result<pb::Typing, pb::Message> {
    user.wait_for(|e| match e {
        ClientEvent::Typing(t) => Some(Ok(t)),
        ClientEvent::Chat(ev) if ev.chat_id == chat_id => created(&ev).cloned().map(Err),
        _ => None,
    })
    .await
}

/// Waits for `user` to be told that `subject` has `status`.
async fn presence_of(user: &User, subject: u64, status: pb::UserStatus) {
    let p = user
        .wait_for(|e| match e {
            ClientEvent::Presence(p) if p.user_id == subject && p.status() == status => Some(p),
            _ => None,
        })
        .await;
    if status == pb::UserStatus::Offline {
        assert!(
            p.last_seen_at_ms > 0,
            "{}: offline without a last-seen time",
            user.name
        );
    }
}

#[tokio::test]
async fn every_device_of_every_member_gets_each_message_live() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let alice2 = device(&server, &alice).await;
    let bob = register(&server, "bob").await;
    let bob2 = device(&server, &bob).await;
    let chat = alice.client.create_private_chat(bob.id).await.unwrap().id;
    let sent = alice.send(chat, "to all of you").await;
    for device in [&alice, &alice2, &bob, &bob2] {
        let got = device.next_message(chat).await;
        assert_eq!(
            (got.seq, got.text.as_str()),
            (sent.seq, "to all of you"),
            "{}",
            device.name
        );
    }
}

#[tokio::test]
async fn typing_reaches_the_other_members_but_not_the_typist_or_across_blocks() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let alice2 = device_with(stream_only_config(&server), &alice).await;
    let bob = register(&server, "bob").await;
    let carol = register_with(stream_only_config(&server), "carol").await;
    let dave = register_with(stream_only_config(&server), "dave").await;
    let erin = register_with(stream_only_config(&server), "erin").await;
    let g = group(
        &alice,
        pb::ChatKind::Group,
        "typing",
        &[&bob, &carol, &dave, &erin],
    )
    .await
    .id;
    dave.client
        .block_user(pb::BlockUser { user_id: alice.id })
        .await
        .unwrap();
    alice
        .client
        .block_user(pb::BlockUser { user_id: erin.id })
        .await
        .unwrap();

    // By datagram.
    assert!(alice.client.datagrams_enabled());
    alice.client.send_typing(g).await.unwrap();
    for user in [&bob, &carol] {
        let t = user
            .wait_for(|e| match e {
                ClientEvent::Typing(t) => Some(t),
                _ => None,
            })
            .await;
        assert_eq!(
            (t.chat_id, t.user_id, t.expires_in_ms),
            (g, alice.id, 5000),
            "{}",
            user.name
        );
    }
    // Not to Alice's other device, not to Dave (who blocked her), not to Erin (whom she
    // blocked): their next signal is the sentinel message, not the typing.
    let sentinel = alice.send(g, "sentinel").await;
    for user in [&alice2, &dave, &erin] {
        let next = typing_or_message(user, g).await;
        assert_eq!(
            next.map(|t| t.user_id).map_err(|m| m.seq),
            Err(sentinel.seq),
            "{}",
            user.name
        );
    }

    // By request, from a client without datagrams.
    carol.client.send_typing(g).await.unwrap();
    let t = bob
        .wait_for(|e| match e {
            ClientEvent::Typing(t) if t.user_id == carol.id => Some(t),
            _ => None,
        })
        .await;
    assert_eq!(t.chat_id, g);
    let t = typing_or_message(&alice2, g)
        .await
        .expect("carol's typing before any message");
    assert_eq!(t.user_id, carol.id);
    assert_chat_not_found(carol.client.send_typing(9_999_999).await);
}

#[tokio::test]
async fn typing_is_rate_limited_per_user_and_chat() {
    let server = start_with(&["--limit-typing=1/m burst 1"]).await;
    let mut cfg = stream_only_config(&server);
    cfg.retry.max_retries = 0;
    let alice = register_with(cfg, "alice").await;
    let bob = register(&server, "bob").await;
    let g1 = group(&alice, pb::ChatKind::Group, "one", &[&bob]).await.id;
    let g2 = group(&alice, pb::ChatKind::Group, "two", &[&bob]).await.id;
    alice.client.send_typing(g1).await.unwrap();
    let e = assert_code(alice.client.send_typing(g1).await, E::RateLimited);
    assert!(e.retry_after.is_some());
    alice.client.send_typing(g2).await.unwrap();
}

#[tokio::test]
async fn presence_goes_to_contacts_and_peers_but_not_to_the_blocked() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let bob = register(&server, "bob").await;
    let carol = register(&server, "carol").await;
    let dave = register(&server, "dave").await;
    // Bob and Dave share a chat with Alice; Carol has her as a contact; Alice blocked Dave.
    let g = group(&alice, pb::ChatKind::Group, "peers", &[&bob, &dave])
        .await
        .id;
    carol
        .client
        .add_contact(pb::AddContact { user_id: alice.id })
        .await
        .unwrap();
    alice
        .client
        .block_user(pb::BlockUser { user_id: dave.id })
        .await
        .unwrap();

    // Blocking shows Alice offline to Dave at once; let him read up to a first sentinel.
    let before = alice.send(g, "before").await;
    assert_eq!(dave.next_message(g).await.seq, before.seq);

    alice.client.close().await;
    presence_of(&bob, alice.id, pb::UserStatus::Offline).await;
    presence_of(&carol, alice.id, pb::UserStatus::Offline).await;
    let alice = device(&server, &alice).await;
    presence_of(&bob, alice.id, pb::UserStatus::Online).await;
    presence_of(&carol, alice.id, pb::UserStatus::Online).await;

    // Dave heard nothing of Alice's going and coming back: the next thing he gets about her is
    // her next message.
    let sentinel = alice.send(g, "sentinel").await;
    let first = dave
        .wait_for(|e| match e {
            ClientEvent::Presence(p) if p.user_id == alice.id => Some(Err(p)),
            ClientEvent::Chat(ev) if ev.chat_id == g && created(&ev).is_some() => Some(Ok(ev.seq)),
            _ => None,
        })
        .await;
    assert_eq!(first, Ok(sentinel.seq));
}
