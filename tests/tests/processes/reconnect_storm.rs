//! A reconnect storm: 5,000 connected clients of a chatd that drains (SIGTERM) and starts
//! again on the same port. Each GoAway carries its own delay, spread by
//! `--drain-reconnect-rate`, so the clients come back over time: every one reconnects at its
//! first attempt, and the restarted node refuses none of them (`SERVER_BUSY`), although its
//! cap on unauthenticated connections is far below the number of clients.
//!
//! All clients share one UDP endpoint (as loadgen's do) and come from 127.0.0.1, so the
//! per-address caps are raised; the global cap on unauthenticated connections is what a storm
//! would hit, and stays low.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatproto::client::{Client, ClientEvent};
use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::client::{PASSWORD, config_for};
use tests::server::GENEROUS_LIMITS;
use tokio::sync::Semaphore;

const CLIENTS: usize = 5000;
const USERS: usize = 20;
/// Reconnects per second the drained node asks for: 20 s for 5,000 clients.
const RATE: u32 = 250;
/// Far below the number of clients, so a storm that arrived at once would be refused; above
/// what piles up while the node restarts (RATE x the restart time).
const MAX_UNAUTHENTICATED: usize = 1000;

/// What one client saw after the drain began.
#[derive(Debug, Default)]
struct Seen {
    go_away_ms: Option<u32>,
    /// `Reconnecting` events: one for the lost connection, one more per failed attempt.
    reconnecting: usize,
    reconnected_at: Option<Instant>,
    errors: Vec<String>,
    /// Connection events before any GoAway, in order: what a client that never got one went
    /// through instead.
    before_go_away: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_node_s_clients_come_back_spread_out_and_none_is_refused() {
    let _alone = crate::alone().await;
    let mut args: Vec<String> = GENEROUS_LIMITS.iter().map(|s| s.to_string()).collect();
    args.extend([
        "--max-connections=8000".into(),
        format!("--max-unauthenticated={MAX_UNAUTHENTICATED}"),
        "--max-unauthenticated-per-address=8000".into(),
        "--max-authenticated-per-address=8000".into(),
        format!("--drain-reconnect-rate={RATE}"),
        "--shutdown-grace=20s".into(),
    ]);
    let mut chatd = ChatdProcess::start(ChatdConfig::new().args(args));

    // Twenty accounts; each connection authenticates with one of their access tokens.
    let mut tokens = Vec::new();
    for u in 0..USERS {
        let client = Client::connect(config_for(chatd.addr(), chatd.fingerprint()))
            .await
            .expect("connect");
        let name = format!("storm{u}");
        let auth = client
            .register_user(&name, &format!("{name}@example.test"), PASSWORD, "")
            .await
            .expect("register");
        tokens.push(auth.access_token);
        client.close().await;
    }

    // 5,000 clients on one shared endpoint, opened a few dozen at a time.
    let endpoint =
        chatproto::udp::client_endpoint("127.0.0.1:0".parse().expect("address")).expect("endpoint");
    let gate = Arc::new(Semaphore::new(48));
    let mut opening = tokio::task::JoinSet::new();
    for i in 0..CLIENTS {
        let mut config = config_for(chatd.addr(), chatd.fingerprint());
        config.endpoint = Some(endpoint.clone());
        let token = tokens[i % USERS].clone();
        let gate = gate.clone();
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate");
            let client = Client::connect(config).await.expect("connect");
            client.authenticate(&token).await.expect("authenticate");
            client
        });
    }
    let mut clients = Vec::with_capacity(CLIENTS);
    while let Some(client) = opening.join_next().await {
        clients.push(client.expect("open task"));
    }
    eprintln!("{CLIENTS} clients connected");

    // From here on, every client's events are recorded.
    let seen: Vec<Arc<Mutex<Seen>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let clients: Vec<Arc<Client>> = clients.into_iter().map(Arc::new).collect();
    for (client, seen) in clients.iter().zip(&seen) {
        let (client, seen) = (client.clone(), seen.clone());
        tokio::spawn(async move {
            while let Some(event) = client.next_event().await {
                let mut seen = seen.lock().expect("seen");
                match event {
                    ClientEvent::GoAway(g) => seen.go_away_ms = Some(g.reconnect_after_ms),
                    ClientEvent::Reconnecting { .. } if seen.go_away_ms.is_some() => {
                        seen.reconnecting += 1
                    }
                    ClientEvent::Connected { .. } if seen.go_away_ms.is_some() => {
                        seen.reconnected_at.get_or_insert_with(Instant::now);
                    }
                    ClientEvent::AuthFailed { reason } => seen.errors.push(reason),
                    ClientEvent::Disconnected { reason } if seen.go_away_ms.is_none() => {
                        seen.before_go_away.push(format!("disconnected: {reason}"))
                    }
                    ClientEvent::Reconnecting { after } if seen.go_away_ms.is_none() => seen
                        .before_go_away
                        .push(format!("reconnecting after {after:?}")),
                    ClientEvent::Connected { .. } if seen.go_away_ms.is_none() => {
                        seen.before_go_away.push("connected".to_string())
                    }
                    _ => {}
                }
            }
        });
    }

    // Drain and start again on the same port and data directory.
    chatd.sigterm();
    let drained = Instant::now();
    tokio::task::block_in_place(|| {
        chatd.wait_exit(Duration::from_secs(60));
        chatd.restart();
    });
    eprintln!("drained and restarted in {:?}", drained.elapsed());

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let back = seen
            .iter()
            .filter(|s| s.lock().expect("seen").reconnected_at.is_some())
            .count();
        if back == CLIENTS {
            break;
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> = seen
                .iter()
                .map(|s| s.lock().expect("seen"))
                .filter(|s| s.reconnected_at.is_none())
                .map(|s| format!("{:?}", *s))
                .take(5)
                .collect();
            panic!(
                "only {back} of {CLIENTS} clients reconnected within 120 s; some of the others: {missing:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let seen: Vec<Seen> = seen
        .iter()
        .map(|s| std::mem::take(&mut *s.lock().expect("seen")))
        .collect();
    let errors: Vec<&String> = seen.iter().flat_map(|s| &s.errors).collect();
    assert!(errors.is_empty(), "clients stopped: {errors:?}");

    // The GoAway delays cover the window of 5,000 / RATE seconds after a 500 ms floor.
    let delays: Vec<u32> = seen
        .iter()
        .map(|s| s.go_away_ms.expect("every client got a GoAway"))
        .collect();
    let (low, high) = (
        *delays.iter().min().expect("delays"),
        *delays.iter().max().expect("delays"),
    );
    let window_ms = (CLIENTS as u32 / RATE) * 1000;
    assert!(low >= 500, "shortest GoAway delay {low} ms");
    assert!(
        high <= 500 + window_ms && high - low >= window_ms * 9 / 10,
        "GoAway delays span {low}..{high} ms, not the {window_ms} ms window"
    );

    // Every client's first attempt succeeded: one Reconnecting (for the lost connection) each.
    let failed: Vec<usize> = seen
        .iter()
        .map(|s| s.reconnecting.saturating_sub(1))
        .collect();
    let failed_clients = failed.iter().filter(|&&f| f > 0).count();
    assert_eq!(
        failed_clients,
        0,
        "{failed_clients} clients needed more than one attempt ({} failed attempts)",
        failed.iter().sum::<usize>()
    );

    // The restarted node refused no connection.
    let (status, metrics) = chatd.admin_get("/metrics").expect("metrics");
    assert_eq!(status, 200);
    let rejected: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("chatd_connections_rejected_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(rejected.is_empty(), "connections rejected: {rejected:?}");
    let mut per_second = std::collections::BTreeMap::<u64, usize>::new();
    for s in &seen {
        let at = s.reconnected_at.expect("reconnected");
        *per_second
            .entry(at.duration_since(drained).as_secs())
            .or_default() += 1;
    }
    eprintln!("reconnects per second after the drain: {per_second:?}");

    for client in clients {
        client.close().await;
    }
}
