//! Client TLS for chat/1: how the server's certificate is verified, and the quinn client
//! configuration built from it.
//!
//! Three modes ([`Verification`]):
//! - a CA (PEM roots, from a file or in memory): normal WebPKI verification of the chain and of
//!   the server name;
//! - a pinned SHA-256 fingerprint of the server's end-entity certificate (DER): exactly that
//!   certificate is accepted, whatever its name or issuer — for self-signed deployments;
//! - insecure: anything is accepted. Development only; every use logs a warning.
//!
//! In every mode the TLS 1.3 handshake signature is verified with the algorithms of
//! [`provider`], so a pinned or insecure peer must still hold the certificate's private key.
//! Only TLS 1.3 is offered (QUIC requires it) and the ALPN is [`ALPN`](crate::ALPN).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::fingerprint::{Fingerprint, fingerprint_of_der, format_fingerprint};

use quinn::crypto::rustls::QuicClientConfig;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// How the client verifies the server's certificate.
#[derive(Clone, PartialEq, Eq)]
pub enum Verification {
    /// Trust the CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Trust the CA certificates in this PEM text.
    CaPem(Vec<u8>),
    /// Accept exactly the end-entity certificate whose DER has this SHA-256 digest.
    Pin(Fingerprint),
    /// Accept any certificate. Anyone on the path can impersonate the server: development only.
    InsecureDangerous,
}

impl fmt::Debug for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CaFile(path) => f.debug_tuple("CaFile").field(path).finish(),
            Self::CaPem(pem) => write!(f, "CaPem({} bytes)", pem.len()),
            Self::Pin(pin) => write!(f, "Pin({})", format_fingerprint(pin)),
            Self::InsecureDangerous => f.write_str("InsecureDangerous"),
        }
    }
}

impl Verification {
    /// True for [`Verification::InsecureDangerous`].
    pub fn is_insecure(&self) -> bool {
        matches!(self, Self::InsecureDangerous)
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA PEM text holds no usable certificate.
    #[error("invalid CA certificates: {0}")]
    BadCa(String),
    /// rustls or quinn rejected the configuration.
    #[error("tls configuration: {0}")]
    Config(String),
}

/// Idle timeout of client connections: a silent server is given up after this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive interval: well inside the idle timeout, and short enough to keep NAT bindings.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The crypto provider every chat/1 client (and chatd) uses, built explicitly (never a process
/// default): ring's, with two changes that make a handshake cheaper.
/// - `TLS_AES_128_GCM_SHA256` is the first choice. rustls would pick AES-256 with SHA-384, whose
///   key schedule hashes with SHA-512 in software on CPUs without SHA-512 instructions (most x86
///   servers): about 4% of chatd's CPU per new connection, where SHA-256 runs on the SHA
///   instructions most have. AES-128-GCM is TLS 1.3's mandatory suite and QUIC's own for Initial
///   packets.
/// - X25519, the key exchange of every handshake (resumed ones too: TLS 1.3 resumes with a fresh
///   key share), is aws-lc-rs's: its assembly takes about 33 µs for a key pair and the shared
///   secret where ring's portable code takes 59 µs (AMD EPYC, `cargo bench -p chatd --bench
///   tls`), some 4% of chatd's CPU per resumed connection. Everything else stays ring's, which is
///   as fast or faster for the rest (HKDF, AES-GCM packet protection, signatures).
pub fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    for group in &mut provider.kx_groups {
        if group.name() == rustls::NamedGroup::X25519 {
            *group = rustls::crypto::aws_lc_rs::kx_group::X25519;
        }
    }
    Arc::new(provider)
}

/// A rustls client configuration for `verification`: TLS 1.3 only, ALPN `chat/1`.
pub fn rustls_client_config(verification: &Verification) -> Result<rustls::ClientConfig, TlsError> {
    rustls_client_config_with(verification, provider())
}

/// [`rustls_client_config`] with another cryptography `provider` (its cipher suite order is
/// the client's preference): for testing what a server picks for clients that prefer others.
pub fn rustls_client_config_with(
    verification: &Verification,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = match verification {
        Verification::CaFile(path) => {
            let pem = std::fs::read(path).map_err(|source| TlsError::ReadCa {
                path: path.clone(),
                source,
            })?;
            builder
                .with_root_certificates(root_store(&pem)?)
                .with_no_client_auth()
        }
        Verification::CaPem(pem) => builder
            .with_root_certificates(root_store(pem)?)
            .with_no_client_auth(),
        Verification::Pin(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(FixedVerifier {
                pin: Some(*pin),
                seen: None,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        Verification::InsecureDangerous => {
            tracing::warn!(
                "TLS certificate verification is DISABLED: anyone on the network path can \
                 impersonate the server (development only)"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(FixedVerifier {
                    pin: None,
                    seen: None,
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![crate::ALPN.to_vec()];
    Ok(config)
}

/// Where [`recording_client_config`] puts the fingerprint of the certificate it was shown.
pub(crate) type SeenFingerprint = Arc<std::sync::Mutex<Option<Fingerprint>>>;

/// A quinn client configuration that accepts any certificate but records the fingerprint of the
/// end-entity certificate the server presents, to show it to a user before they trust it. The
/// handshake signature is still verified, so a completed handshake proves the server holds the
/// key of the recorded certificate.
pub(crate) fn recording_client_config() -> Result<(quinn::ClientConfig, SeenFingerprint), TlsError>
{
    let provider = provider();
    let seen = SeenFingerprint::default();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(FixedVerifier {
            pin: None,
            seen: Some(seen.clone()),
            algorithms: provider.signature_verification_algorithms,
        }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![crate::ALPN.to_vec()];
    Ok((quic_config(Arc::new(tls))?, seen))
}

/// The transport settings of client connections: keep-alive, idle timeout, datagrams on, no
/// streams the server could open beyond the event stream (and a few spare uni streams), and
/// at most one path MTU probe ([`mtu_discovery`](crate::udp::mtu_discovery)).
pub fn transport_config() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(KEEP_ALIVE))
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(IDLE_TIMEOUT).expect("30 s fits a QUIC varint"),
        ))
        .max_concurrent_bidi_streams(0u32.into())
        .max_concurrent_uni_streams(8u32.into())
        .datagram_receive_buffer_size(Some(256 * 1024))
        .datagram_send_buffer_size(256 * 1024)
        .mtu_discovery_config(Some(crate::udp::mtu_discovery()));
    transport
}

/// A quinn client configuration for `verification` with [`transport_config`], resumption and
/// 0-RTT (protocol.md 2.5). The TLS configuration is made once per verification and shared by
/// the whole process, and with it the session tickets servers give: a later connection of any
/// client of this process that verifies servers the same way resumes (rustls resumes a ticket
/// only under the configuration that got it, which is also what keeps a ticket from a server
/// verified one way from resuming under another: a resumed session is not verified again).
/// Whether a connection sends 0-RTT data is the caller's choice (`Connecting::into_0rtt`).
pub fn client_config(verification: &Verification) -> Result<quinn::ClientConfig, TlsError> {
    quic_config(shared_tls_config(verification)?)
}

/// Verifications the process keeps a TLS configuration for (the least recently made go first).
const SHARED_CONFIGS: usize = 32;

/// The process's TLS configuration for `verification`, with early data enabled and rustls's
/// default in-memory ticket cache. A CA file is read each time and its contents are the key,
/// so a changed file makes a new configuration.
fn shared_tls_config(verification: &Verification) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    type Shared = Vec<(Verification, Arc<rustls::ClientConfig>)>;
    static SHARED: std::sync::OnceLock<std::sync::Mutex<Shared>> = std::sync::OnceLock::new();
    let key = match verification {
        Verification::CaFile(path) => {
            Verification::CaPem(std::fs::read(path).map_err(|source| TlsError::ReadCa {
                path: path.clone(),
                source,
            })?)
        }
        other => other.clone(),
    };
    let shared = SHARED.get_or_init(Default::default);
    let found = shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|(v, _)| *v == key)
        .map(|(_, config)| config.clone());
    if let Some(config) = found {
        return Ok(config);
    }
    // Built without the lock held (it may read and parse certificates); two threads racing
    // here each build one and the later is kept, which costs nothing but its tickets.
    let mut tls = rustls_client_config(&key)?;
    tls.enable_early_data = true;
    let tls = Arc::new(tls);
    let mut shared = shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if shared.len() >= SHARED_CONFIGS {
        shared.remove(0);
    }
    shared.push((key, tls.clone()));
    Ok(tls)
}

fn quic_config(tls: Arc<rustls::ClientConfig>) -> Result<quinn::ClientConfig, TlsError> {
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    config.transport_config(Arc::new(transport_config()));
    Ok(config)
}

fn root_store(pem: &[u8]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| TlsError::BadCa(format!("unreadable PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| TlsError::BadCa(format!("rejected certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(TlsError::BadCa("no certificate in the PEM text".into()));
    }
    Ok(roots)
}

/// Accepts one pinned certificate (or, with no pin, any certificate), and verifies handshake
/// signatures normally. With `seen`, it records the fingerprint of the certificate presented.
#[derive(Debug)]
struct FixedVerifier {
    pin: Option<[u8; 32]>,
    seen: Option<SeenFingerprint>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for FixedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(seen) = &self.seen
            && let Ok(mut slot) = seen.lock()
        {
            *slot = Some(fingerprint_of_der(end_entity));
        }
        match self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) if fingerprint_of_der(end_entity) == pin => {
                Ok(ServerCertVerified::assertion())
            }
            Some(pin) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinMismatch {
                    expected: format_fingerprint(&pin),
                    actual: format_fingerprint(&fingerprint_of_der(end_entity)),
                }))),
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate presented is not the pinned one.
#[derive(Debug, thiserror::Error)]
#[error("server certificate fingerprint {actual} does not match the pinned {expected}")]
struct PinMismatch {
    expected: String,
    actual: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's one key share is X25519, and it is aws-lc-rs's: the other groups and the
    /// cipher suites stay ring's.
    #[test]
    fn the_provider_takes_x25519_from_aws_lc_rs() {
        let provider = provider();
        let first = provider.kx_groups[0];
        assert_eq!(first.name(), rustls::NamedGroup::X25519);
        let same = |a: &dyn rustls::crypto::SupportedKxGroup,
                    b: &dyn rustls::crypto::SupportedKxGroup| {
            std::ptr::addr_eq(a as *const _, b as *const _)
        };
        assert!(same(first, rustls::crypto::aws_lc_rs::kx_group::X25519));
        let ring = rustls::crypto::ring::default_provider();
        for (ours, theirs) in provider.kx_groups.iter().zip(&ring.kx_groups).skip(1) {
            assert_eq!(ours.name(), theirs.name());
            assert!(same(*ours, *theirs), "{:?} is ring's", ours.name());
        }
        assert_eq!(provider.kx_groups.len(), ring.kx_groups.len());
        assert_eq!(provider.cipher_suites.len(), ring.cipher_suites.len());
    }

    #[test]
    fn empty_or_garbage_ca_pem_is_rejected() {
        let err = client_config(&Verification::CaPem(b"hello".to_vec())).unwrap_err();
        assert!(matches!(err, TlsError::BadCa(_)), "{err}");
        let err = client_config(&Verification::CaFile("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn ca_pem_certificates_are_read_and_broken_sections_named() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .expect("certificate")
            .cert
            .pem();
        // Other sections (a key, text around) are passed over; every certificate is a root.
        let pem = format!(
            "comment\n{cert}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{cert}"
        );
        assert_eq!(root_store(pem.as_bytes()).expect("roots").len(), 2);
        let broken = "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n";
        let err = root_store(broken.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("unreadable PEM"), "{err}");
    }

    #[test]
    fn debug_does_not_dump_pem_bytes() {
        let v = Verification::CaPem(vec![b'x'; 5000]);
        assert_eq!(format!("{v:?}"), "CaPem(5000 bytes)");
    }
}
