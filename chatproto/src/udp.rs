//! UDP sockets for QUIC endpoints, with kernel buffers sized for bursts.
//!
//! Linux gives a UDP socket about 208 KiB of receive buffer by default. A server that answers a
//! burst of handshakes, or a client receiving a fan-out burst, overflows that in well under a
//! millisecond; the kernel drops the excess and QUIC recovers it only after a retransmission
//! timeout, which shows up as a multi-second latency tail. Both sides therefore ask for larger
//! buffers. The kernel caps the request at `net.core.rmem_max` / `wmem_max` without an error,
//! so [`bind`] reports what was actually granted and callers can warn about it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// The QUIC endpoint type [`endpoint`] returns, for programs that share one between several
/// clients ([`ClientConfig::endpoint`](crate::client::ClientConfig::endpoint)).
pub use quinn::Endpoint;

/// Socket buffer requested by servers (per direction).
pub const SERVER_SOCKET_BUFFER: usize = 8 << 20;
/// Socket buffer requested by clients (per direction).
pub const CLIENT_SOCKET_BUFFER: usize = 2 << 20;

/// The largest UDP payload path MTU discovery tries: what a 1,500-byte Ethernet MTU carries
/// under IPv6 (quinn's default upper bound).
pub const PROBED_UDP_PAYLOAD: u16 = 1452;

/// The UDP payload every QUIC path carries (RFC 9000 14), where each connection starts.
const MIN_UDP_PAYLOAD: u16 = 1200;

/// UDP payload a connection sends before it looks for a larger path MTU (protocol.md 2.3):
/// about a hundred events, a few pages of history, or the first tens of kilobytes of a file.
pub const PROBE_AFTER_BYTES: u64 = 32 * 1024;

/// Path MTU discovery as both ends run it (protocol.md 2.3): one probe for
/// [`PROBED_UDP_PAYLOAD`], once the connection has sent [`PROBE_AFTER_BYTES`]; if it is lost
/// (after quinn's retransmissions of it) the connection stays at 1,200 bytes and tries again
/// after quinn's 10-minute interval (a minute after quinn detects a black hole).
///
/// Why so sparing: each probe is a full-size encrypted datagram the other end must decrypt and
/// acknowledge, and a chat connection mostly carries small frames and is opened in waves when
/// a node restarts. quinn's default probes from both ends as soon as the handshake is
/// confirmed, with a binary search between 1,200 and 1,452 bytes: four probes each. On a
/// resumed connection those were two thirds of the datagrams chatd sent, and a single probe per
/// end (with its acknowledgement) still one datagram in eight at each end of a reconnect
/// storm. Now a connection that stays small (a reconnect, an idle member, a client that only
/// sends requests) never probes; one that sends in bulk (history pages, downloads, a busy
/// room's events) probes once it has sent the threshold. The search stops once its next step
/// would be smaller than `minimum_change`; setting that to the whole span makes the upper bound
/// the only probe. Paths whose limit lies between the two (a tunnel, IPv6 over PPPoE) get 1,200
/// bytes.
pub fn mtu_discovery() -> quinn::MtuDiscoveryConfig {
    let mut mtud = quinn::MtuDiscoveryConfig::default();
    mtud.upper_bound(PROBED_UDP_PAYLOAD)
        .minimum_change(PROBED_UDP_PAYLOAD - MIN_UDP_PAYLOAD)
        .start_after(PROBE_AFTER_BYTES);
    mtud
}

/// Kernel socket buffer sizes as the kernel reports them (Linux reports twice the usable size:
/// the other half is its bookkeeping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketBuffers {
    /// Receive buffer, bytes.
    pub recv: usize,
    /// Send buffer, bytes.
    pub send: usize,
}

impl SocketBuffers {
    /// Whether the kernel granted less than `requested` in either direction.
    pub fn capped_below(&self, requested: usize) -> bool {
        self.recv < requested || self.send < requested
    }
}

/// Binds a UDP socket on `addr` and asks for `buffer` bytes of kernel buffer each way.
pub fn bind(addr: SocketAddr, buffer: usize) -> io::Result<(std::net::UdpSocket, SocketBuffers)> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    state.set_recv_buffer_size((&socket).into(), buffer)?;
    state.set_send_buffer_size((&socket).into(), buffer)?;
    let buffers = SocketBuffers {
        recv: state.recv_buffer_size((&socket).into())?,
        send: state.send_buffer_size((&socket).into())?,
    };
    Ok((socket, buffers))
}

/// A quinn endpoint on a socket from [`bind`] with endpoint settings `config` (a server passes
/// its stateless-reset key there), serving with `server` when given; must be called inside a
/// tokio runtime.
pub fn endpoint(
    addr: SocketAddr,
    config: quinn::EndpointConfig,
    server: Option<quinn::ServerConfig>,
    buffer: usize,
) -> io::Result<(quinn::Endpoint, SocketBuffers)> {
    let (socket, buffers) = bind(addr, buffer)?;
    let endpoint = quinn::Endpoint::new(config, server, socket, Arc::new(quinn::TokioRuntime))?;
    Ok((endpoint, buffers))
}

/// A client's endpoint on `addr`: default endpoint settings, no server side, client-sized
/// buffers. Must be called inside a tokio runtime.
pub fn client_endpoint(addr: SocketAddr) -> io::Result<quinn::Endpoint> {
    endpoint(
        addr,
        quinn::EndpointConfig::default(),
        None,
        CLIENT_SOCKET_BUFFER,
    )
    .map(|(endpoint, _)| endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_raised_above_the_kernel_default() {
        let plain = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let state = quinn::udp::UdpSocketState::new((&plain).into()).expect("state");
        let default_recv = state.recv_buffer_size((&plain).into()).expect("size");
        let (_socket, buffers) = bind("127.0.0.1:0".parse().expect("addr"), 4 << 20).expect("bind");
        // Even where net.core.rmem_max is the stock 208 KiB the kernel grants (and reports)
        // twice that, so a socket whose buffer was never set is always smaller.
        assert!(
            buffers.recv > default_recv && buffers.send > default_recv,
            "default {default_recv}, got {buffers:?}"
        );
    }
}
