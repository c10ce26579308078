//! A real `chatd` process: started with a data directory and extra settings, read back from the
//! lines it prints on stdout (QUIC address, certificate fingerprint, admin address), stopped with
//! SIGTERM (drain) or SIGKILL (crash), and asked over its admin HTTP port.

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use crate::process::{Launch, SIGKILL, SIGTERM, ServerProcess};
use crate::tools;

/// How long chatd may take to print its addresses (it may generate a certificate first).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one admin HTTP request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The stdout line prefixes chatd prints once it serves.
const LISTENING: &str = "chatd listening on ";
const FINGERPRINT: &str = "certificate sha256 fingerprint: ";
const ADMIN: &str = "admin http on http://";

/// How to start a chatd: its data directory and extra arguments and environment.
#[derive(Debug, Clone, Default)]
pub struct ChatdConfig {
    binary: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    cleanup_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl ChatdConfig {
    /// Defaults: a fresh temporary data directory, QUIC and admin HTTP on free loopback ports.
    pub fn new() -> ChatdConfig {
        ChatdConfig::default()
    }

    /// Runs this chatd binary instead of the workspace's (e.g. an older build to compare with).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> ChatdConfig {
        self.binary = Some(path.into());
        self
    }

    /// Uses `dir` as the data directory (kept when the process is dropped); the log goes next to
    /// it, as `<dir>.log`.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> ChatdConfig {
        self.data_dir = Some(dir.into());
        self
    }

    /// A directory (holding the data directory) that the process watchdog removes if the test
    /// process dies while chatd runs; a temporary data directory is removed that way by default.
    pub fn cleanup_dir(mut self, dir: impl Into<PathBuf>) -> ChatdConfig {
        self.cleanup_dir = Some(dir.into());
        self
    }

    /// Listens for QUIC on `addr` instead of a free port.
    pub fn listen(mut self, addr: SocketAddr) -> ChatdConfig {
        self.listen = Some(addr);
        self
    }

    /// Adds command-line arguments (after `serve`).
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> ChatdConfig {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (`CHATD_*` variables of the test's own environment are
    /// never passed on).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> ChatdConfig {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// A running chatd (see the module documentation). Dropping it kills it.
#[derive(Debug)]
pub struct ChatdProcess {
    process: ServerProcess,
    config: ChatdConfig,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    fingerprint: String,
    data_dir: PathBuf,
    // Dropped after `process`; `None` when the caller gave the data directory.
    _temp: Option<tempfile::TempDir>,
}

impl ChatdProcess {
    /// Starts chatd and waits until it prints its addresses.
    ///
    /// # Panics
    /// When it exits or stays silent for 30 s, with its command line and log tail.
    pub fn start(mut config: ChatdConfig) -> ChatdProcess {
        let (temp, data_dir) = match &config.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("chat-chatd-")
                    .tempdir()
                    .unwrap_or_else(|e| {
                        panic!("cannot create a temporary directory for chatd: {e}")
                    });
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        if let Some(temp) = &temp {
            config
                .cleanup_dir
                .get_or_insert_with(|| temp.path().to_path_buf());
        }
        let (process, addr, admin_addr, fingerprint) = launch(&config, &data_dir);
        ChatdProcess {
            process,
            config,
            addr,
            admin_addr,
            fingerprint,
            data_dir,
            _temp: temp,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Starts it again after it exited, with the same settings, data directory and QUIC port.
    ///
    /// # Panics
    /// When it is still running or cannot be started.
    pub fn restart(&mut self) {
        assert!(!self.process.is_running(), "chatd is still running");
        let config = self.config.clone().listen(self.addr);
        let (process, addr, admin_addr, fingerprint) = launch(&config, &self.data_dir);
        self.process = process;
        self.addr = addr;
        self.admin_addr = admin_addr;
        self.fingerprint = fingerprint;
    }

    /// The QUIC address it serves chat/1 on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The SHA-256 fingerprint of its certificate, as clients pin it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The process (log, exit status).
    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }

    /// Asks it to drain and exit.
    ///
    /// # Panics
    /// When it has already exited.
    pub fn sigterm(&self) {
        if let Err(e) = self.process.signal(SIGTERM) {
            self.process.fail(&format!("cannot send SIGTERM: {e}"));
        }
    }

    /// Kills it at once (a crash), and reaps it.
    ///
    /// # Panics
    /// When it has already exited.
    pub fn sigkill(&mut self) -> ExitStatus {
        if let Err(e) = self.process.signal(SIGKILL) {
            self.process.fail(&format!("cannot send SIGKILL: {e}"));
        }
        self.wait_exit(Duration::from_secs(10))
    }

    /// Waits for it to exit.
    ///
    /// # Panics
    /// When it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.process.wait_exit(timeout) {
            Some(status) => status,
            None => self.process.fail(&format!(
                "still running {timeout:?} after it was asked to stop"
            )),
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// `GET path` on the admin port: the status code and body.
    ///
    /// # Errors
    /// When the request fails or the answer is not HTTP.
    pub fn admin_get(&self, path: &str) -> Result<(u16, String), String> {
        http_get(self.admin_addr, path)
    }

    /// Panics with a message naming chatd, its command line and its log tail.
    pub fn fail(&self, what: &str) -> ! {
        self.process.fail(what)
    }
}

/// Starts one chatd process and reads its addresses from stdout. Its log is `<data dir>.log`
/// (appended to across restarts).
fn launch(
    config: &ChatdConfig,
    data_dir: &Path,
) -> (ServerProcess, SocketAddr, SocketAddr, String) {
    let listen = config
        .listen
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    let binary = config.binary.clone().unwrap_or_else(tools::chatd_binary);
    let mut launch = Launch::new("chatd", binary, data_dir.with_extension("log"))
        .capture_stdout()
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--listen",
            &listen.to_string(),
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(config.args.iter().cloned());
    if let Some(dir) = &config.cleanup_dir {
        launch = launch.cleanup_dir(dir);
    }
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CHATD_") {
            launch = launch.env_remove(key);
        }
    }
    for (key, value) in &config.env {
        launch = launch.env(key, value);
    }
    let mut process = launch.spawn();
    let parse = |line: &str, prefix: &str| {
        line.strip_prefix(prefix)
            .map(|rest| rest.trim().to_string())
    };
    let admin = process.wait_stdout_line(START_TIMEOUT, |line| parse(line, ADMIN));
    let Some(admin) = admin else {
        let why = if process.is_running() {
            format!("printed no admin address within {START_TIMEOUT:?}")
        } else {
            "exited during start".to_string()
        };
        process.fail(&why);
    };
    let lines = process.stdout_lines();
    let find = |prefix: &str| lines.iter().find_map(|l| parse(l, prefix));
    let addr = find(LISTENING).and_then(|a| a.parse().ok());
    // The line may carry a hint after the hex ("(clients: --pin ...)").
    let fingerprint =
        find(FINGERPRINT).and_then(|f| f.split_whitespace().next().map(str::to_string));
    let admin_addr = admin.trim_end_matches('/').parse().ok();
    match (addr, admin_addr, fingerprint) {
        (Some(addr), Some(admin_addr), Some(fingerprint)) => {
            (process, addr, admin_addr, fingerprint)
        }
        _ => process.fail(&format!("unexpected start lines on stdout: {lines:?}")),
    }
}

/// A minimal HTTP/1.1 GET (`Connection: close`): the status code and body.
///
/// # Errors
/// When the request fails or the answer is not HTTP.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let err = |what: &str, e: std::io::Error| format!("GET http://{addr}{path}: {what}: {e}");
    let mut stream =
        TcpStream::connect_timeout(&addr, ADMIN_TIMEOUT).map_err(|e| err("connect", e))?;
    stream
        .set_read_timeout(Some(ADMIN_TIMEOUT))
        .map_err(|e| err("set timeout", e))?;
    stream
        .set_write_timeout(Some(ADMIN_TIMEOUT))
        .map_err(|e| err("set timeout", e))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| err("write", e))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| err("read", e))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET http://{addr}{path}: no header end in {text:?}"))?;
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("GET http://{addr}{path}: bad status line in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    let body = if chunked {
        dechunk(body).ok_or_else(|| format!("GET http://{addr}{path}: bad chunked body"))?
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// Decodes a chunked HTTP body.
fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks_bodies() {
        assert_eq!(
            super::dechunk("5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\n").as_deref(),
            Some("hello!")
        );
        assert_eq!(super::dechunk("5\r\nhel"), None);
    }
}
