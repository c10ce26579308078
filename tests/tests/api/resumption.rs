//! Resumption and 0-RTT (spec 2.5): a returning client skips the full handshake and has its
//! first `sync` answer after one round trip; in 0-RTT data the server serves only early-safe
//! requests and answers the rest TOO_EARLY; a replayed first flight creates no second message;
//! a ticket past its lifetime falls back to a full handshake.
//!
//! Round trips are counted on a relay that delays every datagram by a fixed time each way, so
//! that the delay, not the machine, sets the pace.

use std::time::{Duration, Instant};

use chatproto::client::{Client, ClientEvent};
use chatproto::pb;
use chatproto::pb::request::Kind;
use tests::raw::early::{EarlyClient, exchange, hello};
use tests::raw::error_code;
use tests::relay::UdpRelay;
use tests::server::TestServer;

use crate::support::{User, WAIT, config, register, start, start_with};

/// The relay's delay each way: one round trip is twice this.
const ONE_WAY: Duration = Duration::from_millis(100);

/// Connects through `relay` with `user`'s tokens and returns the client, whether its requests
/// went in 0-RTT data, and how long it took from the start until the first `sync` was
/// answered (the session reports it caught up: the user has no chat to fetch).
async fn reconnect_through(
    server: &TestServer,
    relay: &UdpRelay,
    user: &User,
    zero_rtt: bool,
) -> (Client, bool, Duration) {
    let mut config = config(server);
    config.servers = vec![relay.addr().to_string()];
    config.tokens = user.client.tokens();
    config.zero_rtt = zero_rtt;
    let started = Instant::now();
    let client = Client::connect(config).await.expect("connect");
    let zero_rtt = client.zero_rtt();
    tokio::time::timeout(WAIT, async {
        loop {
            match client.next_event().await.expect("event") {
                ClientEvent::CaughtUp => return,
                _ => continue,
            }
        }
    })
    .await
    .expect("caught up");
    (client, zero_rtt, started.elapsed())
}

#[tokio::test]
async fn a_returning_client_has_its_first_sync_answer_after_one_round_trip() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let relay = UdpRelay::start(server.addr(), ONE_WAY).await;
    let round_trip = 2 * ONE_WAY;

    // Without 0-RTT a client waits for the handshake, then for hello, authenticate and sync in
    // turn: four round trips.
    let (client, zero_rtt, full) = reconnect_through(&server, &relay, &alice, false).await;
    assert!(!zero_rtt);
    assert!(full >= 4 * round_trip, "without 0-RTT: {full:?}");
    client.close().await;

    // The SDK's default: hello, authenticate and sync go with the first packet, on the ticket
    // of an earlier connection, and are answered in the server's first flight.
    let (client, zero_rtt, early) = reconnect_through(&server, &relay, &alice, true).await;
    assert!(zero_rtt, "the server accepted the 0-RTT data");
    assert!(
        early >= round_trip && early < round_trip + round_trip / 2,
        "0-RTT: first sync answer after {early:?}, one round trip is {round_trip:?}"
    );
    // The connection is an ordinary one from there on.
    let me = client.get_me(pb::GetMe {}).await.expect("get_me");
    assert_eq!(me.id, alice.id);
    client.close().await;
}

fn authenticate(user: &User) -> Kind {
    Kind::Authenticate(pb::Authenticate {
        access_token: user.client.tokens().expect("tokens").access_token,
    })
}

fn send(chat_id: u64, client_msg_id: &str) -> Kind {
    Kind::SendMessage(pb::SendMessage {
        chat_id,
        kind: pb::MessageKind::Text as i32,
        text: "sent in 0-RTT data".into(),
        client_msg_id: client_msg_id.into(),
        ..Default::default()
    })
}

/// A group of `user`'s alone.
async fn own_group(user: &User) -> u64 {
    user.client
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: "notes".into(),
            ..Default::default()
        })
        .await
        .expect("create_group")
        .id
}

#[tokio::test]
async fn in_0rtt_data_only_early_safe_requests_are_served() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let chat = own_group(&alice).await;
    let client = EarlyClient::new(&server);
    client.take_tickets(server.addr()).await;

    let create = Kind::CreateGroup(pb::CreateGroup {
        kind: pb::ChatKind::Group as i32,
        title: "made early".into(),
        ..Default::default()
    });
    // Sent at once, in stream order: the server serves them in that order, so authenticate
    // finds hello done and send_message finds the connection authenticated.
    let requests = [
        hello(),
        authenticate(&alice),
        create.clone(),
        send(chat, "early-1"),
    ];
    let (conn, answers) = client.send_early(server.addr(), &requests).await;
    let answers = answers.expect("the server accepted the 0-RTT data");
    let Some(pb::response::Result::Welcome(welcome)) = &answers[0].result else {
        panic!("hello: {:?}", answers[0]);
    };
    assert!(
        chatproto::capability::Capability::ZeroRtt.is_in(&welcome.capabilities),
        "{welcome:?}"
    );
    assert!(
        matches!(answers[1].result, Some(pb::response::Result::Auth(_))),
        "{:?}",
        answers[1]
    );
    assert_eq!(
        error_code(&answers[2]),
        Some(pb::ErrorCode::TooEarly),
        "{:?}",
        answers[2]
    );
    let Some(pb::response::Result::Message(sent)) = &answers[3].result else {
        panic!("send_message: {:?}", answers[3]);
    };
    assert_eq!(sent.chat_id, chat);

    // After the handshake the refused request goes through unchanged.
    let again = exchange(&conn, &[create]).await;
    assert!(
        matches!(again[0].result, Some(pb::response::Result::Chat(_))),
        "{again:?}"
    );
    let chats = alice
        .client
        .list_chats(pb::ListChats::default())
        .await
        .expect("list");
    assert_eq!(
        chats.chats.len(),
        2,
        "the refused create_group did nothing: {chats:?}"
    );
}

/// A request of a first flight that waits for its `authenticate` is read with the full frame
/// limit, not the pre-authentication one: a longest message in four-byte characters (16 KiB)
/// sent in 0-RTT data behind `hello` and `authenticate` is served.
#[tokio::test]
async fn a_0rtt_request_behind_its_authenticate_may_be_larger_than_the_pre_auth_limit() {
    let server = start().await;
    let alice = register(&server, "alice").await;
    let chat = own_group(&alice).await;
    let client = EarlyClient::new(&server);
    client.take_tickets(server.addr()).await;

    let text = "\u{1F600}".repeat(4096);
    let mut long = send(chat, "early-long");
    if let Kind::SendMessage(m) = &mut long {
        m.text.clone_from(&text);
    }
    let (_conn, answers) = client
        .send_early(server.addr(), &[hello(), authenticate(&alice), long])
        .await;
    let answers = answers.expect("the server accepted the 0-RTT data");
    let Some(pb::response::Result::Message(sent)) = &answers[2].result else {
        panic!("send_message: {:?}", answers[2]);
    };
    assert_eq!(sent.text, text);
}

/// The messages of `chat` that `user` can read.
async fn messages(user: &User, chat: u64) -> Vec<pb::Message> {
    user.client
        .get_history(pb::GetHistory {
            chat_id: chat,
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("history")
        .messages
}

/// `chatd_requests_total` of `kind` answered ok, from the admin endpoint.
async fn served(server: &TestServer, kind: &str) -> u64 {
    let metrics = server.metrics().await;
    let label = format!("chatd_requests_total{{kind=\"{kind}\",outcome=\"ok\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&label))
        .map_or(0, |n| n.trim().parse().expect("count"))
}

#[tokio::test]
async fn a_replayed_0rtt_send_creates_no_second_message() {
    // One place for an unauthenticated connection: the replayed flight, whose handshake never
    // completes, must not take it from the client that comes after.
    let server = start_with(&["--max-unauthenticated=1"]).await;
    let alice = register(&server, "alice").await;
    let chat = own_group(&alice).await;
    let relay = UdpRelay::start(server.addr(), Duration::ZERO).await;
    let client = EarlyClient::new(&server);
    client.take_tickets(relay.addr()).await;
    let flight = [hello(), authenticate(&alice), send(chat, "replayed-1")];

    // The client's first flight, as an attacker on the path records it.
    relay.record();
    let (conn, answers) = client.send_early(relay.addr(), &flight).await;
    let answers = answers.expect("the server accepted the 0-RTT data");
    let Some(pb::response::Result::Message(original)) = &answers[2].result else {
        panic!("send_message: {:?}", answers[2]);
    };
    let original = original.clone();
    let captured = relay.recorded();
    conn.close(0u32.into(), b"done");
    assert_eq!(served(&server, "send_message").await, 1);

    // Replayed from elsewhere: the ticket was used, so the server discards the 0-RTT data and
    // the handshake cannot complete (the replayer has no keys): nothing is served.
    relay.replay(&captured, Duration::from_secs(1)).await;
    assert_eq!(
        served(&server, "send_message").await,
        1,
        "the replay was served"
    );

    // The same early send on another ticket (what a replay would be on a server that let a
    // ticket resume twice): deduplicated by client_msg_id. Meanwhile the replayed connection
    // is still half open on the server, and took no place.
    let (_conn, answers) = client.send_early(relay.addr(), &flight).await;
    let answers = answers.expect("the server accepted the 0-RTT data");
    let Some(pb::response::Result::Message(again)) = &answers[2].result else {
        panic!("send_message: {:?}", answers[2]);
    };
    assert_eq!(
        again.seq, original.seq,
        "answered with the original message"
    );
    let sent: Vec<_> = messages(&alice, chat)
        .await
        .into_iter()
        .filter(|m| m.client_msg_id == "replayed-1")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
}

#[tokio::test]
async fn a_ticket_past_its_lifetime_gets_a_full_handshake() {
    let server = start_with(&["--ticket-lifetime", "1s"]).await;
    let client = EarlyClient::new(&server);
    client.take_tickets(server.addr()).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (conn, answers) = client.send_early(server.addr(), &[hello()]).await;
    assert!(
        answers.is_none(),
        "an expired ticket resumed with 0-RTT data"
    );
    // The connection goes on after a full handshake.
    let welcome = exchange(&conn, &[hello()]).await;
    assert!(error_code(&welcome[0]).is_none(), "{welcome:?}");

    // A server without resumption issues no ticket: nothing to send 0-RTT data with.
    let server = start_with(&["--resumption-tickets", "0"]).await;
    let client = EarlyClient::new(&server);
    client.take_tickets(server.addr()).await;
    let connecting = client
        .endpoint
        .connect(server.addr(), "localhost")
        .expect("connect");
    assert!(
        connecting.into_0rtt().is_err(),
        "a ticket from a server without resumption"
    );
}

#[tokio::test]
async fn the_sdk_falls_back_to_a_full_handshake_when_its_ticket_is_refused() {
    let server = start_with(&["--ticket-lifetime", "1s"]).await;
    let alice = register(&server, "alice").await;
    let relay = UdpRelay::start(server.addr(), Duration::ZERO).await;
    let (client, zero_rtt, _) = reconnect_through(&server, &relay, &alice, true).await;
    assert!(zero_rtt, "a fresh ticket resumes with 0-RTT data");
    client.close().await;
    // The client still holds tickets, which the server no longer takes: what it sent early is
    // discarded, and it says hello, authenticates and syncs again after the handshake.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (client, zero_rtt, _) = reconnect_through(&server, &relay, &alice, true).await;
    assert!(!zero_rtt, "an expired ticket resumed");
    let me = client.get_me(pb::GetMe {}).await.expect("get_me");
    assert_eq!(me.id, alice.id);
    client.close().await;
}
