//! Installs the real servers the end-to-end suites start: Debian's redis-server and nginx, and
//! FerretDB 1.24 (the MongoDB-wire server) built with `go install`.
//!
//! Each tool is looked up first and installed only when missing, so the step is fast on a machine
//! that has them. Any failure stops with a message that says what is missing and why.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The FerretDB module and version the tests run against.
const FERRETDB: &str = "github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2";
/// An older Go toolchain, fetched through the module proxy, for when the installed Go cannot
/// build FerretDB 1.24.
const FALLBACK_GO_TOOLCHAIN: &str = "go1.22.12";

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
}

impl Tools {
    /// The environment the tests read (see `tests/src/tools.rs`).
    pub fn env(&self) -> Vec<(&'static str, &Path)> {
        vec![
            ("CHAT_TEST_REDIS_SERVER", &self.redis_server),
            ("CHAT_TEST_REDIS_CLI", &self.redis_cli),
            ("CHAT_TEST_NGINX", &self.nginx),
            ("CHAT_TEST_FERRETDB", &self.ferretdb),
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

fn ensure_ferretdb() -> anyhow::Result<PathBuf> {
    if let Some(path) = which("ferretdb") {
        return Ok(path);
    }
    let bin = go_bin_dir()?.join("ferretdb");
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!("xtask: installing FerretDB ({FERRETDB}); the first build takes a few minutes");
    let first = run(Command::new("go").args(["install", FERRETDB]));
    if first.is_err() {
        eprintln!("xtask: retrying with GOTOOLCHAIN={FALLBACK_GO_TOOLCHAIN}");
        run(Command::new("go")
            .args(["install", FERRETDB])
            .env("GOTOOLCHAIN", FALLBACK_GO_TOOLCHAIN))
        .context("cannot install FerretDB")?;
    }
    if !bin.is_file() {
        bail!("go install succeeded but {} does not exist", bin.display());
    }
    Ok(bin)
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
    if which("nginx").is_none() {
        missing.push("nginx");
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
    })
}
