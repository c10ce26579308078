//! A real FerretDB (the MongoDB wire protocol over SQLite, or over PostgreSQL for benchmarks)
//! for the suites, which can be stopped and started again on the same port and data to simulate
//! the database going down.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::ports::free_port;
use crate::postgres::Postgres;
use crate::process::{Launch, SIGTERM, ServerProcess, poll_until};
use crate::tools;

/// How long FerretDB may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stop waits for a clean exit before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts with fresh ports when a port turned out to be taken.
const START_ATTEMPTS: usize = 3;

/// Where FerretDB keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FerretBackend {
    /// Its SQLite handler, in its own directory (what the suites use: nothing else to start).
    Sqlite,
    /// Its PostgreSQL handler on the database at this URL (see [`crate::postgres`]).
    Postgres(String),
}

/// A running (or stopped) FerretDB.
#[derive(Debug)]
pub struct FerretDb {
    backend: FerretBackend,
    process: Option<ServerProcess>,
    port: u16,
    debug_port: u16,
    // Dropped after `process`.
    dir: tempfile::TempDir,
}

impl FerretDb {
    /// Starts FerretDB with the SQLite handler in a fresh temporary directory.
    ///
    /// # Panics
    /// When it cannot be started, with its command line and log tail.
    pub fn start() -> FerretDb {
        FerretDb::start_on(FerretBackend::Sqlite)
    }

    /// Starts FerretDB storing in `backend`.
    ///
    /// # Panics
    /// When it cannot be started, with its command line and log tail.
    pub fn start_on(backend: FerretBackend) -> FerretDb {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("chat-ferretdb-")
                .tempdir()
                .unwrap_or_else(|e| {
                    panic!("cannot create a temporary directory for ferretdb: {e}")
                });
            let mut db = FerretDb {
                backend: backend.clone(),
                process: None,
                port: free_port(),
                debug_port: free_port(),
                dir,
            };
            match db.launch() {
                Ok(()) => return db,
                Err(failure) if failure.contains("address already in use") => last = failure,
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("{last}\n(gave up after {START_ATTEMPTS} attempts with fresh ports)")
    }

    /// Starts a private PostgreSQL, then FerretDB on its PostgreSQL handler storing there (the
    /// setup the cluster is benchmarked on). FerretDB needs the PostgreSQL while it runs: bind
    /// both as returned (`let (pg, db) = ...`), so that FerretDB is dropped first.
    ///
    /// # Panics
    /// When either cannot be started, with its command line and log tail.
    pub fn start_on_postgres() -> (Postgres, FerretDb) {
        let postgres = Postgres::start();
        let ferretdb = FerretDb::start_on(FerretBackend::Postgres(postgres.url()));
        (postgres, ferretdb)
    }

    fn launch(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let handler = match &self.backend {
            FerretBackend::Sqlite => [
                "--handler=sqlite".to_string(),
                format!("--sqlite-url=file:{}/", dir.display()),
            ],
            FerretBackend::Postgres(url) => [
                "--handler=postgresql".to_string(),
                format!("--postgresql-url={url}"),
            ],
        };
        let process = Launch::new("ferretdb", tools::ferretdb(), dir.join("ferretdb.log"))
            .cleanup_dir(dir)
            .current_dir(dir)
            .args(handler)
            .arg(format!("--state-dir={}", dir.display()))
            .arg(format!("--listen-addr=127.0.0.1:{}", self.port))
            .arg(format!("--debug-addr=127.0.0.1:{}", self.debug_port))
            .arg("--telemetry=disable")
            .spawn();
        let process = self.process.insert(process);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let ready = poll_until(START_TIMEOUT, Duration::from_millis(25), || {
            if !process.is_running() {
                return Some(false);
            }
            let listening = std::fs::read_to_string(process.log_path())
                .is_ok_and(|log| log.contains("Listening on TCP"));
            (listening && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
                .then_some(true)
        });
        match ready {
            Some(true) => Ok(()),
            Some(false) => Err(process.failure("exited during start")),
            None => Err(process.failure(&format!(
                "did not accept connections on {addr} within {START_TIMEOUT:?}"
            ))),
        }
    }

    /// Stops it (SIGTERM, then SIGKILL after 10 s); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.signal(SIGTERM);
            if process.wait_exit(STOP_TIMEOUT).is_none() {
                process.kill();
            }
        }
    }

    /// Starts it again after [`FerretDb::stop`], on the same port and data.
    ///
    /// # Panics
    /// When it is running, or cannot be started.
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "ferretdb is already running");
        if let Err(failure) = self.launch() {
            panic!("{failure}");
        }
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// Whether it is running.
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ServerProcess::is_running)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `mongodb://127.0.0.1:port/` (no database).
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/", self.port)
    }

    /// A URI naming `database` as the default database.
    pub fn uri_for(&self, database: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{database}", self.port)
    }

    /// A database name no other caller in this test process gets: tests sharing one FerretDB
    /// keep their data apart this way.
    pub fn fresh_database(prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!(
            "{prefix}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }
}
