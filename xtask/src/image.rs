//! `cargo xtask image`: the chatd container image from `deploy/container/Containerfile`, built
//! with podman (installed from Debian when missing).
//!
//! Base images cannot be pulled on these machines, so the image starts `FROM scratch`: this task
//! builds chatd on the host, stages it with the shared libraries it links (as `ldd` lists them),
//! a passwd entry for the unprivileged user and the data directory into
//! `target/image/rootfs`, then runs `podman build` on that context and checks the result (user,
//! entrypoint, size). The test suite runs it as deploy/README.md shows it (tests/tests/docs), on
//! the release build the README's first command made.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// Options of `cargo xtask image`.
#[derive(clap::Args)]
pub struct Args {
    /// Cargo profile of the chatd binary (`release` for a real image).
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// Image name and tag.
    #[arg(long, default_value = "localhost/chatd:latest")]
    pub tag: String,
}

/// The unprivileged user of the image (see the Containerfile's `USER`).
const UID: u32 = 10001;

/// Builds chatd, stages the context and builds the image.
pub fn run(args: Args) -> anyhow::Result<()> {
    let podman = super::deps::ensure_podman()?;
    let root = super::repo_root();
    let status = super::cargo()
        .args([
            "build",
            "--locked",
            "--profile",
            &args.profile,
            "-p",
            "chatd",
            "--bin",
            "chatd",
        ])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build of chatd failed ({status})");
    }
    let dir = if args.profile == "dev" {
        "debug"
    } else {
        &args.profile
    };
    // Where cargo put it: CARGO_TARGET_DIR when set (the docs test sets it).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join(dir).join("chatd");
    let context = target.join("image");
    stage(&binary, &context)?;
    let status = Command::new(&podman)
        .args(["build", "--quiet", "-f"])
        .arg(root.join("deploy/container/Containerfile"))
        .args(["-t", &args.tag])
        .arg(&context)
        .status()
        .context("cannot run podman build")?;
    if !status.success() {
        bail!("podman build failed ({status})");
    }
    let inspect = Command::new(&podman)
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{.Size}} {{json .Config.Entrypoint}}",
            &args.tag,
        ])
        .output()
        .context("cannot run podman image inspect")?;
    let summary = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
    let mut parts = summary.split_whitespace();
    let (user, size, entrypoint) = (parts.next(), parts.next(), parts.next());
    if user != Some(&format!("{UID}:{UID}")) || entrypoint != Some("[\"/usr/local/bin/chatd\"]") {
        bail!(
            "the image {} is not what the Containerfile says: {summary}",
            args.tag
        );
    }
    let mib = size.and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) / (1024 * 1024);
    eprintln!("xtask: built image {} (user {UID}, {mib} MiB)", args.tag);
    Ok(())
}

/// Stages `binary`, the libraries it links, `/etc/passwd`, `/etc/group` and the data directory
/// into `context/rootfs`.
fn stage(binary: &Path, context: &Path) -> anyhow::Result<()> {
    let rootfs = context.join("rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    let copy_into = |source: &Path, target: &Path| -> anyhow::Result<()> {
        let dest = rootfs.join(target.strip_prefix("/").unwrap_or(target));
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::copy(source, &dest)
            .with_context(|| format!("copy {} to {}", source.display(), dest.display()))?;
        Ok(())
    };
    copy_into(binary, Path::new("/usr/local/bin/chatd"))?;
    for lib in linked_libraries(binary)? {
        // The real file under the path the loader looks for.
        let real =
            std::fs::canonicalize(&lib).with_context(|| format!("resolve {}", lib.display()))?;
        copy_into(&real, &lib)?;
    }
    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc).context("create etc")?;
    std::fs::write(
        etc.join("passwd"),
        format!("chatd:x:{UID}:{UID}:chatd:/var/lib/chatd:/nonexistent\n"),
    )
    .context("write passwd")?;
    std::fs::write(etc.join("group"), format!("chatd:x:{UID}:\n")).context("write group")?;
    std::fs::create_dir_all(rootfs.join("var/lib/chatd")).context("create var/lib/chatd")?;
    std::fs::create_dir_all(rootfs.join("tmp")).context("create tmp")?;
    Ok(())
}

/// The absolute paths `ldd` lists for `binary`, the dynamic loader included.
fn linked_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("cannot run ldd")?;
    if !out.status.success() {
        bail!(
            "ldd {} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let libs: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect();
    if libs.is_empty() {
        bail!("ldd listed no libraries for {}", binary.display());
    }
    Ok(libs)
}
