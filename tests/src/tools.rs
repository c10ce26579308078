//! Locating the external servers the suites run: `cargo xtask test` installs them and passes
//! their paths in `CHAT_TEST_*` variables; without those, the usual places are searched. A test
//! that needs a tool that cannot be found fails and says so: nothing is skipped silently.

use std::path::PathBuf;

/// Path of a tool: `$var` if set, else the first `name` found on PATH or in the sbin directories.
///
/// # Panics
/// When the tool cannot be found, with a message that says how to install it.
pub fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/bin"].map(PathBuf::from));
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join("go/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} is needed by this test and was not found (set {var}, or run `cargo xtask test`, which installs it)")
    })
}

/// `redis-server`.
pub fn redis_server() -> PathBuf {
    tool("CHAT_TEST_REDIS_SERVER", "redis-server")
}

/// `redis-cli`.
pub fn redis_cli() -> PathBuf {
    tool("CHAT_TEST_REDIS_CLI", "redis-cli")
}

/// `nginx`.
pub fn nginx() -> PathBuf {
    tool("CHAT_TEST_NGINX", "nginx")
}

/// `ferretdb`.
pub fn ferretdb() -> PathBuf {
    tool("CHAT_TEST_FERRETDB", "ferretdb")
}

/// The directory of PostgreSQL's server programs (`initdb`, `postgres`, `createdb`):
/// `$CHAT_TEST_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout).
///
/// # Panics
/// When none is found, saying how to install it.
pub fn postgres_bin_dir() -> PathBuf {
    if let Some(path) = std::env::var_os("CHAT_TEST_PG_BIN") {
        return PathBuf::from(path);
    }
    crate::postgres_dir::newest_postgres_bin().unwrap_or_else(|| {
        panic!("PostgreSQL is needed and was not found (set CHAT_TEST_PG_BIN, or run `cargo xtask test`, which installs the postgresql package)")
    })
}

/// `tmux` (the end-to-end tests of chat-tui drive it in a tmux pane).
pub fn tmux() -> PathBuf {
    tool("CHAT_TEST_TMUX", "tmux")
}

/// `systemd-analyze`.
pub fn systemd_analyze() -> PathBuf {
    tool("CHAT_TEST_SYSTEMD_ANALYZE", "systemd-analyze")
}

/// coturn's `turnserver`.
pub fn turnserver() -> PathBuf {
    tool("CHAT_TEST_TURNSERVER", "turnserver")
}

/// coturn's `turnutils_uclient`.
pub fn turnutils_uclient() -> PathBuf {
    tool("CHAT_TEST_TURNUTILS_UCLIENT", "turnutils_uclient")
}

/// The `chatd` binary of this workspace (built by `cargo test --workspace`; built on demand
/// otherwise). `CHAT_TEST_CHATD` overrides it.
pub fn chatd_binary() -> PathBuf {
    overridden_binary("CHAT_TEST_CHATD", "chatd", "chatd")
}

/// The `chat-tui` binary of this workspace, found or built like [`chatd_binary`].
/// `CHAT_TEST_CHAT_TUI` overrides it.
pub fn chat_tui_binary() -> PathBuf {
    overridden_binary("CHAT_TEST_CHAT_TUI", "chat-tui", "chat-tui")
}

/// The `chatctl` binary of this workspace, found or built like [`chatd_binary`].
/// `CHAT_TEST_CHATCTL` overrides it.
pub fn chatctl_binary() -> PathBuf {
    overridden_binary("CHAT_TEST_CHATCTL", "chatctl", "chatctl")
}

/// `$var` if set, else [`workspace_binary`].
fn overridden_binary(var: &str, package: &str, bin: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(path) => PathBuf::from(path),
        None => workspace_binary(package, bin),
    }
}

/// The binary `bin` of the workspace package `package`, of the profile this test runs in,
/// built first when it is missing. `cargo test` alone does not rebuild the binaries of packages
/// without integration tests (chatctl, chat-tui, loadgen): `cargo xtask test` builds them all
/// first; run `cargo build --workspace --bins` before running a suite by hand.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    built(package, bin, "--bin", "")
}

/// The example `name` of the workspace package `package` (`cargo test` builds examples), built
/// first when it is missing.
pub fn workspace_example(package: &str, name: &str) -> PathBuf {
    built(package, name, "--example", "examples")
}

fn built(package: &str, name: &str, kind: &str, subdir: &str) -> PathBuf {
    // Test executables live in target/<profile>/deps, binaries (chatd, chat-cluster) in
    // target/<profile> itself.
    let exe = std::env::current_exe().expect("current executable");
    let mut profile_dir = exe.parent().expect("target/<profile> directory");
    if profile_dir.file_name().is_some_and(|name| name == "deps") {
        profile_dir = profile_dir.parent().expect("target/<profile> directory");
    }
    let path = profile_dir.join(subdir).join(name);
    if !path.is_file() {
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "-p", package, kind, name])
                .status()
                .unwrap_or_else(|e| panic!("cannot run cargo build -p {package}: {e}"));
        assert!(
            status.success(),
            "cargo build -p {package} {kind} {name} failed"
        );
    }
    path
}

/// `mailpit`.
pub fn mailpit() -> PathBuf {
    tool("CHAT_TEST_MAILPIT", "mailpit")
}
