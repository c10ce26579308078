//! The `loadgen` binary: parse the command line into a validated configuration, run the library
//! on a runtime of the configured size, print the table or the JSON object.
//!
//! Exit status: 0 when the run is OK (nothing lost, duplicated, reordered, no error), 3 when it
//! completed but is not OK, 1 when it could not run, 2 for usage errors.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};
use loadgen::config::{Cli, Command, RunArgs, RunConfig, TransferArgs};

fn main() -> ExitCode {
    let Cli { generate, command } = Cli::parse();
    chat_cli::run_main(
        "loadgen",
        || match (generate.generate, command) {
            (Some(kind), _) => {
                kind.print(Cli::command())?;
                Ok(ExitCode::SUCCESS)
            }
            (None, Some(Command::Run(args))) => run(*args),
            (None, Some(Command::Transfer(args))) => transfer(&args),
            // clap requires one of them (arg_required_else_help).
            (None, None) => Ok(ExitCode::from(2)),
        },
        hint,
    )
}

/// Hints for the failures loadgen can name a fix for.
fn hint(err: &anyhow::Error) -> Option<chat_cli::Hint> {
    match err
        .chain()
        .find_map(|e| e.downcast_ref::<loadgen::error::LoadgenError>())?
    {
        loadgen::error::LoadgenError::Output { path, source }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Some(chat_cli::Hint(format!(
                "loadgen needs write permission on {}: choose another directory with --plot",
                path.display()
            )))
        }
        _ => None,
    }
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = RunConfig::load(args)?;
    init_logging(&config);
    if config.tls.is_insecure() {
        eprintln!(
            "loadgen: WARNING: --insecure: the server certificate is NOT verified on any of the {} \
             connections; anyone on the path can impersonate the server (development only)",
            config.connections()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let output = runtime
        .block_on(loadgen::run(&config, true))
        .context("the run failed")?;
    // Connections still closing in the background must not hold the exit.
    runtime.shutdown_background();
    if config.json {
        println!("{}", output.report.to_json());
    } else {
        print!("{}", loadgen::report::table::render(&output.report));
        for path in &output.plots {
            println!("plot written: {}", path.display());
        }
    }
    Ok(if output.report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn transfer(args: &TransferArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime
        .block_on(loadgen::transfer::run(args))
        .context("the transfer failed")?;
    runtime.shutdown_background();
    if args.json {
        println!("{}", serde_json::to_string(&report).context("json")?);
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}

/// Logs to standard error, `RUST_LOG` or warnings by default. With `--insecure` the SDK's
/// per-connection warning is replaced by the single warning above: thousands of identical
/// lines would bury everything else.
fn init_logging(config: &RunConfig) {
    let mut filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    if config.tls.is_insecure() {
        filter.push_str(",chatproto::client::connection=error");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
