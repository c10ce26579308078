//! `cargo xtask install`: the workspace's programs on PATH, with their man pages and shell
//! completions, from one release build.
//!
//! Installs every binary of the user-facing packages (chatd, loadgen, chatctl, chat-tui: those
//! that have one) into `ROOT/bin`, where ROOT is `--root`, else `$CARGO_INSTALL_ROOT`, else
//! `$CARGO_HOME` (`~/.cargo`, whose `bin` rustup puts on PATH). Each program writes its own man
//! page and completions (`--generate`, see chat-cli), installed under `ROOT/share`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The packages whose binaries are installed.
pub const PACKAGES: &[&str] = &["chatd", "loadgen", "chatctl", "chat-tui"];

/// Options of `cargo xtask install`.
#[derive(clap::Args)]
pub struct Args {
    /// Install under this directory (binaries in ROOT/bin).
    #[arg(long)]
    root: Option<PathBuf>,
}

/// `--generate` kinds and where they go under ROOT/share (`{}` is the program's name).
const GENERATED: &[(&str, &str)] = &[
    ("man", "man/man1/{}.1"),
    ("complete-bash", "bash-completion/completions/{}"),
    ("complete-zsh", "zsh/site-functions/_{}"),
    ("complete-fish", "fish/vendor_completions.d/{}.fish"),
];

/// Builds in release mode and installs.
pub fn run(args: Args) -> anyhow::Result<()> {
    let root = match args.root {
        Some(root) => root,
        None => default_root()?,
    };
    let mut build = super::cargo();
    build.args([
        "build",
        "--release",
        "--locked",
        "--bins",
        "--message-format=json-render-diagnostics",
    ]);
    for package in PACKAGES {
        build.args(["-p", package]);
    }
    build.stderr(std::process::Stdio::inherit());
    eprintln!("xtask: building {PACKAGES:?} (release)");
    let out = build.output().context("cannot run cargo build")?;
    if !out.status.success() {
        bail!("cargo build --release failed ({})", out.status);
    }
    let executables = executables(&String::from_utf8_lossy(&out.stdout));
    if executables.is_empty() {
        bail!("cargo built no executables for {PACKAGES:?}");
    }
    let bin_dir = root.join("bin");
    std::fs::create_dir_all(&bin_dir)
        .with_context(|| format!("cannot create {}", bin_dir.display()))?;
    for exe in &executables {
        let name = exe
            .file_name()
            .context("executable name")?
            .to_string_lossy()
            .into_owned();
        let dest = bin_dir.join(&name);
        // Copy to a temporary name and rename: replacing a running binary in place fails.
        let tmp = bin_dir.join(format!(".{name}.xtask-install"));
        std::fs::copy(exe, &tmp).with_context(|| format!("cannot copy {}", exe.display()))?;
        std::fs::rename(&tmp, &dest)
            .with_context(|| format!("cannot install {}", dest.display()))?;
        install_generated(&dest, &name, &root.join("share"))?;
        eprintln!("xtask: installed {}", dest.display());
    }
    let on_path =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d == bin_dir));
    if !on_path {
        eprintln!(
            "xtask: {} is not on PATH: add it, e.g. export PATH=\"{}:$PATH\"",
            bin_dir.display(),
            bin_dir.display()
        );
    }
    Ok(())
}

fn default_root() -> anyhow::Result<PathBuf> {
    if let Some(root) = std::env::var_os("CARGO_INSTALL_ROOT") {
        return Ok(PathBuf::from(root));
    }
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME")
        .context("neither CARGO_INSTALL_ROOT, CARGO_HOME nor HOME is set: pass --root")?;
    Ok(PathBuf::from(home).join(".cargo"))
}

/// The executables of cargo's `compiler-artifact` messages.
fn executables(json_lines: &str) -> Vec<PathBuf> {
    json_lines
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .filter_map(|l| {
            let rest = l.split("\"executable\":\"").nth(1)?;
            let path = rest.split('"').next()?;
            Some(PathBuf::from(path))
        })
        .collect()
}

/// The man page and completions the program writes with `--generate`.
fn install_generated(program: &Path, name: &str, share: &Path) -> anyhow::Result<()> {
    for (kind, place) in GENERATED {
        let out = Command::new(program)
            .args(["--generate", kind])
            .output()
            .with_context(|| format!("cannot run {} --generate {kind}", program.display()))?;
        if !out.status.success() {
            bail!(
                "{name} --generate {kind} failed: every binary provides it (ARCHITECTURE.md, \
                 \"Binaries\"): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let dest = share.join(place.replace("{}", name));
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&dest, &out.stdout)
            .with_context(|| format!("cannot write {}", dest.display()))?;
    }
    Ok(())
}
