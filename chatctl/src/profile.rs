//! Saved profiles: which server, how its certificate is checked, which admin, and the session's
//! tokens, one file per profile at `$XDG_CONFIG_HOME/chatctl/profiles/NAME.toml` (default
//! `~/.config/chatctl/...`), mode 0600 because it holds a refresh token.
//!
//! Refresh tokens are single use: a command that refreshed saves the new tokens before it ends,
//! or the next command would present a spent token and the server would revoke the session.

use std::path::{Path, PathBuf};

use chatproto::client::Tokens;
use chatproto::client::store::write_atomic;
use serde::{Deserialize, Serialize};

/// One saved profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `host:port`.
    pub server: String,
    /// The pinned certificate fingerprint, if the server is checked that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// The CA file, if the server is checked that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// The TLS name to verify, when not the host of `server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// No certificate check (development only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// The admin account.
    pub user: String,
    /// The session.
    pub session: Session,
}

/// The tokens of a profile's session (see [`Tokens`]).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The user id.
    pub user_id: u64,
    /// The session id.
    pub session_id: u64,
    /// The access token.
    pub access_token: String,
    /// Its expiry (ms since the epoch).
    pub access_expires_at_ms: i64,
    /// The single-use refresh token.
    pub refresh_token: String,
}

impl std::fmt::Debug for Session {
    // Tokens are secrets: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl From<&Tokens> for Session {
    fn from(t: &Tokens) -> Self {
        Self {
            user_id: t.user_id,
            session_id: t.session_id,
            access_token: t.access_token.clone(),
            access_expires_at_ms: t.access_expires_at_ms,
            refresh_token: t.refresh_token.clone(),
        }
    }
}

impl From<&Session> for Tokens {
    fn from(s: &Session) -> Self {
        Self {
            user_id: s.user_id,
            session_id: s.session_id,
            access_token: s.access_token.clone(),
            access_expires_at_ms: s.access_expires_at_ms,
            refresh_token: s.refresh_token.clone(),
        }
    }
}

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not a usable profile name.
    #[error("--profile {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
    Name(String),
    /// No home directory.
    #[error("cannot find a home directory: set HOME or XDG_CONFIG_HOME")]
    NoHome,
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a profile.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Store(#[from] chatproto::client::store::StoreError),
}

/// Where the profiles are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profiles {
    dir: PathBuf,
}

impl Profiles {
    /// `…/chatctl/profiles` under the config home of the environment lookup `env`.
    ///
    /// # Errors
    /// [`ProfileError::NoHome`].
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ProfileError> {
        // The XDG specification says relative paths are invalid and must be ignored.
        let var = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
        let config_home = var("XDG_CONFIG_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".config")))
            .ok_or(ProfileError::NoHome)?;
        Ok(Self::in_dir(config_home.join("chatctl").join("profiles")))
    }

    /// The profiles in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file of profile `name`.
    ///
    /// # Errors
    /// [`ProfileError::Name`].
    pub fn path(&self, name: &str) -> Result<PathBuf, ProfileError> {
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(ProfileError::Name(name.to_owned()));
        }
        Ok(self.dir.join(format!("{name}.toml")))
    }

    /// Profile `name`, if saved.
    ///
    /// # Errors
    /// A bad name, an unreadable or malformed file.
    pub fn load(&self, name: &str) -> Result<Option<Profile>, ProfileError> {
        let path = self.path(name)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ProfileError::Io { path, source }),
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| ProfileError::Corrupt {
                path,
                message: e.message().to_owned(),
            })
    }

    /// Saves profile `name` (mode 0600, replaced atomically).
    ///
    /// # Errors
    /// A bad name, or the file cannot be written.
    pub fn save(&self, name: &str, profile: &Profile) -> Result<PathBuf, ProfileError> {
        let path = self.path(name)?;
        let text = toml::to_string(profile).map_err(|e| ProfileError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, text.as_bytes(), 0o600)?;
        Ok(path)
    }

    /// Forgets profile `name`; true when there was one.
    ///
    /// # Errors
    /// A bad name, or the file cannot be removed.
    pub fn remove(&self, name: &str) -> Result<bool, ProfileError> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(ProfileError::Io { path, source }),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn profiles_round_trip_privately() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = Profiles::in_dir(dir.path().join("profiles"));
        assert_eq!(profiles.load("default").unwrap(), None);
        let profile = Profile {
            server: "[::1]:4433".into(),
            pin: Some("ab".repeat(32)),
            user: "root".into(),
            session: Session {
                user_id: 1,
                session_id: 2,
                access_token: "a".into(),
                access_expires_at_ms: 3,
                refresh_token: "r".into(),
            },
            ..Profile::default()
        };
        let path = profiles.save("default", &profile).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(profiles.load("default").unwrap(), Some(profile));
        assert!(profiles.remove("default").unwrap());
        assert!(!profiles.remove("default").unwrap());
        for bad in ["", "../x", "a b", &"x".repeat(65)] {
            assert!(
                matches!(profiles.path(bad), Err(ProfileError::Name(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_config_home_follows_xdg() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/a".to_owned()),
            "XDG_CONFIG_HOME" => Some("relative".to_owned()),
            _ => None,
        };
        let p = Profiles::from_env(&env).unwrap();
        assert_eq!(p.dir(), Path::new("/home/a/.config/chatctl/profiles"));
        assert!(matches!(
            Profiles::from_env(&|_| None),
            Err(ProfileError::NoHome)
        ));
    }
}
