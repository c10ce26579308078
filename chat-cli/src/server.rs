//! How a client binary names its server and checks the server's certificate: the `--server`
//! value parser and the `--pin` / `--ca` / `--server-name` / `--insecure` flags, declared once
//! for chat-tui, loadgen and chatctl.

use std::path::PathBuf;

use chatproto::fingerprint::parse_fingerprint;
use chatproto::tls::Verification;
use clap::Args;

/// The certificate flags every client flattens next to its own `--server`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct ServerArgs {
    /// Accept exactly the server certificate with this SHA-256 fingerprint (64 hex digits,
    /// colons allowed), as chatd prints it on start
    #[arg(long, value_name = "SHA256", conflicts_with_all = ["ca", "insecure"])]
    pub pin: Option<String>,
    /// Verify the server certificate against the CA certificates in this PEM file
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// The name the certificate must be valid for (with --ca), when it is not the host of
    /// --server
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// DANGEROUS, development only: accept any server certificate
    #[arg(long)]
    pub insecure: bool,
}

/// Why the certificate flags cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum VerificationError {
    /// `--pin` is not a fingerprint.
    #[error("--pin: {0}")]
    Pin(String),
    /// `--ca` cannot be read.
    #[error("--ca {path}: {source}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// More than one of `--pin`, `--ca`, `--insecure` (possible when a config file adds one).
    #[error("--pin, --ca and --insecure exclude each other")]
    Conflict,
}

impl ServerArgs {
    /// The verification the flags ask for; `None` when none was given (the program decides:
    /// trust on first use, a saved profile, or an error).
    ///
    /// # Errors
    /// A malformed `--pin`, an unreadable `--ca`.
    pub fn verification(&self) -> Result<Option<Verification>, VerificationError> {
        verification(self.pin.as_deref(), self.ca.as_deref(), self.insecure)
    }
}

/// The verification from the three mutually exclusive settings, wherever they came from.
///
/// # Errors
/// See [`ServerArgs::verification`]; also more than one of them.
pub fn verification(
    pin: Option<&str>,
    ca: Option<&std::path::Path>,
    insecure: bool,
) -> Result<Option<Verification>, VerificationError> {
    match (pin, ca, insecure) {
        (None, None, false) => Ok(None),
        (Some(pin), None, false) => parse_fingerprint(pin)
            .map(|f| Some(Verification::Pin(f)))
            .map_err(|e| VerificationError::Pin(e.to_string())),
        (None, Some(ca), false) => match std::fs::metadata(ca) {
            Ok(_) => Ok(Some(Verification::CaFile(ca.to_path_buf()))),
            Err(source) => Err(VerificationError::Ca {
                path: ca.to_path_buf(),
                source,
            }),
        },
        (None, None, true) => Ok(Some(Verification::InsecureDangerous)),
        _ => Err(VerificationError::Conflict),
    }
}

/// The `--server` value parser: a non-empty host (brackets for IPv6) and a port number.
///
/// # Errors
/// What a valid address looks like.
pub fn parse_server(server: &str) -> Result<String, String> {
    let valid = server.rsplit_once(':').is_some_and(|(host, port)| {
        let host_ok = if let Some(inner) = host.strip_prefix('[') {
            inner
                .strip_suffix(']')
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            !host.is_empty() && !host.contains(':') && !host.contains(char::is_whitespace)
        };
        host_ok && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if valid {
        Ok(server.to_owned())
    } else {
        Err("expected HOST:PORT, e.g. chat.example.org:4433 or [::1]:4433".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        for good in ["chat.example.org:4433", "[::1]:4433", "10.0.0.1:1"] {
            assert_eq!(parse_server(good).as_deref(), Ok(good));
        }
        for bad in [
            "chat.example.org",
            ":4433",
            "host:0",
            "host:99999",
            "::1:4433",
            "[zz]:1",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_way_of_checking_the_certificate() {
        let pin = "ab".repeat(32);
        assert_eq!(verification(None, None, false).unwrap(), None);
        assert_eq!(
            verification(Some(&pin), None, false).unwrap(),
            Some(Verification::Pin([0xab; 32]))
        );
        assert!(
            verification(Some("abcd"), None, false)
                .unwrap_err()
                .to_string()
                .starts_with("--pin:")
        );
        let err = verification(None, Some("/nonexistent/ca.pem".as_ref()), false).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        assert!(matches!(
            verification(Some(&pin), None, true),
            Err(VerificationError::Conflict)
        ));
    }
}
