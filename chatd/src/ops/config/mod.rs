//! The runtime configuration: command-line flags, `CHATD_*` environment variables and an
//! optional TOML file, merged with precedence flag > environment > file > default, then
//! validated into a [`Config`].
//!
//! How the layers meet: every setting is a clap argument whose `env` attribute names its
//! variable. [`Config::load`] strips those attributes (clap would read the process environment
//! directly) and instead turns each variable found through the injected lookup into a
//! `--flag=value` placed before the real arguments; with `args_override_self`, a real flag
//! given later wins. A clap default therefore means "given nowhere", and only then does the
//! file's value (or else the default) apply. The access-token key is the one secret: it is
//! never a flag (argv is visible to other users), only `CHATD_TOKEN_KEY` or the key file.
//!
//! Layout: `cli` holds the clap definitions (settings, subcommands), `file` the TOML layer,
//! this file the merge, validation and the resulting [`Config`].

mod cli;
mod file;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _};

pub use cli::{Cli, CliCommand, LogFormat, Settings, UserCommand};
use file::FileConfig;

use crate::auth::token::{MAX_ACCESS_TTL, TokenKey};
use crate::limits::keyed::{LimitRates, Rate};

/// The environment variable that may carry the access-token key (hex, at least 32 bytes).
pub const TOKEN_KEY_ENV: &str = "CHATD_TOKEN_KEY";

/// The validated configuration of one chatd process.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to do: serve (the default) or a maintenance command.
    pub command: CliCommand,
    /// The TOML file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// QUIC listen address.
    pub listen: SocketAddr,
    /// Admin HTTP listen address (metrics, health).
    pub admin_listen: SocketAddr,
    /// Operator-provided certificate and key; `None` uses the generated pair.
    pub tls: Option<TlsPaths>,
    /// Log output format.
    pub log_format: LogFormat,
    /// Log filter in `tracing_subscriber::EnvFilter` syntax.
    pub log_filter: String,
    /// This node's id (random per start unless configured).
    pub node_id: String,
    /// Most concurrent client connections.
    pub max_connections: u32,
    /// Access-token lifetime, at most 15 minutes.
    pub access_token_ttl: Duration,
    /// Where the token key is kept.
    pub token_key_file: PathBuf,
    /// The token key from `CHATD_TOKEN_KEY`, overriding the file.
    pub token_key: Option<TokenKey>,
    /// How long shutdown waits for connections to drain.
    pub shutdown_grace: Duration,
    /// Rate limits.
    pub limits: LimitRates,
    /// Cluster mode: MongoDB connection string.
    pub mongo_uri: Option<ServiceUri>,
    /// Cluster mode: Redis URL (validated: see [`crate::cluster::redis::RedisTarget::parse`]).
    pub redis_url: Option<ServiceUri>,
    /// Cluster mode: steer new connections to less loaded nodes.
    pub steering: bool,
    /// The `host:port` clients use to reach this node; `None`: the bound listen address.
    pub public_addr: Option<String>,
    /// Cluster mode: how long a node counts as alive after its last heartbeat.
    pub presence_ttl: Duration,
    /// Cluster mode: heartbeat period.
    pub heartbeat_interval: Duration,
    /// Deadline of one storage call.
    pub store_timeout: Duration,
    /// File limits and collector timing.
    pub files: crate::files::FileSettings,
    /// The HTTPS file server, when on.
    pub files_https: Option<FilesHttps>,
    /// How long a signed download URL stays valid.
    pub file_url_ttl: Duration,
}

/// The HTTPS file server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesHttps {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The base of the URLs it signs (`https://...`, no trailing slash); `None`: the bound
    /// address, `https://<ip>:<port>`.
    pub public_url: Option<String>,
}

/// Paths of an operator-provided TLS certificate chain and private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A connection URI for a backing service. `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceUri(String);

impl ServiceUri {
    /// The full URI, password included, for the client library.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI with any password replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        Self::redact_str(&self.0)
    }

    /// `uri` with any password replaced by `***` (the rule of [`redacted`](Self::redacted)).
    pub fn redact_str(uri: &str) -> String {
        let Some((scheme, rest)) = uri.split_once("://") else {
            return uri.to_owned();
        };
        // Userinfo ends at the last '@' before the path.
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                let masked = if userinfo.contains(':') {
                    format!("{user}:***")
                } else {
                    user.to_owned()
                };
                format!("{scheme}://{masked}{}", &rest[at..])
            }
            None => uri.to_owned(),
        }
    }
}

impl fmt::Debug for ServiceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceUri({:?})", self.redacted())
    }
}

impl fmt::Display for ServiceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Why the configuration could not be loaded. Each variant names the offending setting,
/// variable or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad command line, or `--help`/`--version`: call [`clap::Error::exit`] to print it and
    /// exit with clap's status (0 for help and version).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// An environment variable has an invalid value.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown or invalid setting.
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A setting's merged value is invalid.
    #[error("setting {setting}: {message}")]
    Invalid {
        /// The setting, as its config-file key.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

/// The clap command as [`Config::load`] parses it: environment attributes removed (their
/// names appended to the help text instead) and repeated flags overriding earlier ones.
pub fn command() -> clap::Command {
    Cli::command().args_override_self(true).mut_args(|arg| {
        match arg.get_env().map(|e| e.to_string_lossy().into_owned()) {
            Some(var) => {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                arg.env(None).help(format!("{help} [env: {var}]"))
            }
            None => arg,
        }
    })
}

/// `(flag, variable)` for every setting that has an environment variable.
fn env_bindings() -> Vec<(String, String)> {
    Cli::command()
        .get_arguments()
        .filter_map(|arg| {
            let var = arg.get_env()?.to_string_lossy().into_owned();
            let long = arg.get_long()?.to_owned();
            Some((long, var))
        })
        .collect()
}

/// The first line of a clap error without its "error: " prefix.
fn clap_message(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// Whether the user set `id` by flag or environment (both arrive as command-line values).
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(matches.value_source(id), Some(ValueSource::CommandLine))
}

impl Config {
    /// Loads the configuration from `args` (program name first, as `std::env::args_os()`)
    /// and the environment lookup `env` (e.g. `|k| std::env::var(k).ok()`). Empty variables
    /// count as unset.
    pub fn load(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut args = args.into_iter();
        let program = args.next().unwrap_or_else(|| OsString::from("chatd"));
        let cmd = command();

        // The environment layer, each value checked alone so an error names its variable.
        let mut env_args = Vec::new();
        for (long, var) in env_bindings() {
            let Some(value) = env(&var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let flag = OsString::from(format!("--{long}={value}"));
            cmd.clone()
                .try_get_matches_from([program.clone(), flag.clone()])
                .map_err(|e| ConfigError::Env {
                    var: var.clone(),
                    message: clap_message(&e),
                })?;
            env_args.push(flag);
        }
        let token_key = match env(TOKEN_KEY_ENV).filter(|v| !v.is_empty()) {
            Some(hex) => Some(TokenKey::from_hex(&hex).map_err(|e| ConfigError::Env {
                var: TOKEN_KEY_ENV.to_owned(),
                message: e.to_string(),
            })?),
            None => None,
        };

        let all_args = std::iter::once(program).chain(env_args).chain(args);
        let matches = cmd.try_get_matches_from(all_args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let file = match &cli.settings.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        Config::merge(cli, &matches, file, token_key)
    }

    fn merge(
        cli: Cli,
        matches: &ArgMatches,
        file: FileConfig,
        token_key: Option<TokenKey>,
    ) -> Result<Config, ConfigError> {
        let s = cli.settings;
        // For settings with a default: the flag/env value when given, else the file's, else
        // the default. Settings without a default are `Option`s: flag/env, else file.
        macro_rules! layered {
            ($id:literal, $cli:expr, $file:expr) => {
                if given(matches, $id) {
                    $cli
                } else {
                    $file.unwrap_or($cli)
                }
            };
        }
        let data_dir = layered!("data_dir", s.data_dir, file.data_dir);
        let listen = layered!("listen", s.listen, file.listen);
        let admin_listen = layered!("admin_listen", s.admin_listen, file.admin_listen);
        let log_format = layered!("log_format", s.log_format, file.log_format);
        let log_filter = layered!("log", s.log, file.log);
        let max_connections = layered!("max_connections", s.max_connections, file.max_connections);
        let access_token_ttl = layered!(
            "access_token_ttl",
            s.access_token_ttl,
            file.access_token_ttl
        );
        let shutdown_grace = layered!("shutdown_grace", s.shutdown_grace, file.shutdown_grace);
        let limits = LimitRates {
            send: layered!("limit_send", s.limit_send, file.limits.send),
            request: layered!("limit_request", s.limit_request, file.limits.request),
            address_request: layered!(
                "limit_address_request",
                s.limit_address_request,
                file.limits.address_request
            ),
            login_account: layered!(
                "limit_login_account",
                s.limit_login_account,
                file.limits.login_account
            ),
            login_address: layered!(
                "limit_login_address",
                s.limit_login_address,
                file.limits.login_address
            ),
            typing: layered!("limit_typing", s.limit_typing, file.limits.typing),
            upload: layered!("limit_upload", s.limit_upload, file.limits.upload),
        };
        let files = crate::files::FileSettings {
            max_file_bytes: layered!("max_file_size", s.max_file_size, file.max_file_size),
            upload_quota_bytes: layered!("upload_quota", s.upload_quota, file.upload_quota),
            gc_grace: layered!("file_gc_grace", s.file_gc_grace, file.file_gc_grace),
            gc_interval: layered!(
                "file_gc_interval",
                s.file_gc_interval,
                file.file_gc_interval
            ),
        };
        let file_url_ttl = layered!("file_url_ttl", s.file_url_ttl, file.file_url_ttl);
        let files_https_listen = s.files_https_listen.or(file.files_https_listen);
        let files_public_url = s.files_public_url.or(file.files_public_url);
        let tls_cert = s.tls_cert.or(file.tls_cert);
        let tls_key = s.tls_key.or(file.tls_key);
        let node_id = s.node_id.or(file.node_id);
        let token_key_file = s.token_key_file.or(file.token_key_file);
        let mongo_uri = s.mongo_uri.or(file.mongo_uri);
        let redis_url = s.redis_url.or(file.redis_url);
        let steering = layered!("steering", s.steering, file.steering);
        let public_addr = s.public_addr.or(file.public_addr);
        let presence_ttl = layered!("presence_ttl", s.presence_ttl, file.presence_ttl);
        let heartbeat_interval = layered!(
            "heartbeat_interval",
            s.heartbeat_interval,
            file.heartbeat_interval
        );
        let store_timeout = layered!("store_timeout", s.store_timeout, file.store_timeout);

        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsPaths { cert, key }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "tls_key",
                    "tls_cert is set, so tls_key is required",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "tls_cert",
                    "tls_key is set, so tls_cert is required",
                ));
            }
        };
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter) {
            return Err(invalid(
                "log",
                format!("invalid filter {log_filter:?}: {e}"),
            ));
        }
        let node_id = match node_id {
            Some(id) => validate_node_id(id)?,
            None => random_node_id(),
        };
        if max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        if access_token_ttl < Duration::from_secs(1) || access_token_ttl > MAX_ACCESS_TTL {
            return Err(invalid(
                "access_token_ttl",
                "must be between 1s and 15m (access tokens are short-lived by design)",
            ));
        }
        let token_key_file = token_key_file.unwrap_or_else(|| data_dir.join("token.key"));
        let mongo_uri = mongo_uri
            .map(|u| validate_uri("mongo_uri", u, &["mongodb", "mongodb+srv"]))
            .transpose()?;
        let redis_url = redis_url
            .map(|u| match crate::cluster::redis::RedisTarget::parse(&u) {
                Ok(_) => Ok(ServiceUri(u)),
                Err(e) => Err(invalid("redis_url", e.to_string())),
            })
            .transpose()?;
        let public_addr = public_addr.map(validate_public_addr).transpose()?;
        if heartbeat_interval < Duration::from_millis(100) {
            return Err(invalid("heartbeat_interval", "must be at least 100ms"));
        }
        if presence_ttl < heartbeat_interval * 2 {
            return Err(invalid(
                "presence_ttl",
                "must be at least twice the heartbeat interval, or live nodes would expire",
            ));
        }
        if store_timeout < Duration::from_millis(100) || store_timeout > Duration::from_secs(60) {
            return Err(invalid("store_timeout", "must be between 100ms and 60s"));
        }
        if files.max_file_bytes == 0 {
            return Err(invalid("max_file_size", "must be at least 1 byte"));
        }
        if files.gc_interval < Duration::from_millis(100) {
            return Err(invalid("file_gc_interval", "must be at least 100ms"));
        }
        if file_url_ttl < Duration::from_secs(1) || file_url_ttl > Duration::from_secs(7 * 86400) {
            return Err(invalid("file_url_ttl", "must be between 1s and 7 days"));
        }
        let files_https = match (files_https_listen, files_public_url) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid(
                    "files_public_url",
                    "needs files_https_listen (the server the url leads to)",
                ));
            }
            (Some(listen), url) => {
                let ok = |u: &str| {
                    (u.starts_with("https://") || u.starts_with("http://"))
                        && !u.contains(['?', '#'])
                        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
                };
                if url.as_deref().is_some_and(|u| !ok(u)) {
                    return Err(invalid(
                        "files_public_url",
                        "must be an https:// (or http://) url without query or fragment",
                    ));
                }
                Some(FilesHttps {
                    listen,
                    public_url: url.map(|u| u.trim_end_matches('/').to_owned()),
                })
            }
        };

        Ok(Config {
            command: cli.command.unwrap_or(CliCommand::Serve),
            config_file: s.config,
            data_dir,
            listen,
            admin_listen,
            tls,
            log_format,
            log_filter,
            node_id,
            max_connections,
            access_token_ttl,
            token_key_file,
            token_key,
            shutdown_grace,
            limits,
            mongo_uri,
            redis_url,
            steering,
            public_addr,
            presence_ttl,
            heartbeat_interval,
            store_timeout,
            files,
            files_https,
            file_url_ttl,
        })
    }
}

/// A `host:port` clients can connect to: a DNS name, an IPv4 address or a bracketed IPv6 one,
/// and a port from 1.
fn validate_public_addr(addr: String) -> Result<String, ConfigError> {
    let bad = |why: &str| invalid("public_addr", format!("{addr:?} {why}"));
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(bad("must be host:port"));
    };
    if !matches!(port.parse::<u16>(), Ok(p) if p > 0) {
        return Err(bad("has no valid port"));
    }
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if !host_ok {
        return Err(bad("has no valid host (a name, an IPv4 address or [IPv6])"));
    }
    Ok(addr)
}

fn validate_node_id(id: String) -> Result<String, ConfigError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(invalid(
            "node_id",
            "must be 1-64 characters of letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(id)
}

fn random_node_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Checks the shape `scheme://rest` with an allowed scheme, a non-empty rest and no
/// whitespace or control characters. The client libraries do the full parse when connecting.
fn validate_uri(
    setting: &'static str,
    uri: String,
    schemes: &[&str],
) -> Result<ServiceUri, ConfigError> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(invalid(setting, "must be a uri of the form scheme://..."));
    };
    if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
        return Err(invalid(
            setting,
            format!(
                "unsupported scheme {scheme:?}; expected one of {}",
                schemes.join(", ")
            ),
        ));
    }
    if rest.is_empty() || rest.starts_with('/') && scheme.starts_with("mongo") {
        return Err(invalid(setting, "has no host"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(setting, "must not contain whitespace"));
    }
    Ok(ServiceUri(uri))
}

/// Parses a [`Rate`] for clap.
fn parse_rate(s: &str) -> Result<Rate, String> {
    s.parse::<Rate>().map_err(|e| e.to_string())
}

/// Parses a size in bytes: a number with an optional unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`, or
/// the decimal `KB`, `MB`, `GB`, `TB`), e.g. `100MiB`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (write e.g. 100MiB)"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration for clap.
fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::limits::keyed::parse_duration(s).map_err(|e| e.to_string())
}
