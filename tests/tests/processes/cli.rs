//! The command-line manners of the shipped binaries (ARCHITECTURE.md, "Binaries"): an error is
//! printed once, cause by cause, with a hint naming the setting that fixes it; config errors
//! point at their line and column; `--version` names the commit; `--generate` writes man pages
//! and completions.

use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

use tests::tools::{chatd_binary, workspace_binary};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// chatd with `args` in a fresh working directory; fails the test if it does not exit.
fn chatd(args: &[&str]) -> (Output, tempfile::TempDir) {
    let cwd = tempfile::tempdir().expect("temp dir");
    let out = Command::new(chatd_binary())
        .args(args)
        .current_dir(cwd.path())
        .env_remove("RUST_LOG")
        .envs(
            std::env::vars()
                .filter(|(k, _)| k.starts_with("CHATD_"))
                .map(|(k, _)| (k, String::new())),
        )
        .output()
        .expect("run chatd");
    (out, cwd)
}

fn assert_failed_once_with(out: &Output, cause: &str, hint: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("chatd: error: "), "{err}");
    assert_eq!(
        err.matches(cause).count(),
        1,
        "{cause:?} not printed exactly once:\n{err}"
    );
    let hint_line = err
        .lines()
        .find(|l| l.trim_start().starts_with("hint: "))
        .unwrap_or_else(|| panic!("no hint:\n{err}"));
    assert!(hint_line.contains(hint), "{hint:?} not in the hint:\n{err}");
}

#[test]
fn a_quic_port_in_use_names_listen() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let addr = taken.local_addr().expect("addr").to_string();
    let (out, _cwd) = chatd(&["--listen", &addr, "--admin-listen", "127.0.0.1:0"]);
    assert_failed_once_with(&out, "Address already in use", "--listen");
    assert!(stderr(&out).contains(&addr));
}

#[test]
fn an_admin_port_in_use_names_admin_listen() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
    let addr = taken.local_addr().expect("addr").to_string();
    let (out, _cwd) = chatd(&["--listen", "127.0.0.1:0", "--admin-listen", &addr]);
    assert_failed_once_with(&out, "Address already in use", "--admin-listen");
}

#[test]
fn a_data_dir_without_permission_names_the_flag_and_the_permission() {
    let parent = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let data = parent.path().join("data");
    // root ignores permissions: run chatd as nobody then (setpriv is in util-linux).
    let mut cmd = if tests::process::running_as_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(chatd_binary());
        c
    } else {
        Command::new(chatd_binary())
    };
    let out = cmd
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .output()
        .expect("run chatd");
    assert_failed_once_with(&out, "Permission denied", "--data-dir");
    assert!(stderr(&out).contains("permission"), "{}", stderr(&out));
}

#[test]
fn a_config_error_points_at_its_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("chatd.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\nmax_connections = -1\n").expect("write");
    let (out, _cwd) = chatd(&["--config", &file.display().to_string()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}:2:19: max_connections", file.display())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn version_man_page_and_completions_for_every_binary() {
    for (package, bin) in [
        ("chatd", "chatd"),
        ("chatctl", "chatctl"),
        ("loadgen", "loadgen"),
        ("chat-tui", "chat-tui"),
    ] {
        let path = workspace_binary(package, bin);
        let run = |args: &[&str]| {
            let out = Command::new(&path).args(args).output().expect("run");
            assert!(out.status.success(), "{bin} {args:?}: {}", stderr(&out));
            String::from_utf8(out.stdout).expect("utf-8")
        };
        let version = run(&["--version"]);
        assert!(
            version.starts_with(&format!("{bin} {} (", env!("CARGO_PKG_VERSION"))),
            "{version}"
        );
        assert!(
            version.contains("commit") || version.contains("debug build"),
            "{version}"
        );
        let man = run(&["--generate", "man"]);
        assert!(
            man.contains(".TH") && man.contains(bin),
            "{bin} man page:\n{man}"
        );
        let bash = run(&["--generate", "complete-bash"]);
        // clap_complete names the function after the binary, `-` written `__`.
        assert!(
            bash.contains(&format!("complete -F _{}", bin.replace('-', "__"))),
            "{bin} bash completion"
        );
        assert!(!run(&["--generate", "complete-zsh"]).is_empty());
    }
}
