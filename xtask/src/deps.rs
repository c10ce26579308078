//! Installs the real servers and tools the end-to-end suites use: Debian's redis-server, nginx,
//! postgresql (for FerretDB's PostgreSQL handler), tmux (chat-tui's end-to-end tests drive it
//! in tmux panes) and coturn (the TURN server the calls suite checks chatd's credentials with),
//! FerretDB 1.24 (the MongoDB-wire server) built with Go from its module source, and Mailpit
//! (the SMTP server whose HTTP API the email tests read back) installed with `go install`.
//!
//! Each tool is looked up first and installed only when missing, so the step is fast on a machine
//! that has them. Any failure stops with a message that says what is missing and why.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::postgres_dir;

/// The FerretDB version the tests run against.
const FERRETDB_VERSION: &str = "v1.24.2";
/// The FerretDB module at that version.
const FERRETDB_MODULE: &str = "github.com/FerretDB/FerretDB@v1.24.2";
/// The Mailpit module the email tests run against.
const MAILPIT_MODULE: &str = "github.com/axllent/mailpit@v1.33.1";
/// Its version, as `go version -m` reads it from the binary (a `go install` build calls
/// itself `dev` in `mailpit version`).
const MAILPIT_VERSION: &str = "v1.33.1";

/// An older Go toolchain, fetched through the module proxy, for when the installed Go cannot
/// build FerretDB 1.24.
const FALLBACK_GO_TOOLCHAIN: &str = "go1.22.12";

/// A cargo subcommand installed from crates.io at a pinned version.
#[derive(Debug, Clone, Copy)]
pub struct CargoTool {
    /// The crate and its binary (`cargo-machete`).
    pub name: &'static str,
    /// The exact version.
    pub version: &'static str,
}

/// Finds unused dependencies; `cargo xtask test` runs it.
pub const CARGO_MACHETE: CargoTool = CargoTool {
    name: "cargo-machete",
    version: "0.9.2",
};

/// Licenses, advisories, duplicate versions and sources (`deny.toml`); `cargo xtask deny`.
pub const CARGO_DENY: CargoTool = CargoTool {
    name: "cargo-deny",
    version: "0.20.2",
};

impl CargoTool {
    /// Installs the tool from crates.io unless this version is already on PATH.
    pub fn ensure(self) -> anyhow::Result<()> {
        let installed = Command::new(self.name)
            .arg("--version")
            .output()
            .is_ok_and(|out| {
                out.status.success() && String::from_utf8_lossy(&out.stdout).contains(self.version)
            });
        if installed {
            return Ok(());
        }
        eprintln!("xtask: installing {} {}", self.name, self.version);
        let status = super::cargo()
            .args(["install", "--locked", self.name, "--version", self.version])
            .status()
            .context("cannot run cargo install")?;
        if !status.success() {
            bail!(
                "cargo install {} {} failed ({status})",
                self.name,
                self.version
            );
        }
        Ok(())
    }
}

/// Where the tools are; passed to the tests through environment variables.
#[derive(Debug)]
pub struct Tools {
    /// `redis-server`.
    pub redis_server: PathBuf,
    /// `redis-cli`.
    pub redis_cli: PathBuf,
    /// `nginx`.
    pub nginx: PathBuf,
    /// `ferretdb`.
    pub ferretdb: PathBuf,
    /// PostgreSQL's server programs (for FerretDB's PostgreSQL handler).
    pub postgres_bin: PathBuf,
    /// `tmux`.
    pub tmux: PathBuf,
    /// `systemd-analyze`.
    pub systemd_analyze: PathBuf,
    /// coturn's `turnserver`.
    pub turnserver: PathBuf,
    /// coturn's `turnutils_uclient` (a TURN client that allocates and relays).
    pub turnutils_uclient: PathBuf,
    /// `mailpit` (SMTP server with an HTTP API).
    pub mailpit: PathBuf,
}

impl Tools {
    /// The environment the tests read (see `tests/src/tools.rs`).
    pub fn env(&self) -> Vec<(&'static str, &Path)> {
        vec![
            ("CHAT_TEST_REDIS_SERVER", &self.redis_server),
            ("CHAT_TEST_REDIS_CLI", &self.redis_cli),
            ("CHAT_TEST_NGINX", &self.nginx),
            ("CHAT_TEST_FERRETDB", &self.ferretdb),
            ("CHAT_TEST_PG_BIN", &self.postgres_bin),
            ("CHAT_TEST_TMUX", &self.tmux),
            ("CHAT_TEST_SYSTEMD_ANALYZE", &self.systemd_analyze),
            ("CHAT_TEST_TURNSERVER", &self.turnserver),
            ("CHAT_TEST_TURNUTILS_UCLIENT", &self.turnutils_uclient),
            ("CHAT_TEST_MAILPIT", &self.mailpit),
        ]
    }

    /// Prints `NAME=path` lines.
    pub fn print(&self) {
        for (name, path) in self.env() {
            println!("{name}={}", path.display());
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/sbin"),
            PathBuf::from("/usr/bin"),
            PathBuf::from("/sbin"),
        ])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: running {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// Installs Debian packages, without starting their services (the tests start their own servers
/// on free ports).
fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if !is_root {
        bail!(
            "missing {packages:?}: install them (apt-get install {}) or run as root",
            packages.join(" ")
        );
    }
    // policy-rc.d exit code 101 tells maintainer scripts not to start services.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let created_policy = !policy.exists();
    if created_policy {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n").context("write policy-rc.d")?;
        set_executable(policy)?;
    }
    let result = run(Command::new("apt-get").args(["update", "-q"])).and_then(|()| {
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    });
    if created_policy {
        let _ = std::fs::remove_file(policy);
    }
    result
}

fn set_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).context("chmod")
}

fn go_bin_dir() -> anyhow::Result<PathBuf> {
    let out = Command::new("go")
        .args(["env", "GOPATH"])
        .output()
        .context(
            "go is needed to install FerretDB (the MongoDB-wire test server) and was not found",
        )?;
    let gopath = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if gopath.is_empty() {
        bail!("go env GOPATH printed nothing");
    }
    Ok(PathBuf::from(gopath).join("bin"))
}

/// Whether `bin` runs: `ferretdb --version` exits 0. A `go install` build of FerretDB 1.24 does
/// not: it panics at start because its `build/version/version.txt` is generated by FerretDB's own
/// build tasks and is missing from the published module.
fn ferretdb_runs(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// The module cache directory of `module` (`go mod download -json` prints it as `"Dir"`).
fn go_module_dir(module: &str, toolchain: Option<&str>) -> anyhow::Result<PathBuf> {
    let mut cmd = Command::new("go");
    cmd.args(["mod", "download", "-json", module]);
    if let Some(toolchain) = toolchain {
        cmd.env("GOTOOLCHAIN", toolchain);
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run go mod download {module}"))?;
    let json = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "go mod download {module} failed: {json}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `"Dir": "/path"`; module cache paths never contain quotes.
    let dir = json
        .split("\"Dir\":")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .with_context(|| format!("go mod download printed no Dir for {module}: {json}"))?;
    Ok(PathBuf::from(dir))
}

/// Builds FerretDB into `bin` from a writable copy of its module source with the version file
/// FerretDB's build tasks would generate.
fn build_ferretdb(bin: &Path, toolchain: Option<&str>) -> anyhow::Result<()> {
    let source = go_module_dir(FERRETDB_MODULE, toolchain)?;
    let work = std::env::temp_dir().join(format!("xtask-ferretdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    run(Command::new("cp").arg("-R").arg(&source).arg(&work))?;
    // The module cache is read-only.
    run(Command::new("chmod").args(["-R", "u+w"]).arg(&work))?;
    std::fs::write(
        work.join("build/version/version.txt"),
        format!("{FERRETDB_VERSION}\n"),
    )
    .context("write FerretDB's build/version/version.txt")?;
    let mut cmd = Command::new("go");
    cmd.args(["build", "-o"])
        .arg(bin)
        .arg("./cmd/ferretdb")
        .current_dir(&work);
    if let Some(toolchain) = toolchain {
        cmd.env("GOTOOLCHAIN", toolchain);
    }
    let result = run(&mut cmd);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn ensure_ferretdb() -> anyhow::Result<PathBuf> {
    if let Some(path) = which("ferretdb").filter(|p| ferretdb_runs(p)) {
        return Ok(path);
    }
    let bin = go_bin_dir()?.join("ferretdb");
    if bin.is_file() && ferretdb_runs(&bin) {
        return Ok(bin);
    }
    eprintln!(
        "xtask: building FerretDB {FERRETDB_VERSION} into {}; the first build takes a few minutes",
        bin.display()
    );
    if let Some(dir) = bin.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if build_ferretdb(&bin, None).is_err() {
        eprintln!("xtask: retrying with GOTOOLCHAIN={FALLBACK_GO_TOOLCHAIN}");
        build_ferretdb(&bin, Some(FALLBACK_GO_TOOLCHAIN)).context("cannot build FerretDB")?;
    }
    if !ferretdb_runs(&bin) {
        bail!(
            "FerretDB was built into {} but `ferretdb --version` fails",
            bin.display()
        );
    }
    Ok(bin)
}

/// Whether `bin` is Mailpit built from the pinned module version.
fn mailpit_runs(bin: &Path) -> bool {
    Command::new("go")
        .args(["version", "-m"])
        .arg(bin)
        .output()
        .is_ok_and(|out| {
            let info = String::from_utf8_lossy(&out.stdout);
            out.status.success()
                && info.lines().any(|l| {
                    let mut words = l.split_whitespace();
                    words.next() == Some("mod")
                        && words.next() == Some("github.com/axllent/mailpit")
                        && words.next() == Some(MAILPIT_VERSION)
                })
        })
}

/// Finds Mailpit at the pinned version, or installs it with `go install` into Go's bin
/// directory.
fn ensure_mailpit() -> anyhow::Result<PathBuf> {
    if let Some(path) = which("mailpit").filter(|p| mailpit_runs(p)) {
        return Ok(path);
    }
    let bin = go_bin_dir()?.join("mailpit");
    if bin.is_file() && mailpit_runs(&bin) {
        return Ok(bin);
    }
    eprintln!(
        "xtask: installing Mailpit {MAILPIT_VERSION} into {}",
        bin.display()
    );
    run(Command::new("go").args(["install", MAILPIT_MODULE]))?;
    if !mailpit_runs(&bin) {
        bail!(
            "Mailpit was installed into {} but `go version -m` does not read {MAILPIT_VERSION}",
            bin.display()
        );
    }
    Ok(bin)
}

/// Debian's package of nginx's `stream` module, which proxies UDP (the QUIC load-balancing test
/// and `deploy/nginx/chat-quic.conf` need it).
const NGINX_STREAM_PACKAGE: &str = "libnginx-mod-stream";

/// Whether `nginx` was built with a dynamic `stream` module whose file is not installed.
fn nginx_lacks_stream_module(nginx: &Path) -> bool {
    let Ok(out) = Command::new(nginx).arg("-V").output() else {
        return false;
    };
    // `nginx -V` prints its configure arguments on stderr.
    let info = String::from_utf8_lossy(&out.stderr);
    if !info.contains("--with-stream=dynamic") {
        return false;
    }
    let modules = info
        .split_whitespace()
        .find_map(|arg| arg.strip_prefix("--modules-path="))
        .unwrap_or("/usr/lib/nginx/modules");
    !Path::new(modules).join("ngx_stream_module.so").is_file()
}

/// Finds or installs PostgreSQL (Debian's `postgresql`), for FerretDB's PostgreSQL handler in
/// benchmarks; returns the directory of its server programs. Its packaged service is not started
/// (the launchers run their own cluster on a free port).
fn ensure_postgres() -> anyhow::Result<PathBuf> {
    let find = postgres_dir::newest_postgres_bin;
    if let Some(bin) = find() {
        return Ok(bin);
    }
    apt_install(&["postgresql"])?;
    find().context("postgresql is still missing after installing it")
}

/// `podman` (for `cargo xtask image`), installed from Debian when missing.
pub fn ensure_podman() -> anyhow::Result<PathBuf> {
    if let Some(path) = which("podman") {
        return Ok(path);
    }
    apt_install(&["podman"])?;
    which("podman").context("podman is still missing after installing it")
}

/// Finds or installs every tool.
pub fn ensure() -> anyhow::Result<Tools> {
    let mut missing = Vec::new();
    if which("redis-server").is_none() {
        missing.push("redis-server");
    }
    if which("redis-cli").is_none() {
        missing.push("redis-tools");
    }
    match which("nginx") {
        None => missing.extend(["nginx", NGINX_STREAM_PACKAGE]),
        Some(nginx) if nginx_lacks_stream_module(&nginx) => missing.push(NGINX_STREAM_PACKAGE),
        Some(_) => {}
    }
    if which("tmux").is_none() {
        missing.push("tmux");
    }
    // `systemd-analyze verify` checks deploy/systemd/chatd.service.
    if which("systemd-analyze").is_none() {
        missing.push("systemd");
    }
    if which("turnserver").is_none() || which("turnutils_uclient").is_none() {
        missing.push("coturn");
    }
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    let find = |name: &str| {
        which(name).with_context(|| format!("{name} is still missing after installing it"))
    };
    Ok(Tools {
        redis_server: find("redis-server")?,
        redis_cli: find("redis-cli")?,
        nginx: find("nginx")?,
        ferretdb: ensure_ferretdb()?,
        postgres_bin: ensure_postgres()?,
        tmux: find("tmux")?,
        systemd_analyze: find("systemd-analyze")?,
        turnserver: find("turnserver")?,
        turnutils_uclient: find("turnutils_uclient")?,
        mailpit: ensure_mailpit()?,
    })
}
