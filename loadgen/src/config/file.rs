//! The `--config` TOML layer: the flag names with `_` for `-`. Unknown keys are errors so that a
//! typo does not silently fall back to a default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::LoadgenError;

/// One address or a list of addresses (`server = "h:1"` or `server = ["h:1", "h:2"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// Settings from the file; `None` where the file is silent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub server: Option<OneOrMany>,
    pub pin: Option<String>,
    pub ca: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure: Option<bool>,
    pub scenario: Option<String>,
    pub users: Option<u32>,
    pub connections_per_user: Option<u32>,
    pub room_size: Option<u32>,
    pub rate: Option<f64>,
    pub duration: Option<String>,
    pub warmup: Option<String>,
    pub drain: Option<String>,
    pub payload: Option<usize>,
    pub connect_rate: Option<f64>,
    pub read_percent: Option<u8>,
    pub user_prefix: Option<String>,
    pub password: Option<String>,
    pub request_timeout: Option<String>,
    pub metrics_url: Option<OneOrMany>,
    pub plot: Option<PathBuf>,
    pub json: Option<bool>,
    pub threads: Option<usize>,
    pub endpoints: Option<u32>,
    pub no_zero_rtt: Option<bool>,
}

impl FileConfig {
    /// Reads and parses `path`.
    pub(super) fn read(path: &Path) -> Result<FileConfig, LoadgenError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadgenError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        FileConfig::parse(&text).map_err(|message| LoadgenError::ConfigFile {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text; the error message starts with the line and column (`3:10: ...`).
    pub(super) fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().to_owned();
            match e.span() {
                Some(span) => {
                    let position = chat_cli::position::Position::of(text, span.start);
                    format!("{position}: {message}")
                }
                None => message,
            }
        })
    }
}
