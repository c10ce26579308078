//! Records the commit for `loadgen --version`.

fn main() {
    chat_cli_build::emit_commit();
}
