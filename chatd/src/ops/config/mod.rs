//! The runtime configuration: command-line flags, `CHATD_*` environment variables and an
//! optional TOML file, with precedence flag > environment > file > default.
//!
//! Each setting is declared once, as a clap argument in `cli` (flag, variable, default, the
//! parser that checks the value, help); the environment and the file reach it through the same
//! parser ([`chat_cli::layers`]), and the file's key is the field name (`data_dir`), rate limits
//! in a `[limits]` table (`send` for `--limit-send`). What the parsers produce is kept: the
//! Redis URL as the [`RedisTarget`] the cluster code connects to, the MongoDB URI as a
//! [`ServiceUri`]. [`Config::from_settings`] adds the rules between settings and the derived
//! values (TLS pair, node id, token key file).
//!
//! Secrets are never flags (argv is visible to other users): the access-token key comes from
//! `CHATD_TOKEN_KEY` or the key file, the TURN secret from `CHATD_TURN_SECRET` or its file, the
//! SMTP password and the webhook secret likewise (`delivery`), the database encryption key from
//! the file `--encryption-key-file` names.
//!
//! Layout: `cli` holds the clap definitions, `delivery` those of email and webhooks, `uris` the
//! service URIs, this file the loading,
//! the per-value parsers and the validated [`Config`].

mod calls;
mod cli;
mod delivery;
mod keys;
#[cfg(test)]
mod tests;
mod uris;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chat_cli::Generate;
use chat_cli::layers::{self, LayerError, Layers};
use clap::{CommandFactory as _, FromArgMatches as _};

pub use calls::{CallSettings, IceUrls};
pub use cli::{
    Cli, CliCommand, DbCommand, DbEncrypt, DbRekey, FilesCommand, FilesEncrypt, LogFormat,
    Settings, Storage, UserAdd, UserCommand,
};
pub use delivery::{
    Delivery, EmailSettings, OutboxSettings, SMTP_PASSWORD_ENV, SmtpTls, SmtpTlsArg,
    WEBHOOK_SECRET_ENV, WebhookEndpoint, WebhookSettings, WebhookUrls, kind_name, webhook_kind,
};
pub use keys::{KeyRotation, KeyRotationInterval};
pub use uris::{RedisTarget, RedisUrl, RedisUrlError, ServiceUri};

use crate::auth::token::{MAX_ACCESS_TTL, TokenKey};
use crate::calls::turn::{TurnSecret, is_turn};
use crate::files::FileSettings;
use crate::rate::{LimitRates, Rate};

/// The environment variable that may carry the access-token key (hex, at least 32 bytes).
pub const TOKEN_KEY_ENV: &str = "CHATD_TOKEN_KEY";

/// The environment variable that may carry the TURN servers' shared secret.
pub const TURN_SECRET_ENV: &str = "CHATD_TURN_SECRET";

/// The ranges of `--access-exempt`, each checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessExempt(Vec<crate::access::cidr::Cidr>);

impl AccessExempt {
    /// The ranges.
    pub(crate) fn ranges(&self) -> &[crate::access::cidr::Cidr] {
        &self.0
    }
}

impl std::fmt::Display for AccessExempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let ranges: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&ranges.join(","))
    }
}

/// What one run of the `chatd` binary was asked to do.
#[derive(Debug)]
pub enum Invocation {
    /// Run the server.
    Serve(Box<Config>),
    /// `chatd user add`.
    UserAdd(UserAdd),
    /// `chatd db encrypt`.
    DbEncrypt(DbEncrypt),
    /// `chatd db rekey`.
    DbRekey(DbRekey),
    /// `chatd files encrypt`.
    FilesEncrypt(FilesEncrypt),
    /// `--generate`: print the man page or a completion script.
    Generate(Generate),
}

/// The validated configuration of a serving chatd.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every setting, each value checked by its parser.
    pub settings: Settings,
    /// This node's id: `--node-id`, or random per start.
    pub node_id: String,
    /// Operator-provided certificate and key; `None` uses the generated pair.
    pub tls: Option<TlsPaths>,
    /// Where the token key is kept: `--token-key-file`, or `token.key` in the data directory.
    pub token_key_file: PathBuf,
    /// The token key from `CHATD_TOKEN_KEY`, overriding the file.
    pub token_key: Option<TokenKey>,
    /// The HTTPS file server, when `--files-https-listen` is set.
    pub files_https: Option<FilesHttps>,
    /// The TURN secret from `CHATD_TURN_SECRET`, overriding the file.
    pub turn_secret: Option<TurnSecret>,
    /// Email and webhook delivery, with their secrets read (by [`Invocation::load`]; off in a
    /// configuration made with [`Config::from_settings`] alone).
    pub outbox: OutboxSettings,
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

/// Why the configuration could not be loaded. Each variant names the offending setting,
/// variable or file (and its line and column).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad flags, variables or file, or `--help`/`--version` (see [`LayerError::Cli`]).
    #[error(transparent)]
    Layers(#[from] LayerError),
    /// The token key variable is invalid.
    #[error("environment variable {TOKEN_KEY_ENV}: {0}")]
    TokenKey(String),
    /// A rule between settings is broken.
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

/// The clap command as the binary parses it: no `env` attributes (the variables are named in
/// the help instead), a repeated flag overriding an earlier one. Also what `--generate` renders.
pub fn command() -> clap::Command {
    layers::without_env(Cli::command())
}

impl Invocation {
    /// Parses `args` (program name first, as `std::env::args_os()`) over the environment
    /// lookup `env` (e.g. `|k| std::env::var(k).ok()`) and the `--config` file. Empty variables
    /// count as unset.
    pub fn load(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Invocation, ConfigError> {
        let cmd = Cli::command();
        // The settings of `serve` may sit in a file that `user add` reads too.
        let serve_ids: Vec<String> = cmd
            .find_subcommand("serve")
            .map(|serve| {
                serve
                    .get_arguments()
                    .map(|a| a.get_id().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let layers = Layers {
            env: &env,
            config_arg: Some("config"),
            tables: &[("limits", "limit_")],
            other_ids: &serve_ids,
        };
        let matches = layers::parse(&cmd, args.into_iter().collect(), &layers)?;
        let cli = Cli::from_arg_matches(&matches).map_err(LayerError::Cli)?;
        if let Some(kind) = cli.generate.generate {
            return Ok(Invocation::Generate(kind));
        }
        let settings = match cli.command {
            None => cli.settings,
            Some(CliCommand::Serve(settings)) => *settings,
            Some(CliCommand::User {
                action: UserCommand::Add(add),
            }) => return Ok(Invocation::UserAdd(add)),
            Some(CliCommand::Db {
                action: DbCommand::Encrypt(args),
            }) => return Ok(Invocation::DbEncrypt(args)),
            Some(CliCommand::Db {
                action: DbCommand::Rekey(args),
            }) => return Ok(Invocation::DbRekey(args)),
            Some(CliCommand::Files {
                action: FilesCommand::Encrypt(args),
            }) => return Ok(Invocation::FilesEncrypt(args)),
        };
        let token_key = match env(TOKEN_KEY_ENV).filter(|v| !v.is_empty()) {
            Some(hex) => {
                Some(TokenKey::from_hex(&hex).map_err(|e| ConfigError::TokenKey(e.to_string()))?)
            }
            None => None,
        };
        let mut config = Config::from_settings(settings, token_key)?;
        config.outbox = config
            .settings
            .delivery
            .outbox(&env, config.files_https.is_some())?;
        config.turn_secret = env(TURN_SECRET_ENV).as_deref().and_then(TurnSecret::new);
        config.check_turn_secret()?;
        if config.outbox.webhooks.is_none()
            && config
                .settings
                .keys
                .webhook_secret_rotation_interval
                .0
                .is_some()
        {
            return Err(invalid(
                "webhook_secret_rotation_interval",
                "there are no webhooks (webhooks) whose secret could rotate",
            ));
        }
        Ok(Invocation::Serve(Box::new(config)))
    }
}

impl Config {
    /// Loads the configuration of a serving chatd (see [`Invocation::load`]); any other
    /// invocation is an error. For tests and embedding.
    pub fn load(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        match Invocation::load(args, env)? {
            Invocation::Serve(config) => Ok(*config),
            other => Err(invalid(
                "command",
                format!("expected the server's settings, got {other:?}"),
            )),
        }
    }

    /// Applies the rules between settings and derives the defaults that depend on others.
    pub fn from_settings(
        settings: Settings,
        token_key: Option<TokenKey>,
    ) -> Result<Config, ConfigError> {
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => Some(TlsPaths {
                cert: cert.clone(),
                key: key.clone(),
            }),
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
        if settings
            .max_unauthenticated
            .is_some_and(|n| n >= settings.max_connections)
        {
            return Err(invalid(
                "max_unauthenticated",
                format!(
                    "must be below max_connections ({}), or connections that never authenticate \
                     could take every place",
                    settings.max_connections
                ),
            ));
        }
        if settings.presence_ttl < settings.heartbeat_interval * 2 {
            return Err(invalid(
                "presence_ttl",
                "must be at least twice the heartbeat interval, or live nodes would expire",
            ));
        }
        let files_https = match (settings.files_https_listen, &settings.files_public_url) {
            (Some(listen), public_url) => Some(FilesHttps {
                listen,
                public_url: public_url.clone(),
            }),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid(
                    "files_public_url",
                    "needs files_https_listen (the server the url leads to)",
                ));
            }
        };
        // A token signed just before a rotation verifies until it expires (with the leeway).
        let longest_token = settings.access_token_ttl + crate::auth::token::LEEWAY;
        settings.keys.check(longest_token)?;
        if settings.keys.encryption_key_rotation_interval.0.is_some() {
            let storage = &settings.storage;
            if storage.encryption_key_file.is_none() {
                return Err(invalid(
                    "encryption_key_rotation_interval",
                    "needs encryption_key_file (the master key it rotates)",
                ));
            }
            if storage.previous_encryption_key_file.is_none() {
                return Err(invalid(
                    "encryption_key_rotation_interval",
                    "needs previous_encryption_key_file (where chatd keeps the key it replaces)",
                ));
            }
        }
        let token_key_file = settings
            .token_key_file
            .clone()
            .unwrap_or_else(|| settings.storage.data_dir.join("token.key"));
        Ok(Config {
            // Read with the environment by `Invocation::load`, which has it.
            outbox: OutboxSettings::default(),
            node_id: settings.node_id.clone().unwrap_or_else(random_node_id),
            tls,
            token_key_file,
            token_key,
            files_https,
            turn_secret: None,
            settings,
        })
    }

    /// TURN URLs need a secret, from the variable or the file; the TURN settings agree with
    /// each other and with the key overlap; a TURN schedule needs coturn's database.
    fn check_turn_secret(&self) -> Result<(), ConfigError> {
        let calls = &self.settings.calls;
        let secret = self.turn_secret.is_some() || calls.turn_secret_file.is_some();
        if !secret && calls.ice_urls().iter().any(|u| is_turn(u)) {
            return Err(invalid(
                "turn_secret_file",
                format!(
                    "ice_servers has TURN servers: give their secret in {TURN_SECRET_ENV} or a file"
                ),
            ));
        }
        calls.check(secret, self.settings.keys.key_overlap)?;
        if self.settings.keys.turn_secret_rotation_interval.0.is_some()
            && calls.turn_secret_db.is_none()
        {
            return Err(invalid(
                "turn_secret_rotation_interval",
                "needs turn_secret_db: the TURN servers learn the secrets the server makes there",
            ));
        }
        Ok(())
    }

    /// The STUN and TURN URLs clients get.
    pub fn ice_urls(&self) -> &[String] {
        self.settings.calls.ice_urls()
    }

    /// coturn's database where the TURN secrets are published, when configured.
    pub fn turn_secret_db(&self) -> Option<crate::calls::turn_db::TurnSecretDb> {
        let calls = &self.settings.calls;
        Some(crate::calls::turn_db::TurnSecretDb::new(
            calls.turn_secret_db.clone()?,
            calls.turn_realm.clone()?,
        ))
    }

    /// The TURN secret: `CHATD_TURN_SECRET`, else the file's content (read now); `None` when
    /// neither is given.
    pub fn load_turn_secret(&self) -> Result<Option<TurnSecret>, ConfigError> {
        if let Some(secret) = &self.turn_secret {
            return Ok(Some(secret.clone()));
        }
        let Some(path) = &self.settings.calls.turn_secret_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            invalid(
                "turn_secret_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        TurnSecret::new(&text)
            .map(Some)
            .ok_or_else(|| invalid("turn_secret_file", format!("{} is empty", path.display())))
    }

    /// The cap on unauthenticated connections: `--max-unauthenticated`, or a quarter of
    /// `--max-connections`.
    pub fn max_unauthenticated(&self) -> u32 {
        let s = &self.settings;
        s.max_unauthenticated
            .unwrap_or((s.max_connections / 4).max(1))
    }

    /// The rate limits.
    pub fn limits(&self) -> LimitRates {
        let s = &self.settings;
        LimitRates {
            send: s.limit_send,
            request: s.limit_request,
            address_request: s.limit_address_request,
            login_account: s.limit_login_account,
            login_account_address: s.limit_login_account_address,
            login_address: s.limit_login_address,
            typing: s.limit_typing,
            upload: s.limit_upload,
            call_signal: s.limit_call_signal,
        }
    }

    /// The file limits and the collector's timing.
    pub fn files(&self) -> FileSettings {
        let s = &self.settings;
        FileSettings {
            max_file_bytes: s.max_file_size,
            upload_quota_bytes: s.upload_quota,
            gc_grace: s.file_gc_grace,
            gc_interval: s.file_gc_interval,
        }
    }
}

/// A `host:port` clients can connect to: a DNS name, an IPv4 address or a bracketed IPv6 one,
/// and a port from 1.
fn parse_public_addr(addr: &str) -> Result<String, String> {
    let bad = |why: &str| format!("{addr:?} {why}");
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
    Ok(addr.to_owned())
}

fn parse_node_id(id: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err("must be 1-64 characters of letters, digits, '-', '_' and '.'".to_owned());
    }
    Ok(id.to_owned())
}

fn parse_data_dir(dir: &str) -> Result<PathBuf, String> {
    if dir.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(PathBuf::from(dir))
}

fn random_node_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn parse_log_filter(filter: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(|_| filter.to_owned())
        .map_err(|e| format!("invalid log filter: {e}"))
}

/// Parses a [`Rate`] for clap.
fn parse_rate(s: &str) -> Result<Rate, String> {
    s.parse::<Rate>().map_err(|e| e.to_string())
}

/// Parses a size in bytes: a number with an optional unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`, or
/// the decimal `KB`, `MB`, `GB`, `TB`), e.g. `100MiB`.
fn parse_size(s: &str) -> Result<u64, String> {
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

fn parse_max_file_size(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err("must be at least 1 byte".to_owned()),
        n => Ok(n),
    }
}

/// The public base URL of the HTTPS file server, without its trailing slash.
fn parse_files_public_url(url: &str) -> Result<String, String> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(['?', '#'])
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(format!(
            "{url:?} must be an https:// (or http://) url without query or fragment"
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Parses a duration for clap.
fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::rate::parse_duration(s).map_err(|e| e.to_string())
}

/// A duration within `min..=max`, for clap.
fn parse_duration_within(
    s: &str,
    min: Duration,
    max: Duration,
    why: &str,
) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < min || d > max {
        return Err(why.to_owned());
    }
    Ok(d)
}

fn parse_access_token_ttl(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_secs(1),
        MAX_ACCESS_TTL,
        "must be between 1s and 15m (access tokens are short-lived by design)",
    )
}

fn parse_idle_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_secs(15),
        Duration::from_secs(600),
        "must be between 15s and 10m (clients ping every 10s)",
    )
}

fn parse_ticket_lifetime(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_secs(1),
        Duration::from_secs(24 * 3600),
        "must be between 1s and 24h (the lifetime TLS announces to clients)",
    )
}

fn parse_heartbeat(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_millis(100),
        Duration::MAX,
        "must be at least 100ms",
    )
}

fn parse_auth_deadline(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_millis(100),
        Duration::from_secs(600),
        "must be between 100ms and 10m",
    )
}

fn parse_file_gc_interval(s: &str) -> Result<Duration, String> {
    parse_heartbeat(s)
}

fn parse_file_url_ttl(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_secs(1),
        Duration::from_secs(7 * 86400),
        "must be between 1s and 7 days",
    )
}

fn parse_access_exempt(s: &str) -> Result<AccessExempt, String> {
    if s.trim() == "none" {
        return Ok(AccessExempt(Vec::new()));
    }
    let ranges = s
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.parse().map_err(|e| format!("{r:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if ranges.is_empty() || ranges.len() > 64 {
        return Err("give 1 to 64 comma-separated addresses or CIDR ranges, or none".into());
    }
    Ok(AccessExempt(ranges))
}

fn parse_access_refresh(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_millis(100),
        Duration::from_secs(3600),
        "must be between 100ms and 1h",
    )
}

fn parse_store_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_millis(100),
        Duration::from_secs(60),
        "must be between 100ms and 60s",
    )
}
