//! Free loopback ports for the servers a test starts.

use std::net::{SocketAddr, TcpListener, UdpSocket};

/// A loopback port that is free for both TCP and UDP right now.
///
/// The port is released before the caller binds it, so another process could take it in
/// between; the window is tiny and the suites only run their own servers.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port found");
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}
