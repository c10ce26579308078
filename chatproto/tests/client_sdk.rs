//! The async client against a real QUIC server on loopback (the small test server in
//! `client_support`): handshake, typed requests, error mapping, event delivery, reconnects with
//! catch-up, SendMessage retry, typing datagrams, redirects, failover, token refresh, GoAway and
//! session revocation.

mod client_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatproto::client::{Client, ClientError, ClientEvent};
use chatproto::pb;
use client_support::{Identity, TestServer, config, init_tracing, register};

const WAIT: Duration = Duration::from_secs(20);

/// Reads events until `pred` accepts one, failing after [`WAIT`].
async fn wait_for(client: &Client, mut pred: impl FnMut(&ClientEvent) -> bool) -> ClientEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = client.next_event().await.expect("event stream ended");
            if pred(&event) {
                return event;
            }
        }
    })
    .await
    .expect("expected event did not arrive")
}

/// Like [`wait_for`], but records the `(chat_id, seq)` of every chat event read on the way.
async fn record_until(
    client: &Client,
    seen: &mut Vec<(u64, u64)>,
    mut pred: impl FnMut(&ClientEvent) -> bool,
) {
    wait_for(client, |e| {
        if let ClientEvent::Chat(ev) = e {
            seen.push((ev.chat_id, ev.seq));
        }
        pred(e)
    })
    .await;
}

#[tokio::test]
async fn handshake_typed_requests_and_error_mapping() {
    init_tracing();
    let server = TestServer::start("node-a").await;
    let client = Client::connect(config(&[&server])).await.unwrap();
    let welcome = client.welcome().unwrap();
    assert_eq!(welcome.node_id, "node-a");
    assert_eq!(welcome.capabilities, ["datagrams", "redirect"]);
    assert!(client.datagrams_enabled());

    // Before authentication, and with bad credentials: typed remote errors.
    let err = client.get_me(pb::GetMe {}).await.unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::Unauthenticated), "{err}");
    let err = client.login("nobody", "wrong", "x").await.unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::Unauthenticated), "{err}");

    let auth = register(&client, "alice").await;
    let me = client.get_me(pb::GetMe {}).await.unwrap();
    assert_eq!(me.username, "alice");
    assert_eq!(client.tokens().unwrap().user_id, auth.user.unwrap().id);
    assert_eq!(client.tokens().unwrap().refresh_token, auth.refresh_token);

    let chat = client
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "team".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let sent = client.send_text(chat.id, "hello").await.unwrap();
    assert_eq!(
        (sent.chat_id, sent.seq, sent.text.as_str()),
        (chat.id, 2, "hello")
    );
    assert_eq!(
        sent.client_msg_id.len(),
        32,
        "a client_msg_id was generated"
    );

    // INVALID_ARGUMENT carries the field; UNIMPLEMENTED is not retried.
    let err = client.send_text(chat.id, "").await.unwrap_err();
    let ClientError::Remote(remote) = &err else {
        panic!("expected a remote error, got {err}");
    };
    assert_eq!(remote.code, pb::ErrorCode::InvalidArgument);
    assert_eq!(remote.field, "send_message.text");
    let err = client
        .list_contacts(pb::ListContacts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::Unimplemented));

    // RATE_LIMITED is waited out and retried transparently.
    server.lock().knobs.rate_limit_next = 2;
    let before = server.count("get_me");
    client.get_me(pb::GetMe {}).await.unwrap();
    assert_eq!(server.count("get_me") - before, 3);

    // The event stream delivers both events of the new chat, in order.
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        if let ClientEvent::Chat(ev) =
            wait_for(&client, |e| matches!(e, ClientEvent::Chat(_))).await
        {
            assert_eq!(ev.chat_id, chat.id);
            seqs.push(ev.seq);
        }
    }
    assert_eq!(seqs, [1, 2]);
    client.close().await;
    let err = client.get_me(pb::GetMe {}).await.unwrap_err();
    assert!(matches!(err, ClientError::Closed(_)), "{err}");
}

#[tokio::test]
async fn events_arrive_exactly_once_across_disconnects_and_a_restart() {
    init_tracing();
    let server = TestServer::start("node-a").await;
    let chats: Vec<u64> = (0..3)
        .map(|i| server.create_chat(&format!("c{i}")))
        .collect();
    let client = Arc::new(Client::connect(config(&[&server])).await.unwrap());
    register(&client, "bob").await;

    // The application: records chat events and connection changes.
    let seen = Arc::new(std::sync::Mutex::new(BTreeMap::<u64, Vec<u64>>::new()));
    let connects = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let consumer = {
        let (client, seen, connects) = (client.clone(), seen.clone(), connects.clone());
        tokio::spawn(async move {
            while let Some(event) = client.next_event().await {
                match event {
                    ClientEvent::Chat(ev) => seen
                        .lock()
                        .unwrap()
                        .entry(ev.chat_id)
                        .or_default()
                        .push(ev.seq),
                    ClientEvent::Connected { .. } => {
                        connects.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        })
    };
    // Server-side senders keep posting throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (server, stop, chats) = (server.clone(), stop.clone(), chats.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                server.post(chats[n % chats.len()], &format!("m{n}"));
                n += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_connections();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_connections();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Twice in quick succession: the second lands while the client is still catching up.
    server.kill_connections();
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.restart(Duration::from_millis(300)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();

    let expected: BTreeMap<u64, Vec<u64>> = chats
        .iter()
        .map(|&c| (c, (1..=server.last_seq(c)).collect()))
        .collect();
    assert!(expected.values().all(|v| v.len() > 50), "the producer ran");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if *seen.lock().unwrap() == expected {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let seen = seen.lock().unwrap();
            let report: Vec<String> = expected
                .iter()
                .map(|(chat, want)| {
                    let got = seen.get(chat).cloned().unwrap_or_default();
                    let first_bad = got.iter().zip(want).position(|(a, b)| a != b);
                    format!(
                        "chat {chat}: saw {} of {} events, first mismatch at {first_bad:?}",
                        got.len(),
                        want.len()
                    )
                })
                .collect();
            panic!("{}", report.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Initial connect, then at least the first kill and the restart. Kills that land while the
    // client is still backing off coalesce into one reconnect, so on a loaded machine fewer than
    // four reconnects are seen; what matters is the exactly-once check above.
    assert!(
        connects.load(Ordering::Relaxed) >= 3,
        "initial + at least 2 reconnects, saw {}",
        connects.load(Ordering::Relaxed)
    );
    assert!(
        server.count("get_chat_events") > 0,
        "missed events were fetched"
    );
    // Every reconnect authenticates again (the first connect registered).
    let reconnects = connects.load(Ordering::Relaxed) - 1;
    assert!(
        server.count("authenticate") >= reconnects,
        "{reconnects} reconnects, {} of them re-authenticated",
        server.count("authenticate")
    );
    client.close().await;
    consumer.await.unwrap();
}

#[tokio::test]
async fn send_message_is_retried_after_a_lost_connection_without_duplicating() {
    init_tracing();
    let server = TestServer::start("node-a").await;
    let chat = server.create_chat("retry");
    let client = Client::connect(config(&[&server])).await.unwrap();
    register(&client, "carol").await;
    let mut seen = Vec::new();
    record_until(&client, &mut seen, |e| matches!(e, ClientEvent::CaughtUp)).await;

    server.lock().knobs.drop_after_commit = true;
    let msg = client
        .send_message(pb::SendMessage {
            chat_id: chat,
            client_msg_id: "retry-1".into(),
            kind: pb::MessageKind::Text as i32,
            text: "only once".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(server.count("send_message"), 2, "sent, lost, sent again");
    assert_eq!(msg.seq, 2);
    let stored: Vec<u64> = server.lock().chats[&chat]
        .iter()
        .filter(|e| {
            matches!(&e.body, Some(pb::chat_event::Body::MessageCreated(m)) if m.client_msg_id == "retry-1")
        })
        .map(|e| e.seq)
        .collect();
    assert_eq!(stored, [2], "exactly one message was created");

    // The application sees the chat's events once each, across the reconnect.
    server.post(chat, "after");
    record_until(
        &client,
        &mut seen,
        |e| matches!(e, ClientEvent::Chat(ev) if ev.seq == 3),
    )
    .await;
    assert_eq!(seen, [(chat, 1), (chat, 2), (chat, 3)]);
}

#[tokio::test]
async fn typing_goes_by_datagram_and_falls_back_to_the_request() {
    init_tracing();
    let server = TestServer::start("node-a").await;
    let chat = server.create_chat("typing");
    let alice = Client::connect(config(&[&server])).await.unwrap();
    let bob = Client::connect(config(&[&server])).await.unwrap();
    let alice_id = register(&alice, "alice").await.user.unwrap().id;
    register(&bob, "bob").await;
    wait_for(&bob, |e| matches!(e, ClientEvent::CaughtUp)).await;

    // Datagrams can be lost, even on loopback: repeat until one gets through.
    let got = tokio::time::timeout(WAIT, async {
        loop {
            alice.send_typing(chat).await.unwrap();
            let next = tokio::time::timeout(Duration::from_millis(200), bob.next_event()).await;
            if let Ok(Some(ClientEvent::Typing(t))) = next {
                return t;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!((got.chat_id, got.user_id), (chat, alice_id));
    assert!(server.lock().counters.typing_datagrams >= 1);
    assert_eq!(
        server.count("send_typing"),
        0,
        "no request while datagrams work"
    );

    // A client that does not offer datagrams uses the request.
    let mut no_datagrams = config(&[&server]);
    no_datagrams.capabilities = vec!["redirect".into()];
    let carol = Client::connect(no_datagrams).await.unwrap();
    assert!(!carol.datagrams_enabled());
    let carol_id = register(&carol, "carol").await.user.unwrap().id;
    carol.send_typing(chat).await.unwrap();
    assert_eq!(server.count("send_typing"), 1);
    let ClientEvent::Typing(t) = wait_for(
        &bob,
        |e| matches!(e, ClientEvent::Typing(t) if t.user_id == carol_id),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(t.chat_id, chat);
}

#[tokio::test]
async fn a_welcome_redirect_is_followed() {
    init_tracing();
    let identity = Identity::self_signed();
    let any = "127.0.0.1:0".parse().unwrap();
    let b = TestServer::start_with("node-b", identity.clone(), any).await;
    let a = TestServer::start_with("node-a", identity, any).await;
    a.lock().knobs.redirect = Some(vec![b.address()]);
    let client = Client::connect(config(&[&a])).await.unwrap();
    assert_eq!(client.welcome().unwrap().node_id, "node-b");
    assert_eq!(client.server_address(), Some(b.address()));
    assert_eq!(a.lock().counters.hellos, 1);

    // Without the capability the redirect is not offered, and the client stays.
    let mut no_redirect = config(&[&a]);
    no_redirect.capabilities = vec!["datagrams".into()];
    let client = Client::connect(no_redirect).await.unwrap();
    assert_eq!(client.welcome().unwrap().node_id, "node-a");
}

#[tokio::test]
async fn the_next_server_is_tried_when_the_first_is_down() {
    init_tracing();
    let live = TestServer::start("node-live").await;
    // A port nobody listens on: bind, note, release.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let mut cfg = config(&[&live]);
    cfg.servers = vec![dead_addr, live.address()];
    cfg.retry.connect_timeout = Duration::from_millis(500);
    let client = Client::connect(cfg).await.unwrap();
    assert_eq!(client.server_address(), Some(live.address()));
    assert_eq!(client.welcome().unwrap().node_id, "node-live");

    // With every server down, connect fails and names each attempt.
    let mut all_dead = config(&[&live]);
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    all_dead.servers = vec![dead.local_addr().unwrap().to_string()];
    drop(dead);
    all_dead.retry.connect_timeout = Duration::from_millis(300);
    let err = Client::connect(all_dead).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err}");
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_on_reconnect() {
    init_tracing();
    let server = TestServer::start("node-a").await;
    let client = Client::connect(config(&[&server])).await.unwrap();
    let auth = register(&client, "dave").await;
    wait_for(&client, |e| matches!(e, ClientEvent::CaughtUp)).await;

    server.lock().knobs.reject_access_tokens = true;
    server.kill_connections();
    let ClientEvent::TokensRefreshed(tokens) =
        wait_for(&client, |e| matches!(e, ClientEvent::TokensRefreshed(_))).await
    else {
        unreachable!()
    };
    assert_ne!(tokens.refresh_token, auth.refresh_token, "rotated");
    assert_ne!(tokens.access_token, auth.access_token);
    assert_eq!(client.tokens(), Some(tokens));
    assert_eq!(server.count("refresh"), 1);
    // Authenticated on the new connection.
    assert_eq!(client.get_me(pb::GetMe {}).await.unwrap().username, "dave");

    // A client resuming from stored tokens authenticates while connecting.
    let mut resumed = config(&[&server]);
    resumed.tokens = client.tokens();
    let second = Client::connect(resumed).await.unwrap();
    assert_eq!(second.get_me(pb::GetMe {}).await.unwrap().username, "dave");
}

#[tokio::test]
async fn go_away_moves_the_client_to_the_named_server() {
    init_tracing();
    let identity = Identity::self_signed();
    let any = "127.0.0.1:0".parse().unwrap();
    let a = TestServer::start_with("node-a", identity.clone(), any).await;
    let b = TestServer::start_with("node-b", identity, any).await;
    let client = Client::connect(config(&[&a])).await.unwrap();
    // Both servers must know the user for the re-authentication to succeed: share the state.
    let client_b_state = b.state.clone();
    register(&client, "erin").await;
    {
        // Copy a's accounts and tokens to b, like a cluster sharing a store.
        let a_state = a.state.lock().unwrap();
        let mut b_inner = client_b_state.lock().unwrap();
        b_inner.import_accounts(&a_state);
    }
    wait_for(&client, |e| matches!(e, ClientEvent::CaughtUp)).await;
    a.broadcast(pb::Event {
        kind: Some(pb::event::Kind::GoAway(pb::GoAway {
            reason: "draining".into(),
            addresses: vec![b.address()],
            reconnect_after_ms: 100,
        })),
    });
    wait_for(&client, |e| matches!(e, ClientEvent::GoAway(_))).await;
    let ClientEvent::Connected { node_id, .. } =
        wait_for(&client, |e| matches!(e, ClientEvent::Connected { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(node_id, "node-b");
    assert_eq!(client.get_me(pb::GetMe {}).await.unwrap().username, "erin");
}

#[tokio::test]
async fn a_revoked_session_stops_the_client() {
    init_tracing();
    let server = TestServer::start("node-a").await;
    let client = Client::connect(config(&[&server])).await.unwrap();
    register(&client, "frank").await;
    wait_for(&client, |e| matches!(e, ClientEvent::CaughtUp)).await;
    server.broadcast(pb::Event {
        kind: Some(pb::event::Kind::SessionRevoked(pb::SessionRevoked {
            reason: "password changed".into(),
        })),
    });
    wait_for(&client, |e| matches!(e, ClientEvent::SessionRevoked(_))).await;
    let hellos = server.lock().counters.hellos;
    let err = client.get_me(pb::GetMe {}).await.unwrap_err();
    assert!(matches!(err, ClientError::Closed(_)), "{err}");
    assert_eq!(client.tokens(), None, "revoked tokens are forgotten");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.lock().counters.hellos, hellos, "no reconnect");
    // The event stream ends once the queued events are taken.
    let rest = tokio::time::timeout(WAIT, async {
        let mut n = 0;
        while client.next_event().await.is_some() {
            n += 1;
        }
        n
    })
    .await
    .expect("next_event ends after a revocation");
    assert!(rest < 10, "{rest} events after the revocation");
}

#[tokio::test]
async fn logout_ends_the_event_stream_and_forgets_the_tokens() {
    init_tracing();
    let server = TestServer::start("node-a").await;
    let client = Client::connect(config(&[&server])).await.unwrap();
    register(&client, "gina").await;
    wait_for(&client, |e| matches!(e, ClientEvent::CaughtUp)).await;
    client.logout().await.unwrap();
    assert_eq!(client.tokens(), None);
    let err = client.get_me(pb::GetMe {}).await.unwrap_err();
    assert_eq!(err.code(), Some(pb::ErrorCode::Unauthenticated));
    // Logging in again starts a new event stream with a resume.
    client.login("gina", "password123", "test").await.unwrap();
    let chat = server.create_chat("after-login");
    let ClientEvent::Chat(ev) = wait_for(&client, |e| matches!(e, ClientEvent::Chat(_))).await
    else {
        unreachable!()
    };
    assert_eq!((ev.chat_id, ev.seq), (chat, 1));
}

#[tokio::test]
async fn a_slow_consumer_holds_a_bounded_queue_and_loses_nothing() {
    init_tracing();
    let server = TestServer::start("node-a").await;
    let chat = server.create_chat("busy");
    let mut slow = config(&[&server]);
    slow.event_queue = 4;
    let client = Client::connect(slow).await.unwrap();
    register(&client, "slow").await;
    let mut seen = Vec::new();
    record_until(&client, &mut seen, |e| matches!(e, ClientEvent::CaughtUp)).await;

    // The application stops reading while the server pushes far more than the queue holds.
    for n in 0..500 {
        server.post(chat, &format!("m{n}"));
    }
    // Without yielding to the client's task, no more than the queue can be taken.
    let mut ready = 0;
    while let Some(event) = client.try_next_event() {
        if let ClientEvent::Chat(ev) = event {
            seen.push((ev.chat_id, ev.seq));
        }
        ready += 1;
    }
    assert!(ready <= 4, "{ready} events were queued for a queue of 4");
    // What a server does to a client that does not read: close its connection.
    server.kill_connections();

    let last = server.last_seq(chat);
    record_until(
        &client,
        &mut seen,
        |e| matches!(e, ClientEvent::Chat(ev) if ev.chat_id == chat && ev.seq == last),
    )
    .await;
    let seqs: Vec<u64> = seen
        .iter()
        .filter(|(c, _)| *c == chat)
        .map(|(_, s)| *s)
        .collect();
    let first = seqs.first().copied().unwrap_or(1);
    assert_eq!(
        seqs,
        (first..=last).collect::<Vec<_>>(),
        "every event once, in order"
    );
}

#[tokio::test]
async fn events_sent_before_a_close_reach_the_application_before_the_disconnect() {
    init_tracing();
    let server = TestServer::start("node-a").await;
    let chat = server.create_chat("last words");
    let mut small = config(&[&server]);
    small.event_queue = 4;
    let client = Client::connect(small).await.unwrap();
    register(&client, "hana").await;
    let mut seen = Vec::new();
    record_until(&client, &mut seen, |e| matches!(e, ClientEvent::CaughtUp)).await;

    // While the application does not read, the server sends more than the client's queues
    // hold, then a GoAway, and closes the connection as soon as the client's QUIC stack
    // acknowledged all of it: the events are received, but not yet handed over.
    for n in 0..200 {
        server.post(chat, &format!("m{n}"));
    }
    server
        .drain(pb::Event {
            kind: Some(pb::event::Kind::GoAway(pb::GoAway {
                reason: "draining".into(),
                addresses: Vec::new(),
                reconnect_after_ms: 60_000,
            })),
        })
        .await;

    let mut first = None;
    record_until(&client, &mut seen, |e| {
        let end = matches!(e, ClientEvent::GoAway(_) | ClientEvent::Disconnected { .. });
        if end {
            first = Some(format!("{e:?}"));
        }
        end
    })
    .await;
    let first = first.expect("an end");
    assert!(
        first.starts_with("GoAway"),
        "{first} came before the GoAway"
    );
    let next = wait_for(&client, |e| !matches!(e, ClientEvent::Chat(_))).await;
    assert!(
        matches!(next, ClientEvent::Disconnected { .. }),
        "{next:?} after the GoAway"
    );
    let last = server.last_seq(chat);
    let seqs: Vec<u64> = seen.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs,
        (1..=last).collect::<Vec<_>>(),
        "every event, in order"
    );
}
