//! The settings of calls (protocol.md section 14): how long a call rings, the ICE servers clients
//! get, and TURN: the shared secret, the credentials' lifetime, and coturn's database where the
//! TURN secrets are published as they rotate. Flattened into the server's settings.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{ConfigError, invalid, parse_duration_within};
use crate::auth::keys::TURN_PUBLISH_LEAD;
use crate::calls::turn::is_turn;

/// The STUN and TURN URLs of `--ice-servers`, each checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrls(pub Vec<String>);

/// `chatd`'s call settings.
#[derive(Debug, Clone, Args)]
pub struct CallSettings {
    /// How long a call rings before it ends MISSED (1s to 10m)
    #[arg(
        long,
        env = "CHATD_CALL_RING_TIMEOUT",
        value_name = "DURATION",
        value_parser = parse_call_ring_timeout,
        default_value = "30s",
        help_heading = "Calls"
    )]
    pub call_ring_timeout: Duration,

    /// The STUN and TURN servers clients get, comma-separated stun:, turn: or turns: URLs (e.g.
    /// "stun:turn.example.org:3478,turn:turn.example.org:3478?transport=udp"). TURN needs the
    /// shared secret: CHATD_TURN_SECRET or --turn-secret-file
    #[arg(
        long,
        env = "CHATD_ICE_SERVERS",
        value_name = "URLS",
        value_parser = parse_ice_servers,
        help_heading = "Calls"
    )]
    pub ice_servers: Option<IceUrls>,

    /// File holding the TURN servers' shared secret (coturn's static-auth-secret). The secret
    /// may instead be given in CHATD_TURN_SECRET; it is never a flag
    #[arg(
        long,
        env = "CHATD_TURN_SECRET_FILE",
        value_name = "FILE",
        help_heading = "Calls"
    )]
    pub turn_secret_file: Option<PathBuf>,

    /// How long the TURN credentials a client gets stay valid (1m to 7 days)
    #[arg(
        long,
        env = "CHATD_TURN_CREDENTIAL_TTL",
        value_name = "DURATION",
        value_parser = parse_turn_credential_ttl,
        default_value = "24h",
        help_heading = "Calls"
    )]
    pub turn_credential_ttl: Duration,

    /// coturn's SQLite user database (its --userdb): chatd keeps the TURN secrets that verify
    /// in its turn_secret table for --turn-realm, so coturn (with use-auth-secret and no
    /// static-auth-secret) follows every rotation, the scheduled ones included
    #[arg(
        long,
        env = "CHATD_TURN_SECRET_DB",
        value_name = "FILE",
        help_heading = "Calls"
    )]
    pub turn_secret_db: Option<PathBuf>,

    /// coturn's realm (its --realm), whose secrets chatd keeps in --turn-secret-db
    #[arg(
        long,
        env = "CHATD_TURN_REALM",
        value_name = "REALM",
        value_parser = parse_turn_realm,
        help_heading = "Calls"
    )]
    pub turn_realm: Option<String>,
}

impl CallSettings {
    /// The STUN and TURN URLs clients get.
    pub fn ice_urls(&self) -> &[String] {
        self.ice_servers.as_ref().map_or(&[], |u| &u.0)
    }

    /// The checks across settings: the database needs the realm and a TURN secret, and the
    /// overlap must outlive credentials made with a replaced secret (they are made with it
    /// until the new one is published, and then valid for their lifetime).
    pub(super) fn check(&self, turn_secret: bool, overlap: Duration) -> Result<(), ConfigError> {
        let Some(db) = &self.turn_secret_db else {
            if self.turn_realm.is_some() {
                return Err(invalid(
                    "turn_realm",
                    "is the realm of turn_secret_db: give both",
                ));
            }
            return Ok(());
        };
        if self.turn_realm.is_none() {
            return Err(invalid(
                "turn_realm",
                format!("turn_secret_db {} needs coturn's realm", db.display()),
            ));
        }
        if !turn_secret {
            return Err(invalid(
                "turn_secret_db",
                "needs the TURN secret (CHATD_TURN_SECRET or turn_secret_file) it starts with",
            ));
        }
        let needed = self.turn_credential_ttl + TURN_PUBLISH_LEAD;
        if overlap < needed {
            return Err(invalid(
                "key_overlap",
                format!(
                    "must be at least the TURN credentials' lifetime and the publication lead \
                     ({}) when TURN secrets rotate through turn_secret_db, or credentials made \
                     just before a rotation would be refused before they expire",
                    crate::rate::format_duration(needed)
                ),
            ));
        }
        Ok(())
    }
}

fn parse_call_ring_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_secs(1),
        Duration::from_secs(600),
        "must be between 1s and 10m",
    )
}

fn parse_turn_credential_ttl(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_secs(60),
        Duration::from_secs(7 * 86400),
        "must be between 1m and 7 days",
    )
}

/// Comma-separated `stun:`, `turn:` or `turns:` URLs, each without spaces or control
/// characters, at most 512 bytes, at most 16 of them.
fn parse_ice_servers(s: &str) -> Result<IceUrls, String> {
    let urls: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect();
    if urls.is_empty() || urls.len() > 16 {
        return Err("give 1 to 16 comma-separated URLs".into());
    }
    for url in &urls {
        let scheme_ok = url.starts_with("stun:") || is_turn(url);
        if !scheme_ok || url.len() > 512 || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "{url:?} is not a stun:, turn: or turns: URL (at most 512 bytes, no spaces)"
            ));
        }
    }
    Ok(IceUrls(urls))
}

/// A realm: 1 to 127 bytes (coturn's column), no control characters.
fn parse_turn_realm(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 127 || s.chars().any(char::is_control) {
        return Err("must be 1 to 127 bytes without control characters".into());
    }
    Ok(s.to_owned())
}
