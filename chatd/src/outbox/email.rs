//! Sending one rendered email over SMTP (lettre): STARTTLS or implicit TLS with rustls, the
//! public roots plus an optional CA, authentication when configured. Each message is multipart
//! (text and HTML); a digest has a `List-Unsubscribe` header and `List-Unsubscribe-Post:
//! List-Unsubscribe=One-Click` (RFC 8058), and a `Message-ID` named after its outbox entry, so a
//! retry after a lost answer is recognisable as the same message.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use super::EmailPayload;
use crate::ops::config::{EmailSettings, SmtpTls};

/// An SMTP client for the configured server.
pub(super) struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: std::time::Duration,
}

impl Mailer {
    /// Checks the settings (the From mailbox, the CA file) and prepares the client; connects
    /// only when sending.
    pub fn new(settings: &EmailSettings) -> Result<Mailer, String> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| format!("from {:?}: {e}", settings.from))?;
        let mut tls = TlsParameters::builder(settings.host.clone())
            .certificate_store(CertificateStore::WebpkiRoots);
        if let Some(pem) = &settings.ca_pem {
            let cert = Certificate::from_pem(pem).map_err(|e| format!("smtp CA: {e}"))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls.build_rustls().map_err(|e| format!("smtp TLS: {e}"))?;
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                .port(settings.port)
                .tls(match settings.tls {
                    SmtpTls::Starttls => Tls::Required(tls),
                    SmtpTls::Implicit => Tls::Wrapper(tls),
                })
                .timeout(Some(settings.timeout));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            timeout: settings.timeout,
        })
    }

    /// Sends the email of outbox entry `id`.
    pub async fn send(&self, id: u64, email: &EmailPayload) -> Result<(), String> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| format!("address {:?}: {e}", email.to))?;
        let domain = self.from.email.domain().to_owned();
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<outbox-{id}@{domain}>")));
        // Account emails (codes, notices) answer the user's own requests: nothing to leave.
        if !email.unsubscribe.is_empty() {
            message = message
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{}>", email.unsubscribe),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let message = message
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| format!("cannot build the message: {e}"))?;
        // lettre's timeout covers each network step; this bounds the whole exchange.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("smtp: {e}")),
            Err(_) => Err(format!("smtp: no answer within {:?}", self.timeout)),
        }
    }
}
