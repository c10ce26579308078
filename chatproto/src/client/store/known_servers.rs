//! Trust on first use: the servers a client has accepted, like SSH's `known_hosts`.
//!
//! A server the user has not seen before is shown with the SHA-256 fingerprint of its certificate
//! ([`fetch_fingerprint`]); once the user accepts it, [`KnownServers::trust`] records it, and later
//! connections pin that fingerprint ([`Verification::Pin`](crate::tls::Verification::Pin)). A
//! server that presents another certificate later is [`TrustCheck::Changed`]: the client refuses
//! it and says so loudly, because that is what an attacker in the middle looks like.
//!
//! The file has one `host:port fingerprint` line per server (64 lowercase hex digits); `#` starts
//! a comment. Hosts are compared without regard to case.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{StoreError, read_optional, write_atomic};
use crate::client::ClientError;
use crate::client::connection::{ATTEMPT_STAGGER, first_reachable, split_host};
use crate::error::CloseCode;
use crate::fingerprint::{Fingerprint, format_fingerprint, parse_fingerprint};
use crate::tls::recording_client_config;

/// What the file says about a server that presented a given fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustCheck {
    /// The fingerprint is the one recorded for this server.
    Trusted,
    /// Nothing is recorded for this server: ask the user.
    Unknown,
    /// Another fingerprint is recorded for this server: refuse the connection.
    Changed {
        /// The recorded fingerprint.
        known: Fingerprint,
    },
}

/// The known-servers file, loaded in memory.
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: PathBuf,
    entries: BTreeMap<String, Fingerprint>,
}

/// The key a server is recorded under: its `host:port` with the host in lowercase.
fn key(address: &str) -> String {
    match address.rsplit_once(':') {
        Some((host, port)) => format!("{}:{port}", host.to_ascii_lowercase()),
        None => address.to_ascii_lowercase(),
    }
}

impl KnownServers {
    /// Loads the file at `path`; a missing file is an empty list.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the first bad line, or [`StoreError::Io`].
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let mut entries = BTreeMap::new();
        if let Some(bytes) = read_optional(&path)? {
            let text = String::from_utf8(bytes)
                .map_err(|_| StoreError::corrupt(&path, "not UTF-8 text"))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let bad =
                    |why: String| StoreError::corrupt(&path, format!("line {}: {why}", n + 1));
                let (address, fp) = line
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| bad("expected `host:port fingerprint`".into()))?;
                split_host(address).map_err(|e| bad(e.to_string()))?;
                let fp = parse_fingerprint(fp).map_err(|e| bad(e.to_string()))?;
                entries.insert(key(address), fp);
            }
        }
        Ok(Self { path, entries })
    }

    /// The file this list is stored in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fingerprint recorded for `address` (`host:port`), if any.
    pub fn get(&self, address: &str) -> Option<Fingerprint> {
        self.entries.get(&key(address)).copied()
    }

    /// Compares what `address` presented with what is recorded.
    pub fn check(&self, address: &str, presented: &Fingerprint) -> TrustCheck {
        match self.get(address) {
            None => TrustCheck::Unknown,
            Some(known) if known == *presented => TrustCheck::Trusted,
            Some(known) => TrustCheck::Changed { known },
        }
    }

    /// Records (or replaces) the fingerprint of `address` and writes the file before returning.
    ///
    /// # Errors
    /// When `address` is not `host:port` or the file cannot be written (then nothing changes).
    pub fn trust(&mut self, address: &str, fingerprint: Fingerprint) -> Result<(), StoreError> {
        split_host(address).map_err(|e| StoreError::corrupt(&self.path, e.to_string()))?;
        let mut entries = self.entries.clone();
        entries.insert(key(address), fingerprint);
        let mut text = String::from("# Servers chat clients trust: host:port sha256-fingerprint\n");
        for (address, fp) in &entries {
            text.push_str(&format!("{address} {}\n", format_fingerprint(fp)));
        }
        write_atomic(&self.path, text.as_bytes(), 0o644)?;
        self.entries = entries;
        Ok(())
    }
}

/// Connects to `address` only far enough to see its certificate, and returns the SHA-256
/// fingerprint of the end-entity certificate. The TLS handshake completes (the server proves it
/// holds the certificate's key) but no request is sent; nothing about the certificate is
/// verified, so show the result to the user before trusting it.
///
/// # Errors
/// [`ClientError::Config`] for a malformed address, [`ClientError::Connect`] when no resolved
/// address completes a handshake within `timeout`.
pub async fn fetch_fingerprint(
    address: &str,
    server_name: Option<&str>,
    timeout: Duration,
) -> Result<Fingerprint, ClientError> {
    let host = split_host(address)?;
    let server_name = server_name.map_or(host, str::to_string);
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(address)
        .await
        .map_err(|e| ClientError::Connect(format!("{address}: cannot resolve: {e}")))?
        .collect();
    let attempt = |sock| handshake(sock, &server_name);
    let probe = first_reachable(&resolved, ATTEMPT_STAGGER, attempt);
    match tokio::time::timeout(timeout, probe).await {
        Ok(Ok(fp)) => Ok(fp),
        Ok(Err(failures)) => {
            Err(failures.into_error(&format!("{address}: resolves to no address")))
        }
        Err(_) => Err(ClientError::Connect(format!(
            "{address}: no answer within {timeout:?}"
        ))),
    }
}

async fn handshake(sock: SocketAddr, server_name: &str) -> Result<Fingerprint, ClientError> {
    let (config, seen) = recording_client_config()?;
    let bind = if sock.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let (endpoint, _) = crate::udp::endpoint(
        bind,
        quinn::EndpointConfig::default(),
        None,
        crate::udp::CLIENT_SOCKET_BUFFER,
    )
    .map_err(|e| ClientError::Connect(format!("cannot bind a UDP socket: {e}")))?;
    let result = async {
        let conn = endpoint
            .connect_with(config, sock, server_name)
            .map_err(|e| ClientError::Connect(e.to_string()))?
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        conn.close(CloseCode::NoError.into(), b"fingerprint checked");
        seen.lock()
            .ok()
            .and_then(|slot| *slot)
            .ok_or_else(|| ClientError::Protocol("the server presented no certificate".into()))
    }
    .await;
    endpoint.close(CloseCode::NoError.into(), b"fingerprint checked");
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_servers");
        (dir, path)
    }

    #[test]
    fn trusted_servers_survive_a_reload_and_hosts_ignore_case() {
        let (_dir, path) = temp_path();
        let mut known = KnownServers::load(&path).unwrap();
        assert_eq!(
            known.check("chat.example:4433", &[1; 32]),
            TrustCheck::Unknown
        );
        known.trust("Chat.Example:4433", [1; 32]).unwrap();
        let known = KnownServers::load(&path).unwrap();
        assert_eq!(
            known.check("chat.example:4433", &[1; 32]),
            TrustCheck::Trusted
        );
        assert_eq!(
            known.check("CHAT.example:4433", &[2; 32]),
            TrustCheck::Changed { known: [1; 32] }
        );
        assert_eq!(
            known.check("chat.example:4434", &[1; 32]),
            TrustCheck::Unknown
        );
    }

    #[test]
    fn a_corrupt_line_is_named() {
        let (_dir, path) = temp_path();
        std::fs::write(
            &path,
            format!("# comment\nok:1 {}\nbroken-line\n", "ab".repeat(32)),
        )
        .unwrap();
        let err = KnownServers::load(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        std::fs::write(&path, "host:1 abcd\n").unwrap();
        let err = KnownServers::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("64 hex characters"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_address_is_not_recorded() {
        let (_dir, path) = temp_path();
        let mut known = KnownServers::load(&path).unwrap();
        assert!(known.trust("no-port", [1; 32]).is_err());
        assert!(!path.exists());
    }
}
