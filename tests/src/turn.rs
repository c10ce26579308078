//! A real TURN server: Debian's coturn (`turnserver`) on a free loopback port, checking TURN
//! REST API credentials against a shared secret (`--use-auth-secret`), as a deployment runs it
//! beside chatd (spec 14.5); and coturn's own client, `turnutils_uclient`, to allocate a relay
//! with given credentials.

use std::process::Command;
use std::time::Duration;

use crate::ports::free_port;
use crate::process::{CommandOutput, Launch, ServerProcess, run_bounded};
use crate::tools;

/// How long turnserver may take to bind its port and start its threads.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one allocation with `turnutils_uclient` may take (a few packets on loopback).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The realm turnserver runs in (its `--realm`).
pub const REALM: &str = "chat.test";
/// The line turnserver logs once its listeners and relay servers are up.
const READY_LINE: &str = "Total General servers";

/// A running turnserver, killed when dropped.
pub struct TurnServer {
    process: ServerProcess,
    /// Its UDP and TCP port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl TurnServer {
    /// Starts turnserver on loopback with `secret` as its `static-auth-secret`: no TLS, no
    /// DTLS, no admin CLI, its pid file and user database in a private directory.
    ///
    /// # Panics
    /// When turnserver cannot be found or does not come up, with its log.
    pub fn start(secret: &str) -> TurnServer {
        Self::start_with_secrets(&[secret])
    }

    /// The same with several secrets, as during a rotation: coturn takes `static-auth-secret`
    /// more than once and accepts credentials made with any of them.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_with_secrets(secrets: &[&str]) -> TurnServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let userdb = dir.path().join("turndb");
        Self::launch(dir, &userdb, secrets)
    }

    /// Starts turnserver with no `static-auth-secret`: it checks credentials against the
    /// `turn_secret` rows of [`REALM`] in the SQLite database at `userdb`, which it
    /// reads on every allocation (where chatd publishes its TURN secrets).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_with_secret_db(userdb: &std::path::Path) -> TurnServer {
        Self::launch(tempfile::tempdir().expect("tempdir"), userdb, &[])
    }

    fn launch(dir: tempfile::TempDir, userdb: &std::path::Path, secrets: &[&str]) -> TurnServer {
        let program = tools::turnserver();
        let port = free_port();
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let process = Launch::new("turnserver", program, dir.path().join("turnserver.log"))
            .args([
                "-n".to_string(),
                "--listening-ip=127.0.0.1".into(),
                "--relay-ip=127.0.0.1".into(),
                format!("--listening-port={port}"),
                "--use-auth-secret".into(),
            ])
            .args(secrets.iter().map(|s| format!("--static-auth-secret={s}")))
            .args([
                format!("--realm={REALM}"),
                "--no-tls".into(),
                "--no-dtls".into(),
                "--no-cli".into(),
                "--allow-loopback-peers".into(),
                format!("--pidfile={}", path("turnserver.pid")),
                format!("--userdb={}", userdb.display()),
                "--log-file=stdout".into(),
            ])
            .capture_stdout()
            .spawn();
        let mut server = TurnServer {
            process,
            port,
            _dir: dir,
        };
        let ready = server.process.wait_stdout_line(START_TIMEOUT, |line| {
            line.contains(READY_LINE).then_some(())
        });
        if ready.is_none() || !server.process.is_running() {
            server.process.fail("turnserver did not come up");
        }
        server
    }

    /// Allocates a relay with `username` and `password` and sends a few packets through it
    /// with `turnutils_uclient` (to itself, over loopback): its exit status and output.
    ///
    /// # Panics
    /// When `turnutils_uclient` cannot be found or run.
    pub fn allocate(&self, username: &str, password: &str) -> CommandOutput {
        let mut cmd = Command::new(tools::turnutils_uclient());
        cmd.args(["-u", username, "-w", password, "-p"])
            .arg(self.port.to_string())
            .args(["-n", "3", "-m", "1", "-y", "127.0.0.1"]);
        run_bounded(&mut cmd, CLIENT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The end of turnserver's log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }
}
