//! One build: after the first server's release build, no later command of the documents compiles
//! again what that build had — neither a second variant of a crate (features differ between
//! commands) nor the same artifact written again (a build script reran because the environment
//! differs between commands; ring's watches `CARGO_PKG_*`, which `xtask::cargo` clears).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The release artifacts (`deps/lib*.{rlib,rmeta,so}`) of a target directory, with their
/// modification times.
pub struct Artifacts(BTreeMap<PathBuf, SystemTime>);

/// What later commands compiled again.
#[derive(Debug, Default)]
pub struct Report {
    /// Artifacts of a crate the first build compiled, under another hash.
    pub variants: Vec<PathBuf>,
    /// Artifacts the first build compiled, written again under the same hash.
    pub rewritten: Vec<PathBuf>,
    /// Artifacts of the first build older than the run: an earlier run compiled them, so a
    /// second variant of those is only visible from a cold target.
    pub predating: usize,
}

impl Report {
    /// Nothing was compiled twice.
    pub fn is_one_build(&self) -> bool {
        self.variants.is_empty() && self.rewritten.is_empty()
    }
}

impl Artifacts {
    /// The release artifacts under `target` (none when nothing was built).
    pub fn read(target: &Path) -> Self {
        let deps = target.join("release/deps");
        let artifacts = std::fs::read_dir(deps)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| {
                        e.path()
                            .extension()
                            .is_some_and(|x| x == "rlib" || x == "rmeta" || x == "so")
                    })
                    .filter_map(|e| Some((e.path(), e.metadata().ok()?.modified().ok()?)))
                    .collect()
            })
            .unwrap_or_default();
        Self(artifacts)
    }

    /// What `now` (a later reading) compiled again of `self` (the first build). The target
    /// directory outlives runs, so it also holds artifacts of earlier runs and trees (another
    /// variant of a crate whose dependencies changed since): only what this run compiled
    /// (modified at or after `started`) counts as the first build.
    pub fn compiled_again(&self, now: &Artifacts, started: SystemTime) -> Report {
        assert!(
            !self.0.is_empty(),
            "the first build left no release artifacts"
        );
        let (fresh, earlier): (Vec<_>, Vec<_>) = self
            .0
            .iter()
            .partition(|(_, modified)| **modified >= started);
        // An earlier run's artifact that a later command rebuilds was not the first build's
        // (the first command did not need it, e.g. chat-tui's library for `cargo run -p chatd`).
        let rewritten = fresh
            .iter()
            .filter(|(path, modified)| now.0.get(*path) != Some(*modified))
            .map(|(path, _)| (*path).clone())
            .collect();
        let names: BTreeSet<String> = fresh
            .iter()
            .filter_map(|(p, _)| crate_identity(p))
            .collect();
        let variants = now
            .0
            .keys()
            .filter(|p| !self.0.contains_key(*p))
            .filter(|p| crate_identity(p).is_some_and(|n| names.contains(&n)))
            .cloned()
            .collect();
        Report {
            variants,
            rewritten,
            predating: earlier.len(),
        }
    }
}

/// What a `deps/lib<name>-<hash>.<ext>` artifact is a build of: `<name>` and, for a registry
/// crate, its version, read from the dep-info file cargo writes beside it
/// (`deps/<name>-<hash>.d`, whose sources live under `.../<package>-<version>/`). Two versions of
/// one crate are two crates; two hashes of one version are two variants.
fn crate_identity(artifact: &Path) -> Option<String> {
    let stem = artifact.file_stem()?.to_string_lossy().into_owned();
    let stem = stem.strip_prefix("lib").unwrap_or(&stem);
    let name = stem.rsplit_once('-').map_or(stem, |(name, _)| name);
    let dep_info = artifact.with_file_name(format!("{stem}.d"));
    let version = std::fs::read_to_string(dep_info).ok().and_then(|text| {
        let (_, sources) = text.lines().next()?.split_once(": ")?;
        let source = sources.split_whitespace().next()?;
        // `.../registry/src/<index>/<package>-<version>/src/lib.rs`
        let dir = source.split("/registry/src/").nth(1)?.split('/').nth(1)?;
        // The version starts at the first `-` followed by a digit (it may contain `-` itself).
        let at = dir
            .char_indices()
            .find(|&(i, c)| c == '-' && dir[i + 1..].starts_with(|d: char| d.is_ascii_digit()))?
            .0;
        Some(dir[at + 1..].to_owned())
    });
    Some(match version {
        Some(version) => format!("{name} {version}"),
        None => name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};
    use std::time::Duration;

    /// A target directory with `deps/`, where artifacts are written with chosen times.
    struct Target {
        dir: tempfile::TempDir,
    }

    impl Target {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::create_dir_all(dir.path().join("release/deps")).expect("deps");
            Self { dir }
        }

        /// Writes `lib<stem>.rlib` (and its dep-info, built from `source`) modified at `at`.
        fn write(&self, stem: &str, source: &str, at: SystemTime) {
            let deps = self.dir.path().join("release/deps");
            std::fs::write(deps.join(format!("{stem}.d")), format!("x: {source}\n"))
                .expect("dep-info");
            let rlib = deps.join(format!("lib{stem}.rlib"));
            std::fs::write(&rlib, b"rlib").expect("rlib");
            File::options()
                .write(true)
                .open(&rlib)
                .and_then(|f| f.set_times(FileTimes::new().set_modified(at)))
                .expect("set time");
        }

        fn read(&self) -> Artifacts {
            Artifacts::read(self.dir.path())
        }
    }

    const RING_0_17: &str = "/c/registry/src/index.crates.io-1/ring-0.17.14/src/lib.rs";
    const RING_0_16: &str = "/c/registry/src/index.crates.io-1/ring-0.16.20/src/lib.rs";

    /// When the run started, and times before it, during the first build, and later.
    struct Times {
        started: SystemTime,
        before: SystemTime,
        built: SystemTime,
        later: SystemTime,
    }

    fn times() -> Times {
        let started = SystemTime::now() - Duration::from_secs(600);
        Times {
            started,
            before: started - Duration::from_secs(60),
            built: started + Duration::from_secs(60),
            later: started + Duration::from_secs(120),
        }
    }

    #[test]
    fn untouched_artifacts_are_one_build() {
        let t = times();
        let target = Target::new();
        target.write("ring-aaaa", RING_0_17, t.built);
        let first = target.read();
        let report = first.compiled_again(&target.read(), t.started);
        assert!(report.is_one_build(), "{report:?}");
    }

    #[test]
    fn an_artifact_written_again_with_the_same_hash_breaks_one_build() {
        let t = times();
        let target = Target::new();
        target.write("ring-aaaa", RING_0_17, t.built);
        let first = target.read();
        target.write("ring-aaaa", RING_0_17, t.later);
        let report = first.compiled_again(&target.read(), t.started);
        assert!(!report.is_one_build());
        assert_eq!(report.rewritten.len(), 1, "{report:?}");
        assert!(report.variants.is_empty(), "{report:?}");
    }

    #[test]
    fn a_second_variant_of_a_crate_breaks_one_build() {
        let t = times();
        let target = Target::new();
        target.write("ring-aaaa", RING_0_17, t.built);
        let first = target.read();
        target.write("ring-bbbb", RING_0_17, t.later);
        let report = first.compiled_again(&target.read(), t.started);
        assert_eq!(report.variants.len(), 1, "{report:?}");
        assert!(report.rewritten.is_empty(), "{report:?}");
    }

    #[test]
    fn another_version_of_a_crate_is_another_crate() {
        let t = times();
        let target = Target::new();
        target.write("ring-aaaa", RING_0_17, t.built);
        let first = target.read();
        target.write("ring-bbbb", RING_0_16, t.later);
        let report = first.compiled_again(&target.read(), t.started);
        assert!(report.is_one_build(), "{report:?}");
    }

    #[test]
    fn variants_of_crates_from_an_earlier_run_are_not_this_build() {
        let t = times();
        let target = Target::new();
        target.write("ring-aaaa", RING_0_17, t.before);
        let first = target.read();
        target.write("ring-bbbb", RING_0_17, t.later);
        let report = first.compiled_again(&target.read(), t.started);
        assert!(report.is_one_build(), "{report:?}");
        assert_eq!(report.predating, 1);
    }

    #[test]
    fn an_earlier_runs_artifact_rebuilt_later_was_not_the_first_build() {
        let t = times();
        let target = Target::new();
        target.write("ring-aaaa", RING_0_17, t.before);
        let first = target.read();
        target.write("ring-aaaa", RING_0_17, t.later);
        let report = first.compiled_again(&target.read(), t.started);
        assert!(report.is_one_build(), "{report:?}");
    }
}
