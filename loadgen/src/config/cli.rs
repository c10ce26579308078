//! The clap definitions of `loadgen`: the subcommands and every flag of `run`. Flags are all
//! optional here so that [`RunConfig::load`](super::RunConfig::load) can tell "given" from
//! "left out" and fill the gaps from the `--config` file, then from the defaults shown in the
//! help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// How a benchmark deployment of chatd raises its rate limits; shown by `loadgen run --help`.
pub const CHATD_LIMITS_HELP: &str = "\
chatd keeps its rate and connection limits on by default, and loadgen registers, logs in and \
sends for many users from ONE address, so a benchmark deployment must raise them, e.g.:

  chatd --limit-send '100000/s burst 100000' \\
        --limit-request '100000/s burst 100000' \\
        --limit-address-request '1000000/s burst 1000000' \\
        --limit-login-address '100000/s burst 100000' \\
        --limit-login-account '1000/s burst 1000' \\
        --limit-login-account-address '1000/s burst 1000' \\
        --max-unauthenticated-per-address 5000 \\
        --max-authenticated-per-address 20000

or the same through CHATD_LIMIT_SEND, CHATD_LIMIT_REQUEST, CHATD_LIMIT_ADDRESS_REQUEST, \
CHATD_LIMIT_LOGIN_ADDRESS, CHATD_LIMIT_LOGIN_ACCOUNT, CHATD_LIMIT_LOGIN_ACCOUNT_ADDRESS, \
CHATD_MAX_UNAUTHENTICATED_PER_ADDRESS, CHATD_MAX_AUTHENTICATED_PER_ADDRESS, or chatd's TOML \
file (a [limits] table: send, request, address_request, login_address, login_account, \
login_account_address; max_unauthenticated_per_address and max_authenticated_per_address at \
the top). Refused requests are counted as RATE_LIMITED errors, never retried silently.";

/// The `loadgen` command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    version = chat_cli::version!(),
    about = "Open-loop load generator for chatd (chat/1 over QUIC)",
    max_term_width = 100,
    arg_required_else_help = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// `--generate man|complete-SHELL`.
    #[command(flatten)]
    pub generate: chat_cli::GenerateArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Create (or reuse) users and rooms, open connections, drive an open-loop schedule and
    /// report throughput, latency and correctness.
    #[command(after_long_help = CHATD_LIMITS_HELP)]
    Run(Box<RunArgs>),
    /// Upload and download one file, several rounds, and report the throughput (capability
    /// files; the server's --max-file-size and --upload-quota must allow the size).
    Transfer(TransferArgs),
}

/// The flags of `loadgen transfer`.
#[derive(Debug, Clone, Args)]
pub struct TransferArgs {
    /// chatd address
    #[arg(long, value_name = "HOST:PORT")]
    pub server: String,

    /// Accept exactly the server certificate with this SHA-256 fingerprint
    #[arg(long, value_name = "SHA256", conflicts_with = "insecure")]
    pub pin: Option<String>,

    /// Do not verify the server certificate at all (development only)
    #[arg(long)]
    pub insecure: bool,

    /// File size in MiB
    #[arg(long, value_name = "MIB", default_value_t = 200)]
    pub size_mib: u64,

    /// Upload-and-download rounds
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub rounds: u32,

    /// Print one JSON object instead of the lines
    #[arg(long)]
    pub json: bool,
}

/// The flags of `loadgen run`. Every flag may also be given in the `--config` TOML file under
/// the same name with `_` for `-` (`room_size = 100`, `server = ["h:4433"]`); flags win.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// TOML file with the same keys as the flags (flags override it)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// chatd address; repeat for several nodes (connections are spread round-robin)
    #[arg(long = "server", value_name = "HOST:PORT")]
    pub servers: Vec<String>,

    /// How the server certificate is checked (one of --pin, --ca, --insecure is required)
    #[command(flatten)]
    pub tls: chat_cli::ServerArgs,

    /// room-fanout, private, connect-storm, idle, history or search [default: room-fanout]
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,

    /// Number of users [default: 100]
    #[arg(long, value_name = "N")]
    pub users: Option<u32>,

    /// Connections per user; extra ones share the user's session [default: 1]
    #[arg(long, value_name = "N")]
    pub connections_per_user: Option<u32>,

    /// Members per room (room-fanout, history, search); must divide --users [default: 10]
    #[arg(long, value_name = "K")]
    pub room_size: Option<u32>,

    /// Total offered operations per second (messages, or messages and reads) [default: 100]
    #[arg(long, value_name = "PER_SEC")]
    pub rate: Option<f64>,

    /// Measured time after the warmup, e.g. 30s, 2m [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Load before the measurement starts; not counted in rates or latency [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<String>,

    /// How long to wait for outstanding deliveries after the last send [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub drain: Option<String>,

    /// Message text size in bytes, 100-4096 [default: 100]
    #[arg(long, value_name = "BYTES")]
    pub payload: Option<usize>,

    /// New connections per second during setup and in connect-storm [default: 100]
    #[arg(long, value_name = "PER_SEC")]
    pub connect_rate: Option<f64>,

    /// Share of reads among the operations of the history and search mixes [default: 20]
    #[arg(long, value_name = "PERCENT")]
    pub read_percent: Option<u8>,

    /// Username prefix; users are PREFIX000000, PREFIX000001, ... [default: lg_]
    #[arg(long, value_name = "PREFIX")]
    pub user_prefix: Option<String>,

    /// Password of the users (existing ones are logged in with it) [default: loadgen-password]
    #[arg(
        long,
        env = "LOADGEN_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<String>,

    /// A request without an answer after this long counts as a timeout error [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,

    /// chatd admin /metrics URL (http only) for server memory and connections; repeatable
    #[arg(long = "metrics-url", value_name = "URL")]
    pub metrics_urls: Vec<String>,

    /// Write SVG plots (latency over time, latency histogram) into this directory
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,

    /// Print one JSON object with the results instead of the table
    #[arg(long)]
    pub json: bool,

    /// UDP sockets the connections share, each read for many connections at once [default:
    /// one per 128 connections, at most 32]
    #[arg(long, value_name = "N")]
    pub endpoints: Option<u32>,

    /// Worker threads of loadgen's runtime [default: the number of CPUs]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Never send requests in 0-RTT data: a returning connection still resumes its TLS session
    /// but waits for the handshake (connect-storm: resumed against 0-RTT reconnects)
    #[arg(long)]
    pub no_zero_rtt: bool,
}
