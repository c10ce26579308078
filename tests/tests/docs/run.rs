//! Running the blocks: a copy of the repository, the environment the crate documentation
//! describes, servers in their own process groups.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tests::ports::free_addr;
use tests::process::poll_until;

use crate::markdown::{Block, Mode};
use crate::one_build::Artifacts;

/// Longest a block may run: the first one compiles the workspace.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(45 * 60);
/// Longest a server may take to stop after SIGINT (chatd drains within 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// The addresses the documents show, and the variables that move them.
const DOC_LISTEN: &str = "127.0.0.1:4433";
const DOC_ADMIN: &str = "127.0.0.1:9464";

/// A process started from a block, with its output collected as it comes.
struct Running {
    place: String,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("stdout lines").clone()
    }

    fn report(&self) -> String {
        let err = self.stderr.lock().expect("stderr lines");
        let tail: Vec<&String> = err
            .iter()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(
            "{}\nstdout:\n{}\nstderr (last lines):\n{}",
            self.place,
            self.stdout().join("\n"),
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// SIGINT to its whole process group, then its exit status within [`STOP_TIMEOUT`].
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let pgid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-s", "INT", "--", &format!("-{pgid}")])
            .status();
        let child = &mut self.child;
        poll_until(STOP_TIMEOUT, Duration::from_millis(100), || {
            child.try_wait().ok().flatten()
        })
        .unwrap_or_else(|| {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{pgid}")])
                .status();
            panic!(
                "{}: did not stop within {STOP_TIMEOUT:?} of SIGINT",
                self.place
            )
        })
    }
}

fn collect(reader: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            into.lock().expect("lines").push(line);
        }
    });
}

/// Everything the documents share.
pub struct World {
    work: tempfile::TempDir,
    install_root: PathBuf,
    target: PathBuf,
    vars: BTreeMap<String, String>,
    /// The release artifacts after the first server's build.
    first_build: Option<Artifacts>,
    /// When the test began: artifacts older than this are from an earlier run.
    started: SystemTime,
}

impl World {
    /// A copy of the repository at `root` (the files git knows) to run in.
    pub fn new(root: &Path) -> World {
        let work = tempfile::Builder::new()
            .prefix("docs-test-")
            .tempdir()
            .expect("temp dir");
        let out = Command::new("git")
            .args([
                "ls-files",
                "--cached",
                "--others",
                "--exclude-standard",
                "-z",
            ])
            .current_dir(root)
            .output()
            .expect("git ls-files");
        let repo = work.path().join("repo");
        for file in out.stdout.split(|&b| b == 0).filter(|f| !f.is_empty()) {
            let rel = PathBuf::from(String::from_utf8_lossy(file).into_owned());
            let from = root.join(&rel);
            if !from.is_file() {
                continue; // deleted in the work tree
            }
            let to = repo.join(&rel);
            std::fs::create_dir_all(to.parent().expect("parent")).expect("create dir");
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", rel.display()));
        }
        // Cargo writes nothing else into the copy: a git checkout for the commit in --version.
        let _ = Command::new("cp")
            .arg("-a")
            .arg(root.join(".git"))
            .arg(repo.join(".git"))
            .status();
        World {
            install_root: work.path().join("install"),
            work,
            target: root.join("target/docs-test"),
            vars: BTreeMap::new(),
            first_build: None,
            started: SystemTime::now(),
        }
    }

    fn repo(&self) -> PathBuf {
        self.work.path().join("repo")
    }

    fn command(&self, script: &str, listen: &str, admin: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.args(["-e", "-o", "pipefail", "-c", script])
            .current_dir(self.repo())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("CHATD_") || key.starts_with("CARGO_") || key == "RUSTFLAGS" {
                cmd.env_remove(key);
            }
        }
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env(
            "PATH",
            format!("{}:{path}", self.install_root.join("bin").display()),
        )
        .env("CARGO_TARGET_DIR", &self.target)
        .env("CARGO_INSTALL_ROOT", &self.install_root)
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .env("CHATD_LISTEN", listen)
        .env("CHATD_ADMIN_LISTEN", admin)
        .env("RUST_LOG", "warn")
        .env("XDG_CONFIG_HOME", self.work.path().join("config"))
        .env("XDG_STATE_HOME", self.work.path().join("state"));
        if let Some(cargo_home) = std::env::var_os("CARGO_HOME") {
            cmd.env("CARGO_HOME", cargo_home);
        }
        cmd
    }

    fn spawn(&self, block: &Block, script: &str, listen: &str, admin: &str) -> Running {
        let mut child = self
            .command(script, listen, admin)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot run bash: {e}", block.place));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take().expect("stdout"), stdout.clone());
        collect(child.stderr.take().expect("stderr"), stderr.clone());
        Running {
            place: block.place.clone(),
            child,
            stdout,
            stderr,
        }
    }

    /// `text` with the documented addresses moved and `<name>` placeholders filled.
    fn substitute(&self, block: &Block, text: &str, listen: &str, admin: &str) -> String {
        let mut out = text.replace(DOC_LISTEN, listen).replace(DOC_ADMIN, admin);
        for (name, value) in &self.vars {
            out = out.replace(&format!("<{name}>"), value);
        }
        if let Some(start) = out.find('<')
            && let Some(len) = out[start..].find('>')
            && out[start + 1..start + len]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && len > 1
        {
            panic!(
                "{}: {} is not known here (an output block before it must show it)",
                block.place,
                &out[start..=start + len]
            );
        }
        out
    }

    /// Runs the blocks of one document; its servers stop at its end.
    pub fn run_document(&mut self, doc: &Path, blocks: &[Block]) {
        let listen = free_addr().to_string();
        let admin = free_addr().to_string();
        let mut servers: Vec<Running> = Vec::new();
        let mut last_stdout: Vec<String> = Vec::new();
        eprintln!("docs-test: {} ({} blocks)", doc.display(), blocks.len());
        for (i, block) in blocks.iter().enumerate() {
            eprintln!("docs-test: {} {:?}", block.place, block.mode);
            match &block.mode {
                Mode::Shown => {}
                Mode::Output => {
                    // Placeholders here are what the output defines, not values to fill in.
                    let expected = block
                        .text
                        .replace(DOC_LISTEN, &listen)
                        .replace(DOC_ADMIN, &admin);
                    self.match_output(block, &expected, &last_stdout);
                }
                Mode::NotRun(reason) => {
                    let command = block.text.trim();
                    let script = if command.contains('\n') {
                        let quoted = command.replace('\'', "'\\''");
                        format!("bash -n -c '{quoted}'")
                    } else {
                        format!("{command} --help")
                    };
                    eprintln!(
                        "docs-test: {}: not run ({reason}); checking with `{script}`",
                        block.place
                    );
                    let run = self.spawn(block, &script, &listen, &admin);
                    self.wait_success(run);
                }
                Mode::Run => {
                    let script = self.substitute(block, &block.text, &listen, &admin);
                    let run = self.spawn(block, &script, &listen, &admin);
                    last_stdout = self.wait_success(run);
                }
                Mode::Daemon => {
                    let script = self.substitute(block, &block.text, &listen, &admin);
                    let mut run = self.spawn(block, &script, &listen, &admin);
                    // Ready when it printed what the next (output) block shows, or a first line.
                    let wanted = match blocks.get(i + 1) {
                        Some(next) if next.mode == Mode::Output => next.text.lines().count(),
                        _ => 1,
                    };
                    let ready = {
                        let stdout = run.stdout.clone();
                        let child = &mut run.child;
                        poll_until(BLOCK_TIMEOUT, Duration::from_millis(200), || {
                            if stdout.lock().expect("lines").len() >= wanted {
                                return Some(true);
                            }
                            child.try_wait().ok().flatten().map(|_| false)
                        })
                    };
                    assert_eq!(ready, Some(true), "server did not start:\n{}", run.report());
                    last_stdout = run.stdout();
                    if self.first_build.is_none() {
                        self.first_build = Some(Artifacts::read(&self.target));
                    }
                    servers.push(run);
                }
                Mode::Until(text) => {
                    let script = self.substitute(block, &block.text, &listen, &admin);
                    let mut run = self.spawn(block, &script, &listen, &admin);
                    let seen = {
                        let stdout = run.stdout.clone();
                        let child = &mut run.child;
                        poll_until(BLOCK_TIMEOUT, Duration::from_millis(200), || {
                            if stdout
                                .lock()
                                .expect("lines")
                                .iter()
                                .any(|l| l.contains(text.as_str()))
                            {
                                return Some(true);
                            }
                            child.try_wait().ok().flatten().map(|_| false)
                        })
                    };
                    assert_eq!(
                        seen,
                        Some(true),
                        "{text:?} never printed:\n{}",
                        run.report()
                    );
                    let status = run.interrupt();
                    assert!(status.success(), "{status} after SIGINT:\n{}", run.report());
                    last_stdout = run.stdout();
                }
            }
        }
        for mut server in servers {
            let status = server.interrupt();
            assert!(
                status.success(),
                "server exited with {status} after SIGINT:\n{}",
                server.report()
            );
        }
    }

    fn wait_success(&self, mut run: Running) -> Vec<String> {
        let child = &mut run.child;
        let status = poll_until(BLOCK_TIMEOUT, Duration::from_millis(200), || {
            child.try_wait().ok().flatten()
        });
        match status {
            Some(s) if s.success() => {
                // The reader thread finishes with the pipe (then only `run` holds the lines).
                poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
                    (Arc::strong_count(&run.stdout) == 1).then_some(())
                });
                run.stdout()
            }
            Some(s) => panic!("exited with {s}:\n{}", run.report()),
            None => {
                let _ = run.interrupt();
                panic!("still running after {BLOCK_TIMEOUT:?}:\n{}", run.report())
            }
        }
    }

    /// Compares `actual` with the expected lines; `<name>` matches one word and is remembered.
    fn match_output(&mut self, block: &Block, expected: &str, actual: &[String]) {
        let expected: Vec<&str> = expected.lines().collect();
        assert!(
            actual.len() >= expected.len(),
            "{}: expected {} lines, the command printed {actual:?}",
            block.place,
            expected.len()
        );
        for (want, got) in expected.iter().zip(actual) {
            match match_line(want, got) {
                Some(captures) => self.vars.extend(captures),
                None => panic!(
                    "{}: the documented output differs from what the command prints:\n  documented: {want}\n  printed:    {got}",
                    block.place
                ),
            }
        }
    }

    /// One build: later commands compiled nothing the first server's build had compiled.
    pub fn check_one_build(&self) {
        let Some(first) = &self.first_build else {
            panic!("no document starts a server: README.md must");
        };
        let now = Artifacts::read(&self.target);
        let report = first.compiled_again(&now, self.started);
        if report.predating > 0 {
            eprintln!(
                "docs-test: {} artifacts predate this run (warm target); a second variant of \
                 those is only caught from a cold one (`rm -rf {}`)",
                report.predating,
                self.target.display()
            );
        }
        assert!(
            report.is_one_build(),
            "one build is broken: later commands compiled again what the first build had (run \
             `cargo xtask hack`; for a rewrite, look for an environment variable a build script \
             watches):\n  second variants: {:?}\n  written again with the same hash: {:?}",
            report.variants,
            report.rewritten
        );
    }
}

/// Matches `got` against `want`, where `<name>` stands for one word; the captured words.
fn match_line(want: &str, got: &str) -> Option<Vec<(String, String)>> {
    let mut captures = Vec::new();
    let mut rest = got;
    let mut pattern = want;
    while let Some(start) = pattern.find('<') {
        let end = pattern[start..].find('>')? + start;
        let literal = &pattern[..start];
        rest = rest.strip_prefix(literal)?;
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if word_len == 0 {
            return None;
        }
        captures.push((
            pattern[start + 1..end].to_owned(),
            rest[..word_len].to_owned(),
        ));
        rest = &rest[word_len..];
        pattern = &pattern[end + 1..];
    }
    (rest == pattern).then_some(captures)
}
