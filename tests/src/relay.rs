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
    let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    // Dropped (with the relay's task) it stops every client's answering task.
    let mut answering = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; 65536];
    while let Ok((len, client)) = front.recv_from(&mut buf).await {
        let datagram = buf[..len].to_vec();
        if let Some(recording) = recorded.lock().expect("recorded").as_mut() {
            recording.push(datagram.clone());
        }
        let back = match backs.get(&client) {
            Some(back) => back.clone(),
            None => {
                let back = Arc::new(
                    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                        .await
                        .expect("bind relay back"),
                );
                answering.spawn(answer(back.clone(), front.clone(), client, delay));
                backs.insert(client, back.clone());
                back
            }
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = back.send_to(&datagram, server).await;
        });
    }
}

/// Carries the server's datagrams for one client back to it.
async fn answer(back: Arc<UdpSocket>, front: Arc<UdpSocket>, client: SocketAddr, delay: Duration) {
    let mut buf = vec![0u8; 65536];
    while let Ok((len, _)) = back.recv_from(&mut buf).await {
        let datagram = buf[..len].to_vec();
        let front = front.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = front.send_to(&datagram, client).await;
        });
    }
}
