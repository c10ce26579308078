//! A real FerretDB (SQLite handler) for tests: one server per test process, started on first use,
//! each test with its own database. A test that cannot start it fails with the reason; it never
//! skips.
//!
//! The binary is `$CHAT_TEST_FERRETDB`, else `ferretdb` on `PATH`, else `$(go env GOPATH)/bin/ferretdb`
//! (`cargo xtask deps` installs it). It runs under a small `sh` watchdog that stops it and removes
//! its temporary directory once the test process has exited, since a test binary's statics are
//! never dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{MongoOptions, MongoStore};

/// A running server.
pub(crate) struct Server {
    /// Its connection string.
    pub uri: String,
    /// Its data directory, with `ferretdb.log` and `ferretdb.pid`.
    dir: PathBuf,
}

impl Server {
    /// Stops the server now (the tests of an unreachable database use their own server).
    pub fn stop(&self) {
        let pid = std::fs::read_to_string(self.dir.join("ferretdb.pid")).unwrap_or_default();
        let pid = pid.trim();
        assert!(
            !pid.is_empty(),
            "no pid file for the FerretDB in {}",
            self.dir.display()
        );
        // SIGKILL: a crash, not a graceful shutdown that would keep open connections serving.
        let status = Command::new("kill").args(["-9", pid]).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cannot stop FerretDB {pid}"
        );
        let port_free = |uri: &str| {
            let addr = uri.trim_start_matches("mongodb://").trim_end_matches('/');
            addr.parse::<SocketAddr>()
                .map(|a| TcpStream::connect_timeout(&a, Duration::from_millis(100)).is_err())
                .unwrap_or(true)
        };
        let started = Instant::now();
        while !port_free(&self.uri) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Stops FerretDB when the process whose pid is `$1` is gone, then removes `$2`.
const WATCHDOG: &str = r#"parent=$1; dir=$2; shift 2
"$@" >"$dir/ferretdb.log" 2>&1 &
child=$!
echo "$child" >"$dir/ferretdb.pid"
while kill -0 "$parent" 2>/dev/null; do sleep 0.5; done
kill "$child" 2>/dev/null
wait "$child" 2>/dev/null
rm -rf "$dir""#;

fn find_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("CHAT_TEST_FERRETDB") {
        return Ok(PathBuf::from(path));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("ferretdb");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    let gopath = Command::new("go").args(["env", "GOPATH"]).output().ok();
    if let Some(out) = gopath {
        let candidate = Path::new(String::from_utf8_lossy(&out.stdout).trim())
            .join("bin")
            .join("ferretdb");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err("FerretDB not found: set CHAT_TEST_FERRETDB or run `cargo xtask deps`".to_string())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// One attempt to start FerretDB; `Err` carries the reason and its log.
fn start_once(binary: &Path) -> Result<Server, String> {
    let dir = tempfile::Builder::new()
        .prefix("chatd-ferretdb-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?
        .keep();
    let (port, debug_port) = (free_port()?, free_port()?);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("sh")
        .arg(std::process::id().to_string())
        .arg(&dir)
        .arg(binary)
        .arg("--handler=sqlite")
        .arg(format!("--sqlite-url=file:{}/", dir.display()))
        .arg(format!("--state-dir={}", dir.display()))
        .arg(format!("--listen-addr={addr}"))
        .arg(format!("--debug-addr=127.0.0.1:{debug_port}"))
        .arg("--telemetry=disable")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let log = dir.join("ferretdb.log");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Listening on TCP")
            && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        {
            return Ok(Server {
                uri: format!("mongodb://{addr}/"),
                dir,
            });
        }
        if text.contains("panic")
            || text.contains("FATAL")
            || text.contains("address already in use")
        {
            return Err(format!(
                "FerretDB ({}) failed to start:\n{text}",
                binary.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    Err(format!(
        "FerretDB ({}) did not listen on {addr} within 30 s:\n{text}",
        binary.display()
    ))
}

/// Starts a FerretDB of its own (most tests share one per process, see [`uri`]).
pub(crate) fn start() -> Result<Server, String> {
    let binary = find_binary()?;
    let mut last = String::new();
    // A port taken between choosing and binding it is worth another try.
    for _ in 0..3 {
        match start_once(&binary) {
            Ok(server) => return Ok(server),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The URI of this process's FerretDB; panics with the reason when it cannot run.
pub(crate) fn uri() -> String {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(server) => server.uri.clone(),
        Err(e) => panic!("the MongoDB-backend tests need FerretDB: {e}"),
    }
}

/// A database name no other test of this run uses.
pub(crate) fn fresh_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on a fresh database with `options` (its database name is replaced).
pub(crate) async fn store_with(options: MongoOptions) -> MongoStore {
    let options = MongoOptions {
        database: fresh_database(),
        ..options
    };
    match MongoStore::connect(&uri(), options).await {
        Ok(store) => store,
        Err(e) => panic!("cannot connect to the test FerretDB: {e}"),
    }
}

/// Another store on `store`'s database, with its own client and writer queues: what a second
/// chatd instance of a cluster would be.
pub(crate) async fn another_instance(store: &MongoStore) -> MongoStore {
    match MongoStore::connect(&uri(), store.options.clone()).await {
        Ok(store) => store,
        Err(e) => panic!("cannot connect to the test FerretDB: {e}"),
    }
}

/// A store on a fresh database with default options.
pub(crate) async fn store() -> MongoStore {
    store_with(MongoOptions::default()).await
}
