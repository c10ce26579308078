//! The SDK's quickstart example as a user runs it, twice against one chatd: the second run
//! reuses the group the first one created (the example is idempotent).

use std::io::BufRead as _;
use std::process::{Command, Stdio};

use tests::chatd::{ChatdConfig, ChatdProcess};

/// Runs the example until it waits for events, stops it with SIGINT, and returns its output.
fn run_quickstart(chatd: &ChatdProcess) -> Vec<String> {
    let example = tests::tools::workspace_example("chatproto", "quickstart");
    let mut child = Command::new(&example)
        .args([&chatd.addr().to_string(), "--pin", chatd.fingerprint()])
        .args(["--user", "quick", "--password", "correct horse battery"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the quickstart example");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    let mut reader = std::io::BufReader::new(stdout).lines();
    for line in reader.by_ref() {
        let line = line.expect("read");
        let done = line.starts_with("waiting for events");
        lines.push(line);
        if done {
            break;
        }
    }
    // Keep reading what the example prints until it exits, so none of its writes meets a
    // closed pipe.
    let drain = std::thread::spawn(move || reader.count());
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("waiting for events")),
        "the example stopped early: {lines:?}"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    let _ = drain.join();
    assert!(exit.success(), "{exit}: {lines:?}");
    lines
}

fn chat_line(lines: &[String]) -> String {
    lines
        .iter()
        .find(|l| l.starts_with("chat ") && l.ends_with("is open"))
        .unwrap_or_else(|| panic!("no 'chat ... is open' line: {lines:?}"))
        .clone()
}

#[test]
fn the_quickstart_reuses_its_group() {
    let chatd = ChatdProcess::start(ChatdConfig::new());
    let first = run_quickstart(&chatd);
    assert!(
        first.iter().any(|l| l.contains("registering quick")),
        "{first:?}"
    );
    let second = run_quickstart(&chatd);
    assert!(
        !second.iter().any(|l| l.contains("registering")),
        "{second:?}"
    );
    assert_eq!(
        chat_line(&first),
        chat_line(&second),
        "a second group was created"
    );
}
