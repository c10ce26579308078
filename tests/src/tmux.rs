//! A terminal program driven like a person would: a private tmux server (in the foreground, in
//! its own process group, so the watchdog stops it with the test), one detached session per
//! program, keys sent with `send-keys`, the screen read with `capture-pane`.
//!
//! Waits poll the screen until the expected text shows or a deadline passes; a failed wait
//! shows the screen and the program's log.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{Launch, ServerProcess, file_tail, poll_until, run_bounded};
use crate::tools;

/// How long one tmux command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a wait looks at the screen.
const POLL: Duration = Duration::from_millis(50);

/// A private tmux server.
pub struct Tmux {
    tmux: PathBuf,
    socket: PathBuf,
    _server: ServerProcess,
}

impl Tmux {
    /// Starts a tmux server with its socket and log in `dir`.
    ///
    /// # Panics
    /// When tmux cannot be found or does not come up within 10 s.
    pub fn start(dir: &Path) -> Tmux {
        let tmux = tools::tmux();
        let socket = dir.join("tmux.sock");
        let server = Launch::new("tmux", &tmux, dir.join("tmux.log"))
            .arg("-S")
            .arg(&socket)
            .args(["-D", "-f", "/dev/null"])
            .env_remove("TMUX")
            .spawn();
        let this = Tmux {
            tmux,
            socket,
            _server: server,
        };
        let up = poll_until(Duration::from_secs(10), POLL, || {
            this.try_run(&["list-sessions"])
                .ok()
                .filter(|o| o.status.success())
        });
        assert!(
            up.is_some(),
            "tmux did not start (log: {})",
            dir.join("tmux.log").display()
        );
        // Panes keep their last screen when the program exits, and no status line takes a row.
        this.run(&["set-option", "-g", "remain-on-exit", "on"]);
        this.run(&["set-option", "-g", "status", "off"]);
        this
    }

    fn try_run(&self, args: &[&str]) -> Result<crate::process::CommandOutput, String> {
        let mut cmd = Command::new(&self.tmux);
        // -N: never start a server of our own (it would not be stopped with the test).
        cmd.arg("-N")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX");
        run_bounded(&mut cmd, COMMAND_TIMEOUT)
    }

    /// Runs a tmux command and returns its stdout.
    ///
    /// # Panics
    /// When it fails.
    pub fn run(&self, args: &[&str]) -> String {
        match self.try_run(args) {
            Ok(out) if out.status.success() => out.stdout,
            Ok(out) => panic!("tmux {args:?} failed: {}", out.stderr),
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts `program` in a new `width` × `height` session named `name`, with `env` set (and
    /// `log` named for failure messages).
    pub fn spawn(
        &self,
        name: &str,
        (width, height): (u16, u16),
        env: &[(&str, OsString)],
        log: &Path,
        program: &Path,
        args: &[String],
    ) -> Pane<'_> {
        let mut argv: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            name.into(),
            "-x".into(),
            width.to_string(),
            "-y".into(),
            height.to_string(),
        ];
        for (key, value) in env {
            argv.push("-e".into());
            argv.push(format!("{key}={}", value.to_string_lossy()));
        }
        argv.push("--".into());
        argv.push(program.to_string_lossy().into_owned());
        argv.extend(args.iter().cloned());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.run(&argv);
        Pane {
            tmux: self,
            name: name.into(),
            log: log.to_path_buf(),
        }
    }
}

/// One program in its tmux session.
pub struct Pane<'a> {
    tmux: &'a Tmux,
    name: String,
    log: PathBuf,
}

impl Pane<'_> {
    /// Sends keys in tmux's names (`Enter`, `Escape`, `C-r`, `Tab`, `k`).
    pub fn keys(&self, keys: &[&str]) {
        let mut argv = vec!["send-keys", "-t", &self.name];
        argv.extend_from_slice(keys);
        self.tmux.run(&argv);
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        self.tmux.run(&["send-keys", "-t", &self.name, "-l", text]);
    }

    /// The screen, one line per row.
    pub fn screen(&self) -> String {
        self.tmux.run(&["capture-pane", "-p", "-t", &self.name])
    }

    /// Whether the program has exited.
    pub fn exited(&self) -> bool {
        self.tmux
            .run(&["display-message", "-p", "-t", &self.name, "#{pane_dead}"])
            .trim()
            == "1"
    }

    /// Waits until the screen satisfies `pred` (described by `what`) and returns it.
    ///
    /// # Panics
    /// After `timeout`, with the screen and the log tail.
    pub fn wait_until(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        match poll_until(timeout, POLL, || Some(self.screen()).filter(|s| pred(s))) {
            Some(screen) => screen,
            None => self.fail(&format!("waited {timeout:?} for {what}")),
        }
    }

    /// Waits until `text` is on the screen.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> String {
        self.wait_until(&format!("{text:?}"), timeout, |s| s.contains(text))
    }

    /// Panics with `what`, the screen and the program's log.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{}: {what}\n--- screen ---\n{}--- log {} ---\n{}",
            self.name,
            self.screen(),
            self.log.display(),
            file_tail(&self.log, 30)
        )
    }

    /// Ends the session (and the program in it).
    pub fn kill(self) {
        self.tmux.run(&["kill-session", "-t", &self.name]);
    }
}
