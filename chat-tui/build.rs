//! Records the commit for `chat-tui --version`.

fn main() {
    chat_cli_build::emit_commit();
}
