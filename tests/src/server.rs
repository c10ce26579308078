//! An in-process chatd on free loopback ports with its own temporary data directory.
//!
//! In-process servers start in milliseconds, so every test gets its own. Tests that need a real
//! process (signals, kill -9, several nodes on FerretDB) use [`crate::chatd::ChatdProcess`]
//! instead. Several in-process servers may share one data directory (and so one SQLite store) to
//! play the nodes of a cluster on one Redis, as `tests/cluster`'s `in_process` suite does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chatd::daemon::Daemon;
use chatd::ops::config::Config;

/// Limits high enough that functional tests never hit them; rate-limit tests set their own.
pub const GENEROUS_LIMITS: &[&str] = &[
    "--limit-send=100000/s burst 100000",
    "--limit-request=100000/s burst 100000",
    "--limit-address-request=100000/s burst 100000",
    "--limit-login-account=100000/s burst 100000",
    "--limit-login-account-address=100000/s burst 100000",
    "--limit-login-address=100000/s burst 100000",
    "--limit-typing=100000/s burst 100000",
    "--limit-upload=100000/s burst 100000",
    "--limit-call-signal=100000/s burst 100000",
];

/// A running in-process chatd.
pub struct TestServer {
    daemon: Option<Daemon>,
    // The data directory, kept until the last server on it is dropped.
    dir: Arc<tempfile::TempDir>,
}

impl TestServer {
    /// A server with generous limits.
    pub async fn start() -> TestServer {
        Self::start_with(&[]).await
    }

    /// A server with generous limits and extra settings (later flags win).
    pub async fn start_with(extra: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(Arc::new(dir), extra).await
    }

    /// A server on an existing data directory: to restart one, or a second server on the same
    /// store (cluster nodes share their database).
    pub async fn start_in(dir: Arc<tempfile::TempDir>, extra: &[&str]) -> TestServer {
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

    /// The Prometheus text of the admin endpoint's `/metrics`. The server runs in the caller's
    /// runtime, so the blocking client runs on a blocking thread.
    pub async fn metrics(&self) -> String {
        let addr = self.admin_addr();
        let (_, metrics) =
            tokio::task::spawn_blocking(move || crate::chatd::http_get(addr, "/metrics"))
                .await
                .expect("metrics task")
                .expect("metrics");
        metrics
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

    /// The store the server's handlers use (to set up or inspect state in assertions).
    pub fn store(&self) -> std::sync::Arc<dyn chatd::testing::Store> {
        self.daemon().store()
    }

    /// A download URL for `user_id` to fetch `file_id` as if signed at `now_ms`, and its
    /// expiry; `None` when the HTTPS file server is off.
    pub fn sign_file_url(&self, file_id: &str, user_id: u64, now_ms: i64) -> Option<(String, i64)> {
        self.daemon().sign_file_url(file_id, user_id, now_ms)
    }

    /// Fills the server's image-processing queue until the guard drops (finishing an image
    /// upload meanwhile is answered UNAVAILABLE).
    pub fn fill_image_queue(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.daemon().fill_image_queue()
    }

    /// Attempts the email and webhook deliveries due at `now_ms` (the future, to skip a digest
    /// interval) until none is left; returns how many were attempted.
    pub async fn deliver_as_of(&self, now_ms: i64) -> usize {
        self.daemon().deliver_as_of(now_ms).await
    }

    /// Runs the session sweep as of `now_ms` (the future, to pass the retention period);
    /// returns how many sessions it deleted.
    pub async fn sweep_sessions_as_of(&self, now_ms: i64) -> u64 {
        self.daemon()
            .sweep_sessions_as_of(now_ms)
            .await
            .expect("session sweep")
    }

    /// Holds every sign-in after it read its session and before it registers for delivery,
    /// until the guard drops.
    pub async fn hold_sign_ins(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.daemon().delivery().hold_attaches().await
    }

    /// How many sign-ins [`hold_sign_ins`](Self::hold_sign_ins) holds now.
    pub fn sign_ins_held(&self) -> usize {
        self.daemon().delivery().attaches_held()
    }

    /// Plans failures of the server's store calls: the next `times` calls of `method` (a store
    /// trait method's name) answer `Unavailable`, `when` says whether after the call was made;
    /// `times` 0 calls off what is planned for it. The SDK retries requests answered
    /// `UNAVAILABLE`: plan more failures than it makes attempts to see the error.
    pub fn fail_store_calls(&self, method: &'static str, when: chatd::testing::Fail, times: u32) {
        self.daemon().store_faults().fail(method, when, times)
    }

    /// Drops a user's connections from the server side; returns how many there were.
    pub fn kick_connections_of(&self, user_id: u64) -> usize {
        self.daemon().kick_connections_of(user_id)
    }

    /// Whether this node is subscribed to the Redis channel `channel` (cluster mode).
    pub fn is_subscribed(&self, channel: &str) -> bool {
        self.daemon().is_subscribed(channel)
    }

    /// Stops every talk with Redis without cleaning up, as if the node had crashed while its
    /// clients stay connected (cluster mode).
    pub fn halt_cluster(&self) {
        self.daemon().halt_cluster()
    }

    /// Drains and stops the server, keeping the data directory for a restart.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await.expect("clean shutdown");
        }
        self.dir
    }
}

/// An in-process chatd on a runtime of its own with a fixed number of worker threads, for tests
/// that must tell a blocked server from a blocked test: the test drives its clients on its own
/// runtime, so a server whose workers are stuck makes the test's requests time out (and fail)
/// instead of hanging the test.
pub struct IsolatedServer {
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<TestServer>,
}

impl IsolatedServer {
    /// Starts a server with generous limits on `workers` worker threads. Call from outside any
    /// runtime (a plain `#[test]`).
    pub fn start(workers: usize) -> IsolatedServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("server runtime");
        let server = runtime.block_on(TestServer::start());
        IsolatedServer {
            runtime: Some(runtime),
            server: Some(server),
        }
    }

    /// The running server.
    pub fn server(&self) -> &TestServer {
        self.server.as_ref().expect("server running")
    }
}

impl Drop for IsolatedServer {
    fn drop(&mut self) {
        let (Some(runtime), Some(server)) = (self.runtime.take(), self.server.take()) else {
            return;
        };
        // A server whose workers are blocked never finishes draining (and its runtime's timers
        // stop with them): wait on this thread, give up after a while and leave its threads
        // behind rather than hang the test.
        let (stopped, wait) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            server.stop().await;
            let _ = stopped.send(());
        });
        if wait
            .recv_timeout(std::time::Duration::from_secs(15))
            .is_err()
        {
            eprintln!("isolated chatd did not stop within 15 s");
        }
        runtime.shutdown_background();
    }
}
