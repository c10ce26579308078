//! The session of a signed-in client, kept in a file readable only by its owner (mode 0600), so
//! the next run resumes without asking for the password.
//!
//! Refresh tokens are single use: save the tokens again after every
//! [`ClientEvent::TokensRefreshed`](crate::client::ClientEvent::TokensRefreshed), or the next run
//! presents a spent token and the server revokes the session.
//!
//! Format: `key=value` lines (`user_id`, `session_id`, `access_expires_at_ms`, `access_token`,
//! `refresh_token`).

use std::path::{Path, PathBuf};

use super::{StoreError, read_optional, remove, write_atomic};
use crate::client::Tokens;

/// A file holding one session's [`Tokens`].
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// The token file at `path` (nothing is read yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved tokens; `None` when there is no file.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming what is missing or malformed, or [`StoreError::Io`].
    pub fn load(&self) -> Result<Option<Tokens>, StoreError> {
        let Some(bytes) = read_optional(&self.path)? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| StoreError::corrupt(&self.path, "not UTF-8 text"))?;
        let mut tokens = Tokens::default();
        let (mut user, mut refresh) = (false, false);
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why: &str| StoreError::corrupt(&self.path, format!("line {}: {why}", n + 1));
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| bad("expected key=value"))?;
            let number = || value.parse().map_err(|_| bad("not a number"));
            match key {
                "user_id" => {
                    tokens.user_id = number()?;
                    user = true;
                }
                "session_id" => tokens.session_id = number()?,
                "access_expires_at_ms" => {
                    tokens.access_expires_at_ms = value.parse().map_err(|_| bad("not a number"))?;
                }
                "access_token" => tokens.access_token = value.to_string(),
                "refresh_token" => {
                    tokens.refresh_token = value.to_string();
                    refresh = true;
                }
                _ => return Err(bad("unknown key")),
            }
        }
        if !user || !refresh {
            return Err(StoreError::corrupt(
                &self.path,
                "user_id and refresh_token are required",
            ));
        }
        Ok(Some(tokens))
    }

    /// Saves `tokens`, replacing the file atomically with mode 0600.
    ///
    /// # Errors
    /// When a token contains a line break (nothing is written), or on I/O errors.
    pub fn save(&self, tokens: &Tokens) -> Result<(), StoreError> {
        if [&tokens.access_token, &tokens.refresh_token]
            .iter()
            .any(|t| t.contains(['\n', '\r']))
        {
            return Err(StoreError::corrupt(
                &self.path,
                "a token contains a line break",
            ));
        }
        let text = format!(
            "user_id={}\nsession_id={}\naccess_expires_at_ms={}\naccess_token={}\nrefresh_token={}\n",
            tokens.user_id,
            tokens.session_id,
            tokens.access_expires_at_ms,
            tokens.access_token,
            tokens.refresh_token
        );
        write_atomic(&self.path, text.as_bytes(), 0o600)
    }

    /// Forgets the session (removes the file; no file is fine).
    ///
    /// # Errors
    /// On I/O errors other than a missing file.
    pub fn clear(&self) -> Result<(), StoreError> {
        remove(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn tokens_round_trip_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("state/session"));
        assert_eq!(file.load().unwrap(), None);
        let tokens = Tokens {
            user_id: 7,
            session_id: 9,
            access_token: "a.b.c".into(),
            access_expires_at_ms: 1_700_000_000_000,
            refresh_token: "r=x".into(),
        };
        file.save(&tokens).unwrap();
        assert_eq!(file.load().unwrap(), Some(tokens));
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        file.clear().unwrap();
        assert_eq!(file.load().unwrap(), None);
        file.clear().unwrap();
    }

    #[test]
    fn a_file_without_a_refresh_token_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("session"));
        std::fs::write(file.path(), "user_id=1\n").unwrap();
        assert!(
            file.load()
                .unwrap_err()
                .to_string()
                .contains("refresh_token")
        );
        std::fs::write(file.path(), "user_id=x\nrefresh_token=r\n").unwrap();
        assert!(file.load().unwrap_err().to_string().contains("line 1"));
        let bad = Tokens {
            refresh_token: "a\nb".into(),
            ..Tokens::default()
        };
        assert!(file.save(&bad).is_err());
    }
}
