//! A UDP relay between clients and a server, for tests that need a real round-trip time (a
//! fixed delay each way, so round trips can be counted from wall time) or that replay what a
//! client sent (the datagrams of a 0-RTT first flight, as an attacker on the path would).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Relays datagrams between the clients that send to [`addr`](Self::addr) and one server,
/// each way after `delay`, recording what clients send while [`record`](Self::record) is on.
pub struct UdpRelay {
    addr: SocketAddr,
    server: SocketAddr,
    recorded: Arc<Mutex<Option<Vec<Vec<u8>>>>>,
    task: JoinHandle<()>,
}

impl UdpRelay {
    /// Starts relaying to `server` on a loopback port.
    pub async fn start(server: SocketAddr, delay: Duration) -> UdpRelay {
        let front = Arc::new(
            UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .expect("bind relay"),
        );
        let addr = front.local_addr().expect("relay address");
        let recorded: Arc<Mutex<Option<Vec<Vec<u8>>>>> = Arc::default();
        let task = tokio::spawn(relay(front, server, delay, recorded.clone()));
        UdpRelay {
            addr,
            server,
            recorded,
            task,
        }
    }

    /// Where clients send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts recording what clients send, forgetting what was recorded before.
    pub fn record(&self) {
        *self.recorded.lock().expect("recorded") = Some(Vec::new());
    }

    /// Stops recording and returns the datagrams clients sent since [`record`](Self::record).
    pub fn recorded(&self) -> Vec<Vec<u8>> {
        self.recorded
            .lock()
            .expect("recorded")
            .take()
            .unwrap_or_default()
    }

    /// Sends `datagrams` to the server again, from a new address, and keeps that address open
    /// (reading and dropping what the server answers) for `linger`: what an attacker who
    /// captured them can do.
    pub async fn replay(&self, datagrams: &[Vec<u8>], linger: Duration) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind replay");
        for datagram in datagrams {
            socket
                .send_to(datagram, self.server)
                .await
                .expect("replay datagram");
        }
        let mut buf = vec![0u8; 65536];
        let _ = tokio::time::timeout(linger, async {
            while socket.recv_from(&mut buf).await.is_ok() {}
        })
        .await;
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The relay's loop: one socket towards the server per client address.
async fn relay(
    front: Arc<UdpSocket>,
    server: SocketAddr,
    delay: Duration,
    recorded: Arc<Mutex<Option<Vec<Vec<u8>>>>>,
) {
    let mut backs: HashMap<SocketAddr, DelayLine> = HashMap::new();
    // Dropped (with the relay's task) it stops every client's answering task.
    let mut answering = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; 65536];
    while let Ok((len, client)) = front.recv_from(&mut buf).await {
        let datagram = buf[..len].to_vec();
        if let Some(recording) = recorded.lock().expect("recorded").as_mut() {
            recording.push(datagram.clone());
        }
        let towards_server = match backs.get(&client) {
            Some(line) => line,
            None => {
                let back = Arc::new(
                    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                        .await
                        .expect("bind relay back"),
                );
                let towards_client = DelayLine::start(front.clone(), client, delay);
                answering.spawn(answer(back.clone(), towards_client));
                backs
                    .entry(client)
                    .or_insert(DelayLine::start(back, server, delay))
            }
        };
        towards_server.push(datagram);
    }
}

/// Carries the server's datagrams for one client back to it.
async fn answer(back: Arc<UdpSocket>, towards_client: DelayLine) {
    let mut buf = vec![0u8; 65536];
    while let Ok((len, _)) = back.recv_from(&mut buf).await {
        towards_client.push(buf[..len].to_vec());
    }
}

/// One direction of the relay: datagrams leave `delay` after they arrived, in the order they
/// arrived, as on a link (a timer per datagram would let datagrams due in the same millisecond
/// overtake each other, and a QUIC endpoint drops packets it cannot decrypt yet).
struct DelayLine {
    queue: tokio::sync::mpsc::UnboundedSender<(tokio::time::Instant, Vec<u8>)>,
    delay: Duration,
    task: JoinHandle<()>,
}

impl DelayLine {
    /// Sends what is pushed from `socket` to `to`, each datagram `delay` after its push.
    fn start(socket: Arc<UdpSocket>, to: SocketAddr, delay: Duration) -> DelayLine {
        let (queue, mut pushed) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let task = tokio::spawn(async move {
            while let Some((due, datagram)) = pushed.recv().await {
                tokio::time::sleep_until(due).await;
                let _ = socket.send_to(&datagram, to).await;
            }
        });
        DelayLine { queue, delay, task }
    }

    fn push(&self, datagram: Vec<u8>) {
        let _ = self
            .queue
            .send((tokio::time::Instant::now() + self.delay, datagram));
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.task.abort();
    }
}
