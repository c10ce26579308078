//! Connection migration (spec 2.4): a client whose network changes mid-conversation (the SDK
//! moves to a new UDP socket, as a phone does going from Wi-Fi to mobile data) keeps its
//! connection: the same session, no reconnect, every message both ways exactly once and in
//! order, and its peer sees no presence flap. A server that refuses migration makes the client
//! reconnect instead, which shows the test tells the two apart.

use std::time::Duration;

use chatproto::client::ClientEvent;
use chatproto::pb;

use crate::support::{User, pair, start_with};

/// Messages each side sends: half before the move, half after.
const MESSAGES: usize = 40;

/// What alice's device saw while she moved to a new socket mid-conversation.
struct Moved {
    /// Her local addresses before and after the move.
    before: Vec<std::net::SocketAddr>,
    after: Vec<std::net::SocketAddr>,
    /// Whether her client connected again (a new connection, not a migrated one).
    reconnected: bool,
}

/// Alice and bob message each other; alice moves to a new socket halfway. Checks that both
/// get every message of the other exactly once, in order.
async fn converse_and_move(alice: &User, bob: &User, chat: u64) -> Moved {
    // What arrived before (the first connection's own `connected`) is not part of the move.
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_millis(300), alice.client.next_event()).await
    {}
    let before = alice.client.rebind().expect("a first rebind");
    let mut after = before.clone();
    let mut reconnected = false;
    for i in 0..MESSAGES {
        if i == MESSAGES / 2 {
            after = alice.client.rebind().expect("rebind");
        }
        let (a_text, b_text) = (format!("a{i}"), format!("b{i}"));
        let (a, b) = tokio::join!(
            alice.client.send_text(chat, &a_text),
            bob.client.send_text(chat, &b_text)
        );
        a.expect("alice sends");
        b.expect("bob sends");
    }
    let mut from_bob = Vec::new();
    let mut from_alice = Vec::new();
    // Alice's own view: bob's messages, and whether she had to connect again.
    while from_bob.len() < MESSAGES {
        let event = alice.wait_for(Some).await;
        match event {
            ClientEvent::Connected { .. } => reconnected = true,
            ClientEvent::Chat(ev) if ev.chat_id == chat => {
                if let Some(pb::chat_event::Body::MessageCreated(m)) = ev.body
                    && m.sender_id == bob.id
                {
                    from_bob.push(m.text);
                }
            }
            _ => {}
        }
    }
    while from_alice.len() < MESSAGES {
        let m = bob.next_message(chat).await;
        if m.sender_id == alice.id {
            from_alice.push(m.text);
        }
    }
    let expect = |who: &str| {
        (0..MESSAGES)
            .map(|i| format!("{who}{i}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        from_bob,
        expect("b"),
        "alice got bob's messages once each, in order"
    );
    assert_eq!(
        from_alice,
        expect("a"),
        "bob got alice's messages once each, in order"
    );
    Moved {
        before,
        after,
        reconnected,
    }
}

/// The presence updates about `user` that `watcher` has received by now.
async fn presence_of(watcher: &User, user: u64) -> Vec<pb::UserStatus> {
    let mut seen = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), watcher.client.next_event()).await
    {
        if let ClientEvent::Presence(p) = event
            && p.user_id == user
        {
            seen.push(p.status());
        }
    }
    seen
}

#[tokio::test]
async fn a_client_that_changes_network_keeps_its_connection_and_every_message() {
    let server = start_with(&[]).await;
    let (alice, bob, chat) = pair(&server).await;
    let session = alice.client.tokens().expect("signed in").session_id;
    presence_of(&bob, alice.id).await;
    let moved = converse_and_move(&alice, &bob, chat).await;
    assert_ne!(moved.before, moved.after, "new local ports");
    assert!(
        !moved.reconnected,
        "the connection migrated; it was not replaced"
    );
    assert_eq!(
        alice.client.tokens().expect("signed in").session_id,
        session
    );
    let sessions = alice
        .client
        .list_sessions(pb::ListSessions {})
        .await
        .expect("sessions")
        .sessions;
    assert_eq!(sessions.len(), 1, "no new session: {sessions:?}");
    let flaps = presence_of(&bob, alice.id).await;
    assert!(
        !flaps.contains(&pb::UserStatus::Offline),
        "bob saw alice go offline: {flaps:?}"
    );
    // Bob does watch alice's presence: her leaving shows.
    alice.client.close().await;
    let gone = bob
        .wait_for(|e| match e {
            ClientEvent::Presence(p) if p.user_id == alice.id => Some(p.status()),
            _ => None,
        })
        .await;
    assert_eq!(gone, pb::UserStatus::Offline);
}

#[tokio::test]
async fn a_server_that_refuses_migration_makes_the_client_reconnect_and_lose_nothing() {
    let server = start_with(&["--migration=false", "--idle-timeout=15s"]).await;
    let (alice, bob, chat) = pair(&server).await;
    let moved = converse_and_move(&alice, &bob, chat).await;
    assert!(
        moved.reconnected,
        "a refused migration ends in a new connection"
    );
}
