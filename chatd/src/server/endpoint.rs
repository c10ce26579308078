//! The QUIC endpoint: TLS and transport settings tuned for many mostly idle connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use quinn::crypto::rustls::QuicServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::ops::datadir::NodeSecret;

/// The TLS side of the endpoint: TLS 1.3 only, ALPN `chat/1`, `cert_chain` and `key`.
fn tls_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<rustls::ServerConfig> {
    let mut tls = rustls::ServerConfig::builder_with_provider(chatproto::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("tls 1.3 configuration")?
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)
        .context("server certificate and key do not match or are unsupported")?;
    tls.alpn_protocols = vec![chatproto::ALPN.to_vec()];
    // The provider's order (AES-128-GCM with SHA-256 first, see `chatproto::tls::provider`)
    // decides, not the client's.
    tls.ignore_client_order = true;
    Ok(tls)
}

/// Builds the quinn server configuration.
///
/// Windows are finite and small on purpose: quinn's defaults (unlimited connection window, 100
/// streams) cost memory per connection, and a server with tens of thousands of connections must
/// bound what each can make it buffer. A request frame is at most 256 KiB, so a stream window a
/// little above that lets every legal request through in one flight. The connection window
/// starts at `pre_auth_window`, what an unauthenticated connection may have buffered, and grows
/// once the connection authenticates
/// ([`AUTHENTICATED_RECEIVE_WINDOW`](crate::conn::admission::AUTHENTICATED_RECEIVE_WINDOW)).
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    pre_auth_window: u32,
    paths: PathSettings,
) -> anyhow::Result<quinn::ServerConfig> {
    let mut tls = tls_config(cert_chain, key)?;
    match paths.resumption {
        Some(tickets) => {
            // Resumption with 0-RTT (protocol.md 2.5): tickets this node remembers and takes on
            // use (see `resumption`); quinn requires the early data limit to be exactly this
            // for QUIC, where flow control bounds 0-RTT data instead. Which requests are served
            // from 0-RTT data is decided per stream (`handlers::dispatch`).
            tls.session_storage = tickets;
            tls.max_early_data_size = u32::MAX;
        }
        None => {
            tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            tls.send_tls13_tickets = 0;
            tls.max_early_data_size = 0;
        }
    }
    let crypto = QuicServerConfig::try_from(tls).context("quic tls configuration")?;

    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(crate::limits::REQUEST_STREAM_CREDIT.into())
        // Unidirectional client streams carry uploads (capability `files`): this credit is
        // `Limits.max_concurrent_uploads`. Connections without `files` have theirs stopped.
        .max_concurrent_uni_streams(crate::files::MAX_CONCURRENT_UPLOADS.into())
        .stream_receive_window((300 * 1024u32).into())
        .receive_window(pre_auth_window.into())
        .send_window(1024 * 1024)
        .datagram_receive_buffer_size(Some(16 * 1024))
        .datagram_send_buffer_size(16 * 1024)
        .max_idle_timeout(Some(paths.idle_timeout.try_into().context("idle timeout")?))
        // Many small streams: round-robin fairness between them buys nothing.
        .send_fairness(false)
        .ack_frequency_config(Some(ack_frequency()))
        .mtu_discovery_config(Some(chatproto::udp::mtu_discovery()));
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    // A migrated connection keeps its `ConnCtx` (session, event stream, presence) as it is;
    // only its path changes, which quinn validates before sending more than the
    // anti-amplification limit to it (protocol.md 2.4).
    config.migration(paths.migration);
    Ok(config)
}

/// What the server allows of a connection's network path (protocol.md 2.1, 2.4).
#[derive(Debug, Clone)]
pub struct PathSettings {
    /// How long a connection may stay silent.
    pub idle_timeout: Duration,
    /// Whether a connection may move to another client address.
    pub migration: bool,
    /// The session tickets returning clients resume with, in 0-RTT; `None` turns both off.
    pub resumption: Option<Arc<super::resumption::TicketStore>>,
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

/// The label the stateless-reset key is derived under from the node secret.
const RESET_KEY_LABEL: &str = "chatd quic stateless reset v1";
/// The label the connection-id key is derived under from the node secret.
const CID_KEY_LABEL: &str = "chatd quic connection ids v1";

/// Binds a server endpoint on `addr`, on a socket with burst-sized kernel buffers (see
/// [`chatproto::udp`]); warns when the kernel grants less than asked.
///
/// The stateless-reset key and the key that makes connection ids recognisable are derived from
/// the node's persisted secret, not drawn at random per start: after a crash and restart, the
/// new process recognises the old process's connection ids as its own and answers their
/// packets with a stateless reset that the clients accept, so they reconnect at once instead of
/// waiting for their idle timeout.
pub fn bind(
    addr: SocketAddr,
    config: quinn::ServerConfig,
    node_secret: &NodeSecret,
) -> anyhow::Result<quinn::Endpoint> {
    let requested = chatproto::udp::SERVER_SOCKET_BUFFER;
    let reset_key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &node_secret.derive(RESET_KEY_LABEL),
    );
    let cid_key = node_secret.derive(CID_KEY_LABEL);
    let cid_key = u64::from_le_bytes([
        cid_key[0], cid_key[1], cid_key[2], cid_key[3], cid_key[4], cid_key[5], cid_key[6],
        cid_key[7],
    ]);
    let mut endpoint_config = quinn::EndpointConfig::new(Arc::new(reset_key));
    endpoint_config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    let (endpoint, buffers) =
        chatproto::udp::endpoint(addr, endpoint_config, Some(config), requested)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chatproto::tls::Verification;
    use rustls::CipherSuite;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    /// A self-signed certificate for `localhost` and its key.
    fn self_signed() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key_pair = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .expect("params")
            .self_signed(&key_pair)
            .expect("cert");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
        (cert.der().clone(), key)
    }

    /// Neither end probes the path MTU while it has sent little (a reconnect, a client that only
    /// asks); an end that sends in bulk finds the 1,452-byte path of loopback with one probe,
    /// not quinn's default binary search of four (see `chatproto::udp::mtu_discovery`).
    #[tokio::test]
    async fn an_end_probes_the_path_mtu_once_after_sending_in_bulk() {
        let (cert, key) = self_signed();
        let pin = Verification::Pin(chatproto::fingerprint::fingerprint_of_der(&cert));
        let paths = super::PathSettings {
            idle_timeout: std::time::Duration::from_secs(10),
            migration: false,
            resumption: None,
        };
        let config = super::server_config(vec![cert], key, 64 * 1024, paths).expect("config");
        let (server, _) = chatproto::udp::endpoint(
            "127.0.0.1:0".parse().expect("addr"),
            quinn::EndpointConfig::default(),
            Some(config),
            1 << 20,
        )
        .expect("server endpoint");
        let client = chatproto::udp::client_endpoint("127.0.0.1:0".parse().expect("addr"))
            .expect("client endpoint");
        let client_config = chatproto::tls::client_config(&pin).expect("client config");
        let address = server.local_addr().expect("address");
        let accept = tokio::spawn(async move {
            let incoming = server.accept().await.expect("incoming");
            (incoming.await.expect("server side"), server)
        });
        let to_server = client
            .connect_with(client_config, address, "localhost")
            .expect("connect")
            .await
            .expect("client side");
        let (to_client, _server) = accept.await.expect("accept task");
        let ends = [("server", &to_client), ("client", &to_server)];

        // quinn's own schedule probes within milliseconds of the handshake.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        for (end, conn) in ends {
            let path = conn.stats().path;
            assert_eq!(path.sent_plpmtud_probes, 0, "{end}: {path:?}");
            assert_eq!(path.current_mtu, 1200, "{end}");
        }

        let bulk = vec![7u8; 2 * chatproto::udp::PROBE_AFTER_BYTES as usize];
        let probed = chatproto::udp::PROBED_UDP_PAYLOAD;
        // The server sends in bulk, then the client does.
        for (sender, receiver) in [(&to_client, &to_server), (&to_server, &to_client)] {
            let mut send = sender.open_uni().await.expect("open");
            send.write_all(&bulk).await.expect("write");
            send.finish().expect("finish");
            let mut recv = receiver.accept_uni().await.expect("accept");
            let got = recv.read_to_end(bulk.len()).await.expect("read");
            assert_eq!(got.len(), bulk.len());
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while sender.stats().path.current_mtu < probed {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "path MTU stuck at {}",
                    sender.stats().path.current_mtu
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        for (end, conn) in ends {
            let path = conn.stats().path;
            assert_eq!(path.current_mtu, probed, "{end}");
            assert_eq!(path.sent_plpmtud_probes, 1, "{end}: {path:?}");
        }
    }

    /// A client that prefers AES-256 with SHA-384 (rustls's own order) still gets AES-128 with
    /// SHA-256, whose key schedule runs on the CPU's SHA instructions.
    #[test]
    fn the_server_picks_aes_128_with_sha_256() {
        let (cert, key) = self_signed();
        let server = super::tls_config(vec![cert.clone()], key).expect("server config");

        let rustls_default = Arc::new(rustls::crypto::ring::default_provider());
        assert_eq!(
            rustls_default.cipher_suites[0].suite(),
            CipherSuite::TLS13_AES_256_GCM_SHA384,
            "the client below prefers another suite"
        );
        let pin = Verification::Pin(chatproto::fingerprint::fingerprint_of_der(&cert));
        let client =
            chatproto::tls::rustls_client_config_with(&pin, rustls_default).expect("client config");

        let mut client = rustls::ClientConnection::new(
            Arc::new(client),
            ServerName::try_from("localhost").expect("name"),
        )
        .expect("client");
        let mut server = rustls::ServerConnection::new(Arc::new(server)).expect("server");
        while client.is_handshaking() || server.is_handshaking() {
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).expect("client writes");
            server
                .read_tls(&mut bytes.as_slice())
                .expect("server reads");
            server.process_new_packets().expect("server handshake");
            let mut bytes = Vec::new();
            server.write_tls(&mut bytes).expect("server writes");
            client
                .read_tls(&mut bytes.as_slice())
                .expect("client reads");
            client.process_new_packets().expect("client handshake");
        }
        assert_eq!(
            client.negotiated_cipher_suite().map(|s| s.suite()),
            Some(CipherSuite::TLS13_AES_128_GCM_SHA256)
        );
    }
}
