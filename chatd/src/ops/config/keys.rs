//! The settings of key rotation (protocol.md 9.6, "Key rotation"): how often each kind rotates
//! by itself and how long a replaced key keeps verifying. Flattened into the server's settings.

use std::time::Duration;

use clap::Args;

use super::{ConfigError, invalid, parse_duration, parse_duration_within};
use crate::auth::keys::KeySettings;

/// `chatd`'s key rotation settings.
#[derive(Debug, Clone, Args)]
pub struct KeyRotation {
    /// How old the access-token signing key and the refresh-token pepper get before the server
    /// replaces them by itself (once per cluster); off: only `chatctl keys rotate` does
    #[arg(
        long,
        env = "CHATD_KEY_ROTATION_INTERVAL",
        value_name = "DURATION|off",
        value_parser = parse_key_rotation_interval,
        default_value = "720h",
        help_heading = "Accounts"
    )]
    pub key_rotation_interval: KeyRotationInterval,

    /// How long a replaced key still verifies (tokens it signed, refresh tokens hashed with it,
    /// webhook calls signed with both): longer than the access-token lifetime, and at least 7
    /// days to keep idle sessions' refresh tokens
    #[arg(
        long,
        env = "CHATD_KEY_OVERLAP",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = "192h",
        help_heading = "Accounts"
    )]
    pub key_overlap: Duration,

    /// How old the webhook signing secret gets before the server replaces it by a secret it
    /// makes (receivers read it with `chatctl keys secrets --kind webhook`; calls carry a
    /// signature under each secret that verifies); off: only `chatctl keys rotate` does
    #[arg(
        long,
        env = "CHATD_WEBHOOK_SECRET_ROTATION_INTERVAL",
        value_name = "DURATION|off",
        value_parser = parse_key_rotation_interval,
        default_value = "off",
        help_heading = "Accounts"
    )]
    pub webhook_secret_rotation_interval: KeyRotationInterval,

    /// How old the TURN secret gets before the server replaces it by a secret it makes, which
    /// coturn learns through --turn-secret-db; off: only `chatctl keys rotate` does
    #[arg(
        long,
        env = "CHATD_TURN_SECRET_ROTATION_INTERVAL",
        value_name = "DURATION|off",
        value_parser = parse_key_rotation_interval,
        default_value = "off",
        help_heading = "Accounts"
    )]
    pub turn_secret_rotation_interval: KeyRotationInterval,

    /// How old the master key of --encryption-key-file gets before the server replaces it by
    /// one it makes while it runs (once per cluster; every node writes it to its key file and
    /// keeps the one replaced in --previous-encryption-key-file, both in directories chatd can
    /// write); off: only `chatctl keys rotate --kind master` or a restart with a new key does
    #[arg(
        long,
        env = "CHATD_ENCRYPTION_KEY_ROTATION_INTERVAL",
        value_name = "DURATION|off",
        value_parser = parse_key_rotation_interval,
        default_value = "off",
        help_heading = "Accounts"
    )]
    pub encryption_key_rotation_interval: KeyRotationInterval,
}

impl KeyRotation {
    /// The settings `auth::master_key` works with.
    pub fn master(&self) -> crate::auth::master_key::MasterKeySettings {
        crate::auth::master_key::MasterKeySettings {
            interval: self.encryption_key_rotation_interval.0,
            overlap: self.key_overlap,
        }
    }

    /// The settings `auth::keys` works with.
    pub fn settings(&self) -> KeySettings {
        KeySettings {
            rotation_interval: self.key_rotation_interval.0,
            webhook_rotation_interval: self.webhook_secret_rotation_interval.0,
            turn_rotation_interval: self.turn_secret_rotation_interval.0,
            overlap: self.key_overlap,
        }
    }

    /// The checks across settings: the overlap outlives the longest access token, and each
    /// schedule is at least the overlap (or replaced keys would pile up).
    pub(super) fn check(&self, longest_token: Duration) -> Result<(), ConfigError> {
        if self.key_overlap <= longest_token {
            return Err(invalid(
                "key_overlap",
                format!(
                    "must be longer than the access-token lifetime and its leeway ({}), or \
                     tokens signed just before a rotation would be refused before they expire",
                    crate::rate::format_duration(longest_token)
                ),
            ));
        }
        for (setting, interval) in [
            ("key_rotation_interval", self.key_rotation_interval),
            (
                "webhook_secret_rotation_interval",
                self.webhook_secret_rotation_interval,
            ),
            (
                "turn_secret_rotation_interval",
                self.turn_secret_rotation_interval,
            ),
            (
                "encryption_key_rotation_interval",
                self.encryption_key_rotation_interval,
            ),
        ] {
            if interval.0.is_some_and(|i| i < self.key_overlap) {
                return Err(invalid(
                    setting,
                    "must be at least key_overlap, or replaced keys would pile up",
                ));
            }
        }
        Ok(())
    }
}

/// `--key-rotation-interval`: a duration of at least a minute, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRotationInterval(pub Option<Duration>);

impl std::fmt::Display for KeyRotationInterval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(d) => f.write_str(&crate::rate::format_duration(d)),
            None => f.write_str("off"),
        }
    }
}

fn parse_key_rotation_interval(s: &str) -> Result<KeyRotationInterval, String> {
    if s.trim() == "off" {
        return Ok(KeyRotationInterval(None));
    }
    parse_duration_within(
        s,
        Duration::from_secs(1),
        Duration::MAX,
        "must be at least 1s, or off",
    )
    .map(|d| KeyRotationInterval(Some(d)))
}
