//! Records the commit for `chatd --version`.

fn main() {
    chat_cli_build::emit_commit();
}
