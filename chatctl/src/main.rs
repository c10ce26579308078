//! The `chatctl` binary: parse the command line, run the library, exit with a status that says
//! what kind of failure it was (see `chatctl --help`).

use std::process::ExitCode;

use chat_cli::layers::LayerError;
use chatctl::cli::Cli;
use chatctl::settings::{Sources, read_stdin_line};

fn main() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let cli = match Cli::load(std::env::args_os(), env) {
        Ok(cli) => cli,
        // Usage errors, --help and --version: clap prints them and picks the status (2, 0).
        Err(LayerError::Cli(e)) => e.exit(),
        Err(e) => {
            chat_cli::report::print("chatctl", &anyhow::Error::new(e), None);
            return ExitCode::from(2);
        }
    };
    let sources = Sources {
        env: &env,
        stdin_line: &read_stdin_line,
    };
    chat_cli::run_main_with_status(
        "chatctl",
        || chatctl::run(cli, &sources),
        chatctl::error::hint,
        chatctl::error::status,
    )
}
