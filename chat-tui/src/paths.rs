//! Where chat-tui keeps its files, following the XDG base directory specification.
//!
//! - config: `$XDG_CONFIG_HOME/chat-tui/` (default `~/.config/chat-tui/`): `config.toml` and
//!   `known_servers` (the servers trusted on first use);
//! - state: `$XDG_STATE_HOME/chat-tui/` (default `~/.local/state/chat-tui/`), one directory per
//!   server: `session` (the refresh token, mode 0600), and per signed-in user the `outbox` of
//!   unsent messages and the composer's input `history`;
//! - downloads: `$XDG_DOWNLOAD_DIR`, else the `XDG_DOWNLOAD_DIR` of
//!   `$XDG_CONFIG_HOME/user-dirs.dirs` (what `xdg-user-dirs` writes), else the current directory
//!   (`--download-dir` overrides it).

use std::path::{Path, PathBuf};

/// The directories chat-tui uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `…/chat-tui` under the config home.
    pub config_dir: PathBuf,
    /// `…/chat-tui` under the state home.
    pub state_dir: PathBuf,
    /// Where downloads go unless `--download-dir` says otherwise.
    pub download_dir: PathBuf,
}

/// What the directories are resolved from (the environment, in [`Paths::from_env`]).
#[derive(Debug, Default)]
struct Sources {
    config_home: Option<PathBuf>,
    state_home: Option<PathBuf>,
    home: Option<PathBuf>,
    download: Option<PathBuf>,
    /// The text of `user-dirs.dirs`.
    user_dirs: Option<String>,
    cwd: PathBuf,
}

/// `XDG_DOWNLOAD_DIR="$HOME/Downloads"` of a `user-dirs.dirs` file, `$HOME` replaced.
fn user_dirs_download(text: &str, home: Option<&Path>) -> Option<PathBuf> {
    let value = text.lines().find_map(|line| {
        let value = line.trim().strip_prefix("XDG_DOWNLOAD_DIR=")?;
        Some(value.trim().trim_matches('"'))
    })?;
    let path = match value.strip_prefix("$HOME") {
        Some(rest) => home?.join(rest.trim_start_matches('/')),
        None => PathBuf::from(value),
    };
    path.is_absolute().then_some(path)
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
        let mut sources = Sources {
            config_home: var("XDG_CONFIG_HOME"),
            state_home: var("XDG_STATE_HOME"),
            home: var("HOME"),
            download: var("XDG_DOWNLOAD_DIR"),
            user_dirs: None,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        };
        let config_home = sources
            .config_home
            .clone()
            .or_else(|| sources.home.as_ref().map(|h| h.join(".config")));
        sources.user_dirs =
            config_home.and_then(|c| std::fs::read_to_string(c.join("user-dirs.dirs")).ok());
        Self::resolve(sources)
    }

    fn resolve(sources: Sources) -> Result<Self, NoHome> {
        let home = sources.home.as_deref();
        let config_home = sources
            .config_home
            .clone()
            .or_else(|| home.map(|h| h.join(".config")))
            .ok_or(NoHome)?;
        let state_home = sources
            .state_home
            .clone()
            .or_else(|| home.map(|h| h.join(".local/state")))
            .ok_or(NoHome)?;
        let download_dir = sources
            .download
            .clone()
            .or_else(|| user_dirs_download(sources.user_dirs.as_deref()?, home))
            .unwrap_or(sources.cwd);
        Ok(Self {
            config_dir: config_home.join("chat-tui"),
            state_dir: state_home.join("chat-tui"),
            download_dir,
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
        let p = Paths::resolve(Sources {
            config_home: Some("/cfg".into()),
            state_home: Some("/st".into()),
            home: Some("/home/u".into()),
            cwd: "/work".into(),
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(p.download_dir, PathBuf::from("/work"));
        assert_eq!(p.config_file(), PathBuf::from("/cfg/chat-tui/config.toml"));
        assert_eq!(
            p.session_file("Chat.Example:4433"),
            PathBuf::from("/st/chat-tui/chat.example_4433/session")
        );
        let p = Paths::resolve(Sources {
            home: Some("/home/u".into()),
            ..Sources::default()
        })
        .unwrap();
        assert_eq!(
            p.known_servers(),
            PathBuf::from("/home/u/.config/chat-tui/known_servers")
        );
        assert_eq!(
            p.user_dir("[::1]:4433", 7),
            PathBuf::from("/home/u/.local/state/chat-tui/___1__4433/user-7")
        );
        assert!(Paths::resolve(Sources::default()).is_err());
    }

    #[test]
    fn downloads_go_to_the_xdg_download_directory() {
        let user_dirs = "# written by xdg-user-dirs-update\nXDG_DESKTOP_DIR=\"$HOME/Desktop\"\n\
                         XDG_DOWNLOAD_DIR=\"$HOME/Downloads\"\n";
        let sources = || Sources {
            home: Some("/home/u".into()),
            user_dirs: Some(user_dirs.into()),
            cwd: "/work".into(),
            ..Sources::default()
        };
        let p = Paths::resolve(sources()).unwrap();
        assert_eq!(p.download_dir, PathBuf::from("/home/u/Downloads"));
        let p = Paths::resolve(Sources {
            download: Some("/data/dl".into()),
            ..sources()
        })
        .unwrap();
        assert_eq!(
            p.download_dir,
            PathBuf::from("/data/dl"),
            "the variable wins"
        );
        assert_eq!(
            user_dirs_download("XDG_DOWNLOAD_DIR=\"relative\"", None),
            None,
            "relative paths are invalid"
        );
        assert_eq!(
            user_dirs_download("XDG_DOWNLOAD_DIR=\"/srv/dl\"", None),
            Some(PathBuf::from("/srv/dl"))
        );
    }
}
