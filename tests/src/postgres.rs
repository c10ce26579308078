//! A private PostgreSQL (Debian's `postgresql` package) on a free loopback port, for FerretDB's
//! PostgreSQL handler: far faster than its SQLite handler, so benchmarks of the MongoDB backend
//! measure chatd rather than the stand-in database.
//!
//! PostgreSQL refuses to run as root: when this process is root, `initdb` and `postgres` run as
//! the `postgres` user (through `setpriv`), in a temporary directory handed to that user. The
//! cluster is created with trust authentication on loopback only, and a database `ferretdb`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::ports::free_port;
use crate::process::{Launch, SIGTERM, ServerProcess, poll_until, run_bounded, running_as_root};
use crate::tools;

/// How long PostgreSQL may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `initdb` and `createdb` may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a stop waits for a clean exit before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The account that runs PostgreSQL when this process is root.
const SYSTEM_USER: &str = "postgres";
/// The database FerretDB stores in.
pub const DATABASE: &str = "ferretdb";

/// A running PostgreSQL.
#[derive(Debug)]
pub struct Postgres {
    process: Option<ServerProcess>,
    port: u16,
    // Dropped after `process`.
    dir: tempfile::TempDir,
}

/// The program and first arguments that run PostgreSQL's `bin` as the account that owns the
/// cluster.
fn as_owner(bin: &Path, as_postgres: bool) -> (PathBuf, Vec<String>) {
    if as_postgres {
        (
            PathBuf::from("setpriv"),
            vec![
                format!("--reuid={SYSTEM_USER}"),
                format!("--regid={SYSTEM_USER}"),
                "--init-groups".into(),
                bin.display().to_string(),
            ],
        )
    } else {
        (bin.to_path_buf(), Vec::new())
    }
}

/// A command of PostgreSQL's, run as the account that owns the cluster.
fn pg_command(bin: &Path, as_postgres: bool) -> Command {
    let (program, args) = as_owner(bin, as_postgres);
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

/// The uid and gid of `user`.
fn ids_of(user: &str) -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|e| format!("cannot run id: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("no system user {user:?} (install the postgresql package)"))
    };
    Ok((id("-u")?, id("-g")?))
}

impl Postgres {
    /// Creates a cluster in a fresh temporary directory and starts it.
    ///
    /// # Panics
    /// When it cannot be set up or started, with the command and its output.
    pub fn start() -> Postgres {
        match Postgres::try_start() {
            Ok(pg) => pg,
            Err(failure) => panic!("{failure}"),
        }
    }

    fn try_start() -> Result<Postgres, String> {
        let bin = tools::postgres_bin_dir();
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("chat-postgres-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory for postgres: {e}"))?;
        let data = dir.path().join("data");
        if as_postgres {
            let (uid, gid) = ids_of(SYSTEM_USER)?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| {
                format!("cannot hand {} to {SYSTEM_USER}: {e}", dir.path().display())
            })?;
        }
        let init = run_bounded(
            pg_command(&bin.join("initdb"), as_postgres)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
                .arg(&data),
            SETUP_TIMEOUT,
        )?;
        if !init.status.success() {
            return Err(format!("initdb failed: {}{}", init.stdout, init.stderr));
        }
        let mut pg = Postgres {
            process: None,
            port: free_port(),
            dir,
        };
        pg.launch(&bin, as_postgres)?;
        let created = run_bounded(
            pg_command(&bin.join("createdb"), as_postgres)
                .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
                .arg(pg.port.to_string())
                .arg(DATABASE),
            SETUP_TIMEOUT,
        )?;
        if !created.status.success() {
            return Err(format!(
                "createdb failed: {}{}",
                created.stdout, created.stderr
            ));
        }
        Ok(pg)
    }

    fn launch(&mut self, bin: &Path, as_postgres: bool) -> Result<(), String> {
        let dir = self.dir.path();
        let (program, mut prefix) = as_owner(&bin.join("postgres"), as_postgres);
        prefix.extend([
            "-D".into(),
            dir.join("data").display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-k".into(),
            dir.display().to_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-c".into(),
            "max_connections=200".into(),
        ]);
        let process = Launch::new("postgres", program, dir.join("postgres.log"))
            .cleanup_dir(dir)
            .current_dir(dir)
            .args(prefix)
            .spawn();
        let process = self.process.insert(process);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let ready = poll_until(START_TIMEOUT, Duration::from_millis(50), || {
            if !process.is_running() {
                return Some(false);
            }
            let ready = std::fs::read_to_string(process.log_path())
                .is_ok_and(|log| log.contains("ready to accept connections"));
            (ready
                && std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
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

    /// The connection URL of the `ferretdb` database, for FerretDB's `--postgresql-url`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The process id of its postmaster (its backends are its children), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// Stops it (SIGTERM, then SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.signal(SIGTERM);
            if process.wait_exit(STOP_TIMEOUT).is_none() {
                process.kill();
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
