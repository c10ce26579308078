//! The TOML file layer. Keys are the flag names with `_` for `-`; rate limits live in a
//! `[limits]` table with the flag names minus their `limit-` prefix. Unknown keys are errors,
//! so a typo does not silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{ConfigError, LogFormat};
use crate::limits::keyed::Rate;

/// Settings from the file; `None` where the file is silent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log: Option<String>,
    pub node_id: Option<String>,
    pub max_connections: Option<u32>,
    #[serde(default, deserialize_with = "duration")]
    pub access_token_ttl: Option<Duration>,
    pub token_key_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "duration")]
    pub shutdown_grace: Option<Duration>,
    #[serde(default)]
    pub limits: FileLimits,
    #[serde(default, deserialize_with = "bytes")]
    pub max_file_size: Option<u64>,
    #[serde(default, deserialize_with = "bytes")]
    pub upload_quota: Option<u64>,
    #[serde(default, deserialize_with = "duration")]
    pub file_gc_grace: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub file_gc_interval: Option<Duration>,
    pub files_https_listen: Option<SocketAddr>,
    pub files_public_url: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub file_url_ttl: Option<Duration>,
    pub mongo_uri: Option<String>,
    pub redis_url: Option<String>,
    pub steering: Option<bool>,
    pub public_addr: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub presence_ttl: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub heartbeat_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub store_timeout: Option<Duration>,
}

/// The `[limits]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileLimits {
    #[serde(default, deserialize_with = "rate")]
    pub send: Option<Rate>,
    #[serde(default, deserialize_with = "rate")]
    pub request: Option<Rate>,
    #[serde(default, deserialize_with = "rate")]
    pub address_request: Option<Rate>,
    #[serde(default, deserialize_with = "rate")]
    pub login_account: Option<Rate>,
    #[serde(default, deserialize_with = "rate")]
    pub login_address: Option<Rate>,
    #[serde(default, deserialize_with = "rate")]
    pub typing: Option<Rate>,
    #[serde(default, deserialize_with = "rate")]
    pub upload: Option<Rate>,
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    crate::limits::keyed::parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    super::parse_bytes(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Rate>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse::<Rate>()
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl FileConfig {
    /// Reads and parses `path`.
    pub(super) fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        FileConfig::parse(&text).map_err(|message| ConfigError::File {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text; the error message names the key and position.
    pub(super) fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end();
            match e.span() {
                Some(span) => {
                    let line = text.as_bytes()[..span.start.min(text.len())]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count()
                        + 1;
                    format!("line {line}: {message}")
                }
                None => message.to_owned(),
            }
        })
    }
}
