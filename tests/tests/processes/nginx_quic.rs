//! The documented QUIC load balancer, `deploy/nginx/chat-quic.conf`, run by a real nginx with
//! only its addresses replaced: datagrams flow both ways without a response limit, every client
//! address sticks to one node (`hash $remote_addr consistent`) whatever its port, different
//! addresses spread over the nodes, and chat/1 clients log in, send and receive through it.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tests::cluster::ChatCluster;
use tests::nginx::Nginx;
use tests::users::{TestUser, create_group, hello_from};

/// Client addresses tried: 127.0.0.2 ..= 127.0.0.(1 + ADDRESSES).
const ADDRESSES: u8 = 24;
/// Replies a backend sends per datagram: more than one, as a QUIC server often does.
const REPLIES: usize = 2;

/// A UDP backend that answers every datagram with `REPLIES` datagrams naming itself.
struct EchoBackend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoBackend {
    fn start(name: &'static str) -> EchoBackend {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind backend");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let payload = String::from_utf8_lossy(&buf[..n]).into_owned();
                for i in 1..=REPLIES {
                    let _ = socket.send_to(format!("{name} {payload} {i}").as_bytes(), from);
                }
            }
        });
        EchoBackend {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends three datagrams from `socket` through the proxy and returns the backend that
/// answered all of them (every reply must come from one backend).
fn exchange(socket: &UdpSocket, proxy: SocketAddr, tag: &str) -> String {
    let mut backends = BTreeSet::new();
    for round in 0..3 {
        let payload = format!("{tag}-{round}");
        socket.send_to(payload.as_bytes(), proxy).expect("send");
        for _ in 0..REPLIES {
            let mut buf = [0u8; 1500];
            let (n, from) = socket.recv_from(&mut buf).unwrap_or_else(|e| {
                panic!("{tag}: reply {round} did not come back through nginx: {e}")
            });
            assert_eq!(from, proxy, "replies come from the proxy's address");
            let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
            let mut words = reply.split(' ');
            let backend = words.next().unwrap_or_default().to_string();
            assert_eq!(
                words.next(),
                Some(payload.as_str()),
                "reply {reply:?} to {payload:?}"
            );
            backends.insert(backend);
        }
    }
    assert_eq!(
        backends.len(),
        1,
        "{tag}: one client port was answered by several backends {backends:?}"
    );
    backends.into_iter().next().unwrap_or_default()
}

#[test]
fn documented_config_keeps_each_client_address_on_one_backend() {
    let backends = [
        EchoBackend::start("b0"),
        EchoBackend::start("b1"),
        EchoBackend::start("b2"),
    ];
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let nginx = Nginx::start_chat_quic(&addrs);

    let mut by_address: HashMap<IpAddr, String> = HashMap::new();
    for k in 2..2 + ADDRESSES {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, k));
        // Two sockets, so two source ports, per address: a NAT rebinding looks like this.
        let mut seen = BTreeSet::new();
        for port_round in 0..2 {
            let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind client");
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            seen.insert(exchange(
                &socket,
                nginx.addr(),
                &format!("{ip}#{port_round}"),
            ));
        }
        assert_eq!(
            seen.len(),
            1,
            "{ip} reached several backends from different ports: {seen:?}"
        );
        by_address.insert(ip, seen.into_iter().next().unwrap_or_default());
    }
    let used: BTreeSet<&String> = by_address.values().collect();
    assert!(
        used.len() >= 2,
        "{ADDRESSES} client addresses all went to {used:?}: nothing is balanced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_clients_work_through_nginx_and_stick_to_one_node() {
    let (cluster, nginx) = tokio::task::spawn_blocking(|| {
        let cluster = ChatCluster::start();
        let nginx = Nginx::start_chat_quic(&cluster.addrs());
        (cluster, nginx)
    })
    .await
    .expect("start cluster and nginx");
    let proxy = nginx.addr();
    let config = || {
        let mut config = cluster.client_config(0);
        config.servers = vec![proxy.to_string()];
        config
    };

    // Log in, send and receive, all through nginx's one UDP port.
    let alice = TestUser::register(config(), "alice").await;
    let bob = TestUser::register(config(), "bob").await;
    assert_eq!(
        alice.client.server_address().as_deref(),
        Some(proxy.to_string().as_str())
    );
    let chat = create_group(&alice, "through nginx", &[&bob]).await;
    let texts: Vec<String> = (0..5).map(|i| format!("via nginx {i}")).collect();
    for text in &texts {
        alice
            .client
            .send_text(chat.id, text)
            .await
            .expect("send through nginx");
    }
    bob.expect_texts(chat.id, &texts, Duration::from_secs(10))
        .await;
    let reply = bob
        .client
        .send_text(chat.id, "and back")
        .await
        .expect("reply through nginx");
    alice
        .expect_texts(chat.id, &["and back".to_string()], Duration::from_secs(10))
        .await;
    let history = alice.history(chat.id).await.expect("history");
    assert_eq!(history.last().map(|m| m.seq), Some(reply.seq));

    // Both come from 127.0.0.1, so both are on the node that address hashes to.
    let node = alice.node_id().expect("alice connected");
    assert_eq!(
        bob.node_id(),
        Some(node.clone()),
        "one client address, two nodes"
    );

    // Clients from other addresses: each address always lands on the same node, and the
    // addresses spread over the nodes.
    let verification = cluster.identity().verification();
    let mut nodes = BTreeSet::new();
    for k in 2..14u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, k));
        let first = hello_from(ip, proxy, &verification)
            .await
            .expect("hello through nginx");
        let second = hello_from(ip, proxy, &verification)
            .await
            .expect("second hello through nginx");
        assert_eq!(first.node_id, second.node_id, "{ip} landed on two nodes");
        assert!(
            ["node0", "node1", "node2"].contains(&first.node_id.as_str()),
            "unknown node {:?}",
            first.node_id
        );
        nodes.insert(first.node_id);
    }
    assert!(
        nodes.len() >= 2,
        "12 client addresses all landed on {nodes:?}"
    );
    drop(nginx);
    drop(cluster);
}
