//! Where chat-tui keeps its files, following the XDG base directory specification.
//!
//! - config: `$XDG_CONFIG_HOME/chat-tui/` (default `~/.config/chat-tui/`): `config.toml` and
//!   `known_servers` (the servers trusted on first use);
//! - state: `$XDG_STATE_HOME/chat-tui/` (default `~/.local/state/chat-tui/`), one directory per
//!   server: `session` (the refresh token, mode 0600), and per signed-in user the `outbox` of
//!   unsent messages and the composer's input `history`.

use std::path::{Path, PathBuf};

/// The directories chat-tui uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `…/chat-tui` under the config home.
    pub config_dir: PathBuf,
    /// `…/chat-tui` under the state home.
    pub state_dir: PathBuf,
}

/// Why the directories cannot be determined.
#[derive(Debug, thiserror::Error)]
#[error("cannot find a home directory: set HOME, or XDG_CONFIG_HOME and XDG_STATE_HOME")]
pub struct NoHome;

impl Paths {
    /// The directories from the environment (`XDG_CONFIG_HOME`, `XDG_STATE_HOME`, `HOME`).
    ///
    /// # Errors
    /// When neither the XDG variable nor `HOME` is set for a directory.
    pub fn from_env() -> Result<Self, NoHome> {
        let var = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                // The specification says relative paths are invalid and must be ignored.
                .filter(|p| p.is_absolute())
        };
        Self::resolve(var("XDG_CONFIG_HOME"), var("XDG_STATE_HOME"), var("HOME"))
    }

    fn resolve(
        config_home: Option<PathBuf>,
        state_home: Option<PathBuf>,
        home: Option<PathBuf>,
    ) -> Result<Self, NoHome> {
        let config_home = config_home
            .or_else(|| home.as_ref().map(|h| h.join(".config")))
            .ok_or(NoHome)?;
        let state_home = state_home
            .or_else(|| home.as_ref().map(|h| h.join(".local/state")))
            .ok_or(NoHome)?;
        Ok(Self {
            config_dir: config_home.join("chat-tui"),
            state_dir: state_home.join("chat-tui"),
        })
    }

    /// The configuration file.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("config.toml")
    }

    /// The trusted servers (trust on first use).
    pub fn known_servers(&self) -> PathBuf {
        self.config_dir.join("known_servers")
    }

    /// The state of one server: `host:port` with characters unsafe in file names replaced.
    pub fn server_dir(&self, server: &str) -> PathBuf {
        let name: String = server
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        self.state_dir.join(name)
    }

    /// The session (tokens) of one server.
    pub fn session_file(&self, server: &str) -> PathBuf {
        self.server_dir(server).join("session")
    }

    /// The directory of one user on one server.
    pub fn user_dir(&self, server: &str, user_id: u64) -> PathBuf {
        self.server_dir(server).join(format!("user-{user_id}"))
    }
}

/// `path` relative to the home directory when it is under it (`~/...`), for messages.
pub fn display(path: &Path) -> String {
    if let Some(home) = std::env::var_os("HOME")
        && let Ok(rest) = path.strip_prefix(&home)
    {
        return format!("~/{}", rest.display());
    }
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_variables_win_over_home() {
        let p = Paths::resolve(
            Some("/cfg".into()),
            Some("/st".into()),
            Some("/home/u".into()),
        )
        .unwrap();
        assert_eq!(p.config_file(), PathBuf::from("/cfg/chat-tui/config.toml"));
        assert_eq!(
            p.session_file("Chat.Example:4433"),
            PathBuf::from("/st/chat-tui/chat.example_4433/session")
        );
        let p = Paths::resolve(None, None, Some("/home/u".into())).unwrap();
        assert_eq!(
            p.known_servers(),
            PathBuf::from("/home/u/.config/chat-tui/known_servers")
        );
        assert_eq!(
            p.user_dir("[::1]:4433", 7),
            PathBuf::from("/home/u/.local/state/chat-tui/___1__4433/user-7")
        );
        assert!(Paths::resolve(None, None, None).is_err());
    }
}
