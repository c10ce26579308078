//! The `chatd` binary: parse the invocation (flags > environment > file > defaults), then run
//! the chosen subcommand. Everything else lives in the library; errors are reported by
//! [`chat_cli::run_main`], with chatd's hints.

use std::process::ExitCode;

use anyhow::Context as _;
use chat_cli::layers::LayerError;
use chatd::ops::config::{ConfigError, Invocation, LogFormat};

fn main() -> ExitCode {
    let invocation = match Invocation::load(std::env::args_os(), |k| std::env::var(k).ok()) {
        Ok(invocation) => invocation,
        // Usage errors, --help and --version: clap prints them and picks the status.
        Err(ConfigError::Layers(LayerError::Cli(e))) => e.exit(),
        Err(e) => {
            chat_cli::report::print("chatd", &anyhow::Error::new(e), None);
            return ExitCode::from(2);
        }
    };
    chat_cli::report::run_main_with_status(
        "chatd",
        || run(invocation),
        chatd::cli::hints::hint,
        chatd::cli::hints::status,
    )
}

fn run(invocation: Invocation) -> anyhow::Result<ExitCode> {
    let (format, filter) = match &invocation {
        Invocation::Generate(kind) => {
            kind.print(chatd::ops::config::command())?;
            return Ok(ExitCode::SUCCESS);
        }
        Invocation::Serve(config) => (config.settings.log_format, config.settings.log.as_str()),
        Invocation::UserAdd(_)
        | Invocation::DbEncrypt(_)
        | Invocation::DbRekey(_)
        | Invocation::FilesEncrypt(_) => (LogFormat::Human, "warn"),
    };
    chatd::ops::logging::init(format, filter)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match invocation {
            Invocation::Serve(config) => chatd::cli::serve::run(*config).await,
            Invocation::UserAdd(args) => chatd::cli::user_add::run(args).await,
            Invocation::DbEncrypt(args) => chatd::cli::db_encrypt::run(args).await,
            Invocation::DbRekey(args) => chatd::cli::db_rekey::run(args).await,
            Invocation::FilesEncrypt(args) => chatd::cli::files_encrypt::run(args).await,
            Invocation::Generate(_) => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}
