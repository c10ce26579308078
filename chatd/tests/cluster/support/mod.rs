//! Shared by the cluster tests: Redis launchers, a raw client, and daemons configured for fast
//! heartbeats.

pub mod client;
pub mod redis;

use std::ffi::OsString;
use std::time::{Duration, Instant};

use chatd::daemon::Daemon;
use chatd::ops::config::Config;

/// The tests start several daemons and Redis servers each, on a small machine: run them one at a
/// time so timing assertions are not at the mercy of the other tests.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A daemon with its data directory.
pub struct Node {
    /// The running daemon.
    pub daemon: Daemon,
    /// Its data directory (the shared one when several nodes share a store).
    pub data_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Node {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl Node {
    /// Drains and stops the daemon.
    pub async fn shutdown(self) {
        self.daemon.shutdown().await.expect("orderly shutdown");
    }
}

/// Settings every test daemon gets: loopback, fast heartbeats, generous login limits (tests
/// register many users from one address).
fn base_args(dir: &std::path::Path, node_id: &str) -> Vec<String> {
    vec![
        "chatd".into(),
        format!("--data-dir={}", dir.display()),
        "--listen=127.0.0.1:0".into(),
        "--admin-listen=127.0.0.1:0".into(),
        format!("--node-id={node_id}"),
        "--presence-ttl=2s".into(),
        "--heartbeat-interval=500ms".into(),
        "--limit-login-address=1000/s burst 1000".into(),
        "--limit-login-account=1000/s burst 1000".into(),
        "--limit-login-account-address=1000/s burst 1000".into(),
        "--log=warn".into(),
    ]
}

/// Starts a daemon named `node_id` with `redis_url` (if any) and extra flags. The data directory
/// (and so the SQLite database) is `shared_dir` when given, so several nodes share one store
/// like cluster nodes share MongoDB.
pub async fn start_node(
    node_id: &str,
    redis_url: Option<&str>,
    shared_dir: Option<&std::path::Path>,
    extra: &[&str],
) -> Node {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = shared_dir.unwrap_or(dir.path());
    let mut args = base_args(data, node_id);
    if let Some(url) = redis_url {
        args.push(format!("--redis-url={url}"));
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let config =
        Config::load(args.into_iter().map(OsString::from), |_| None).expect("test configuration");
    let daemon = Daemon::start(config).await.expect("start chatd");
    Node {
        daemon,
        data_dir: data.to_path_buf(),
        _dir: dir,
    }
}

/// Polls `check` every 50 ms until it is true or `wait` passed.
pub async fn eventually(wait: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
