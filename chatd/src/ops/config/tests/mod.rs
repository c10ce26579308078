use std::collections::HashMap;
use std::path::Path;

use chat_cli::layers::LayerError;
use clap::CommandFactory as _;

use super::*;

mod commands;

/// Loads a serving configuration from `args` (without the program name) over `env`.
pub(super) fn load_with(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let args = std::iter::once("chatd")
        .chain(args.iter().copied())
        .map(OsString::from);
    Config::load(args, move |k| env.get(k).cloned())
}

fn load_ok(args: &[&str], env: &[(&str, &str)]) -> Config {
    match load_with(args, env) {
        Ok(c) => c,
        Err(e) => panic!("load {args:?} {env:?}: {e}"),
    }
}

fn write_file(dir: &Path, text: &str) -> String {
    let path = dir.join("chatd.toml");
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

#[test]
fn defaults() {
    let c = load_ok(&[], &[]);
    assert_eq!(c.settings.storage.config, None);
    assert_eq!(c.settings.storage.data_dir, PathBuf::from("./chatd-data"));
    assert_eq!(c.settings.listen, "127.0.0.1:4433".parse().expect("addr"));
    assert_eq!(
        c.settings.admin_listen,
        "127.0.0.1:9464".parse().expect("addr")
    );
    assert_eq!(c.tls, None);
    assert_eq!(c.settings.log_format, LogFormat::Human);
    assert_eq!(c.settings.log, "info");
    assert_eq!(c.settings.max_connections, 20_000);
    assert_eq!(c.max_unauthenticated(), 5_000);
    assert_eq!(c.settings.max_unauthenticated_per_address, 64);
    assert_eq!(c.settings.max_authenticated_per_address, 4096);
    assert_eq!(c.settings.auth_deadline, Duration::from_secs(5));
    assert_eq!(c.settings.max_unauthenticated_bytes, 65_536);
    assert_eq!(c.settings.access_token_ttl, Duration::from_secs(900));
    assert_eq!(c.settings.shutdown_grace, Duration::from_secs(10));
    assert_eq!(c.settings.notifications_kept, 500);
    assert_eq!(c.settings.max_sessions_per_user, 100);
    assert_eq!(c.token_key_file, PathBuf::from("./chatd-data/token.key"));
    assert_eq!(c.token_key, None);
    assert_eq!(c.limits(), LimitRates::default());
    assert!(c.settings.storage.mongo_uri.is_none());
    assert!(c.settings.redis_url.is_none());
    assert!(!c.settings.steering);
    assert_eq!(c.settings.public_addr, None);
    assert_eq!(c.settings.presence_ttl, Duration::from_secs(15));
    assert_eq!(c.settings.heartbeat_interval, Duration::from_secs(5));
    assert_eq!(c.settings.store_timeout, Duration::from_millis(1500));
    assert_eq!(c.node_id.len(), 16);
    assert_ne!(
        c.node_id,
        load_ok(&[], &[]).node_id,
        "node id is random per start"
    );
}

/// How a setting's value is written in the configuration file.
#[derive(Debug, Clone, Copy)]
enum Toml {
    /// A TOML string: `key = "value"`.
    Str,
    /// A bare TOML value (a number, a boolean): `key = value`.
    Bare,
}

/// One setting present in every layer: its flag, environment variable and file key
/// (`table.key` inside a table), how the file writes its value, the values set in the file, the
/// environment and on the command line (each also what the setting reads back when its layer
/// wins), and how to read it back.
type Layered = (
    &'static str,
    &'static str,
    &'static str,
    Toml,
    [&'static str; 3],
    fn(&Config) -> String,
);

/// A configuration file that sets `key` to `value`.
fn file_setting(key: &str, toml: Toml, value: &str) -> String {
    let value = match toml {
        Toml::Str => format!("\"{value}\""),
        Toml::Bare => value.to_string(),
    };
    match key.split_once('.') {
        Some((table, key)) => format!("[{table}]\n{key} = {value}\n"),
        None => format!("{key} = {value}\n"),
    }
}

#[test]
fn flag_beats_env_beats_file_beats_default_for_every_setting() {
    use crate::store::sqlite::Durability;
    use Toml::{Bare, Str};
    let tmp = tempfile::tempdir().expect("tempdir");
    #[rustfmt::skip]
    let cases: &[Layered] = &[
        // flag, environment variable, file key, file syntax, [file, env, flag], read back
        ("--data-dir", "CHATD_DATA_DIR", "data_dir", Str, ["/file", "/env", "/flag"], |c| c.settings.storage.data_dir.display().to_string()),
        ("--listen", "CHATD_LISTEN", "listen", Str, ["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"], |c| c.settings.listen.to_string()),
        ("--admin-listen", "CHATD_ADMIN_LISTEN", "admin_listen", Str, ["127.0.0.1:11", "127.0.0.1:12", "127.0.0.1:13"], |c| c.settings.admin_listen.to_string()),
        ("--log-format", "CHATD_LOG_FORMAT", "log_format", Str, ["json", "human", "json"], |c| format!("{:?}", c.settings.log_format).to_lowercase()),
        ("--encryption-key-file", "CHATD_ENCRYPTION_KEY_FILE", "encryption_key_file", Str, ["/f.key", "/e.key", "/g.key"], |c| c.settings.storage.encryption_key_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("--previous-encryption-key-file", "CHATD_PREVIOUS_ENCRYPTION_KEY_FILE", "previous_encryption_key_file", Str, ["/p.key", "/q.key", "/r.key"], |c| c.settings.storage.previous_encryption_key_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("--durability", "CHATD_DURABILITY", "durability", Str, ["power-loss", "process-crash", "power-loss"], |c| match c.settings.storage.durability { Durability::ProcessCrash => "process-crash".into(), Durability::PowerLoss => "power-loss".into() }),
        ("--log", "CHATD_LOG", "log", Str, ["warn", "debug", "chatd=trace"], |c| c.settings.log.clone()),
        ("--node-id", "CHATD_NODE_ID", "node_id", Str, ["file-node", "env-node", "flag-node"], |c| c.node_id.clone()),
        ("--max-connections", "CHATD_MAX_CONNECTIONS", "max_connections", Bare, ["1", "2", "3"], |c| c.settings.max_connections.to_string()),
        ("--max-unauthenticated", "CHATD_MAX_UNAUTHENTICATED", "max_unauthenticated", Bare, ["1", "2", "3"], |c| c.max_unauthenticated().to_string()),
        ("--max-unauthenticated-per-address", "CHATD_MAX_UNAUTHENTICATED_PER_ADDRESS", "max_unauthenticated_per_address", Bare, ["1", "2", "3"], |c| c.settings.max_unauthenticated_per_address.to_string()),
        ("--retry-above-handshakes", "CHATD_RETRY_ABOVE_HANDSHAKES", "retry_above_handshakes", Bare, ["0", "2", "3"], |c| c.settings.retry_above_handshakes.to_string()),
        ("--max-authenticated-per-address", "CHATD_MAX_AUTHENTICATED_PER_ADDRESS", "max_authenticated_per_address", Bare, ["1", "2", "3"], |c| c.settings.max_authenticated_per_address.to_string()),
        ("--auth-deadline", "CHATD_AUTH_DEADLINE", "auth_deadline", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.auth_deadline)),
        ("--max-unauthenticated-bytes", "CHATD_MAX_UNAUTHENTICATED_BYTES", "max_unauthenticated_bytes", Bare, ["20000", "30000", "40000"], |c| c.settings.max_unauthenticated_bytes.to_string()),
        ("--access-token-ttl", "CHATD_ACCESS_TOKEN_TTL", "access_token_ttl", Str, ["1m", "2m", "3m"], |c| crate::rate::format_duration(c.settings.access_token_ttl)),
        ("--token-key-file", "CHATD_TOKEN_KEY_FILE", "token_key_file", Str, ["/f.key", "/e.key", "/g.key"], |c| c.token_key_file.display().to_string()),
        ("--key-rotation-interval", "CHATD_KEY_ROTATION_INTERVAL", "key_rotation_interval", Str, ["200h", "off", "300h"], |c| c.settings.keys.key_rotation_interval.to_string()),
        ("--key-overlap", "CHATD_KEY_OVERLAP", "key_overlap", Str, ["1h", "2h", "3h"], |c| crate::rate::format_duration(c.settings.keys.key_overlap)),
        ("--access-exempt", "CHATD_ACCESS_EXEMPT", "access_exempt", Str, ["10.0.0.0/8", "none", "::1/128,192.0.2.1/32"], |c| c.settings.access_exempt.to_string()),
        ("--access-refresh", "CHATD_ACCESS_REFRESH", "access_refresh", Str, ["1s", "3s", "250ms"], |c| crate::rate::format_duration(c.settings.access_refresh)),
        ("--notifications-kept", "CHATD_NOTIFICATIONS_KEPT", "notifications_kept", Bare, ["7", "8", "9"], |c| c.settings.notifications_kept.to_string()),
        ("--idle-timeout", "CHATD_IDLE_TIMEOUT", "idle_timeout", Str, ["20s", "40s", "1m"], |c| crate::rate::format_duration(c.settings.idle_timeout)),
        ("--migration", "CHATD_MIGRATION", "migration", Bare, ["false", "true", "false"], |c| c.settings.migration.to_string()),
        ("--resumption-tickets", "CHATD_RESUMPTION_TICKETS", "resumption_tickets", Bare, ["0", "10", "20"], |c| c.settings.resumption_tickets.to_string()),
        ("--ticket-lifetime", "CHATD_TICKET_LIFETIME", "ticket_lifetime", Str, ["1s", "2h", "24h"], |c| crate::rate::format_duration(c.settings.ticket_lifetime)),
        ("--shutdown-grace", "CHATD_SHUTDOWN_GRACE", "shutdown_grace", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.shutdown_grace)),
        ("--drain-reconnect-rate", "CHATD_DRAIN_RECONNECT_RATE", "drain_reconnect_rate", Bare, ["1", "2", "3"], |c| c.settings.drain_reconnect_rate.to_string()),
        ("--limit-send", "CHATD_LIMIT_SEND", "limits.send", Str, ["1/s burst 1", "2/s burst 2", "3/s burst 3"], |c| c.limits().send.to_string()),
        ("--limit-request", "CHATD_LIMIT_REQUEST", "limits.request", Str, ["1/s burst 1", "2/s burst 2", "3/s burst 3"], |c| c.limits().request.to_string()),
        ("--limit-address-request", "CHATD_LIMIT_ADDRESS_REQUEST", "limits.address_request", Str, ["1/s burst 1", "2/s burst 2", "3/s burst 3"], |c| c.limits().address_request.to_string()),
        ("--limit-login-account", "CHATD_LIMIT_LOGIN_ACCOUNT", "limits.login_account", Str, ["1/m burst 1", "2/m burst 2", "3/m burst 3"], |c| c.limits().login_account.to_string()),
        ("--limit-login-account-address", "CHATD_LIMIT_LOGIN_ACCOUNT_ADDRESS", "limits.login_account_address", Str, ["1/m burst 1", "2/m burst 2", "3/m burst 3"], |c| c.limits().login_account_address.to_string()),
        ("--limit-login-address", "CHATD_LIMIT_LOGIN_ADDRESS", "limits.login_address", Str, ["1/m burst 1", "2/m burst 2", "3/m burst 3"], |c| c.limits().login_address.to_string()),
        ("--limit-typing", "CHATD_LIMIT_TYPING", "limits.typing", Str, ["1/s burst 1", "2/s burst 2", "3/s burst 3"], |c| c.limits().typing.to_string()),
        ("--limit-upload", "CHATD_LIMIT_UPLOAD", "limits.upload", Str, ["1/s burst 1", "2/s burst 2", "3/s burst 3"], |c| c.limits().upload.to_string()),
        ("--limit-call-signal", "CHATD_LIMIT_CALL_SIGNAL", "limits.call_signal", Str, ["1/s burst 1", "2/s burst 2", "3/s burst 3"], |c| c.limits().call_signal.to_string()),
        ("--max-file-size", "CHATD_MAX_FILE_SIZE", "max_file_size", Str, ["1024", "2048", "4096"], |c| c.files().max_file_bytes.to_string()),
        ("--upload-quota", "CHATD_UPLOAD_QUOTA", "upload_quota", Str, ["1024", "2048", "4096"], |c| c.files().upload_quota_bytes.to_string()),
        ("--file-gc-grace", "CHATD_FILE_GC_GRACE", "file_gc_grace", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.files().gc_grace)),
        ("--file-gc-interval", "CHATD_FILE_GC_INTERVAL", "file_gc_interval", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.files().gc_interval)),
        ("--files-https-listen", "CHATD_FILES_HTTPS_LISTEN", "files_https_listen", Str, ["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"], |c| c.files_https.as_ref().map(|h| h.listen.to_string()).unwrap_or_default()),
        ("--file-url-ttl", "CHATD_FILE_URL_TTL", "file_url_ttl", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.file_url_ttl)),
        ("--call-ring-timeout", "CHATD_CALL_RING_TIMEOUT", "call_ring_timeout", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.calls.call_ring_timeout)),
        ("--ice-servers", "CHATD_ICE_SERVERS", "ice_servers", Str, ["stun:a:1", "stun:b:2", "stun:c:3,stun:d:4"], |c| c.ice_urls().join(",")),
        ("--turn-secret-file", "CHATD_TURN_SECRET_FILE", "turn_secret_file", Str, ["/file", "/env", "/flag"], |c| c.settings.calls.turn_secret_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("--turn-credential-ttl", "CHATD_TURN_CREDENTIAL_TTL", "turn_credential_ttl", Str, ["1m", "2m", "3m"], |c| crate::rate::format_duration(c.settings.calls.turn_credential_ttl)),
        ("--mongo-uri", "CHATD_MONGO_URI", "mongo_uri", Str, ["mongodb://f:1", "mongodb://e:2", "mongodb+srv://g"], |c| c.settings.storage.mongo_uri.as_ref().map(|u| u.as_str().to_owned()).unwrap_or_default()),
        ("--redis-url", "CHATD_REDIS_URL", "redis_url", Str, ["redis://f:1", "redis://e:2", "redis+cluster://g:3,h:4"], |c| c.settings.redis_url.as_ref().map(|u| u.uri.as_str().to_owned()).unwrap_or_default()),
        ("--steering", "CHATD_STEERING", "steering", Bare, ["true", "false", "true"], |c| c.settings.steering.to_string()),
        ("--require-admin-two-factor", "CHATD_REQUIRE_ADMIN_TWO_FACTOR", "require_admin_two_factor", Bare, ["true", "false", "true"], |c| c.settings.require_admin_two_factor.to_string()),
        ("--max-sessions-per-user", "CHATD_MAX_SESSIONS_PER_USER", "max_sessions_per_user", Bare, ["7", "8", "9"], |c| c.settings.max_sessions_per_user.to_string()),
        ("--public-addr", "CHATD_PUBLIC_ADDR", "public_addr", Str, ["file.example:1", "10.0.0.2:2", "[::1]:3"], |c| c.settings.public_addr.clone().unwrap_or_default()),
        ("--presence-ttl", "CHATD_PRESENCE_TTL", "presence_ttl", Str, ["20s", "30s", "40s"], |c| crate::rate::format_duration(c.settings.presence_ttl)),
        ("--heartbeat-interval", "CHATD_HEARTBEAT_INTERVAL", "heartbeat_interval", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.heartbeat_interval)),
        ("--store-timeout", "CHATD_STORE_TIMEOUT", "store_timeout", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.store_timeout)),
        ("--smtp-port", "CHATD_SMTP_PORT", "smtp_port", Bare, ["25", "587", "2525"], |c| c.settings.delivery.smtp_port.map(|p| p.to_string()).unwrap_or_default()),
        ("--smtp-tls", "CHATD_SMTP_TLS", "smtp_tls", Str, ["tls", "starttls", "tls"], |c| format!("{:?}", c.settings.delivery.smtp_tls).to_lowercase()),
        ("--smtp-user", "CHATD_SMTP_USER", "smtp_user", Str, ["f", "e", "g"], |c| c.settings.delivery.smtp_user.clone().unwrap_or_default()),
        ("--smtp-password-file", "CHATD_SMTP_PASSWORD_FILE", "smtp_password_file", Str, ["/file", "/env", "/flag"], |c| c.settings.delivery.smtp_password_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("--smtp-ca", "CHATD_SMTP_CA", "smtp_ca", Str, ["/file", "/env", "/flag"], |c| c.settings.delivery.smtp_ca.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("--smtp-timeout", "CHATD_SMTP_TIMEOUT", "smtp_timeout", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.delivery.smtp_timeout)),
        ("--email-from", "CHATD_EMAIL_FROM", "email_from", Str, ["f@x.test", "e@x.test", "g@x.test"], |c| c.settings.delivery.email_from.clone().unwrap_or_default()),
        ("--email-unverified", "CHATD_EMAIL_UNVERIFIED", "email_unverified", Bare, ["true", "false", "true"], |c| c.settings.delivery.email_unverified.to_string()),
        ("--verification-code-lifetime", "CHATD_VERIFICATION_CODE_LIFETIME", "verification_code_lifetime", Str, ["1h", "2h", "3h"], |c| crate::rate::format_duration(c.settings.delivery.verification_code_lifetime)),
        ("--reset-code-lifetime", "CHATD_RESET_CODE_LIFETIME", "reset_code_lifetime", Str, ["1m", "2m", "3m"], |c| crate::rate::format_duration(c.settings.delivery.reset_code_lifetime)),
        ("--webhook-secret-file", "CHATD_WEBHOOK_SECRET_FILE", "webhook_secret_file", Str, ["/file", "/env", "/flag"], |c| c.settings.delivery.webhook_secret_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("--webhook-ca", "CHATD_WEBHOOK_CA", "webhook_ca", Str, ["/file", "/env", "/flag"], |c| c.settings.delivery.webhook_ca.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
        ("--webhook-timeout", "CHATD_WEBHOOK_TIMEOUT", "webhook_timeout", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.delivery.webhook_timeout)),
        ("--delivery-attempts", "CHATD_DELIVERY_ATTEMPTS", "delivery_attempts", Bare, ["1", "2", "3"], |c| c.settings.delivery.delivery_attempts.to_string()),
        ("--delivery-retry-base", "CHATD_DELIVERY_RETRY_BASE", "delivery_retry_base", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.delivery.delivery_retry_base)),
        ("--delivery-retry-max", "CHATD_DELIVERY_RETRY_MAX", "delivery_retry_max", Str, ["1m", "2m", "3m"], |c| crate::rate::format_duration(c.settings.delivery.delivery_retry_max)),
        ("--delivery-poll", "CHATD_DELIVERY_POLL", "delivery_poll", Str, ["1s", "2s", "3s"], |c| crate::rate::format_duration(c.settings.delivery.delivery_poll)),
    ];
    let default = load_ok(&[], &[]);
    for &(flag, env, file, toml, [file_v, env_v, flag_v], get) in cases {
        let path = write_file(tmp.path(), &file_setting(file, toml, file_v));
        let flag = format!("{flag}={flag_v}");
        let all = load_ok(&["--config", &path, &flag], &[(env, env_v)]);
        assert_eq!(get(&all), flag_v, "{file}: flag wins");
        let env_file = load_ok(&["--config", &path], &[(env, env_v)]);
        assert_eq!(get(&env_file), env_v, "{file}: env beats file");
        let file_only = load_ok(&["--config", &path], &[]);
        assert_eq!(get(&file_only), file_v, "{file}: file beats default");
        if file != "node_id" {
            assert_eq!(get(&load_ok(&[], &[])), get(&default), "{file}: default");
        }
    }
    // Every setting with an environment variable is covered above (TLS paths are tested with
    // their pairing rule, the public file url, the SMTP host, the webhooks and the shared
    // secrets' and the master key's schedules and database with their own rules, the config
    // file path itself has no file layer).
    for var in env_vars(&Cli::command()) {
        let covered = cases.iter().any(|&(_, env, ..)| env == var)
            || [
                "CHATD_CONFIG",
                "CHATD_TLS_CERT",
                "CHATD_TLS_KEY",
                "CHATD_FILES_PUBLIC_URL",
                "CHATD_SMTP_HOST",
                "CHATD_WEBHOOKS",
                "CHATD_WEBHOOK_SECRET_ROTATION_INTERVAL",
                "CHATD_TURN_SECRET_ROTATION_INTERVAL",
                "CHATD_ENCRYPTION_KEY_ROTATION_INTERVAL",
                "CHATD_TURN_SECRET_DB",
                "CHATD_TURN_REALM",
            ]
            .contains(&var.as_str());
        assert!(covered, "{var} has no precedence test");
    }
}

/// The variables of `cmd`'s own arguments.
fn env_vars(cmd: &clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .filter_map(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned())
        .collect()
}

fn invoke(args: &[&str], env: &[(&str, &str)]) -> Result<Invocation, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let args = std::iter::once("chatd")
        .chain(args.iter().copied())
        .map(OsString::from);
    Invocation::load(args, move |k| env.get(k).cloned())
}

fn help_of(args: &[&str]) -> String {
    match invoke(args, &[]) {
        Err(ConfigError::Layers(LayerError::Cli(e))) => {
            assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
            e.render().to_string()
        }
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn tls_paths_layer_and_must_come_in_pairs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = write_file(
        tmp.path(),
        "tls_cert = \"/f/cert.pem\"\ntls_key = \"/f/key.pem\"\n",
    );
    let c = load_ok(
        &["--config", &path, "--tls-cert", "/flag/cert.pem"],
        &[("CHATD_TLS_KEY", "/env/key.pem")],
    );
    assert_eq!(
        c.tls,
        Some(TlsPaths {
            cert: "/flag/cert.pem".into(),
            key: "/env/key.pem".into()
        })
    );
    // Unauthenticated connections stay below the global cap.
    let c = load_ok(&["--max-connections", "100"], &[]);
    assert_eq!(c.max_unauthenticated(), 25);
    let err = load_with(
        &["--max-connections", "100", "--max-unauthenticated", "100"],
        &[],
    )
    .expect_err("unauthenticated cap at the global cap");
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                setting: "max_unauthenticated",
                ..
            }
        ),
        "{err:?}"
    );
    let err = load_with(&["--tls-cert", "/c.pem"], &[]).expect_err("cert alone");
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                setting: "tls_key",
                ..
            }
        ),
        "{err}"
    );
    let err = load_with(&[], &[("CHATD_TLS_KEY", "/k.pem")]).expect_err("key alone");
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                setting: "tls_cert",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn config_file_path_from_environment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = write_file(tmp.path(), "max_connections = 7\n");
    let c = load_ok(&[], &[("CHATD_CONFIG", &path)]);
    assert_eq!(c.settings.max_connections, 7);
    assert_eq!(c.settings.storage.config, Some(PathBuf::from(&path)));
    let c = load_ok(&["serve", "--config", &path], &[]);
    assert_eq!(c.settings.max_connections, 7);
}

#[test]
fn key_overlap_outlives_access_tokens_and_the_interval_the_overlap() {
    let load = |args: &[&str]| {
        let mut all = vec!["chatd"];
        all.extend_from_slice(args);
        Config::load(all.iter().map(std::ffi::OsString::from), |_| None)
    };
    let c = load(&[]).expect("defaults");
    assert_eq!(c.settings.keys.key_overlap, Duration::from_secs(192 * 3600));
    assert_eq!(
        c.settings.keys.key_rotation_interval.0,
        Some(Duration::from_secs(720 * 3600))
    );
    let err =
        load(&["--access-token-ttl=10m", "--key-overlap=10m"]).expect_err("overlap too short");
    assert!(err.to_string().contains("key_overlap"), "{err}");
    assert!(
        load(&[
            "--access-token-ttl=10m",
            "--key-overlap=11m",
            "--key-rotation-interval=off"
        ])
        .is_ok()
    );
    let err = load(&["--key-overlap=2h", "--key-rotation-interval=1h"])
        .expect_err("interval below overlap");
    assert!(err.to_string().contains("key_rotation_interval"), "{err}");
    assert!(load(&["--key-rotation-interval=nope"]).is_err());
}

/// The master key's schedule: off by default; it needs both key files (chatd writes them) and
/// is at least the overlap.
#[test]
fn the_master_key_schedule_needs_both_key_files() {
    let load = |args: &[&str]| {
        let mut all = vec!["chatd"];
        all.extend_from_slice(args);
        Config::load(all.iter().map(std::ffi::OsString::from), |_| None)
    };
    let c = load(&[]).expect("defaults");
    assert_eq!(c.settings.keys.master().interval, None);
    let every = "--encryption-key-rotation-interval=400h";
    let key = "--encryption-key-file=/k/master.key";
    let previous = "--previous-encryption-key-file=/k/master.key.previous";
    for (args, missing) in [
        (vec![every], "needs encryption_key_file"),
        (vec![every, key], "needs previous_encryption_key_file"),
        (
            vec![every, key, previous, "--key-overlap=500h"],
            "at least key_overlap",
        ),
    ] {
        let err = load(&args).expect_err("refused");
        assert!(
            err.to_string().contains("encryption_key_rotation_interval")
                && err.to_string().contains(missing),
            "{err}"
        );
    }
    let c = load(&[every, key, previous]).expect("both files");
    assert_eq!(
        c.settings.keys.master().interval,
        Some(Duration::from_secs(400 * 3600))
    );
    assert_eq!(
        c.settings.keys.master().overlap,
        c.settings.keys.key_overlap
    );
}

#[test]
fn token_key_file_defaults_into_the_configured_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = write_file(tmp.path(), "data_dir = \"/srv/chat\"\n");
    let c = load_ok(&["--config", &path], &[]);
    assert_eq!(c.token_key_file, PathBuf::from("/srv/chat/token.key"));
}

#[test]
fn token_key_only_from_the_environment() {
    let hex = "a1".repeat(32);
    let c = load_ok(&[], &[(TOKEN_KEY_ENV, &hex)]);
    assert_eq!(c.token_key.as_ref().map(|k| k.to_hex()), Some(hex.clone()));
    let err = load_with(&[], &[(TOKEN_KEY_ENV, "abcd")]).expect_err("short");
    assert!(
        matches!(&err, ConfigError::TokenKey(_)) && err.to_string().contains(TOKEN_KEY_ENV),
        "{err}"
    );
    // There is no flag for it.
    let err = load_with(&["--token-key", &hex], &[]).expect_err("no such flag");
    assert!(
        matches!(err, ConfigError::Layers(LayerError::Cli(_))),
        "{err}"
    );
}

#[test]
fn bad_values_name_their_source() {
    let err = load_with(&[], &[("CHATD_LISTEN", "not-an-address")]).expect_err("env");
    match &err {
        ConfigError::Layers(LayerError::Env { var, message }) => {
            assert_eq!(var, "CHATD_LISTEN");
            assert!(message.contains("not-an-address"), "{message}");
        }
        other => panic!("{other}"),
    }
    let err = load_with(&[], &[("CHATD_LIMIT_SEND", "fast")]).expect_err("env rate");
    assert!(
        matches!(&err, ConfigError::Layers(LayerError::Env { var, .. }) if var == "CHATD_LIMIT_SEND"),
        "{err}"
    );
    // Empty variables count as unset.
    assert_eq!(
        load_ok(&[], &[("CHATD_LISTEN", "")]).settings.listen,
        "127.0.0.1:4433".parse().expect("addr")
    );

    // Values checked by their parser: the flag is named.
    let flag_cases: &[(&[&str], &str)] = &[
        (&["--listen", "nope"], "--listen"),
        (&["--access-token-ttl", "16m"], "between 1s and 15m"),
        (&["--access-token-ttl", "0s"], "between 1s and 15m"),
        (&["--log", "chatd=loud"], "--log"),
        (&["--node-id", "has space"], "--node-id"),
        (&["--max-connections", "0"], "--max-connections"),
        (&["--auth-deadline", "50ms"], "between 100ms and 10m"),
        (
            &["--max-unauthenticated-bytes", "1000"],
            "--max-unauthenticated-bytes",
        ),
        (&["--mongo-uri", "postgres://x"], "unsupported scheme"),
        (&["--mongo-uri", "mongodb://"], "has no host"),
        (&["--redis-url", "localhost:6379"], "--redis-url"),
        (&["--redis-url", "rediss://cache:6380"], "TLS"),
        (&["--redis-url", "redis://a:1,b:2"], "--redis-url"),
        (&["--public-addr", "nohost"], "--public-addr"),
        (&["--public-addr", "host:0"], "--public-addr"),
        (&["--public-addr", "::1:4433"], "--public-addr"),
        (&["--heartbeat-interval", "50ms"], "at least 100ms"),
        (&["--store-timeout", "10ms"], "between 100ms and 60s"),
        (&["--data-dir", ""], "--data-dir"),
        (&["--max-file-size", "0"], "at least 1 byte"),
        (&["--max-file-size", "10 parsecs"], "--max-file-size"),
        (&["--upload-quota", "lots"], "--upload-quota"),
        (&["--file-url-ttl", "200h"], "between 1s and 7 days"),
        (&["--file-gc-interval", "10ms"], "at least 100ms"),
        (
            &["--files-public-url", "ftp://cdn.example"],
            "--files-public-url",
        ),
        (
            &["--files-public-url", "https://cdn.example/?x=1"],
            "--files-public-url",
        ),
    ];
    for (args, needle) in flag_cases {
        match load_with(args, &[]) {
            Err(ConfigError::Layers(LayerError::Cli(e))) => {
                let text = e.to_string();
                assert!(text.contains(needle), "{args:?}: {text}");
            }
            other => panic!("{args:?}: {other:?}"),
        }
    }
    // Rules between settings name the setting.
    match load_with(&["--presence-ttl", "5s", "--heartbeat-interval", "3s"], &[]) {
        Err(ConfigError::Invalid { setting, .. }) => assert_eq!(setting, "presence_ttl"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_file_errors_name_the_file_line_and_column() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("missing.toml");
    let err = load_with(&["--config", &missing.to_string_lossy()], &[]).expect_err("missing");
    assert!(
        matches!(err, ConfigError::Layers(LayerError::ReadFile { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("missing.toml"));

    let cases: &[(&str, (usize, usize), &str)] = &[
        ("lisen = \"127.0.0.1:1\"\n", (1, 1), "lisen"),
        ("[limits]\nsnd = \"1/s\"\n", (2, 1), "limits.snd"),
        ("\n\nlisten = \"nowhere\"\n", (3, 10), "nowhere"),
        ("access_token_ttl = \"forever\"\n", (1, 20), "forever"),
        ("[limits]\nsend = \"lots\"\n", (2, 8), "lots"),
        ("log_format = \"xml\"\n", (1, 14), "xml"),
        ("max_connections = -1\n", (1, 19), "-1"),
        ("max_connections = 0\n", (1, 19), "max_connections"),
        ("this is not toml", (1, 6), ""),
        ("listen = \"127.0.0.1:1\"\nlog = \"info\n", (2, 12), ""),
    ];
    for (text, (line, column), needle) in cases {
        let path = write_file(tmp.path(), text);
        match load_with(&["--config", &path], &[]) {
            Err(ConfigError::Layers(LayerError::File {
                path: p,
                position,
                message,
            })) => {
                assert_eq!(p, PathBuf::from(&path));
                assert_eq!(
                    (position.line, position.column),
                    (*line, *column),
                    "{text:?}: {message}"
                );
                assert!(message.contains(needle), "{text:?}: {message}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn steering_is_a_flag_with_an_optional_value() {
    assert!(load_ok(&["--steering"], &[]).settings.steering);
    assert!(!load_ok(&["--steering=false"], &[]).settings.steering);
    assert!(load_ok(&["serve", "--steering"], &[]).settings.steering);
    assert!(
        load_ok(&[], &[("CHATD_STEERING", "true")])
            .settings
            .steering
    );
    let err = load_with(&[], &[("CHATD_STEERING", "maybe")]).expect_err("bad bool");
    assert!(
        matches!(&err, ConfigError::Layers(LayerError::Env { var, .. }) if var == "CHATD_STEERING"),
        "{err}"
    );
}

#[test]
fn the_redis_url_is_parsed_once_and_kept() {
    let c = load_ok(&["--redis-url", "redis+cluster://a:7000,b:7001"], &[]);
    let url = c.settings.redis_url.expect("redis url");
    assert!(url.target.is_cluster());
    assert_eq!(url.to_string(), "redis+cluster://a:7000,b:7001");
}

#[test]
fn sizes_take_binary_and_decimal_units() {
    assert_eq!(parse_size("512"), Ok(512));
    assert_eq!(parse_size("100MiB"), Ok(100 << 20));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert_eq!(parse_size("2 MB"), Ok(2_000_000));
    assert!(parse_size("MiB").is_err());
    assert!(parse_size("10 parsecs").is_err());
    assert!(parse_size("99999999999TiB").is_err());
}

#[test]
fn the_public_file_url_needs_the_https_server() {
    let on = "--files-https-listen=127.0.0.1:8443";
    let c = load_ok(&[on], &[]);
    let https = c.files_https.expect("https on");
    assert_eq!(https.public_url, None, "default: the bound address");
    let c = load_ok(&[on, "--files-public-url=https://cdn.example/chat/"], &[]);
    assert_eq!(
        c.files_https.expect("on").public_url.as_deref(),
        Some("https://cdn.example/chat")
    );
    assert!(load_ok(&[], &[]).files_https.is_none());
    match load_with(&["--files-public-url=https://cdn.example"], &[]) {
        Err(ConfigError::Invalid { setting, .. }) => assert_eq!(setting, "files_public_url"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn turn_servers_need_a_secret_that_is_never_a_flag() {
    use crate::calls::turn::TurnSecret;
    let turn = ["--ice-servers", "stun:s.example:3478,turn:t.example:3478"];
    let err = load_with(&turn, &[]).expect_err("no secret");
    assert!(err.to_string().contains("turn_secret_file"), "{err}");
    let c = load_ok(&turn, &[(super::TURN_SECRET_ENV, "s3cret")]);
    assert_eq!(c.ice_urls(), ["stun:s.example:3478", "turn:t.example:3478"]);
    assert_eq!(
        c.load_turn_secret().expect("secret"),
        TurnSecret::new("s3cret")
    );
    // From the file, its trailing newline dropped; an empty or missing file is refused.
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("turn.secret");
    std::fs::write(&file, "from-file\n").expect("write");
    let path = file.to_string_lossy().into_owned();
    let c = load_ok(&[turn[0], turn[1], "--turn-secret-file", &path], &[]);
    assert_eq!(
        c.load_turn_secret().expect("secret"),
        TurnSecret::new("from-file")
    );
    std::fs::write(&file, "\n").expect("write");
    assert!(c.load_turn_secret().is_err());
    std::fs::remove_file(&file).expect("remove");
    assert!(c.load_turn_secret().is_err());
    // STUN alone needs none, and there is no flag for the secret itself.
    assert!(load_with(&["--ice-servers", "stun:s.example:3478"], &[]).is_ok());
    assert!(load_with(&["--turn-secret", "x"], &[]).is_err());
    for bad in ["http://x", "stun:a b", "", "turn:x\u{7}"] {
        assert!(load_with(&["--ice-servers", bad], &[]).is_err(), "{bad:?}");
    }
    assert!(load_with(&["--call-ring-timeout", "0s"], &[]).is_err());
    assert_eq!(
        load_ok(&[], &[]).settings.calls.call_ring_timeout,
        std::time::Duration::from_secs(30)
    );
}

/// coturn's database needs its realm and the TURN secret; the overlap outlives credentials made
/// just before a rotation; a schedule of the shared secrets needs what it rotates (webhooks) and
/// the way TURN servers learn the secrets it makes (the database).
#[test]
fn shared_secret_schedules_and_coturn_s_database_follow_their_rules() {
    let setting = |r: Result<Config, ConfigError>| match r {
        Err(ConfigError::Invalid { setting, .. }) => setting,
        other => panic!("{other:?}"),
    };
    let secret = (super::TURN_SECRET_ENV, "s3cret");
    let db = ("CHATD_TURN_SECRET_DB", "/var/lib/turn/turndb");
    let realm = "--turn-realm=chat.example";
    assert_eq!(setting(load_with(&[realm], &[secret])), "turn_realm");
    assert_eq!(setting(load_with(&[], &[secret, db])), "turn_realm");
    assert_eq!(setting(load_with(&[realm], &[db])), "turn_secret_db");
    assert_eq!(
        setting(load_with(
            &[realm, "--turn-credential-ttl=2h", "--key-overlap=2h"],
            &[secret, db]
        )),
        "key_overlap"
    );
    assert!(load_with(&["--turn-realm="], &[secret, db]).is_err());
    let c = load_ok(&[realm], &[secret, db]);
    let published = c.turn_secret_db().expect("a database");
    assert_eq!(published.path(), Path::new("/var/lib/turn/turndb"));
    // The schedules: off by default, the TURN one only with the database.
    assert_eq!(c.settings.keys.settings().turn_rotation_interval, None);
    assert_eq!(c.settings.keys.settings().webhook_rotation_interval, None);
    let turn_every = ("CHATD_TURN_SECRET_ROTATION_INTERVAL", "400h");
    assert_eq!(
        setting(load_with(&[], &[secret, turn_every])),
        "turn_secret_rotation_interval"
    );
    let c = load_ok(&[realm], &[secret, db, turn_every]);
    assert_eq!(
        c.settings.keys.settings().turn_rotation_interval,
        Some(Duration::from_secs(400 * 3600))
    );
    assert_eq!(
        setting(load_with(
            &[realm, "--turn-secret-rotation-interval=1h"],
            &[secret, db]
        )),
        "turn_secret_rotation_interval",
        "below the overlap"
    );
    let webhook_every = "--webhook-secret-rotation-interval=300h";
    assert_eq!(
        setting(load_with(&[webhook_every], &[])),
        "webhook_secret_rotation_interval"
    );
    let hooks = "--webhooks=mention=https://gw.example/m";
    let c = load_ok(
        &[hooks],
        &[
            (super::WEBHOOK_SECRET_ENV, "whsec"),
            ("CHATD_WEBHOOK_SECRET_ROTATION_INTERVAL", "300h"),
        ],
    );
    assert_eq!(
        c.settings.keys.settings().webhook_rotation_interval,
        Some(Duration::from_secs(300 * 3600))
    );
    assert!(
        load_with(
            &[hooks, webhook_every],
            &[(super::WEBHOOK_SECRET_ENV, "whsec")]
        )
        .is_ok()
    );
}
