//! chatctl, the admin CLI of chatd.
//!
//! It speaks chat/1 through the chatproto SDK with an account that has the admin role, so the
//! server enforces every rule (spec/protocol.md 9.6). The binary is thin: [`cli::Cli`] parses
//! the command line, [`settings`] resolves it over the saved [`profile`], and [`run`] connects,
//! carries out one command (one module per subcommand) and prints the result ([`output`]). A
//! failure's exit status tells scripts what kind it was ([`error::status`]).

pub mod cli;
mod commands;
pub mod error;
pub mod output;
pub mod profile;
pub mod session;
pub mod settings;

use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{Cli, Command};
use crate::settings::Sources;

/// Runs the parsed command line.
///
/// # Errors
/// Whatever failed; [`error::status`] gives its exit status.
pub fn run(cli: Cli, sources: &Sources<'_>) -> anyhow::Result<ExitCode> {
    if let Some(kind) = cli.generate.generate {
        kind.print(cli::command())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(command) = cli.command else {
        return Err(error::Error::Usage("no command given; see chatctl --help".into()).into());
    };
    if let Command::Completions { shell } = &command {
        shell.generate().print(cli::command())?;
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(commands::run(command, sources))?;
    Ok(ExitCode::SUCCESS)
}
