//! chat-tui as people use it: the real binary in tmux panes against a real chatd process. Two
//! users register (one trusting the server on first use, one with a pinned fingerprint and a DNS
//! name), open a private chat, talk, react and edit; then chatd restarts while one of them
//! writes, and later that client itself restarts with a message still in its outbox. Every
//! message must end up on both screens exactly once. Last, `--logout` ends the saved session.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::server::GENEROUS_LIMITS;
use tests::tmux::{Pane, Tmux};
use tests::tools::chat_tui_binary;

/// Long enough for a reconnect after a restart: a 5 s connect attempt plus a backoff step.
pub(crate) const WAIT: Duration = Duration::from_secs(40);
const SIZE: (u16, u16) = (100, 30);

/// One person's chat-tui: their own config and state directories and log.
pub(crate) struct Person {
    name: &'static str,
    home: PathBuf,
    args: Vec<String>,
}

impl Person {
    pub(crate) fn new(dir: &Path, name: &'static str, args: &[String]) -> Person {
        let home = dir.join(name);
        std::fs::create_dir_all(&home).expect("home directory");
        Person {
            name,
            home,
            args: args.to_vec(),
        }
    }

    fn log(&self) -> PathBuf {
        self.home.join("chat-tui.log")
    }

    fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("XDG_CONFIG_HOME", self.home.join("config").into()),
            ("XDG_STATE_HOME", self.home.join("state").into()),
            ("HOME", self.home.clone().into()),
            ("CHAT_TUI_LOG", self.log().into()),
            (
                "CHAT_TUI_LOG_LEVEL",
                "chat_tui=debug,chatproto=debug".into(),
            ),
            ("NO_COLOR", "".into()),
        ]
    }

    pub(crate) fn start<'a>(&self, tmux: &'a Tmux) -> Pane<'a> {
        tmux.spawn(
            self.name,
            SIZE,
            &self.env(),
            &self.log(),
            &chat_tui_binary(),
            &self.args,
        )
    }

    /// `chat-tui --logout`: its output.
    fn logout(&self) -> String {
        let mut cmd = std::process::Command::new(chat_tui_binary());
        cmd.args(&self.args).arg("--logout").envs(self.env());
        let out = tests::process::run_bounded(&mut cmd, WAIT).expect("chat-tui --logout");
        assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
        out.stdout
    }

    fn has_session(&self) -> bool {
        let state = self.home.join("state/chat-tui");
        std::fs::read_dir(&state)
            .into_iter()
            .flatten()
            .flatten()
            .any(|server| server.path().join("session").exists())
    }

    pub(crate) fn register(&self, pane: &Pane<'_>) {
        pane.wait_for("Sign in", WAIT);
        pane.keys(&["C-r"]);
        pane.wait_for("Create an account", WAIT);
        pane.type_text(self.name);
        pane.keys(&["Tab"]);
        pane.type_text(&format!("{}@example.org", self.name));
        for _ in 0..2 {
            pane.keys(&["Tab"]);
            pane.type_text("a long password");
        }
        pane.keys(&["Enter"]);
        pane.wait_for("No chats yet", WAIT);
    }

    fn outbox(&self) -> Vec<u8> {
        let state = self.home.join("state/chat-tui");
        let mut found = Vec::new();
        for server in std::fs::read_dir(&state).into_iter().flatten().flatten() {
            for user in std::fs::read_dir(server.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(bytes) = std::fs::read(user.path().join("outbox")) {
                    found.extend(bytes);
                }
            }
        }
        found
    }
}

/// Leaves the composer for the message pane. Escape goes alone, and the next key only once the
/// pane shows it has the keyboard: an escape followed at once by a key reads as alt-key.
fn to_messages(pane: &Pane<'_>, chat: &str) {
    pane.keys(&["Escape"]);
    pane.wait_for(&format!("▸ {chat} "), WAIT);
}

/// Goes to the composer.
fn to_composer(pane: &Pane<'_>, chat: &str) {
    pane.keys(&["i"]);
    pane.wait_for(&format!("▸ Message {chat} "), WAIT);
}

fn count(screen: &str, text: &str) -> usize {
    screen.matches(text).count()
}

/// Waits until `text` is on `pane`'s screen exactly once and nothing is left to send.
fn once(pane: &Pane<'_>, text: &str) {
    pane.wait_until(&format!("{text:?} exactly once, sent"), WAIT, |s| {
        count(s, text) == 1 && !s.contains("sending") && !s.contains("unsent")
    });
}

#[test]
fn two_people_chat_through_a_chatd_restart_and_a_client_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut chatd = ChatdProcess::start(
        ChatdConfig::new()
            .data_dir(dir.path().join("data"))
            .args(GENEROUS_LIMITS.iter().copied()),
    );
    let tmux = Tmux::start(dir.path());
    let port = chatd.addr().port();

    // Alice trusts the server on first use: the fingerprint shown is the one chatd printed.
    let alice = Person::new(
        dir.path(),
        "alice",
        &["--server".into(), chatd.addr().to_string()],
    );
    let alice_pane = alice.start(&tmux);
    let screen = alice_pane.wait_for("New server", WAIT);
    assert!(screen.contains(chatd.fingerprint()), "{screen}");
    alice_pane.keys(&["y"]);
    alice.register(&alice_pane);
    let known = std::fs::read_to_string(alice.home.join("config/chat-tui/known_servers"))
        .expect("the trusted server is recorded");
    assert!(known.contains(chatd.fingerprint()), "{known}");

    // Bob names the server by DNS and pins its fingerprint.
    let bob = Person::new(
        dir.path(),
        "bob",
        &[
            "--server".into(),
            format!("localhost:{port}"),
            "--pin".into(),
            chatd.fingerprint().to_string(),
        ],
    );
    let bob_pane = bob.start(&tmux);
    bob.register(&bob_pane);

    // Alice finds bob and writes; bob opens the chat and answers.
    alice_pane.keys(&["n"]);
    alice_pane.type_text("bob");
    alice_pane.wait_for("@bob", WAIT);
    alice_pane.keys(&["Enter"]);
    alice_pane.wait_for("Message bob", WAIT);
    alice_pane.type_text("hello bob");
    alice_pane.keys(&["Enter"]);
    once(&alice_pane, "alice hello bob");
    bob_pane.wait_for("alice", WAIT);
    bob_pane.keys(&["Enter"]);
    once(&bob_pane, "alice hello bob");
    bob_pane.type_text("hi alice");
    bob_pane.keys(&["Enter"]);
    once(&alice_pane, "bob hi alice");

    // Bob reacts to alice's message, alice edits it: both see both.
    to_messages(&bob_pane, "alice");
    bob_pane.keys(&["k", "k", "+"]);
    bob_pane.wait_for("React", WAIT);
    bob_pane.keys(&["Enter"]);
    alice_pane.wait_for("👍 1", WAIT);
    to_messages(&alice_pane, "bob");
    alice_pane.keys(&["k", "k", "e"]);
    alice_pane.wait_for("editing your message", WAIT);
    alice_pane.keys(&["C-u"]);
    alice_pane.type_text("hello bob, edited");
    alice_pane.keys(&["Enter"]);
    let screen = bob_pane.wait_for("alice hello bob, edited (edited)", WAIT);
    assert!(screen.contains("👍 1"), "{screen}");
    alice_pane.wait_for("hello bob, edited (edited)", WAIT);

    // chatd restarts while alice writes: the message waits in the outbox and arrives once.
    chatd.sigterm();
    chatd.wait_exit(Duration::from_secs(15));
    alice_pane.wait_for("reconnecting", WAIT);
    alice_pane.type_text("typed while the server restarts");
    alice_pane.keys(&["Enter"]);
    alice_pane.wait_for("… sending", WAIT);
    chatd.restart();
    once(&alice_pane, "alice typed while the server restarts");
    once(&bob_pane, "alice typed while the server restarts");
    to_composer(&bob_pane, "alice");
    bob_pane.type_text("welcome back");
    bob_pane.keys(&["Enter"]);
    once(&alice_pane, "bob welcome back");
    for pane in [&alice_pane, &bob_pane] {
        assert_eq!(count(&pane.screen(), "typed while the server restarts"), 1);
    }

    // Alice quits with a message still unsent; the next run sends it, once.
    chatd.sigterm();
    chatd.wait_exit(Duration::from_secs(15));
    alice_pane.wait_for("reconnecting", WAIT);
    alice_pane.type_text("queued before a client restart");
    alice_pane.keys(&["Enter"]);
    alice_pane.wait_for("… sending", WAIT);
    alice_pane.keys(&["C-c"]);
    alice_pane.wait_until("chat-tui to exit", WAIT, |_| alice_pane.exited());
    alice_pane.kill();
    assert!(
        !alice.outbox().is_empty(),
        "the unsent message is in the outbox file"
    );
    let alice_pane = alice.start(&tmux);
    alice_pane.wait_for("Cannot connect", WAIT);
    chatd.restart();
    // The saved session signs her in; her chat with bob is the first of the list.
    alice_pane.wait_for("● bob", WAIT);
    alice_pane.keys(&["Enter"]);
    once(&alice_pane, "alice queued before a client restart");
    once(&bob_pane, "alice queued before a client restart");
    assert!(
        alice.outbox().is_empty(),
        "the outbox is empty once the server answered"
    );
    assert_eq!(
        count(&alice_pane.screen(), "typed while the server restarts"),
        1
    );

    // --logout revokes the session on the server and forgets it: the next start asks again.
    alice_pane.keys(&["C-c"]);
    alice_pane.wait_until("chat-tui to exit", WAIT, |_| alice_pane.exited());
    alice_pane.kill();
    assert!(alice.has_session());
    let said = alice.logout();
    assert!(said.contains("Signed out of"), "{said}");
    assert!(!alice.has_session());
    let alice_pane = alice.start(&tmux);
    alice_pane.wait_for("Sign in", WAIT);
}
