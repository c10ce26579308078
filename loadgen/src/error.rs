//! The library's error type: everything `loadgen::run` can fail with, each naming what was
//! wrong.

use std::path::PathBuf;

/// Why a load-generation run could not be configured, set up or completed.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The command line could not be parsed.
    #[error("{0}")]
    Usage(String),
    /// A setting is missing, out of range or contradicts another.
    #[error("invalid setting {setting}: {message}")]
    Invalid {
        /// The setting's name as on the command line (without `--`).
        setting: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The TOML configuration file could not be read.
    #[error("cannot read the configuration file {path}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML configuration file is not valid.
    #[error("{path}:{message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The parser's message, after the line and column.
        message: String,
    },
    /// Users, connections or rooms could not be prepared before the measurement.
    #[error("setup failed: {0}")]
    Setup(String),
    /// The chat client could not be configured (TLS material, addresses).
    #[error("client configuration: {0}")]
    Client(String),
    /// A chatd metrics endpoint could not be read.
    #[error("cannot read metrics from {url}: {message}")]
    Metrics {
        /// The metrics URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// An output file (plots) could not be written.
    #[error("cannot write {path}")]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl LoadgenError {
    /// An [`LoadgenError::Invalid`] for `setting`.
    pub fn invalid(setting: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            setting,
            message: message.into(),
        }
    }
}
