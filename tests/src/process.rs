//! The server processes the suites start, and how they are stopped.
//!
//! Each server runs in its own process group with its output in a log file, and is killed with
//! its whole group when its [`ServerProcess`] is dropped, so helper processes (nginx workers) go
//! too. A test binary's statics are never dropped and a killed test binary runs no destructors,
//! so every group is also registered with one watchdog per test process: a small `sh` reading a
//! pipe from the test process, which at end of file (the test process is gone, however it ended)
//! kills every group still registered and removes their directories.
//!
//! # Layout
//! - [`Launch`]: what to run (program, arguments, environment, log file) and [`Launch::spawn`].
//! - [`ServerProcess`]: a running server: signals, bounded waits, stdout lines, log tail.
//! - [`run_bounded`]: runs a short command (e.g. `redis-cli`) with a timeout.
//! - [`poll_until`]: the bounded polling loop every readiness wait uses; [`eventually`] is the
//!   same for async checks.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Signal numbers the suites send.
pub use libc::{SIGKILL, SIGTERM};

/// How many log lines a failure message shows.
const LOG_TAIL_LINES: usize = 40;
/// How many log lines each server shows when a panicking test drops it.
const DROP_TAIL_LINES: usize = 15;

/// Calls `f` every `interval` until it returns `Some` or `timeout` has passed.
pub fn poll_until<T>(
    timeout: Duration,
    interval: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// Awaits `check` every `interval` until it is true or `timeout` has passed; whether it became
/// true. The async twin of [`poll_until`], for conditions a test can only observe over the
/// network (a cache entry, a subscription, a presence status).
pub async fn eventually(
    timeout: Duration,
    interval: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(interval).await;
    }
}

/// Sends `signal` to the process `pid`, or to the process group `-pid` when `pid` is negative.
#[allow(unsafe_code)]
fn send_signal(pid: i32, signal: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether this process runs as root (nginx then needs `user root;` to keep its workers able to
/// use the test's private directories).
#[allow(unsafe_code)]
pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The watchdog script: one line per command on stdin, `add PGID DIR` or `del PGID`; at end of
/// file it kills every registered group and removes its directory. The registry lives in files
/// so that directory names may contain any character but a newline.
const WATCHDOG: &str = r#"reg=$(mktemp -d) || exit 1
while IFS=' ' read -r op pgid dir; do
  case "$op" in
    add) printf '%s\n' "$dir" > "$reg/$pgid" ;;
    del) rm -f "$reg/$pgid" ;;
  esac
done
for f in "$reg"/*; do
  [ -f "$f" ] || continue
  kill -s KILL -- "-${f##*/}" 2>/dev/null
  dir=$(cat "$f")
  [ -n "$dir" ] && rm -rf -- "$dir"
done
rm -rf -- "$reg""#;

/// The pipe to this test process's watchdog, started on first use.
fn watchdog() -> &'static Mutex<Option<ChildStdin>> {
    static WATCHDOG_PIPE: OnceLock<Mutex<Option<ChildStdin>>> = OnceLock::new();
    WATCHDOG_PIPE.get_or_init(|| {
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group: a Ctrl-C aimed at the test run must not stop the cleanup.
            .process_group(0)
            .spawn();
        match child {
            Ok(mut child) => Mutex::new(child.stdin.take()),
            Err(e) => {
                eprintln!("tests: cannot start the process watchdog (servers may outlive a killed test run): {e}");
                Mutex::new(None)
            }
        }
    })
}

fn watchdog_send(line: &str) {
    let mut pipe = watchdog().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(stdin) = pipe.as_mut()
        && let Err(e) = stdin.write_all(line.as_bytes())
    {
        eprintln!(
            "tests: the process watchdog is gone ({e}); servers may outlive a killed test run"
        );
        *pipe = None;
    }
}

/// The last `lines` lines of a file, or a note that it cannot be read.
pub fn file_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// What to run: a builder for [`ServerProcess`].
#[derive(Debug, Clone)]
pub struct Launch {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<OsString>,
    cwd: Option<PathBuf>,
    log: PathBuf,
    capture_stdout: bool,
    cleanup_dir: Option<PathBuf>,
}

impl Launch {
    /// Runs `program`, known in messages as `name`, with stdout and stderr appended to `log`.
    pub fn new(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        log: impl Into<PathBuf>,
    ) -> Launch {
        Launch {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: None,
            log: log.into(),
            capture_stdout: false,
            cleanup_dir: None,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Launch {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Launch {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (the rest of the environment is inherited).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Removes an inherited environment variable.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Launch {
        self.env_remove.push(key.into());
        self
    }

    /// Runs in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Launch {
        self.cwd = Some(dir.into());
        self
    }

    /// Keeps stdout lines for [`ServerProcess::wait_stdout_line`] (they are still logged).
    pub fn capture_stdout(mut self) -> Launch {
        self.capture_stdout = true;
        self
    }

    /// A directory the watchdog removes if the test process dies while this server runs.
    pub fn cleanup_dir(mut self, dir: impl Into<PathBuf>) -> Launch {
        self.cleanup_dir = Some(dir.into());
        self
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> String {
        let mut line = self.program.display().to_string();
        for arg in &self.args {
            let arg = arg.to_string_lossy();
            if arg.is_empty() || arg.contains([' ', '\'', '"']) {
                line.push_str(&format!(" '{}'", arg.replace('\'', "'\\''")));
            } else {
                line.push(' ');
                line.push_str(&arg);
            }
        }
        line
    }

    /// Starts the process in a new process group.
    ///
    /// # Panics
    /// When it cannot be started, naming the binary and the command line.
    pub fn spawn(self) -> ServerProcess {
        let command_line = self.command_line();
        let fail = |what: &str, e: std::io::Error| -> ! {
            panic!(
                "cannot start {}: {what}: {e}\ncommand: {command_line}",
                self.name
            )
        };
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| fail(&format!("cannot open the log {}", self.log.display()), e));
        let stderr = log
            .try_clone()
            .unwrap_or_else(|e| fail("cannot duplicate the log handle", e));
        let mut cmd = Command::new(&self.program);
        for key in &self.env_remove {
            cmd.env_remove(key);
        }
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stderr(Stdio::from(stderr))
            .process_group(0);
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        if self.capture_stdout {
            cmd.stdout(Stdio::piped());
        } else {
            let stdout = log
                .try_clone()
                .unwrap_or_else(|e| fail("cannot duplicate the log handle", e));
            cmd.stdout(Stdio::from(stdout));
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| fail("spawn failed", e));
        let pid =
            i32::try_from(child.id()).unwrap_or_else(|_| panic!("pid {} out of range", child.id()));
        let dir = self
            .cleanup_dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        watchdog_send(&format!("add {pid} {}\n", dir.replace('\n', "")));

        let lines = Arc::new(StdoutLines::default());
        let reader = child.stdout.take().map(|stdout| {
            let lines = lines.clone();
            let mut log = log;
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // The log is for people reading failures; a failed write loses only that.
                    let _ = writeln!(log, "{line}");
                    lines.push(line);
                }
                lines.close();
            })
        });
        ServerProcess {
            name: self.name,
            command_line,
            child,
            pid,
            log: self.log,
            lines,
            reader,
            status: None,
            group_killed: false,
        }
    }
}

/// Stdout lines seen so far, and whether stdout was closed.
#[derive(Default)]
struct StdoutLines {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl StdoutLines {
    fn push(&self, line: String) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push(line);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.changed.notify_all();
    }
}

/// A running server process (see the module documentation).
pub struct ServerProcess {
    name: String,
    command_line: String,
    child: Child,
    pid: i32,
    log: PathBuf,
    lines: Arc<StdoutLines>,
    reader: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
    group_killed: bool,
}

impl std::fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProcess")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .finish()
    }
}

impl ServerProcess {
    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line it was started with.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// The log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        file_tail(&self.log, LOG_TAIL_LINES)
    }

    /// A failure message naming the server, its command line and its log tail.
    pub fn failure(&self, what: &str) -> String {
        format!(
            "{}: {what}\ncommand: {}\nlog tail ({}):\n{}",
            self.name,
            self.command_line,
            self.log.display(),
            self.log_tail()
        )
    }

    /// Panics with [`ServerProcess::failure`].
    pub fn fail(&self, what: &str) -> ! {
        panic!("{}", self.failure(what))
    }

    /// Sends `signal` to the main process (not its group).
    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        if self.status.is_some() {
            return Err(std::io::Error::other(format!(
                "{} has already exited",
                self.name
            )));
        }
        send_signal(self.pid, signal)
    }

    /// Its exit status if it has exited (reaping it).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.reaped(status);
        }
        self.status
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits at most `timeout` for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        poll_until(timeout, Duration::from_millis(20), || self.try_status())
    }

    /// Kills its whole process group with SIGKILL and reaps it. Idempotent.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.try_status() {
            return status;
        }
        let _ = send_signal(-self.pid, SIGKILL);
        self.group_killed = true;
        let status = match self.child.wait() {
            Ok(status) => status,
            // Only possible if it was reaped elsewhere; report it as killed.
            Err(_) => ExitStatus::from_raw(SIGKILL),
        };
        self.reaped(status);
        status
    }

    fn reaped(&mut self, status: ExitStatus) {
        self.status = Some(status);
        // Right after reaping the leader: stray members of its group (if any) go too. Its pid
        // cannot have been reused this soon.
        if !self.group_killed {
            let _ = send_signal(-self.pid, SIGKILL);
            self.group_killed = true;
        }
        watchdog_send(&format!("del {}\n", self.pid));
        // The stdout reader ends by itself when the pipe closes; it is not joined, so that a
        // stray holder of the pipe cannot hang the test.
        self.reader.take();
    }

    /// All stdout lines so far (only with [`Launch::capture_stdout`]).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.lines
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Waits at most `timeout` for a stdout line for which `pick` returns `Some`; `None` when
    /// the time is up or stdout was closed first.
    pub fn wait_stdout_line<T>(
        &self,
        timeout: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut seen = 0;
        let mut state = self.lines.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            for line in &state.0[seen..] {
                if let Some(found) = pick(line) {
                    return Some(found);
                }
            }
            seen = state.0.len();
            let now = Instant::now();
            if state.1 || now >= deadline {
                return None;
            }
            state = self
                .lines
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} (pid {}) log tail, {} ---\n{}",
                self.name,
                self.pid,
                self.log.display(),
                file_tail(&self.log, DROP_TAIL_LINES)
            );
        }
        self.kill();
    }
}

/// The result of [`run_bounded`].
#[derive(Debug)]
pub struct CommandOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs a short command with its output captured, killing it after `timeout`.
///
/// # Errors
/// When it cannot be started or does not finish in time (the message names the command).
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Result<CommandOutput, String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let status = poll_until(timeout, Duration::from_millis(10), || {
        child.try_wait().ok().flatten()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{shown} did not finish within {timeout:?}"));
    };
    Ok(CommandOutput {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `(pid, ppid, pgrp)` of every live process (from `/proc`); zombies count as gone.
fn live_processes() -> Vec<(u32, u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut processes = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`; comm may contain spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2
            && fields[0] != "Z"
            && let (Ok(ppid), Ok(pgrp)) = (fields[1].parse(), fields[2].parse())
        {
            processes.push((pid, ppid, pgrp));
        }
    }
    processes
}

/// Pids of the live processes in process group `pgid` (from `/proc`), e.g. to prove that a
/// stopped server left nothing behind. Zombies count as gone.
pub fn group_members(pgid: u32) -> Vec<u32> {
    live_processes()
        .into_iter()
        .filter(|&(_, _, pgrp)| pgrp == pgid)
        .map(|(pid, _, _)| pid)
        .collect()
}

/// Pids of the live processes in process group `pgid` and of all their descendants, even those
/// that left the group: PostgreSQL's backends each start a session of their own, and their CPU
/// belongs to the server all the same (`chat-bench` counts it).
pub fn tree_members(pgid: u32) -> Vec<u32> {
    let processes = live_processes();
    let mut members: Vec<u32> = processes
        .iter()
        .filter(|&&(_, _, pgrp)| pgrp == pgid)
        .map(|&(pid, _, _)| pid)
        .collect();
    let mut next = 0;
    while next < members.len() {
        let parent = members[next];
        next += 1;
        for &(pid, ppid, _) in &processes {
            if ppid == parent && !members.contains(&pid) {
                members.push(pid);
            }
        }
    }
    members
}
