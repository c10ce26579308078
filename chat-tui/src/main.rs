//! The `chat-tui` binary: parse the command line into validated settings, run the library.
//!
//! Exit status: 0 after quitting or `--logout`, 1 when the client refused to go on (a changed
//! server certificate) or could not run, 2 for usage errors.

use std::process::ExitCode;

use anyhow::Context as _;
use chat_tui::app::Exit;
use chat_tui::settings::{Cli, Settings};
use clap::Parser as _;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chat-tui: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let settings = Settings::from_cli(Cli::parse()).context("cannot start")?;
    init_logging();
    if settings.trust == chat_tui::settings::Trust::Insecure {
        eprintln!(
            "chat-tui: WARNING: --insecure: the server certificate is NOT verified; anyone on the \
             network path can read and change everything (development only)"
        );
    }
    let exit = chat_tui::run(settings).context("chat-tui failed")?;
    Ok(match exit {
        Exit::Quit => ExitCode::SUCCESS,
        Exit::LoggedOut(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Exit::Refused(message) => {
            eprintln!("chat-tui: {message}");
            ExitCode::FAILURE
        }
    })
}

/// Logs go to a file (the terminal belongs to the interface) when `CHAT_TUI_LOG` names one.
fn init_logging() {
    let Some(path) = std::env::var_os("CHAT_TUI_LOG") else {
        return;
    };
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(file) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("CHAT_TUI_LOG_LEVEL")
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        Err(e) => eprintln!(
            "chat-tui: cannot open the log file {}: {e}",
            path.to_string_lossy()
        ),
    }
}
