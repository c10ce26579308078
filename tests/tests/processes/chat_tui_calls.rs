//! Calls in chat-tui as people make them (signaling only): two real chat-tui binaries in tmux
//! against a real chatd. Alice calls bob with `/call`; bob's screen shows the prompt over
//! whatever is up; he answers, both see the call and its duration, alice hangs up and both see
//! it ended, recorded in the chat. And a call bob declines.

use tests::chatd::{ChatdConfig, ChatdProcess};
use tests::server::GENEROUS_LIMITS;
use tests::tmux::{Pane, Tmux};

use super::chat_tui::{Person, WAIT};

/// A chatd, and alice and bob signed in, with alice in her private chat with bob (composer).
struct Call<'a> {
    alice: Pane<'a>,
    bob: Pane<'a>,
}

fn start<'a>(chatd: &ChatdProcess, tmux: &'a Tmux, dir: &std::path::Path) -> Call<'a> {
    let args = [
        "--server".to_string(),
        chatd.addr().to_string(),
        "--pin".into(),
        chatd.fingerprint().to_string(),
    ];
    let alice = Person::new(dir, "alice", &args);
    let bob = Person::new(dir, "bob", &args);
    let alice_pane = alice.start(tmux);
    let bob_pane = bob.start(tmux);
    alice.register(&alice_pane);
    bob.register(&bob_pane);
    alice_pane.keys(&["n"]);
    alice_pane.type_text("bob");
    alice_pane.wait_for("@bob", WAIT);
    alice_pane.keys(&["Enter"]);
    alice_pane.wait_for("▸ Message bob", WAIT);
    Call {
        alice: alice_pane,
        bob: bob_pane,
    }
}

fn command(pane: &Pane<'_>, line: &str) {
    pane.type_text(line);
    pane.keys(&["Enter"]);
}

fn chatd(dir: &std::path::Path) -> ChatdProcess {
    ChatdProcess::start(
        ChatdConfig::new()
            .data_dir(dir.join("data"))
            .args(GENEROUS_LIMITS.iter().copied()),
    )
}

#[test]
fn alice_calls_bob_he_answers_and_she_hangs_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chatd = chatd(dir.path());
    let tmux = Tmux::start(dir.path());
    let Call { alice, bob } = start(&chatd, &tmux, dir.path());

    command(&alice, "/call");
    alice.wait_for("ringing bob…", WAIT);
    let screen = bob.wait_for("Incoming audio call", WAIT);
    assert!(screen.contains("alice is calling you"), "{screen}");
    assert!(screen.contains("a/y answer · d/n decline"), "{screen}");
    bob.keys(&["a"]);
    bob.wait_until("the prompt gone, in call", WAIT, |s| {
        s.contains("in call with alice · 00:") && !s.contains("Incoming audio call")
    });
    alice.wait_for("in call with bob · 00:", WAIT);

    command(&alice, "/hangup");
    alice.wait_until("the call ended", WAIT, |s| {
        s.contains("Call with bob ended") && !s.contains("in call with")
    });
    bob.wait_until("the call ended", WAIT, |s| {
        s.contains("alice hung up") && !s.contains("in call with")
    });
    // The chat records it, as one line.
    alice.wait_for("☎ audio call ·", WAIT);
}

#[test]
fn bob_declines_a_video_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let chatd = chatd(dir.path());
    let tmux = Tmux::start(dir.path());
    let Call { alice, bob } = start(&chatd, &tmux, dir.path());

    command(&alice, "/call video");
    alice.wait_for("ringing bob…", WAIT);
    bob.wait_for("Incoming video call", WAIT);
    bob.keys(&["d"]);
    bob.wait_until("the prompt gone", WAIT, |s| {
        s.contains("Call declined.") && !s.contains("Incoming video call")
    });
    alice.wait_until("the call declined", WAIT, |s| {
        s.contains("bob declined the call.") && !s.contains("ringing bob")
    });
    alice.wait_for("☎ outgoing video call · declined", WAIT);
}
