//! The `chatd` binary: parse the configuration (flags > environment > file > defaults), then run
//! the chosen subcommand. Everything else lives in the library.

use std::process::ExitCode;

use chatd::ops::config::{CliCommand, Config, ConfigError, UserCommand};

fn main() -> ExitCode {
    let config = match Config::load(std::env::args_os(), |k| std::env::var(k).ok()) {
        Ok(config) => config,
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("chatd: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = chatd::ops::logging::init(config.log_format, &config.log_filter) {
        eprintln!("chatd: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &config.command {
            CliCommand::Serve => chatd::cli::serve::run(config.clone()).await,
            CliCommand::User {
                action:
                    UserCommand::Add {
                        name,
                        admin,
                        password_stdin,
                    },
            } => chatd::cli::user_add::run(&config, name, *admin, *password_stdin).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
