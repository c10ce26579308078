//! The clap definitions: every setting, its flag, environment variable and default, and the
//! subcommands. Parse through [`Config::load`](super::Config::load), which applies the
//! environment and file layers; the help text lists each variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use super::{parse_bytes, parse_duration, parse_rate};
use crate::limits::keyed::Rate;

/// How the settings combine, shown by `chatd --help`.
const LONG_ABOUT: &str = "chatd, the chat/1 server.

Settings come from flags, CHATD_* environment variables and an optional TOML file (--config), \
in that order of precedence. The file uses the setting names of the flags with '_' for '-' \
(data_dir, listen, ...) and a [limits] table (send, request, address_request, login_account, \
login_address, typing, upload). Sizes are a number of bytes with an optional KiB, MiB, GiB (or \
KB, MB, GB) suffix, e.g. \"100MiB\". Relative paths are relative to the working directory. Rates are written \
COUNT/PERIOD [burst N], e.g. \"20/s burst 60\"; durations as a number and ms, s, m or h, e.g. \
\"15m\". The access-token key is never a flag: it is read from CHATD_TOKEN_KEY (hex) or from \
the token key file.

Cluster mode: with --redis-url, several chatd nodes share one Redis for events between nodes, \
presence, rate limits, a read cache and the node registry (Redis is never the system of record), \
and one database (--mongo-uri). A standalone Redis is given as redis://[user:pass@]host:port[/db] \
(or redis+unix:///path); a Redis Cluster as redis+cluster://[user:pass@]host:port[,host:port...] \
or as comma-separated redis:// seed urls, and then uses sharded pub/sub (Redis 7 or newer). Each \
node heartbeats every --heartbeat-interval; a node silent for --presence-ttl counts as dead and its \
users go offline within --presence-ttl plus one heartbeat. --steering redirects new connections \
from a node above its fair share of connections to the least loaded node, at the address that \
node announces with --public-addr.";

/// The command line of chatd: settings and an optional subcommand.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chatd",
    version,
    about = "chatd, the chat/1 server",
    long_about = LONG_ABOUT,
    max_term_width = 100
)]
pub struct Cli {
    /// Settings, shared by every subcommand.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum CliCommand {
    /// Run the server (the default).
    Serve,
    /// Manage user accounts in the local database.
    User {
        /// The user command.
        #[command(subcommand)]
        action: UserCommand,
    },
}

/// `chatd user ...`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Create a user account.
    Add {
        /// The username (3-32 characters of a-z, 0-9, '_' and '.').
        name: String,
        /// Give the account the server admin role.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Every setting. Options without a default are `Option`s; see the crate's `Config` for what
/// each means once merged.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// TOML configuration file
    #[arg(long, global = true, env = "CHATD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory: database, generated TLS certificate, token key
    #[arg(
        long,
        global = true,
        env = "CHATD_DATA_DIR",
        value_name = "DIR",
        default_value = "./chatd-data"
    )]
    pub data_dir: PathBuf,

    /// QUIC (UDP) address to serve chat/1 on
    #[arg(
        long,
        global = true,
        env = "CHATD_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:4433"
    )]
    pub listen: SocketAddr,

    /// HTTP address for /metrics, /healthz and /readyz
    #[arg(
        long,
        global = true,
        env = "CHATD_ADMIN_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:9464"
    )]
    pub admin_listen: SocketAddr,

    /// TLS certificate chain (PEM); with --tls-key. Default: a self-signed certificate generated
    /// in the data directory
    #[arg(long, global = true, env = "CHATD_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM); with --tls-cert
    #[arg(long, global = true, env = "CHATD_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Log format
    #[arg(
        long,
        global = true,
        env = "CHATD_LOG_FORMAT",
        value_enum,
        default_value = "human"
    )]
    pub log_format: LogFormat,

    /// Log filter, e.g. "info" or "chatd=debug,quinn=warn"
    #[arg(
        long,
        global = true,
        env = "CHATD_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log: String,

    /// This node's id in a cluster. Default: random per start
    #[arg(long, global = true, env = "CHATD_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,

    /// Most concurrent client connections
    #[arg(
        long,
        global = true,
        env = "CHATD_MAX_CONNECTIONS",
        value_name = "N",
        default_value = "20000"
    )]
    pub max_connections: u32,

    /// Access-token lifetime, at most 15m
    #[arg(
        long,
        global = true,
        env = "CHATD_ACCESS_TOKEN_TTL",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "15m"
    )]
    pub access_token_ttl: Duration,

    /// File holding the access-token signing key (hex), generated when missing. The key may
    /// instead be given in CHATD_TOKEN_KEY. Default: token.key in the data directory
    #[arg(long, global = true, env = "CHATD_TOKEN_KEY_FILE", value_name = "FILE")]
    pub token_key_file: Option<PathBuf>,

    /// How long shutdown waits for connections to close
    #[arg(
        long,
        global = true,
        env = "CHATD_SHUTDOWN_GRACE",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "10s"
    )]
    pub shutdown_grace: Duration,

    /// Messages sent per user
    #[arg(
        long,
        global = true,
        env = "CHATD_LIMIT_SEND",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "20/s burst 60"
    )]
    pub limit_send: Rate,

    /// Requests per user
    #[arg(
        long,
        global = true,
        env = "CHATD_LIMIT_REQUEST",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "100/s burst 200"
    )]
    pub limit_request: Rate,

    /// Requests per client IP address
    #[arg(
        long,
        global = true,
        env = "CHATD_LIMIT_ADDRESS_REQUEST",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "200/s burst 400"
    )]
    pub limit_address_request: Rate,

    /// Login attempts per account
    #[arg(
        long,
        global = true,
        env = "CHATD_LIMIT_LOGIN_ACCOUNT",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "1/m burst 5"
    )]
    pub limit_login_account: Rate,

    /// Login attempts per client IP address
    #[arg(
        long,
        global = true,
        env = "CHATD_LIMIT_LOGIN_ADDRESS",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "1/5s burst 20"
    )]
    pub limit_login_address: Rate,

    /// Typing notifications per user and chat
    #[arg(
        long,
        global = true,
        env = "CHATD_LIMIT_TYPING",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "1/2s burst 1"
    )]
    pub limit_typing: Rate,

    /// Uploads begun per user
    #[arg(
        long,
        global = true,
        env = "CHATD_LIMIT_UPLOAD",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "1/2s burst 30"
    )]
    pub limit_upload: Rate,

    /// Largest file a user may upload (Limits.max_file_bytes), e.g. 100MiB
    #[arg(
        long,
        global = true,
        env = "CHATD_MAX_FILE_SIZE",
        value_name = "BYTES",
        value_parser = parse_bytes,
        default_value = "100MiB"
    )]
    pub max_file_size: u64,

    /// Bytes one user may keep in uploaded files and unfinished uploads, e.g. 1GiB
    #[arg(
        long,
        global = true,
        env = "CHATD_UPLOAD_QUOTA",
        value_name = "BYTES",
        value_parser = parse_bytes,
        default_value = "1GiB"
    )]
    pub upload_quota: u64,

    /// How long an unfinished upload, or a file no message or avatar references, is kept
    #[arg(
        long,
        global = true,
        env = "CHATD_FILE_GC_GRACE",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "24h"
    )]
    pub file_gc_grace: Duration,

    /// How often stale uploads and unreferenced files are looked for
    #[arg(
        long,
        global = true,
        env = "CHATD_FILE_GC_INTERVAL",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "1h"
    )]
    pub file_gc_interval: Duration,

    /// HTTPS (TCP) address serving files at signed, expiring URLs, with the server's TLS
    /// certificate. Off when unset
    #[arg(
        long,
        global = true,
        env = "CHATD_FILES_HTTPS_LISTEN",
        value_name = "ADDR"
    )]
    pub files_https_listen: Option<SocketAddr>,

    /// The base URL clients reach the HTTPS file server at (e.g. a CDN in front of it).
    /// Default: https://<files-https-listen>
    #[arg(
        long,
        global = true,
        env = "CHATD_FILES_PUBLIC_URL",
        value_name = "URL"
    )]
    pub files_public_url: Option<String>,

    /// How long a signed download URL stays valid
    #[arg(
        long,
        global = true,
        env = "CHATD_FILE_URL_TTL",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "1h"
    )]
    pub file_url_ttl: Duration,

    /// Cluster mode: MongoDB connection string (mongodb:// or mongodb+srv://). Prefer the
    /// variable when it holds a password: the command line is visible to other users
    #[arg(long, global = true, env = "CHATD_MONGO_URI", value_name = "URI")]
    pub mongo_uri: Option<String>,

    /// Cluster mode: Redis URL. Standalone: redis://host:port[/db] or redis+unix:///path; Redis
    /// Cluster: redis+cluster://host:port[,host:port...] or comma-separated redis:// seeds. Prefer
    /// the variable when it holds a password
    #[arg(long, global = true, env = "CHATD_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,

    /// Cluster mode: redirect new connections (of clients that follow redirects) to the least
    /// loaded node when this one has more than its fair share. Write --steering or
    /// --steering=false
    #[arg(
        long,
        global = true,
        env = "CHATD_STEERING",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub steering: bool,

    /// Cluster mode: the host:port clients use to reach this node (redirects point there).
    /// Default: the listen address
    #[arg(
        long,
        global = true,
        env = "CHATD_PUBLIC_ADDR",
        value_name = "HOST:PORT"
    )]
    pub public_addr: Option<String>,

    /// Cluster mode: how long a node counts as alive after its last heartbeat
    #[arg(
        long,
        global = true,
        env = "CHATD_PRESENCE_TTL",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "15s"
    )]
    pub presence_ttl: Duration,

    /// Cluster mode: how often a node heartbeats and looks for dead nodes (at most half the
    /// presence TTL)
    #[arg(
        long,
        global = true,
        env = "CHATD_HEARTBEAT_INTERVAL",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "5s"
    )]
    pub heartbeat_interval: Duration,

    /// Longest a single storage call may take before the request answers UNAVAILABLE
    #[arg(
        long,
        global = true,
        env = "CHATD_STORE_TIMEOUT",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "1500ms"
    )]
    pub store_timeout: Duration,
}
