//! The validated configuration of one run: command-line flags over the `--config` TOML file over
//! the defaults, checked into a [`RunConfig`] whose every field is usable as is.
//!
//! Layout: `cli` holds the clap definitions, `file` the TOML layer, this file the merge, the
//! checks and the resulting types.

mod cli;
mod file;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chatproto::tls::Verification;

pub use cli::{CHATD_LIMITS_HELP, Cli, Command, RunArgs, TransferArgs};
use file::FileConfig;

use crate::error::LoadgenError;

/// Digits of the user index in generated usernames (`PREFIX000042`).
pub const USER_INDEX_DIGITS: usize = 6;
/// The longest username chat/1 accepts.
const MAX_USERNAME_CHARS: usize = 32;
/// Most users one run may drive (the index must fit [`USER_INDEX_DIGITS`]).
pub const MAX_USERS: u32 = 999_999;
/// The smallest payload: room for the header that identifies each message.
pub const MIN_PAYLOAD: usize = 100;
/// The largest payload: chat/1's default `max_text_chars` (the text is ASCII).
pub const MAX_PAYLOAD: usize = 4096;
/// Most scheduled operations per run: loadgen keeps a few bytes of state per message.
pub const MAX_OPERATIONS: f64 = 20_000_000.0;

/// What a run exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Users in rooms of `room_size`; every message fans out to the other members.
    RoomFanout,
    /// Users in pairs, each pair in a private chat: one recipient per message.
    Private,
    /// Open connections at `connect_rate` (handshake, Hello, authenticate) and measure how fast.
    ConnectStorm,
    /// Hold authenticated connections without traffic; measure server memory per connection.
    Idle,
    /// room-fanout messages mixed with `get_history` reads.
    History,
    /// room-fanout messages mixed with `search_messages` reads.
    Search,
}

impl Scenario {
    /// Every scenario, in the order the help lists them.
    pub const ALL: [Scenario; 6] = [
        Scenario::RoomFanout,
        Scenario::Private,
        Scenario::ConnectStorm,
        Scenario::Idle,
        Scenario::History,
        Scenario::Search,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::RoomFanout => "room-fanout",
            Scenario::Private => "private",
            Scenario::ConnectStorm => "connect-storm",
            Scenario::Idle => "idle",
            Scenario::History => "history",
            Scenario::Search => "search",
        }
    }

    /// True for the scenarios that send messages on the open-loop schedule.
    pub fn sends_messages(self) -> bool {
        matches!(
            self,
            Scenario::RoomFanout | Scenario::Private | Scenario::History | Scenario::Search
        )
    }

    /// True for the scenarios that put users into rooms of `room_size`.
    pub fn uses_rooms(self) -> bool {
        matches!(
            self,
            Scenario::RoomFanout | Scenario::History | Scenario::Search
        )
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown scenario {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Connections per shared UDP socket by default: enough that one socket's reads carry many
/// connections' packets, few enough that one endpoint's driver task is not the bottleneck.
const CONNECTIONS_PER_ENDPOINT: u64 = 128;

/// A validated run configuration.
#[derive(Clone)]
pub struct RunConfig {
    /// chatd addresses (`host:port`), connections spread round-robin.
    pub servers: Vec<String>,
    /// Certificate verification.
    pub tls: Verification,
    /// TLS server name override (with a CA file and IP addresses).
    pub server_name: Option<String>,
    /// What the run exercises.
    pub scenario: Scenario,
    /// Number of users.
    pub users: u32,
    /// Connections per user.
    pub connections_per_user: u32,
    /// Members per room (room scenarios; 2 for private).
    pub room_size: u32,
    /// Offered operations per second, all senders together.
    pub rate: f64,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured load before the measurement.
    pub warmup: Duration,
    /// Wait for outstanding deliveries after the schedule ends.
    pub drain: Duration,
    /// Message text size in bytes.
    pub payload: usize,
    /// New connections per second.
    pub connect_rate: f64,
    /// Percentage of reads in the history and search mixes.
    pub read_percent: u8,
    /// Username prefix.
    pub user_prefix: String,
    /// Password of every user.
    pub password: String,
    /// Requests without an answer after this long fail as timeouts.
    pub request_timeout: Duration,
    /// chatd `/metrics` URLs.
    pub metrics_urls: Vec<String>,
    /// Directory for SVG plots.
    pub plot_dir: Option<PathBuf>,
    /// Print JSON instead of the table.
    pub json: bool,
    /// Runtime worker threads.
    pub threads: usize,
    /// UDP sockets (QUIC endpoints) the connections share.
    pub endpoints: u32,
    /// Whether connections send their first requests in 0-RTT data when a session ticket
    /// allows (the SDK's default).
    pub zero_rtt: bool,
}

impl fmt::Debug for RunConfig {
    // The password stays out of logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunConfig")
            .field("servers", &self.servers)
            .field("tls", &self.tls)
            .field("scenario", &self.scenario)
            .field("users", &self.users)
            .field("connections_per_user", &self.connections_per_user)
            .field("room_size", &self.room_size)
            .field("rate", &self.rate)
            .field("duration", &self.duration)
            .field("warmup", &self.warmup)
            .field("payload", &self.payload)
            .field("connect_rate", &self.connect_rate)
            .field("zero_rtt", &self.zero_rtt)
            .finish_non_exhaustive()
    }
}

impl RunConfig {
    /// Merges `args` over the `--config` file (if any) over the defaults and validates.
    pub fn load(args: RunArgs) -> Result<RunConfig, LoadgenError> {
        let file = match &args.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        Self::merge(args, file)
    }

    /// Parses the flags of `loadgen run` (without the program and subcommand names), as the
    /// command line would, then loads like [`RunConfig::load`]. For programs that drive
    /// loadgen as a library.
    pub fn from_flags<I, T>(flags: I) -> Result<RunConfig, LoadgenError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser as _;
        let argv = ["loadgen".into(), "run".into()]
            .into_iter()
            .chain(flags.into_iter().map(Into::into));
        match Cli::try_parse_from(argv) {
            Ok(Cli {
                command: Some(Command::Run(args)),
                ..
            }) => Self::load(*args),
            // `run` is always the subcommand parsed here.
            Ok(_) => Err(LoadgenError::Usage("not a run command line".into())),
            Err(e) => Err(LoadgenError::Usage(e.to_string())),
        }
    }

    /// Merges `args` over the TOML `text` (as if it were the `--config` file) and validates.
    pub fn load_with_file_text(args: RunArgs, text: &str) -> Result<RunConfig, LoadgenError> {
        let file = FileConfig::parse(text).map_err(|message| LoadgenError::ConfigFile {
            path: PathBuf::from("<text>"),
            message,
        })?;
        Self::merge(args, file)
    }

    fn merge(args: RunArgs, file: FileConfig) -> Result<RunConfig, LoadgenError> {
        let servers = if args.servers.is_empty() {
            file.server.map(|s| s.into_vec()).unwrap_or_default()
        } else {
            args.servers
        };
        let tls = tls_mode(
            args.tls.pin.or(file.pin),
            args.tls.ca.or(file.ca),
            args.tls.insecure || file.insecure.unwrap_or(false),
        )?;
        let scenario = match args.scenario.or(file.scenario) {
            Some(name) => name
                .parse::<Scenario>()
                .map_err(|m| LoadgenError::invalid("scenario", m))?,
            None => Scenario::RoomFanout,
        };
        let metrics_urls = if args.metrics_urls.is_empty() {
            file.metrics_url.map(|s| s.into_vec()).unwrap_or_default()
        } else {
            args.metrics_urls
        };
        let mut config = RunConfig {
            servers,
            tls,
            server_name: args.tls.server_name.or(file.server_name),
            scenario,
            users: args.users.or(file.users).unwrap_or(100),
            connections_per_user: args
                .connections_per_user
                .or(file.connections_per_user)
                .unwrap_or(1),
            room_size: match scenario {
                Scenario::Private => 2,
                _ => args.room_size.or(file.room_size).unwrap_or(10),
            },
            rate: args.rate.or(file.rate).unwrap_or(100.0),
            duration: duration_setting("duration", args.duration.or(file.duration), "30s")?,
            warmup: duration_setting("warmup", args.warmup.or(file.warmup), "5s")?,
            drain: duration_setting("drain", args.drain.or(file.drain), "5s")?,
            payload: args.payload.or(file.payload).unwrap_or(MIN_PAYLOAD),
            connect_rate: args.connect_rate.or(file.connect_rate).unwrap_or(100.0),
            read_percent: args.read_percent.or(file.read_percent).unwrap_or(20),
            user_prefix: args
                .user_prefix
                .or(file.user_prefix)
                .unwrap_or_else(|| "lg_".into()),
            password: args
                .password
                .or(file.password)
                .unwrap_or_else(|| "loadgen-password".into()),
            request_timeout: duration_setting(
                "request-timeout",
                args.request_timeout.or(file.request_timeout),
                "10s",
            )?,
            metrics_urls,
            plot_dir: args.plot.or(file.plot),
            json: args.json || file.json.unwrap_or(false),
            threads: match args.threads.or(file.threads) {
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(2, |n| n.get()),
            },
            endpoints: args.endpoints.or(file.endpoints).unwrap_or(0),
            zero_rtt: !(args.no_zero_rtt || file.no_zero_rtt.unwrap_or(false)),
        };
        if config.endpoints == 0 {
            config.endpoints = config
                .connections()
                .div_ceil(CONNECTIONS_PER_ENDPOINT)
                .clamp(1, 32) as u32;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every setting and the combinations.
    fn validate(&self) -> Result<(), LoadgenError> {
        use LoadgenError as E;
        if self.servers.is_empty() {
            return Err(E::invalid(
                "server",
                "at least one --server HOST:PORT is needed",
            ));
        }
        for server in &self.servers {
            check_address(server).map_err(|m| E::invalid("server", m))?;
        }
        let needs_two = self.scenario.sends_messages();
        if self.users == 0 || (needs_two && self.users < 2) {
            return Err(E::invalid(
                "users",
                format!("{} needs at least 2 users", self.scenario),
            ));
        }
        if self.users > MAX_USERS {
            return Err(E::invalid("users", format!("at most {MAX_USERS}")));
        }
        if !(1..=1000).contains(&self.connections_per_user) {
            return Err(E::invalid("connections-per-user", "must be 1 to 1000"));
        }
        if self.scenario.uses_rooms() {
            if self.room_size < 2 {
                return Err(E::invalid("room-size", "rooms need at least 2 members"));
            }
            if self.room_size > 10_000 {
                return Err(E::invalid(
                    "room-size",
                    "at most 10000 (chat/1's default max_chat_members)",
                ));
            }
            if !self.users.is_multiple_of(self.room_size) {
                return Err(E::invalid(
                    "room-size",
                    format!(
                        "must divide --users ({} users do not split into rooms of {})",
                        self.users, self.room_size
                    ),
                ));
            }
        }
        if self.scenario == Scenario::Private && !self.users.is_multiple_of(2) {
            return Err(E::invalid(
                "users",
                "private chats pair users: use an even number",
            ));
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(E::invalid("rate", "must be a positive number"));
        }
        if self.duration.is_zero() {
            return Err(E::invalid("duration", "must be longer than 0"));
        }
        let operations = self.rate * (self.warmup + self.duration).as_secs_f64();
        if self.scenario.sends_messages() && operations > MAX_OPERATIONS {
            return Err(E::invalid(
                "rate",
                format!(
                    "rate x (warmup + duration) = {operations:.0} operations, more than {MAX_OPERATIONS:.0}"
                ),
            ));
        }
        if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&self.payload) {
            return Err(E::invalid(
                "payload",
                format!("must be {MIN_PAYLOAD} to {MAX_PAYLOAD} bytes"),
            ));
        }
        if !(self.connect_rate.is_finite() && self.connect_rate > 0.0) {
            return Err(E::invalid("connect-rate", "must be a positive number"));
        }
        if self.read_percent > 100 {
            return Err(E::invalid("read-percent", "must be 0 to 100"));
        }
        check_prefix(&self.user_prefix).map_err(|m| E::invalid("user-prefix", m))?;
        if !(8..=1024).contains(&self.password.len()) {
            return Err(E::invalid("password", "must be 8 to 1024 bytes"));
        }
        if self.request_timeout.is_zero() {
            return Err(E::invalid("request-timeout", "must be longer than 0"));
        }
        for url in &self.metrics_urls {
            crate::scrape::MetricsUrl::parse(url).map_err(|m| E::invalid("metrics-url", m))?;
        }
        if self.threads == 0 || self.threads > 1024 {
            return Err(E::invalid("threads", "must be 1 to 1024"));
        }
        if self.endpoints > 1024 {
            return Err(E::invalid("endpoints", "must be 1 to 1024"));
        }
        Ok(())
    }

    /// Total connections of the run.
    pub fn connections(&self) -> u64 {
        u64::from(self.users) * u64::from(self.connections_per_user)
    }

    /// The username of user `index`.
    pub fn username(&self, index: u32) -> String {
        format!(
            "{}{index:0width$}",
            self.user_prefix,
            width = USER_INDEX_DIGITS
        )
    }
}

/// The certificate verification from the three mutually exclusive settings (flags or file).
pub(crate) fn tls_mode(
    pin: Option<String>,
    ca: Option<PathBuf>,
    insecure: bool,
) -> Result<Verification, LoadgenError> {
    chat_cli::server::verification(pin.as_deref(), ca.as_deref(), insecure)
        .map_err(|e| LoadgenError::invalid("pin", e.to_string()))?
        .ok_or_else(|| {
            LoadgenError::invalid(
                "pin",
                "say how to verify the server: --pin SHA256, --ca FILE or --insecure",
            )
        })
}

fn check_address(address: &str) -> Result<(), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("{address:?} is not HOST:PORT"))?;
    port.parse::<u16>()
        .map_err(|_| format!("{address:?} has an invalid port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{address:?} has no host"));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    let longest = MAX_USERNAME_CHARS - USER_INDEX_DIGITS;
    if prefix.is_empty() || prefix.len() > longest {
        return Err(format!("must be 1 to {longest} characters"));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '.'))
    {
        return Err(format!(
            "{c:?} is not allowed in usernames (use a-z, 0-9, '_' and '.')"
        ));
    }
    Ok(())
}

fn duration_setting(
    setting: &'static str,
    value: Option<String>,
    default: &str,
) -> Result<Duration, LoadgenError> {
    let text = value.as_deref().unwrap_or(default);
    parse_duration(text).map_err(|m| LoadgenError::invalid(setting, m))
}

/// Parses a duration (`chat_cli::duration`: `250ms`, `1.5s`, `2m`, `1h`) of at most a week, the
/// longest any loadgen setting takes.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed = chat_cli::duration::parse(text)?;
    if parsed > Duration::from_secs(7 * 86_400) {
        return Err(format!("{:?} is too long (at most a week)", text.trim()));
    }
    Ok(parsed)
}
