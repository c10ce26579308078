//! Records the commit for `chatctl --version`.

fn main() {
    chat_cli_build::emit_commit();
}
