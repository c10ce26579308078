//! The QUIC endpoint: TLS and transport settings tuned for many mostly idle connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use quinn::crypto::rustls::QuicServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Concurrent request streams a client may have open (`Limits.max_concurrent_requests`).
pub const MAX_CONCURRENT_REQUESTS: u32 = 32;

/// Builds the quinn server configuration.
///
/// Windows are finite and small on purpose: quinn's defaults (unlimited connection window, 100
/// streams) cost memory per connection, and a server with tens of thousands of connections must
/// bound what each can make it buffer. A request frame is at most 256 KiB, so a stream window a
/// little above that lets every legal request through in one flight.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<quinn::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("tls 1.3 configuration")?
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)
        .context("server certificate and key do not match or are unsupported")?;
    tls.alpn_protocols = vec![chatproto::ALPN.to_vec()];
    // 0-RTT stays off: chat/1.0 requests are not all idempotent (protocol.md, "Security").
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls).context("quic tls configuration")?;

    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(MAX_CONCURRENT_REQUESTS.into())
        // Unidirectional client streams are reserved for file transfer (capability `files`).
        .max_concurrent_uni_streams(0u32.into())
        .stream_receive_window((300 * 1024u32).into())
        .receive_window((1024 * 1024u32).into())
        .send_window(1024 * 1024)
        .datagram_receive_buffer_size(Some(16 * 1024))
        .datagram_send_buffer_size(16 * 1024)
        .max_idle_timeout(Some(
            Duration::from_secs(30).try_into().context("idle timeout")?,
        ))
        // Many small streams: round-robin fairness between them buys nothing.
        .send_fairness(false)
        .ack_frequency_config(Some(ack_frequency()));
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// How often clients are asked to acknowledge the event packets they receive (the QUIC ACK
/// frequency extension; peers that do not support it ignore the request). By default a
/// receiver acknowledges every other packet, so a client getting one event every few
/// milliseconds sends an ACK for every second event: as many packets again as the fan-out
/// itself, each costing both ends a system call. Asking for an ACK every
/// [`ACK_EVERY`] packets or [`ACK_DELAY`] at the latest keeps loss recovery prompt (the
/// delay adds to the retransmission timeout) while cutting those packets several times.
fn ack_frequency() -> quinn::AckFrequencyConfig {
    let mut ack = quinn::AckFrequencyConfig::default();
    ack.ack_eliciting_threshold((ACK_EVERY - 1).into())
        .max_ack_delay(Some(ACK_DELAY));
    ack
}

/// Packets a client may receive before it must acknowledge them.
const ACK_EVERY: u32 = 10;

/// The longest a client may hold an acknowledgement back.
const ACK_DELAY: Duration = Duration::from_millis(50);

/// Binds a server endpoint on `addr`, on a socket with burst-sized kernel buffers (see
/// [`chatproto::udp`]); warns when the kernel grants less than asked.
pub fn bind(addr: SocketAddr, config: quinn::ServerConfig) -> anyhow::Result<quinn::Endpoint> {
    let requested = chatproto::udp::SERVER_SOCKET_BUFFER;
    let (endpoint, buffers) = chatproto::udp::endpoint(addr, Some(config), requested)
        .with_context(|| format!("cannot listen on {addr}"))?;
    if buffers.capped_below(requested) {
        tracing::warn!(
            requested,
            recv = buffers.recv,
            send = buffers.send,
            "the kernel capped the UDP socket buffers: bursts of packets may be dropped; \
             raise net.core.rmem_max and net.core.wmem_max"
        );
    } else {
        tracing::debug!(
            recv = buffers.recv,
            send = buffers.send,
            "udp socket buffers"
        );
    }
    Ok(endpoint)
}
