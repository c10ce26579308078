//! The `chat-tui` binary: parse the command line into validated settings, run the library.
//!
//! Exit status: 0 after quitting or `--logout`, 1 when the client refused to go on (a changed
//! server certificate) or could not run, 2 for usage errors.

use std::process::ExitCode;

use anyhow::Context as _;
use chat_cli::layers::LayerError;
use chat_tui::app::Exit;
use chat_tui::settings::{Cli, Settings};

fn main() -> ExitCode {
    let cli = match Cli::load(std::env::args_os(), |k| std::env::var(k).ok()) {
        Ok(cli) => cli,
        // Usage errors, --help and --version: clap prints them and picks the status.
        Err(LayerError::Cli(e)) => e.exit(),
        Err(e) => {
            chat_cli::report::print("chat-tui", &anyhow::Error::new(e), None);
            return ExitCode::from(2);
        }
    };
    chat_cli::run_main("chat-tui", || run(cli), |_| None)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(kind) = cli.generate.generate {
        kind.print(chat_tui::settings::command())?;
        return Ok(ExitCode::SUCCESS);
    }
    let settings = Settings::from_cli(cli).context("cannot start")?;
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
        // Reported like every other failure (`chat-tui: error: ...`, status 1).
        Exit::Refused(message) => return Err(anyhow::anyhow!(message)),
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
