//! The clap definitions: every setting, declared once here with its flag, environment variable,
//! default, parser (which validates the value) and help; the TOML file key is the field name
//! (see [`chat_cli::layers`]). Parse through [`Invocation::load`](super::Invocation::load), which
//! applies the environment and file layers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chat_cli::GenerateArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};

use super::uris::{RedisUrl, ServiceUri, parse_mongo_uri};
use super::{
    AccessExempt, parse_access_exempt, parse_access_refresh, parse_access_token_ttl,
    parse_auth_deadline, parse_data_dir, parse_duration, parse_file_gc_interval,
    parse_file_url_ttl, parse_files_public_url, parse_heartbeat, parse_log_filter,
    parse_max_file_size, parse_node_id, parse_public_addr, parse_rate, parse_size,
    parse_store_timeout,
};
use crate::rate::Rate;
use crate::store::sqlite::Durability;

/// How the settings combine, shown by `chatd --help`.
const LONG_ABOUT: &str = "chatd, the chat/1 server.

Settings come from flags, CHATD_* environment variables and an optional TOML file (--config), \
in that order of precedence. The file uses the setting names of the flags with '_' for '-' \
(data_dir, listen, ...) and a [limits] table (send, request, address_request, login_account, \
login_account_address, login_address, typing, upload). Relative paths are relative to the working directory. Rates are \
written COUNT/PERIOD [burst N], e.g. \"20/s burst 60\"; durations as a number and ms, s, m or h, \
e.g. \"15m\"; sizes as a number of bytes with an optional KiB, MiB, GiB, TiB (or KB, MB, GB, TB) \
suffix, e.g. \"100MiB\". The access-token key is never a flag: it is read from CHATD_TOKEN_KEY (hex) or from \
the token key file; nor is the TURN secret: CHATD_TURN_SECRET or the TURN secret file; nor is the \
database encryption key: --encryption-key-file (or CHATD_ENCRYPTION_KEY_FILE) names its file.

Cluster mode: with --redis-url, several chatd nodes share one Redis for events between nodes, \
presence, rate limits, a read cache and the node registry (Redis is never the system of record), \
and one database (--mongo-uri). A standalone Redis is given as redis://[user:pass@]host:port[/db] \
(or redis+unix:///path); a Redis Cluster as redis+cluster://[user:pass@]host:port[,host:port...] \
or as comma-separated redis:// seed urls, and then uses sharded pub/sub (Redis 7 or newer). Each \
node heartbeats every --heartbeat-interval; a node silent for --presence-ttl counts as dead and its \
users go offline within --presence-ttl plus one heartbeat. --steering redirects new connections \
from a node above its fair share of connections to the least loaded node, at the address that \
node announces with --public-addr.";

/// The command line of chatd: the server's settings (when no subcommand is given) or a
/// subcommand with its own.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chatd",
    version = chat_cli::version!(),
    about = "chatd, the chat/1 server",
    long_about = LONG_ABOUT,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The server's settings, for `chatd` without a subcommand.
    #[command(flatten)]
    pub settings: Settings,
    /// `--generate man|complete-SHELL`.
    #[command(flatten)]
    pub generate: GenerateArgs,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

/// What to run.
#[derive(Debug, Clone, Subcommand)]
pub enum CliCommand {
    /// Run the server (what `chatd` alone does)
    Serve(Box<Settings>),
    /// Manage user accounts in the database, while chatd runs or not
    User {
        /// The user command.
        #[command(subcommand)]
        action: UserCommand,
    },
    /// Encrypt the embedded database or change its key (with chatd stopped)
    Db {
        /// The database command.
        #[command(subcommand)]
        action: DbCommand,
    },
    /// Encrypt uploaded files' content, while chatd runs or not
    Files {
        /// The files command.
        #[command(subcommand)]
        action: FilesCommand,
    },
}

/// `chatd files ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum FilesCommand {
    /// Encrypt file content stored before --encryption-key-file was given, and re-wrap the file
    /// keys of --previous-encryption-key-file with the current key
    Encrypt(FilesEncrypt),
}

/// `chatd files encrypt`: where the files are (data directory or MongoDB) and the keys.
#[derive(Debug, Clone, Args)]
pub struct FilesEncrypt {
    /// Where the files are, and the master key (--encryption-key-file, required).
    #[command(flatten)]
    pub storage: Storage,
}

/// `chatd db ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// Encrypt a plain database with the key of --encryption-key-file
    Encrypt(DbEncrypt),
    /// Give an encrypted database a new key (--new-key-file); the old one stops opening it
    Rekey(DbRekey),
}

/// `chatd db encrypt`: the database and the key to encrypt it with.
#[derive(Debug, Clone, Args)]
pub struct DbEncrypt {
    /// Where the database is, and its new key (--encryption-key-file, required).
    #[command(flatten)]
    pub storage: Storage,
}

/// `chatd db rekey`: the database, its key and the new one.
#[derive(Debug, Clone, Args)]
pub struct DbRekey {
    /// Where the database is, and its key (--encryption-key-file, required).
    #[command(flatten)]
    pub storage: Storage,
    /// The new key: 32 random bytes, raw or as 64 hex characters, readable by its owner only.
    /// Start chatd with it as --encryption-key-file afterwards
    #[arg(long, env = "CHATD_NEW_ENCRYPTION_KEY_FILE", value_name = "FILE")]
    pub new_key_file: PathBuf,
}

/// `chatd user ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Create a user account
    Add(UserAdd),
}

/// `chatd user add`: the account and where the database is.
#[derive(Debug, Clone, Args)]
pub struct UserAdd {
    /// The username (3-32 characters of a-z, 0-9, '_' and '.')
    pub name: String,
    /// Give the account the server admin role
    #[arg(long)]
    pub admin: bool,
    /// Read the password from standard input (its first line); required, so that the password
    /// never appears on the command line
    #[arg(long)]
    pub password_stdin: bool,
    /// Where the database is.
    #[command(flatten)]
    pub storage: Storage,
}

/// Where the data is: what every command that opens the database needs.
#[derive(Debug, Clone, Args)]
pub struct Storage {
    /// TOML configuration file (keys: the setting names with '_' for '-')
    #[arg(long, env = "CHATD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory: database, generated TLS certificate, token key
    #[arg(
        long,
        env = "CHATD_DATA_DIR",
        value_name = "DIR",
        default_value = "./chatd-data",
        value_parser = parse_data_dir
    )]
    pub data_dir: PathBuf,

    /// Cluster mode: MongoDB connection string (mongodb:// or mongodb+srv://). Prefer the
    /// variable when it holds a password: the command line is visible to other users
    #[arg(long, env = "CHATD_MONGO_URI", value_name = "URI", value_parser = parse_mongo_uri)]
    pub mongo_uri: Option<ServiceUri>,

    /// What an acknowledged write survives with the embedded SQLite store: process-crash
    /// (synchronous=NORMAL) or power-loss (synchronous=FULL, an fsync per group commit)
    #[arg(
        long,
        env = "CHATD_DURABILITY",
        value_enum,
        default_value = "process-crash"
    )]
    pub durability: Durability,

    /// Encrypt data at rest with the master key in FILE: the embedded SQLite database and the
    /// content of uploaded files (on disk or in GridFS). 32 random bytes, raw or as 64 hex
    /// characters, readable by its owner only (e.g. `head -c 32 /dev/urandom > FILE`). Keep it
    /// off the disk it protects. The key itself is never a flag
    #[arg(long, env = "CHATD_ENCRYPTION_KEY_FILE", value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,

    /// The master key used before the one of --encryption-key-file, during a rotation: file
    /// keys it wraps still open, and chatd re-wraps them with the new key in the background
    /// (then this flag can go)
    #[arg(long, env = "CHATD_PREVIOUS_ENCRYPTION_KEY_FILE", value_name = "FILE")]
    pub previous_encryption_key_file: Option<PathBuf>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Every setting of the server. Values are checked by their parsers; the rules between settings
/// by [`Config::from_settings`](super::Config::from_settings).
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Configuration file, data directory, database.
    #[command(flatten)]
    pub storage: Storage,

    /// QUIC (UDP) address to serve chat/1 on
    #[arg(
        long,
        env = "CHATD_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:4433",
        help_heading = "Network"
    )]
    pub listen: SocketAddr,

    /// HTTP address for /metrics, /healthz and /readyz
    #[arg(
        long,
        env = "CHATD_ADMIN_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:9464",
        help_heading = "Network"
    )]
    pub admin_listen: SocketAddr,

    /// TLS certificate chain (PEM); with --tls-key. Default: a self-signed certificate generated
    /// in the data directory
    #[arg(
        long,
        env = "CHATD_TLS_CERT",
        value_name = "FILE",
        help_heading = "Network"
    )]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM); with --tls-cert
    #[arg(
        long,
        env = "CHATD_TLS_KEY",
        value_name = "FILE",
        help_heading = "Network"
    )]
    pub tls_key: Option<PathBuf>,

    /// Most concurrent client connections
    #[arg(
        long,
        env = "CHATD_MAX_CONNECTIONS",
        value_name = "N",
        default_value = "20000",
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Network"
    )]
    pub max_connections: u32,

    /// Most connections that have not authenticated, from all addresses together; below
    /// --max-connections, so they can never take every place. Default: a quarter of
    /// --max-connections
    #[arg(
        long,
        env = "CHATD_MAX_UNAUTHENTICATED",
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Network"
    )]
    pub max_unauthenticated: Option<u32>,

    /// From this many handshakes in progress on, a new connection attempt from an address not
    /// yet validated is answered with a QUIC Retry first (spec 11.6): a flood of spoofed Initial
    /// packets then costs one stateless packet each, not a handshake. 0: every attempt
    #[arg(
        long,
        env = "CHATD_RETRY_ABOVE_HANDSHAKES",
        value_name = "N",
        default_value = "256",
        value_parser = clap::value_parser!(u32),
        help_heading = "Network"
    )]
    pub retry_above_handshakes: u32,

    /// Most connections that have not authenticated from one client IP address
    #[arg(
        long,
        env = "CHATD_MAX_UNAUTHENTICATED_PER_ADDRESS",
        value_name = "N",
        default_value = "64",
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Network"
    )]
    pub max_unauthenticated_per_address: u32,

    /// Most authenticated connections from one client IP address (generous: an office behind
    /// NAT shares one)
    #[arg(
        long,
        env = "CHATD_MAX_AUTHENTICATED_PER_ADDRESS",
        value_name = "N",
        default_value = "4096",
        value_parser = clap::value_parser!(u32).range(1..),
        help_heading = "Network"
    )]
    pub max_authenticated_per_address: u32,

    /// How long a connection may stay unauthenticated (after the handshake, or after a
    /// logout) before it is closed
    #[arg(
        long,
        env = "CHATD_AUTH_DEADLINE",
        value_name = "DURATION",
        value_parser = parse_auth_deadline,
        default_value = "5s",
        help_heading = "Network"
    )]
    pub auth_deadline: Duration,

    /// Request bytes a connection that has not authenticated may have buffered, in QUIC and in
    /// partly read requests each (a request being read takes a whole frame's worth, 8 KiB)
    #[arg(
        long,
        env = "CHATD_MAX_UNAUTHENTICATED_BYTES",
        value_name = "BYTES",
        default_value = "65536",
        value_parser = clap::value_parser!(u32).range(16_384..=16_777_216),
        help_heading = "Network"
    )]
    pub max_unauthenticated_bytes: u32,

    /// How long a connection may stay silent before it is closed (clients ping every 10s while
    /// they want it open); also how long a client whose network went away keeps its connection
    #[arg(
        long,
        env = "CHATD_IDLE_TIMEOUT",
        value_name = "DURATION",
        value_parser = super::parse_idle_timeout,
        default_value = "30s",
        help_heading = "Network"
    )]
    pub idle_timeout: Duration,

    /// Let connections move to a new client address (a phone changing networks) instead of
    /// ending them (protocol.md 2.4). Write --migration or --migration=false
    #[arg(
        long,
        env = "CHATD_MIGRATION",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        help_heading = "Network"
    )]
    pub migration: bool,

    /// Session tickets this node remembers, so returning clients resume without a full handshake
    /// and send their first requests in 0-RTT data (protocol.md 2.5); each is used once. 0 turns
    /// resumption and 0-RTT off
    #[arg(
        long,
        env = "CHATD_RESUMPTION_TICKETS",
        value_name = "COUNT",
        default_value = "65536",
        value_parser = clap::value_parser!(u32).range(0..=10_000_000),
        help_heading = "Network"
    )]
    pub resumption_tickets: u32,

    /// How long a session ticket can resume a connection, at most 24h (the lifetime TLS announces to clients)
    #[arg(
        long,
        env = "CHATD_TICKET_LIFETIME",
        value_name = "DURATION",
        value_parser = super::parse_ticket_lifetime,
        default_value = "24h",
        help_heading = "Network"
    )]
    pub ticket_lifetime: Duration,

    /// How long shutdown waits for connections to close
    #[arg(
        long,
        env = "CHATD_SHUTDOWN_GRACE",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "10s",
        help_heading = "Network"
    )]
    pub shutdown_grace: Duration,

    /// Reconnects per second a drain spreads its clients over: each connection's GoAway asks
    /// it to wait 500 ms plus a random share of (connections / rate) seconds, at most 2 minutes
    #[arg(
        long,
        env = "CHATD_DRAIN_RECONNECT_RATE",
        value_name = "PER_SECOND",
        value_parser = clap::value_parser!(u32).range(1..),
        default_value = "1000",
        help_heading = "Network"
    )]
    pub drain_reconnect_rate: u32,

    /// Access-token lifetime, at most 15m
    #[arg(
        long,
        env = "CHATD_ACCESS_TOKEN_TTL",
        value_name = "DURATION",
        value_parser = parse_access_token_ttl,
        default_value = "15m",
        help_heading = "Accounts"
    )]
    pub access_token_ttl: Duration,

    /// File holding the access-token signing key (hex), generated when missing. The key may
    /// instead be given in CHATD_TOKEN_KEY. Default: token.key in the data directory
    #[arg(
        long,
        env = "CHATD_TOKEN_KEY_FILE",
        value_name = "FILE",
        help_heading = "Accounts"
    )]
    pub token_key_file: Option<PathBuf>,

    /// Longest a single storage call may take before the request answers UNAVAILABLE
    #[arg(
        long,
        env = "CHATD_STORE_TIMEOUT",
        value_name = "DURATION",
        value_parser = parse_store_timeout,
        default_value = "1500ms",
        help_heading = "Storage"
    )]
    pub store_timeout: Duration,

    /// Log format
    #[arg(
        long,
        env = "CHATD_LOG_FORMAT",
        value_enum,
        default_value = "human",
        help_heading = "Logging"
    )]
    pub log_format: LogFormat,

    /// Log filter, e.g. "info" or "chatd=debug,quinn=warn"
    #[arg(
        long,
        env = "CHATD_LOG",
        value_name = "FILTER",
        default_value = "info",
        value_parser = parse_log_filter,
        help_heading = "Logging"
    )]
    pub log: String,

    /// Messages sent per user
    #[arg(
        long,
        env = "CHATD_LIMIT_SEND",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "20/s burst 60",
        help_heading = "Rate limits ([limits] table in the file)"
    )]
    pub limit_send: Rate,

    /// Requests per user
    #[arg(
        long,
        env = "CHATD_LIMIT_REQUEST",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "100/s burst 200",
        help_heading = "Rate limits ([limits] table in the file)"
    )]
    pub limit_request: Rate,

    /// Requests per client IP address
    #[arg(
        long,
        env = "CHATD_LIMIT_ADDRESS_REQUEST",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "200/s burst 400",
        help_heading = "Rate limits ([limits] table in the file)"
    )]
    pub limit_address_request: Rate,

    /// Login attempts per account from all addresses together: a ceiling well above
    /// --limit-login-account-address, so a guesser cannot lock the owner out
    #[arg(
        long,
        env = "CHATD_LIMIT_LOGIN_ACCOUNT",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "10/m burst 50",
        help_heading = "Rate limits ([limits] table in the file)"
    )]
    pub limit_login_account: Rate,

    /// Login attempts per account from one client IP address; also password changes per user
    #[arg(
        long,
        env = "CHATD_LIMIT_LOGIN_ACCOUNT_ADDRESS",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "1/m burst 5",
        help_heading = "Rate limits ([limits] table in the file)"
    )]
    pub limit_login_account_address: Rate,

    /// Login attempts per client IP address
    #[arg(
        long,
        env = "CHATD_LIMIT_LOGIN_ADDRESS",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "1/5s burst 20",
        help_heading = "Rate limits ([limits] table in the file)"
    )]
    pub limit_login_address: Rate,

    /// Typing notifications per user and chat
    #[arg(
        long,
        env = "CHATD_LIMIT_TYPING",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "1/2s burst 1",
        help_heading = "Rate limits ([limits] table in the file)"
    )]
    pub limit_typing: Rate,

    /// Uploads begun per user
    #[arg(
        long,
        env = "CHATD_LIMIT_UPLOAD",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "1/2s burst 30",
        help_heading = "Rate limits ([limits] table in the file)"
    )]
    pub limit_upload: Rate,

    /// Call signals (offers, answers, ICE candidates, screen-share changes) per call and user
    #[arg(
        long,
        env = "CHATD_LIMIT_CALL_SIGNAL",
        value_name = "RATE",
        value_parser = parse_rate,
        default_value = "50/s burst 200",
        help_heading = "Rate limits ([limits] table in the file)"
    )]
    pub limit_call_signal: Rate,

    /// Largest file a user may upload (announced as Limits.max_file_bytes)
    #[arg(
        long,
        env = "CHATD_MAX_FILE_SIZE",
        value_name = "SIZE",
        value_parser = parse_max_file_size,
        default_value = "100MiB",
        help_heading = "Files"
    )]
    pub max_file_size: u64,

    /// Bytes one user may keep in uploaded files and unfinished uploads
    #[arg(
        long,
        env = "CHATD_UPLOAD_QUOTA",
        value_name = "SIZE",
        value_parser = parse_size,
        default_value = "1GiB",
        help_heading = "Files"
    )]
    pub upload_quota: u64,

    /// Server-admin requests need two-factor login on (an admin without it can still log in and
    /// turn it on). Write --require-admin-two-factor or --require-admin-two-factor=false
    #[arg(
        long,
        env = "CHATD_REQUIRE_ADMIN_TWO_FACTOR",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        help_heading = "Accounts"
    )]
    pub require_admin_two_factor: bool,

    /// Most live sessions one user may hold: a login or registration beyond it signs out the
    /// user's least recently used session (protocol.md 11.3)
    #[arg(
        long,
        env = "CHATD_MAX_SESSIONS_PER_USER",
        value_name = "COUNT",
        default_value = "100",
        value_parser = clap::value_parser!(u32)
            .range(1..=i64::from(crate::auth::refresh::MAX_SESSIONS_PER_USER)),
        help_heading = "Accounts"
    )]
    pub max_sessions_per_user: u32,

    /// Address ranges always let in, whatever the access rules say (bans, allow-list mode):
    /// comma-separated addresses or CIDR ranges, so that an operator on these can always
    /// connect and undo a mistake; "none" for no exemption
    #[arg(
        long,
        env = "CHATD_ACCESS_EXEMPT",
        value_name = "RANGES",
        value_parser = parse_access_exempt,
        default_value = "127.0.0.0/8,::1/128",
        help_heading = "Access rules"
    )]
    pub access_exempt: AccessExempt,

    /// Cluster mode: how often a node reads the access rules again, so that a change made
    /// through another node takes effect here (one made through this node takes effect at once)
    #[arg(
        long,
        env = "CHATD_ACCESS_REFRESH",
        value_name = "DURATION",
        value_parser = parse_access_refresh,
        default_value = "2s",
        help_heading = "Access rules"
    )]
    pub access_refresh: Duration,

    /// Notifications kept per user: recording one more deletes the user's oldest
    #[arg(
        long,
        env = "CHATD_NOTIFICATIONS_KEPT",
        value_name = "COUNT",
        default_value = "500",
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        help_heading = "Notifications"
    )]
    pub notifications_kept: u32,

    /// How long an unfinished upload, or a file no message or avatar references, is kept
    #[arg(
        long,
        env = "CHATD_FILE_GC_GRACE",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "24h",
        help_heading = "Files"
    )]
    pub file_gc_grace: Duration,

    /// How often stale uploads and unreferenced files are looked for (at least 100ms)
    #[arg(
        long,
        env = "CHATD_FILE_GC_INTERVAL",
        value_name = "DURATION",
        value_parser = parse_file_gc_interval,
        default_value = "1h",
        help_heading = "Files"
    )]
    pub file_gc_interval: Duration,

    /// HTTPS (TCP) address serving files at signed, expiring URLs, with the server's TLS
    /// certificate. Off when unset
    #[arg(
        long,
        env = "CHATD_FILES_HTTPS_LISTEN",
        value_name = "ADDR",
        help_heading = "Files"
    )]
    pub files_https_listen: Option<SocketAddr>,

    /// The base URL clients reach the HTTPS file server at (e.g. a CDN in front of it), an
    /// https:// or http:// URL without query or fragment; needs --files-https-listen. Default:
    /// https://<files-https-listen>
    #[arg(
        long,
        env = "CHATD_FILES_PUBLIC_URL",
        value_name = "URL",
        value_parser = parse_files_public_url,
        help_heading = "Files"
    )]
    pub files_public_url: Option<String>,

    /// How long a signed download URL stays valid (1s to 7 days)
    #[arg(
        long,
        env = "CHATD_FILE_URL_TTL",
        value_name = "DURATION",
        value_parser = parse_file_url_ttl,
        default_value = "1h",
        help_heading = "Files"
    )]
    pub file_url_ttl: Duration,

    /// Cluster mode: Redis URL. Standalone: redis://host:port[/db] or redis+unix:///path; Redis
    /// Cluster: redis+cluster://host:port[,host:port...] or comma-separated redis:// seeds. Prefer
    /// the variable when it holds a password
    #[arg(
        long,
        env = "CHATD_REDIS_URL",
        value_name = "URL",
        value_parser = RedisUrl::parse,
        help_heading = "Cluster mode"
    )]
    pub redis_url: Option<RedisUrl>,

    /// Cluster mode: this node's id. Default: random per start
    #[arg(
        long,
        env = "CHATD_NODE_ID",
        value_name = "ID",
        value_parser = parse_node_id,
        help_heading = "Cluster mode"
    )]
    pub node_id: Option<String>,

    /// Cluster mode: redirect new connections (of clients that follow redirects) to the least
    /// loaded node when this one has more than its fair share. Write --steering or
    /// --steering=false
    #[arg(
        long,
        env = "CHATD_STEERING",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        help_heading = "Cluster mode"
    )]
    pub steering: bool,

    /// Cluster mode: the host:port clients use to reach this node (redirects point there).
    /// Default: the listen address
    #[arg(
        long,
        env = "CHATD_PUBLIC_ADDR",
        value_name = "HOST:PORT",
        value_parser = parse_public_addr,
        help_heading = "Cluster mode"
    )]
    pub public_addr: Option<String>,

    /// Cluster mode: how long a node counts as alive after its last heartbeat
    #[arg(
        long,
        env = "CHATD_PRESENCE_TTL",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "15s",
        help_heading = "Cluster mode"
    )]
    pub presence_ttl: Duration,

    /// Cluster mode: how often a node heartbeats and looks for dead nodes (at most half the
    /// presence TTL)
    #[arg(
        long,
        env = "CHATD_HEARTBEAT_INTERVAL",
        value_name = "DURATION",
        value_parser = parse_heartbeat,
        default_value = "5s",
        help_heading = "Cluster mode"
    )]
    pub heartbeat_interval: Duration,

    /// Key rotation.
    #[command(flatten)]
    pub keys: super::KeyRotation,

    /// Calls: ICE servers and TURN.
    #[command(flatten)]
    pub calls: super::CallSettings,

    /// Email and webhook delivery.
    #[command(flatten)]
    pub delivery: super::Delivery,
}
