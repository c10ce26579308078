//! The command line, and the validated settings a run starts from.
//!
//! Each option is declared once, as a clap argument; its environment variable reaches it through
//! [`chat_cli::layers`], so a bad value names the variable (the config file holds the theme,
//! keys and notifications, not options: see [`crate::config`]).

use std::ffi::OsString;
use std::path::PathBuf;

use chat_cli::layers::LayerError;
use chat_cli::server::{VerificationError, parse_server};
use chat_cli::{GenerateArgs, ServerArgs};
use chatproto::fingerprint::Fingerprint;
use chatproto::tls::Verification;
use clap::{CommandFactory as _, Parser};

use crate::config::{Config, ConfigError};
use crate::paths::{NoHome, Paths};

/// The command line of `chat-tui`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chat-tui",
    version = chat_cli::version!(),
    max_term_width = 100,
    about = "The terminal client of the chat system.",
    long_about = "The terminal client of the chat system.\n\n\
        The first connection to a server shows its certificate fingerprint and asks whether to \
        trust it; later connections require the same certificate (trust on first use). \
        --pin or --ca check the certificate instead. Once signed in, the session is kept \
        (mode 0600) under $XDG_STATE_HOME/chat-tui, so the next start needs no password; \
        --logout ends it. Press ? in the client for every key binding.",
    after_help = "Files: $XDG_CONFIG_HOME/chat-tui/config.toml (theme, keys, notifications), \
        $XDG_CONFIG_HOME/chat-tui/known_servers, $XDG_STATE_HOME/chat-tui/<server>/ (session, outbox, history); \
        downloads go to --download-dir."
)]
pub struct Cli {
    /// The server, as HOST:PORT (a DNS name or an address; IPv6 in brackets).
    #[arg(
        long,
        short = 's',
        default_value = "127.0.0.1:4433",
        env = "CHAT_SERVER",
        value_parser = parse_server
    )]
    pub server: String,
    /// How the server certificate is checked (without any: trust on first use).
    #[command(flatten)]
    pub tls: ServerArgs,
    /// Sign out: revoke the saved session on the server and forget it, then exit.
    #[arg(long)]
    pub logout: bool,
    /// The config file (default: $XDG_CONFIG_HOME/chat-tui/config.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The name of this device in the session list (default: chat-tui on the host name).
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Where downloaded files go (default: the XDG download directory, else the current one).
    #[arg(long, value_name = "DIR", env = "CHAT_TUI_DOWNLOAD_DIR")]
    pub download_dir: Option<PathBuf>,
    /// `--generate man|complete-SHELL`.
    #[command(flatten)]
    pub generate: GenerateArgs,
}

/// The clap command of `chat-tui` as it parses (the environment variables named in the help):
/// for `--generate`.
pub fn command() -> clap::Command {
    chat_cli::layers::without_env(Cli::command())
}

impl Cli {
    /// Parses `args` (program name first, as `std::env::args_os()`) over the environment lookup
    /// `env` (e.g. `|k| std::env::var(k).ok()`); empty variables count as unset.
    ///
    /// # Errors
    /// A bad option or variable, named; [`LayerError::Cli`] also for `--help` and `--version`.
    pub fn load(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Cli, LayerError> {
        chat_cli::layers::parse_env_only(args, &env)
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// A pinned fingerprint.
    Pin(Fingerprint),
    /// A CA file.
    Ca(PathBuf),
    /// Nothing (development only).
    Insecure,
    /// Trust on first use, recorded in the known-servers file.
    KnownServers,
}

/// A run's validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `host:port`.
    pub server: String,
    /// The TLS name to verify, when not the host.
    pub server_name: Option<String>,
    /// How the certificate is checked.
    pub trust: Trust,
    /// Where files go.
    pub paths: Paths,
    /// The config file's settings (and `NO_COLOR`).
    pub config: Config,
    /// Sign out instead of running.
    pub logout: bool,
    /// The device name sent when signing in.
    pub device: String,
    /// Where downloads go.
    pub download_dir: PathBuf,
}

/// Why the command line or the config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `--pin` or `--ca` cannot be used.
    #[error(transparent)]
    Verification(#[from] VerificationError),
    /// No home directory.
    #[error(transparent)]
    Paths(#[from] NoHome),
    /// The config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Settings {
    /// Validates the command line, reads the config file and honours `NO_COLOR`.
    ///
    /// # Errors
    /// The first option or setting that cannot be used, named.
    pub fn from_cli(cli: Cli) -> Result<Self, SettingsError> {
        let paths = Paths::from_env()?;
        Self::with_paths(cli, paths, no_color())
    }

    /// Like [`from_cli`](Self::from_cli) with the directories and `NO_COLOR` given.
    ///
    /// # Errors
    /// See [`from_cli`](Self::from_cli).
    pub fn with_paths(cli: Cli, paths: Paths, no_color: bool) -> Result<Self, SettingsError> {
        let trust = match cli.tls.verification()? {
            Some(Verification::Pin(pin)) => Trust::Pin(pin),
            Some(Verification::CaFile(ca)) => Trust::Ca(ca),
            Some(_) => Trust::Insecure,
            None => Trust::KnownServers,
        };
        let config_file = cli.config.clone().unwrap_or_else(|| paths.config_file());
        let config = Config::load(&config_file, no_color)?;
        let device = cli
            .device
            .clone()
            .unwrap_or_else(|| chat_cli::device_name("chat-tui"));
        let download_dir = cli
            .download_dir
            .clone()
            .unwrap_or_else(|| paths.download_dir.clone());
        Ok(Self {
            download_dir,
            server: cli.server,
            server_name: cli.tls.server_name,
            trust,
            paths,
            config,
            logout: cli.logout,
            device,
        })
    }
}

/// `NO_COLOR` set to anything but the empty string (no-color.org).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Paths {
        Paths {
            config_dir: "/nonexistent/config/chat-tui".into(),
            state_dir: "/nonexistent/state/chat-tui".into(),
            download_dir: "/nonexistent/downloads".into(),
        }
    }

    /// The settings, or the error's first line.
    fn parse_env(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, String> {
        let args = std::iter::once("chat-tui")
            .chain(args.iter().copied())
            .map(OsString::from);
        let lookup = |k: &str| {
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        };
        let cli = Cli::load(args, lookup).map_err(|e| match e {
            LayerError::Cli(e) => chat_cli::layers::clap_message(&e),
            other => other.to_string(),
        })?;
        Settings::with_paths(cli, paths(), false).map_err(|e| e.to_string())
    }

    fn parse(args: &[&str]) -> Result<Settings, String> {
        parse_env(args, &[])
    }

    #[test]
    fn the_server_may_come_from_the_environment_and_a_flag_wins() {
        let env = [("CHAT_SERVER", "chat.example.org:4433")];
        assert_eq!(
            parse_env(&[], &env).unwrap().server,
            "chat.example.org:4433"
        );
        let flag = parse_env(&["--server", "[::1]:1"], &env).unwrap();
        assert_eq!(flag.server, "[::1]:1");
        let err = parse_env(&[], &[("CHAT_SERVER", "no-port")]).unwrap_err();
        assert!(
            err.starts_with("environment variable CHAT_SERVER: ") && err.contains("HOST:PORT"),
            "{err}"
        );
    }

    #[test]
    fn defaults_trust_on_first_use_against_the_local_chatd() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.server, "127.0.0.1:4433");
        assert_eq!(s.trust, Trust::KnownServers);
        assert!(!s.logout);
        assert!(s.device.starts_with("chat-tui on "));
        assert_eq!(s.download_dir, PathBuf::from("/nonexistent/downloads"));
    }

    #[test]
    fn the_download_directory_comes_from_a_flag_or_the_environment() {
        let env = [("CHAT_TUI_DOWNLOAD_DIR", "/from/env")];
        assert_eq!(
            parse_env(&[], &env).unwrap().download_dir,
            PathBuf::from("/from/env")
        );
        assert_eq!(
            parse_env(&["--download-dir", "/from/flag"], &env)
                .unwrap()
                .download_dir,
            PathBuf::from("/from/flag")
        );
    }

    #[test]
    fn servers_and_pins_are_checked() {
        for good in ["chat.example.org:4433", "[::1]:4433", "10.0.0.1:1"] {
            assert!(parse(&["--server", good]).is_ok(), "{good}");
        }
        for bad in [
            "chat.example.org",
            ":4433",
            "host:0",
            "host:99999",
            "::1:4433",
            "[zz]:1",
        ] {
            let err = parse(&["--server", bad]).unwrap_err();
            assert!(
                err.contains("--server") && err.contains("HOST:PORT"),
                "{bad}: {err}"
            );
        }
        let pin = "ab".repeat(32);
        assert_eq!(
            parse(&["--pin", &pin]).unwrap().trust,
            Trust::Pin([0xab; 32])
        );
        let err = parse(&["--pin", "abcd"]).unwrap_err();
        assert!(err.starts_with("--pin:"), "{err}");
        let err = parse(&["--ca", "/nonexistent/ca.pem"]).unwrap_err();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        assert_eq!(parse(&["--insecure"]).unwrap().trust, Trust::Insecure);
        assert!(
            parse(&["--insecure", "--pin", &pin]).is_err(),
            "conflicting options"
        );
    }
}
