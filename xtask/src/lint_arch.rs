//! `cargo xtask lint-arch`: the boundaries of ARCHITECTURE.md, checked by machine. Run by
//! `cargo xtask test` (so by CI) before the tests.
//!
//! It fails on:
//! - chatproto depending on chatd;
//! - chatproto's sans-IO core (frame, session, request, capability, fingerprint, calls) naming tokio
//!   or quinn;
//! - a client (chat-tui, chatctl, loadgen) reaching the server other than through chatproto:
//!   depending on chatd, or on quinn directly;
//! - chatd's handlers naming a storage backend or a store wrapper (they see the `Store` traits
//!   only);
//! - an import cycle between chatd's top modules.
//!
//! Every check is a pure function over file texts, so the tests below show that each one
//! catches its violation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// chatproto's modules that must stay free of any runtime or socket (files or directories
/// under `chatproto/src`).
const SANS_IO: &[&str] = &[
    "frame.rs",
    "session",
    "request.rs",
    "capability.rs",
    "fingerprint.rs",
    "calls.rs",
];

/// The client programs: they reach the server through chatproto only.
const CLIENTS: &[&str] = &["chat-tui", "chatctl", "loadgen"];

/// What handlers must not name: backends, their drivers, and the wrappers around the store.
const BACKEND_NAMES: &[&str] = &[
    "sqlite",
    "Sqlite",
    "rusqlite",
    "mongo",
    "mongodb",
    "Mongo",
    "GuardedStore",
    "CachedStore",
    "RoutedStore",
    "redis",
    "Redis",
];

/// Runs every check on the workspace at `root`.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let mut violations = Vec::new();
    let manifest = |crate_dir: &str| -> anyhow::Result<String> {
        let path = root.join(crate_dir).join("Cargo.toml");
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    violations.extend(dependency_violations(
        "chatproto",
        &manifest("chatproto")?,
        &["chatd"],
        &[],
    )?);
    for client in CLIENTS {
        violations.extend(dependency_violations(
            client,
            &manifest(client)?,
            &["chatd", "quinn"],
            &["dev-dependencies"],
        )?);
    }
    let chatproto_src = root.join("chatproto/src");
    for entry in SANS_IO {
        for (path, text) in rust_files(&chatproto_src.join(entry))? {
            violations.extend(runtime_violations(&display(root, &path), &text));
        }
    }
    for (path, text) in rust_files(&root.join("chatd/src/handlers"))? {
        violations.extend(backend_violations(&display(root, &path), &text));
    }
    let modules = top_modules(&root.join("chatd/src"))?;
    violations.extend(cycle_violations(&modules));
    if violations.is_empty() {
        eprintln!("lint-arch: ok");
        return Ok(());
    }
    for v in &violations {
        eprintln!("lint-arch: {v}");
    }
    bail!("{} architecture violation(s)", violations.len())
}

fn display(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Dependencies of `package` (its `Cargo.toml` text) named in `forbidden`, in every dependency
/// table except `allowed_tables`.
fn dependency_violations(
    package: &str,
    manifest: &str,
    forbidden: &[&str],
    allowed_tables: &[&str],
) -> anyhow::Result<Vec<String>> {
    let doc: toml::Table = manifest
        .parse()
        .with_context(|| format!("cannot parse the manifest of {package}"))?;
    let mut found = Vec::new();
    for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if allowed_tables.contains(&table) {
            continue;
        }
        if let Some(deps) = doc.get(table).and_then(|t| t.as_table()) {
            for name in deps.keys().filter(|n| forbidden.contains(&n.as_str())) {
                found.push(format!("{package} must not depend on {name} ([{table}])"));
            }
        }
    }
    Ok(found)
}

/// The code lines of a Rust file: comments and `#[cfg(test)]` modules left out (a test module
/// is assumed to run to the end of the file, which is where this codebase keeps them).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        .filter(|(_, l)| {
            let t = l.trim_start();
            !(t.starts_with("//") || t.starts_with("/*") || t.starts_with('*'))
        })
        .map(|(n, l)| (n + 1, l))
}

/// A sans-IO file naming tokio or quinn.
fn runtime_violations(path: &str, text: &str) -> Vec<String> {
    code_lines(text)
        .filter(|(_, l)| ["tokio", "quinn"].iter().any(|w| names(l, w)))
        .map(|(n, l)| format!("{path}:{n}: sans-IO code uses a runtime: {}", l.trim()))
        .collect()
}

/// A handler file naming a backend or a store wrapper.
fn backend_violations(path: &str, text: &str) -> Vec<String> {
    code_lines(text)
        .filter(|(_, l)| BACKEND_NAMES.iter().any(|w| names(l, w)))
        .map(|(n, l)| {
            format!(
                "{path}:{n}: a handler names a storage backend: {}",
                l.trim()
            )
        })
        .collect()
}

/// Whether `line` contains `word` as an identifier or path segment (not inside a longer one).
fn names(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        // `sqlite` also matches in `SqliteStore`: a prefix of a longer identifier counts.
        !ident(before)
            && (!ident(after)
                || word.chars().next().is_some_and(char::is_uppercase)
                || after.is_some_and(char::is_uppercase))
    })
}

/// chatd's top modules (`src/X.rs` or `src/X/`) and, for each, the other top modules its
/// non-test code names as `crate::Y`.
fn top_modules(src: &Path) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut files: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).with_context(|| format!("cannot list {}", src.display()))? {
        let path = entry?.path();
        let name = match path.file_stem().and_then(|s| s.to_str()) {
            Some(name) if name != "lib" && name != "main" => name.to_owned(),
            _ => continue,
        };
        if path.is_dir() || path.extension().is_some_and(|e| e == "rs") {
            files.entry(name).or_default().extend(rust_files(&path)?);
        }
    }
    let tops: BTreeSet<String> = files.keys().cloned().collect();
    Ok(files
        .into_iter()
        .map(|(module, files)| {
            let uses = files
                .iter()
                .filter(|(path, _)| !is_test_file(path))
                .flat_map(|(_, text)| crate_references(text, &tops))
                .filter(|other| *other != module)
                .collect();
            (module, uses)
        })
        .collect())
}

fn is_test_file(path: &Path) -> bool {
    path.components().any(|c| {
        let c = c.as_os_str();
        c == "tests" || c == "tests.rs" || c == "conformance" || c == "testserver.rs"
    })
}

/// The top modules named as `crate::NAME` in the code lines of `text`.
fn crate_references(text: &str, tops: &BTreeSet<String>) -> BTreeSet<String> {
    code_lines(text)
        .flat_map(|(_, l)| l.match_indices("crate::").map(move |(i, _)| &l[i + 7..]))
        .map(|rest| {
            rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|name| tops.contains(name))
        .collect()
}

/// Every edge inside an import cycle.
fn cycle_violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(m) = stack.pop() {
            if m == to {
                return true;
            }
            if seen.insert(m.clone()) {
                stack.extend(graph.get(&m).into_iter().flatten().cloned());
            }
        }
        false
    };
    let mut found = Vec::new();
    for (from, uses) in graph {
        for to in uses {
            if reaches(to, from) {
                found.push(format!(
                    "chatd module {from} uses {to}, which uses {from} back (an import cycle)"
                ));
            }
        }
    }
    found
}

/// `path` if it is a `.rs` file, else every `.rs` file below it, with their texts.
fn rust_files(path: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        out.push((path.to_owned(), text));
        return Ok(out);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() || entry.extension().is_some_and(|e| e == "rs") {
            out.extend(rust_files(&entry)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forbidden_dependency_is_found_in_any_table_but_the_allowed_ones() {
        let manifest = "[dependencies]\nchatd = { path = \"../chatd\" }\nserde = \"1\"\n\n[dev-dependencies]\nquinn = \"0.11\"\n";
        let found = dependency_violations("chatproto", manifest, &["chatd"], &[]).unwrap();
        assert_eq!(
            found,
            ["chatproto must not depend on chatd ([dependencies])"]
        );
        let found =
            dependency_violations("loadgen", manifest, &["quinn"], &["dev-dependencies"]).unwrap();
        assert!(found.is_empty(), "{found:?}");
        let clean = "[dependencies]\nchatproto = { path = \"../chatproto\" }\n";
        assert!(
            dependency_violations("chat-tui", clean, &["chatd", "quinn"], &[])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn sans_io_code_naming_a_runtime_is_found_but_not_in_comments_or_tests() {
        let text = "//! no tokio here\nuse bytes::Bytes;\nfn f() { tokio::spawn(async {}); }\n#[cfg(test)]\nmod tests { use quinn::Endpoint; }\n";
        let found = runtime_violations("chatproto/src/frame.rs", text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("chatproto/src/frame.rs:3:"),
            "{found:?}"
        );
        assert!(runtime_violations("x.rs", "use quinn::VarInt;\n").len() == 1);
        assert!(runtime_violations("x.rs", "let quinnish = 1;\nfn tokio_like() {}\n").is_empty());
    }

    #[test]
    fn a_handler_naming_a_backend_is_found() {
        for bad in [
            "use crate::store::sqlite::SqliteStore;",
            "let s: &MongoStore = todo();",
            "use crate::resilience::guarded_store::GuardedStore;",
            "ctx.state.redis.query()",
        ] {
            assert_eq!(backend_violations("h.rs", bad).len(), 1, "{bad}");
        }
        assert!(
            backend_violations("h.rs", "use crate::store::Store;\nlet m = members;").is_empty()
        );
    }

    #[test]
    fn a_cycle_between_top_modules_is_found() {
        let graph = |edges: &[(&str, &str)]| {
            let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in edges {
                g.entry((*a).into()).or_default().insert((*b).into());
                g.entry((*b).into()).or_default();
            }
            g
        };
        let acyclic = graph(&[
            ("server", "handlers"),
            ("handlers", "conn"),
            ("server", "conn"),
        ]);
        assert!(cycle_violations(&acyclic).is_empty());
        let cyclic = graph(&[
            ("server", "handlers"),
            ("handlers", "server"),
            ("handlers", "conn"),
        ]);
        assert_eq!(cycle_violations(&cyclic).len(), 2);
    }

    #[test]
    fn crate_references_name_top_modules_only_outside_comments() {
        let tops: BTreeSet<String> = ["store", "server"].iter().map(|s| (*s).into()).collect();
        let text = "use crate::store::Store;\n// see crate::server\nlet x = crate::storey::y;\n";
        assert_eq!(
            crate_references(text, &tops),
            BTreeSet::from(["store".to_owned()])
        );
    }

    #[test]
    fn the_workspace_keeps_its_boundaries() {
        run(&crate::repo_root()).unwrap();
    }
}
