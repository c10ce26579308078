//! An in-process chatd on free loopback ports with its own temporary data directory.
//!
//! In-process servers start in milliseconds, so every test gets its own. Tests that need a real
//! process (signals, kill -9, several nodes) use [`crate::chatd::ChatdProcess`] instead.

use std::net::SocketAddr;
use std::path::PathBuf;

use chatd::daemon::Daemon;
use chatd::ops::config::Config;

/// Limits high enough that functional tests never hit them; rate-limit tests set their own.
pub const GENEROUS_LIMITS: &[&str] = &[
    "--limit-send=100000/s burst 100000",
    "--limit-request=100000/s burst 100000",
    "--limit-address-request=100000/s burst 100000",
    "--limit-login-account=100000/s burst 100000",
    "--limit-login-address=100000/s burst 100000",
    "--limit-typing=100000/s burst 100000",
    "--limit-upload=100000/s burst 100000",
];

/// A running in-process chatd.
pub struct TestServer {
    daemon: Option<Daemon>,
    /// The data directory (kept until the server is dropped).
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with generous limits.
    pub async fn start() -> TestServer {
        Self::start_with(&[]).await
    }

    /// A server with generous limits and extra settings (later flags win).
    pub async fn start_with(extra: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, extra).await
    }

    /// A server on an existing data directory (to restart one).
    pub async fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> TestServer {
        let data_dir = format!("--data-dir={}", dir.path().display());
        let mut args: Vec<String> = vec![
            "chatd".into(),
            data_dir,
            "--listen=127.0.0.1:0".into(),
            "--admin-listen=127.0.0.1:0".into(),
        ];
        args.extend(GENEROUS_LIMITS.iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        let config =
            Config::load(args.into_iter().map(Into::into), |_| None).expect("test configuration");
        let daemon = Daemon::start(config).await.expect("start chatd");
        TestServer {
            daemon: Some(daemon),
            dir,
        }
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("server running")
    }

    /// The QUIC address.
    pub fn addr(&self) -> SocketAddr {
        self.daemon().addr
    }

    /// The admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.daemon().admin_addr
    }

    /// The HTTPS file server's address, when `--files-https-listen` is set.
    pub fn files_https_addr(&self) -> Option<SocketAddr> {
        self.daemon().files_https_addr
    }

    /// The certificate fingerprint for `--pin`.
    pub fn fingerprint(&self) -> String {
        self.daemon().fingerprint.clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The server's shared state (to inspect the store in assertions).
    pub fn state(&self) -> std::sync::Arc<chatd::state::AppState> {
        self.daemon().state.clone()
    }

    /// Drains and stops the server, keeping the data directory for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await.expect("clean shutdown");
        }
        self.dir
    }
}
