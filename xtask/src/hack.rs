//! `cargo xtask hack [--check]`: one build for the whole workspace.
//!
//! Cargo resolves features for the packages it is asked to build: `cargo build -p chatd` after
//! `cargo build --workspace` would compile again every shared dependency whose features differ
//! between "chatd alone" and "the whole workspace" (and everything above it). `workspace-hack`
//! (the technique of cargo-hakari, without the tool) is a crate every member depends on that
//! asks for those dependencies with the workspace's features, so every build of any member sees
//! the same features and reuses the same artifacts.
//!
//! This task computes it from `cargo tree`: for each member, the dependencies whose features
//! differ from the workspace's, separately for the target (normal dependencies) and the host
//! (build scripts and proc-macros), and writes `workspace-hack/Cargo.toml`. `--check` (in CI)
//! fails when the file is out of date, when a member does not depend on it, or when a
//! single-package resolution still differs, and says what to run.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, bail};

/// Options of `cargo xtask hack`.
#[derive(clap::Args)]
pub struct Args {
    /// Only check that workspace-hack/Cargo.toml is current and that every member uses it.
    #[arg(long)]
    check: bool,
}

/// The package name of the hack crate.
const HACK: &str = "workspace-hack";
/// Members that must not depend on the hack: itself, and the build-script helper (compiled for
/// the host, it has no dependencies to unify).
const EXEMPT: &[&str] = &[HACK, "chat-cli-build"];

/// `(name, version)` of a registry package.
type Pkg = (String, String);
/// Features per package of one resolution.
type Resolution = BTreeMap<Pkg, BTreeSet<String>>;

/// Runs the task.
pub fn run(args: Args) -> anyhow::Result<()> {
    let root = super::repo_root();
    let path = root.join(HACK).join("Cargo.toml");
    let lock = root.join("Cargo.lock");
    let current = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let current_lock = std::fs::read_to_string(&lock)
        .with_context(|| format!("cannot read {}", lock.display()))?;
    let members = members()?;
    let missing: Vec<&String> = members
        .iter()
        .filter(|m| !EXEMPT.contains(&m.as_str()) && !depends_on_hack(m).unwrap_or(false))
        .collect();
    let generated = generate(&path, &current);
    if args.check {
        // Generating rewrote the manifest and the lock file: put them back as committed.
        std::fs::write(&path, &current)
            .with_context(|| format!("cannot restore {}", path.display()))?;
        std::fs::write(&lock, &current_lock)
            .with_context(|| format!("cannot restore {}", lock.display()))?;
    }
    let wanted = generated?;
    if args.check {
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!(
                "members without the {HACK} dependency: {missing:?} (add `{HACK}.workspace = true` \
                 to their [dependencies])"
            ));
        }
        if wanted != current {
            problems.push(format!(
                "{} is out of date: a single-package build would compile shared dependencies \
                 again (features differ from the workspace's)",
                path.display()
            ));
        }
        if !problems.is_empty() {
            bail!(
                "one build is broken:\n  - {}\nrun `cargo xtask hack` and commit the result",
                problems.join("\n  - ")
            );
        }
        eprintln!(
            "xtask: one build: every member resolves like the workspace ({} members)",
            members.len()
        );
        return Ok(());
    }
    eprintln!("xtask: wrote {}", path.display());
    if !missing.is_empty() {
        bail!("add `{HACK}.workspace = true` to the [dependencies] of {missing:?}");
    }
    Ok(())
}

/// Computes the hack from scratch and leaves it written: starting from an empty one, adds the
/// dependencies whose features differ between a member and the workspace until none do (the
/// features the hack asks for can change those of their own dependencies in a member's
/// resolution, hence the loop).
fn generate(path: &std::path::Path, current: &str) -> anyhow::Result<String> {
    let write = |text: &str| {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    let members = members()?;
    let mut target = Resolution::new();
    let mut host = Resolution::new();
    let mut text = manifest(current, &target, &host);
    write(&text)?;
    for _ in 0..8 {
        let (t, h) = divergences(&members)?;
        let before = (target.len(), host.len());
        target.extend(t);
        host.extend(h);
        if (target.len(), host.len()) == before {
            return Ok(text);
        }
        text = manifest(current, &target, &host);
        write(&text)?;
    }
    bail!("workspace-hack did not converge after 8 rounds")
}

/// The workspace members' package names.
fn members() -> anyhow::Result<Vec<String>> {
    let out = cargo_tree(&["--workspace", "--depth", "0", "-e", "normal", "-f", "{p}"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

fn depends_on_hack(member: &str) -> anyhow::Result<bool> {
    let out = cargo_tree(&[
        "-p", member, "--depth", "1", "-e", "normal", "--prefix", "none", "-f", "{p}",
    ])?;
    Ok(out.lines().any(|l| l.starts_with(&format!("{HACK} "))))
}

/// The registry packages whose features some member resolves differently from the workspace,
/// with the workspace's features: (target, host).
fn divergences(members: &[String]) -> anyhow::Result<(Resolution, Resolution)> {
    // The workspace as tests and examples build it (dev-dependencies included), so that their
    // builds share artifacts with `cargo build -p X` and `cargo run -p X` too.
    let (ws_target, ws_host) = resolve(&["--workspace"], true)?;
    let mut target = Resolution::new();
    let mut host = Resolution::new();
    // Each member alone, as `cargo build -p X` resolves it and as `cargo run -p X --example E`
    // or `cargo test -p X` does (its own dev-dependencies included): an example's
    // dev-dependencies can pull a shared crate in with fewer features than the workspace's.
    for member in members.iter().filter(|m| m.as_str() != HACK) {
        for dev in [false, true] {
            let (t, h) = resolve(&["-p", member], dev)?;
            for (mine, ws, out) in [(&t, &ws_target, &mut target), (&h, &ws_host, &mut host)] {
                for (pkg, features) in mine {
                    if let Some(ws_features) = ws.get(pkg)
                        && ws_features != features
                    {
                        out.insert(pkg.clone(), ws_features.clone());
                    }
                }
            }
        }
    }
    Ok((target, host))
}

/// The features of every registry package built for the target and for the host (with `dev`:
/// as a build of tests and examples resolves them).
fn resolve(selection: &[&str], dev: bool) -> anyhow::Result<(Resolution, Resolution)> {
    let format = ["--prefix", "none", "-f", "{p} {f}"];
    let (target_edges, all_edges) = if dev {
        ("normal,dev,no-proc-macro", "normal,build,dev")
    } else {
        ("normal,no-proc-macro", "normal,build")
    };
    let target_args: Vec<&str> = selection
        .iter()
        .copied()
        .chain(["-e", target_edges])
        .chain(format)
        .collect();
    let all_args: Vec<&str> = selection
        .iter()
        .copied()
        .chain(["-e", all_edges])
        .chain(format)
        .collect();
    let target_lines = lines(&cargo_tree(&target_args)?);
    let all_lines = lines(&cargo_tree(&all_args)?);
    let target = parse(target_lines.iter());
    let host = parse(all_lines.difference(&target_lines));
    Ok((target, host))
}

fn lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.trim_end_matches(" (*)").trim_end().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `name vX.Y.Z feature,feature` lines of registry packages (path packages are members).
fn parse<'a>(lines: impl Iterator<Item = &'a String>) -> Resolution {
    let mut out = Resolution::new();
    for line in lines {
        if line.contains(" (/") {
            continue;
        }
        let line = line.replace(" (proc-macro)", "");
        let mut parts = line.split_whitespace();
        let (Some(name), Some(version)) = (parts.next(), parts.next()) else {
            continue;
        };
        let features = parts
            .next()
            .map(|f| f.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        let version = version.trim_start_matches('v').to_owned();
        out.entry((name.to_owned(), version))
            .or_default()
            .extend::<BTreeSet<String>>(features);
    }
    out
}

fn cargo_tree(args: &[&str]) -> anyhow::Result<String> {
    let out = super::cargo()
        .args(["tree", "--quiet"])
        .args(args)
        .current_dir(super::repo_root())
        .output()
        .context("cannot run cargo tree")?;
    if !out.status.success() {
        bail!(
            "cargo tree {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).context("cargo tree printed non-UTF-8")
}

/// The manifest: the hand-written head of the current file (up to the generated part), then
/// the dependencies.
fn manifest(current: &str, target: &Resolution, host: &Resolution) -> String {
    const MARK: &str = "### BEGIN GENERATED (cargo xtask hack)";
    let head = current.split(MARK).next().unwrap_or(current).trim_end();
    let mut out = format!("{head}\n\n{MARK}\n[dependencies]\n");
    out.push_str(&entries(target));
    out.push_str("\n[build-dependencies]\n");
    out.push_str(&entries(host));
    // This crate exists to depend on what it never uses: tell cargo-machete so.
    let keys: Vec<String> = [target, host]
        .iter()
        .flat_map(|resolution| keys(resolution))
        .map(|key| format!("{key:?}"))
        .collect();
    out.push_str(&format!(
        "\n[package.metadata.cargo-machete]\nignored = [{}]\n",
        keys.join(", ")
    ));
    out
}

/// The dependency keys of `resolution`, in order: the package name, or `name-MAJOR` (`name-0-MINOR`
/// below 1.0, where the minor version is the semver-breaking part) where two versions of one
/// package need two keys.
fn keys(resolution: &Resolution) -> Vec<String> {
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, _) in resolution.keys() {
        *names.entry(name).or_default() += 1;
    }
    resolution
        .keys()
        .map(|(name, version)| {
            if names[name.as_str()] > 1 {
                format!("{name}-{}", compatible_part(version))
            } else {
                name.clone()
            }
        })
        .collect()
}

/// The part of a version that semver-compatible releases share: `2` of `2.1.0`, `0-4` of `0.4.3`.
fn compatible_part(version: &str) -> String {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0-{minor}"),
        (Some(major), _) => major.to_owned(),
        (None, _) => version.to_owned(),
    }
}

fn entries(resolution: &Resolution) -> String {
    let mut out = String::new();
    for (key, ((name, version), features)) in keys(resolution).into_iter().zip(resolution) {
        let list: Vec<String> = features.iter().map(|f| format!("{f:?}")).collect();
        out.push_str(&format!(
            "{key} = {{ package = {name:?}, version = \"{version}\", default-features = false, features = [{}] }}\n",
            list.join(", ")
        ));
    }
    out
}
