//! The settings of email and webhook delivery (protocol.md section 16): the SMTP server, the
//! webhooks per event kind, and the outbox's retries. Flattened into the server's settings, so
//! they take flags, variables and file keys like every other setting. Secrets (the SMTP password,
//! the webhook signing secret) are never flags: a variable or a file.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use chatproto::pb;

use super::{ConfigError, invalid, parse_duration_within};

/// The environment variable that may carry the SMTP password.
pub const SMTP_PASSWORD_ENV: &str = "CHATD_SMTP_PASSWORD";

/// The environment variable that may carry the webhook signing secret.
pub const WEBHOOK_SECRET_ENV: &str = "CHATD_WEBHOOK_SECRET";

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTlsArg {
    /// Plain connection upgraded with STARTTLS (port 587), which the server must offer.
    Starttls,
    /// TLS from the first byte (implicit TLS, port 465).
    Tls,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS after connecting in plain text; refused when the server does not offer it.
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

/// Email delivery: the SMTP server and the sender.
#[derive(Clone)]
pub struct EmailSettings {
    /// SMTP host (also the name its certificate must carry).
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// STARTTLS or implicit TLS.
    pub tls: SmtpTls,
    /// User name and password, when the server wants authentication.
    pub credentials: Option<(String, String)>,
    /// An extra CA certificate (PEM) besides the public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// How long one delivery may take.
    pub timeout: Duration,
    /// The From mailbox.
    pub from: String,
    /// The operator vouches for every account's address: digests and password resets also go
    /// to addresses nobody verified (protocol.md 16.2, 18.1).
    pub unverified: bool,
    /// How long an email verification code stays good.
    pub verification_code_lifetime: Duration,
    /// How long a password reset code stays good.
    pub reset_code_lifetime: Duration,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("from", &self.from)
            .field("unverified", &self.unverified)
            .field(
                "verification_code_lifetime",
                &self.verification_code_lifetime,
            )
            .field("reset_code_lifetime", &self.reset_code_lifetime)
            .finish_non_exhaustive()
    }
}

/// One webhook: the URL called for one kind of notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// The notification kind it is called for.
    pub kind: pb::NotificationKind,
    /// An http:// or https:// URL.
    pub url: String,
}

/// Webhook delivery.
#[derive(Clone)]
pub struct WebhookSettings {
    /// The URL per notification kind.
    pub endpoints: Vec<WebhookEndpoint>,
    /// The signing secret.
    pub secret: Vec<u8>,
    /// An extra CA certificate (PEM) besides the public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// How long one call may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("endpoints", &self.endpoints)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The outbox's settings; email and webhooks are each off when `None`.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// Email digests.
    pub email: Option<EmailSettings>,
    /// Webhooks.
    pub webhooks: Option<WebhookSettings>,
    /// Attempts before an entry dies.
    pub attempts: u32,
    /// The first retry's delay.
    pub retry_base: Duration,
    /// The longest delay between retries.
    pub retry_max: Duration,
    /// How often due entries are looked for.
    pub poll: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            email: None,
            webhooks: None,
            attempts: 8,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            poll: Duration::from_secs(2),
        }
    }
}

/// The notification kind a webhook is named by in settings (`mention`, `reply`,
/// `private_message`, `missed_call`, `added_to_chat`).
pub fn webhook_kind(name: &str) -> Option<pb::NotificationKind> {
    let kind = pb::NotificationKind::from_str_name(&format!(
        "NOTIFICATION_KIND_{}",
        name.to_ascii_uppercase()
    ))?;
    (kind != pb::NotificationKind::Unspecified).then_some(kind)
}

/// The lowercase name of a notification kind, as in settings and webhook bodies.
pub fn kind_name(kind: pb::NotificationKind) -> String {
    kind.as_str_name()
        .trim_start_matches("NOTIFICATION_KIND_")
        .to_ascii_lowercase()
}

/// The webhooks of `--webhooks`, each checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrls(pub Vec<WebhookEndpoint>);

/// The delivery settings.
#[derive(Debug, Clone, Args)]
pub struct Delivery {
    /// SMTP server (host name) that sends email digests of missed notifications. Email is off
    /// when unset. Needs --email-from and --files-https-listen (the one-click unsubscribe link
    /// leads there)
    #[arg(long, env = "CHATD_SMTP_HOST", value_name = "HOST", value_parser = parse_host, help_heading = "Email and webhooks")]
    pub smtp_host: Option<String>,

    /// SMTP port. Default: 587 with --smtp-tls=starttls, 465 with --smtp-tls=tls
    #[arg(
        long,
        env = "CHATD_SMTP_PORT",
        value_name = "PORT",
        help_heading = "Email and webhooks"
    )]
    pub smtp_port: Option<u16>,

    /// How the SMTP connection is secured: starttls or tls (implicit)
    #[arg(
        long,
        env = "CHATD_SMTP_TLS",
        value_enum,
        default_value = "starttls",
        help_heading = "Email and webhooks"
    )]
    pub smtp_tls: SmtpTlsArg,

    /// SMTP user name; the password comes from CHATD_SMTP_PASSWORD or --smtp-password-file.
    /// No authentication when unset
    #[arg(
        long,
        env = "CHATD_SMTP_USER",
        value_name = "NAME",
        help_heading = "Email and webhooks"
    )]
    pub smtp_user: Option<String>,

    /// File holding the SMTP password (it is never a flag)
    #[arg(
        long,
        env = "CHATD_SMTP_PASSWORD_FILE",
        value_name = "FILE",
        help_heading = "Email and webhooks"
    )]
    pub smtp_password_file: Option<PathBuf>,

    /// PEM file of a CA certificate the SMTP server's certificate may chain to, besides the
    /// public roots
    #[arg(
        long,
        env = "CHATD_SMTP_CA",
        value_name = "FILE",
        help_heading = "Email and webhooks"
    )]
    pub smtp_ca: Option<PathBuf>,

    /// How long one SMTP delivery may take (1s to 5m)
    #[arg(long, env = "CHATD_SMTP_TIMEOUT", value_name = "DURATION", value_parser = parse_io_timeout, default_value = "30s", help_heading = "Email and webhooks")]
    pub smtp_timeout: Duration,

    /// The From address of the emails, e.g. "Chat <chat@example.org>"
    #[arg(long, env = "CHATD_EMAIL_FROM", value_name = "MAILBOX", value_parser = parse_mailbox, help_heading = "Email and webhooks")]
    pub email_from: Option<String>,

    /// Treat every account's address as its owner's without verification: digests and
    /// password-reset codes then also go to addresses nobody verified. An operator's override,
    /// only where admins make the accounts or the addresses are otherwise known to be their
    /// owners'. Write --email-unverified or --email-unverified=false
    #[arg(long, env = "CHATD_EMAIL_UNVERIFIED", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_value = "false", default_missing_value = "true", action = clap::ArgAction::Set, help_heading = "Email and webhooks")]
    pub email_unverified: bool,

    /// How long an emailed email-verification code stays good (1s to 168h)
    #[arg(long, env = "CHATD_VERIFICATION_CODE_LIFETIME", value_name = "DURATION", value_parser = parse_verification_lifetime, default_value = "24h", help_heading = "Email and webhooks")]
    pub verification_code_lifetime: Duration,

    /// How long an emailed password-reset code stays good (1s to 24h)
    #[arg(long, env = "CHATD_RESET_CODE_LIFETIME", value_name = "DURATION", value_parser = parse_reset_lifetime, default_value = "15m", help_heading = "Email and webhooks")]
    pub reset_code_lifetime: Duration,

    /// Webhooks called for the notifications of users who turned webhooks on, as
    /// comma-separated KIND=URL pairs, KIND one of mention, reply, private_message,
    /// missed_call, added_to_chat; URL http:// or https://. Calls are signed with the secret
    /// from CHATD_WEBHOOK_SECRET or --webhook-secret-file
    #[arg(long, env = "CHATD_WEBHOOKS", value_name = "KIND=URL,...", value_parser = parse_webhooks, help_heading = "Email and webhooks")]
    pub webhooks: Option<WebhookUrls>,

    /// File holding the webhook signing secret (it is never a flag)
    #[arg(
        long,
        env = "CHATD_WEBHOOK_SECRET_FILE",
        value_name = "FILE",
        help_heading = "Email and webhooks"
    )]
    pub webhook_secret_file: Option<PathBuf>,

    /// PEM file of a CA certificate webhook servers' certificates may chain to, besides the
    /// public roots
    #[arg(
        long,
        env = "CHATD_WEBHOOK_CA",
        value_name = "FILE",
        help_heading = "Email and webhooks"
    )]
    pub webhook_ca: Option<PathBuf>,

    /// How long one webhook call may take (1s to 5m)
    #[arg(long, env = "CHATD_WEBHOOK_TIMEOUT", value_name = "DURATION", value_parser = parse_io_timeout, default_value = "10s", help_heading = "Email and webhooks")]
    pub webhook_timeout: Duration,

    /// Attempts of one email or webhook call before it becomes a dead letter (1 to 50)
    #[arg(long, env = "CHATD_DELIVERY_ATTEMPTS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=50), default_value = "8", help_heading = "Email and webhooks")]
    pub delivery_attempts: u32,

    /// The first retry's delay; each next one doubles, up to --delivery-retry-max, with jitter
    /// (100ms to 1h)
    #[arg(long, env = "CHATD_DELIVERY_RETRY_BASE", value_name = "DURATION", value_parser = parse_retry, default_value = "30s", help_heading = "Email and webhooks")]
    pub delivery_retry_base: Duration,

    /// The longest delay between retries (100ms to 1d)
    #[arg(long, env = "CHATD_DELIVERY_RETRY_MAX", value_name = "DURATION", value_parser = parse_retry_max, default_value = "1h", help_heading = "Email and webhooks")]
    pub delivery_retry_max: Duration,

    /// How often a node looks for deliveries that are due (100ms to 1m)
    #[arg(long, env = "CHATD_DELIVERY_POLL", value_name = "DURATION", value_parser = parse_poll, default_value = "2s", help_heading = "Email and webhooks")]
    pub delivery_poll: Duration,
}

fn parse_io_timeout(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_secs(1),
        Duration::from_secs(300),
        "must be between 1s and 5m",
    )
}

fn parse_verification_lifetime(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_secs(1),
        Duration::from_secs(7 * 24 * 3600),
        "must be between 1s and 168h",
    )
}

fn parse_reset_lifetime(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_secs(1),
        Duration::from_secs(24 * 3600),
        "must be between 1s and 24h",
    )
}

fn parse_retry(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_millis(100),
        Duration::from_secs(3600),
        "must be between 100ms and 1h",
    )
}

fn parse_retry_max(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_millis(100),
        Duration::from_secs(86_400),
        "must be between 100ms and 1d",
    )
}

fn parse_poll(s: &str) -> Result<Duration, String> {
    parse_duration_within(
        s,
        Duration::from_millis(100),
        Duration::from_secs(60),
        "must be between 100ms and 1m",
    )
}

fn parse_host(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !ok {
        return Err(format!("{s:?} is not a host name or address"));
    }
    Ok(s.to_owned())
}

fn parse_mailbox(s: &str) -> Result<String, String> {
    s.parse::<lettre::message::Mailbox>().map_err(|e| {
        format!("{s:?} is not a mailbox (\"Name <user@host>\" or \"user@host\"): {e}")
    })?;
    Ok(s.to_owned())
}

fn parse_webhooks(s: &str) -> Result<WebhookUrls, String> {
    let mut endpoints: Vec<WebhookEndpoint> = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((kind, url)) = pair.split_once('=') else {
            return Err(format!("{pair:?} is not KIND=URL"));
        };
        let kind = webhook_kind(kind.trim()).ok_or_else(|| {
            format!(
                "{kind:?} is not a notification kind (mention, reply, private_message, \
                 missed_call, added_to_chat)"
            )
        })?;
        let url = url.trim();
        let parsed: hyper::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err(format!("{url:?} is not an http:// or https:// URL"));
        }
        if endpoints.iter().any(|e| e.kind == kind) {
            return Err(format!("{} has two webhooks", kind.as_str_name()));
        }
        endpoints.push(WebhookEndpoint {
            kind,
            url: url.to_owned(),
        });
    }
    if endpoints.is_empty() {
        return Err("give at least one KIND=URL".into());
    }
    Ok(WebhookUrls(endpoints))
}

/// A secret from `env` (already looked up) or the file; `None` when neither is given.
fn secret(
    from_env: Option<String>,
    file: Option<&PathBuf>,
    setting: &'static str,
) -> Result<Option<String>, ConfigError> {
    if let Some(value) = from_env.filter(|v| !v.is_empty()) {
        return Ok(Some(value));
    }
    let Some(path) = file else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(setting, format!("cannot read {}: {e}", path.display())))?;
    let text = text.trim_end_matches(['\r', '\n']).to_owned();
    if text.is_empty() {
        return Err(invalid(setting, format!("{} is empty", path.display())));
    }
    Ok(Some(text))
}

fn read_ca(path: Option<&PathBuf>, setting: &'static str) -> Result<Option<Vec<u8>>, ConfigError> {
    path.map(|p| {
        std::fs::read(p).map_err(|e| invalid(setting, format!("cannot read {}: {e}", p.display())))
    })
    .transpose()
}

impl Delivery {
    /// The outbox's settings, reading the secrets (from `env`, else their files) and CA files
    /// now; `files_https` tells whether the HTTPS server the unsubscribe links lead to is on.
    pub fn outbox(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
        files_https: bool,
    ) -> Result<OutboxSettings, ConfigError> {
        let email = match &self.smtp_host {
            None => None,
            Some(host) => {
                let Some(from) = self.email_from.clone() else {
                    return Err(invalid(
                        "email_from",
                        "smtp_host is set, so email_from is required",
                    ));
                };
                if !files_https {
                    return Err(invalid(
                        "smtp_host",
                        "email needs files_https_listen: the one-click unsubscribe link leads there",
                    ));
                }
                let password = secret(
                    env(SMTP_PASSWORD_ENV),
                    self.smtp_password_file.as_ref(),
                    "smtp_password_file",
                )?;
                let credentials = match (&self.smtp_user, password) {
                    (Some(user), Some(password)) => Some((user.clone(), password)),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(invalid(
                            "smtp_password_file",
                            format!(
                                "smtp_user is set: give the password in {SMTP_PASSWORD_ENV} or a file"
                            ),
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(invalid(
                            "smtp_user",
                            "an SMTP password is given, so smtp_user is required",
                        ));
                    }
                };
                let tls = match self.smtp_tls {
                    SmtpTlsArg::Starttls => SmtpTls::Starttls,
                    SmtpTlsArg::Tls => SmtpTls::Implicit,
                };
                Some(EmailSettings {
                    host: host.clone(),
                    port: self.smtp_port.unwrap_or(match tls {
                        SmtpTls::Starttls => 587,
                        SmtpTls::Implicit => 465,
                    }),
                    tls,
                    credentials,
                    ca_pem: read_ca(self.smtp_ca.as_ref(), "smtp_ca")?,
                    timeout: self.smtp_timeout,
                    from,
                    unverified: self.email_unverified,
                    verification_code_lifetime: self.verification_code_lifetime,
                    reset_code_lifetime: self.reset_code_lifetime,
                })
            }
        };
        let webhooks = match &self.webhooks {
            None => None,
            Some(urls) => {
                let Some(secret) = secret(
                    env(WEBHOOK_SECRET_ENV),
                    self.webhook_secret_file.as_ref(),
                    "webhook_secret_file",
                )?
                else {
                    return Err(invalid(
                        "webhook_secret_file",
                        format!(
                            "webhooks are set: give their signing secret in {WEBHOOK_SECRET_ENV} or a file"
                        ),
                    ));
                };
                Some(WebhookSettings {
                    endpoints: urls.0.clone(),
                    secret: secret.into_bytes(),
                    ca_pem: read_ca(self.webhook_ca.as_ref(), "webhook_ca")?,
                    timeout: self.webhook_timeout,
                })
            }
        };
        Ok(OutboxSettings {
            email,
            webhooks,
            attempts: self.delivery_attempts,
            retry_base: self.delivery_retry_base,
            retry_max: self.delivery_retry_max.max(self.delivery_retry_base),
            poll: self.delivery_poll,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::tests::load_with as load;
    use super::*;

    fn setting_of(result: Result<Config, ConfigError>) -> &'static str {
        match result {
            Err(ConfigError::Invalid { setting, .. }) => setting,
            other => panic!("expected a rule error, got {other:?}"),
        }
    }

    const HTTPS: &str = "--files-https-listen=127.0.0.1:0";

    #[test]
    fn email_needs_a_sender_the_https_server_and_a_password_with_a_user() {
        let off = load(&[], &[]).expect("defaults");
        assert!(off.outbox.email.is_none() && off.outbox.webhooks.is_none());
        let host = "--smtp-host=smtp.example.org";
        let from = "--email-from=Chat <chat@example.org>";
        assert_eq!(setting_of(load(&[host, HTTPS], &[])), "email_from");
        assert_eq!(setting_of(load(&[host, from], &[])), "smtp_host");
        assert_eq!(
            setting_of(load(&[host, from, HTTPS, "--smtp-user=chat"], &[])),
            "smtp_password_file"
        );
        assert_eq!(
            setting_of(load(&[host, from, HTTPS], &[(SMTP_PASSWORD_ENV, "pw")])),
            "smtp_user"
        );
        let c = load(
            &[host, from, HTTPS, "--smtp-user=chat", "--smtp-tls=tls"],
            &[(SMTP_PASSWORD_ENV, "pw")],
        )
        .expect("email settings");
        let email = c.outbox.email.expect("email on");
        assert_eq!((email.host.as_str(), email.port), ("smtp.example.org", 465));
        assert_eq!(email.tls, SmtpTls::Implicit);
        assert_eq!(email.credentials, Some(("chat".into(), "pw".into())));
        assert!(!email.unverified);
        assert!(
            !format!("{email:?}").contains("pw"),
            "the password is not printed"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").expect("write");
        let flag = format!("--smtp-password-file={}", file.display());
        let c = load(&[host, from, HTTPS, "--smtp-user=chat", &flag], &[]).expect("file");
        let email = c.outbox.email.expect("email on");
        assert_eq!(email.port, 587, "starttls by default");
        assert_eq!(email.credentials, Some(("chat".into(), "from-file".into())));
        assert!(load(&["--email-from=not a mailbox"], &[]).is_err());
        assert!(load(&["--smtp-host=bad host"], &[]).is_err());
    }

    #[test]
    fn webhooks_need_their_secret_and_name_known_kinds_once() {
        let hooks = "--webhooks=mention=https://gw.example/m, reply=http://10.0.0.1:8080/r";
        assert_eq!(setting_of(load(&[hooks], &[])), "webhook_secret_file");
        let c = load(&[hooks], &[(WEBHOOK_SECRET_ENV, "s3cret")]).expect("webhooks");
        let w = c.outbox.webhooks.expect("webhooks on");
        assert_eq!(w.secret, b"s3cret");
        assert_eq!(
            w.endpoints,
            vec![
                WebhookEndpoint {
                    kind: chatproto::pb::NotificationKind::Mention,
                    url: "https://gw.example/m".into()
                },
                WebhookEndpoint {
                    kind: chatproto::pb::NotificationKind::Reply,
                    url: "http://10.0.0.1:8080/r".into()
                },
            ]
        );
        for bad in [
            "--webhooks=shout=https://gw.example/",
            "--webhooks=mention=ftp://gw.example/",
            "--webhooks=mention=https://a.example/,mention=https://b.example/",
            "--webhooks=https://gw.example/",
        ] {
            assert!(load(&[bad], &[(WEBHOOK_SECRET_ENV, "s")]).is_err(), "{bad}");
        }
    }
}
