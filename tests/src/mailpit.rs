//! A real SMTP server: Mailpit on free loopback ports, with TLS (STARTTLS required, or implicit
//! TLS) from a certificate made here for 127.0.0.1, and SMTP authentication from a password
//! file; its HTTP API is how a test reads back what arrived.

use std::time::Duration;

use http_body_util::BodyExt as _;

use crate::ports::free_port;
use crate::process::{Launch, ServerProcess, eventually};
use crate::tools;

/// How long Mailpit may take to open its ports.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How the SMTP port is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    /// Plain connection; STARTTLS required before anything is sent.
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

/// A running Mailpit, killed when dropped.
pub struct Mailpit {
    _process: ServerProcess,
    /// The SMTP port on 127.0.0.1.
    pub smtp_port: u16,
    /// The HTTP API port on 127.0.0.1.
    pub http_port: u16,
    /// The PEM of the certificate it serves SMTP with (a client's CA).
    pub ca_pem: String,
    /// The path of that PEM.
    pub ca_path: std::path::PathBuf,
    /// The SMTP user and password it accepts.
    pub credentials: (String, String),
    dir: tempfile::TempDir,
}

/// One message as Mailpit's API summarises it.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Mailpit's id, for [`Mailpit::message`].
    pub id: String,
    /// The recipients' addresses.
    pub to: Vec<String>,
    /// The subject.
    pub subject: String,
}

/// One message in full.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
    /// Every header, by name, with its values.
    pub headers: serde_json::Map<String, serde_json::Value>,
}

impl Mail {
    /// The first value of header `name` (case as Mailpit writes it).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.get(0))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }
}

impl Mailpit {
    /// Starts Mailpit with SMTP secured as `mode` and authentication required.
    ///
    /// # Panics
    /// When Mailpit cannot be found or does not come up, with its log.
    pub async fn start(mode: SmtpMode) -> Mailpit {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
        let cert = params.self_signed(&key).expect("certificate");
        let ca_pem = cert.pem();
        let ca_path = dir.path().join("smtp.crt");
        let key_path = dir.path().join("smtp.key");
        std::fs::write(&ca_path, &ca_pem).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        let credentials = ("chatd".to_owned(), "s3cret-smtp-password".to_owned());
        let auth_path = dir.path().join("smtp-auth");
        std::fs::write(&auth_path, format!("{}:{}\n", credentials.0, credentials.1))
            .expect("write auth file");
        let (smtp_port, http_port) = (free_port(), free_port());
        let tls_flag = match mode {
            SmtpMode::Starttls => "--smtp-require-starttls",
            SmtpMode::Implicit => "--smtp-require-tls",
        };
        let process = Launch::new("mailpit", tools::mailpit(), dir.path().join("mailpit.log"))
            .args([
                format!("--smtp=127.0.0.1:{smtp_port}"),
                format!("--listen=127.0.0.1:{http_port}"),
                format!("--database={}", dir.path().join("mailpit.db").display()),
                format!("--smtp-tls-cert={}", ca_path.display()),
                format!("--smtp-tls-key={}", key_path.display()),
                tls_flag.to_owned(),
                format!("--smtp-auth-file={}", auth_path.display()),
                "--disable-version-check".to_owned(),
                "--smtp-disable-rdns".to_owned(),
            ])
            .spawn();
        let mailpit = Mailpit {
            _process: process,
            smtp_port,
            http_port,
            ca_pem,
            ca_path,
            credentials,
            dir,
        };
        let up = eventually(START_TIMEOUT, Duration::from_millis(100), async || {
            mailpit.try_get("/api/v1/messages").await.is_some()
        })
        .await;
        if !up {
            mailpit._process.fail("mailpit did not come up");
        }
        mailpit
    }

    /// The chatd settings that send email through this Mailpit with SMTP secured as `mode`
    /// (which must be the mode it was started with): host, port, TLS with its CA, the
    /// credentials (the password in a file), the sender, and the HTTPS listener email needs.
    pub fn chatd_args(&self, mode: SmtpMode) -> Vec<String> {
        let password = self.dir().join("smtp-password");
        std::fs::write(&password, &self.credentials.1).expect("write password");
        vec![
            "--smtp-host=127.0.0.1".into(),
            format!("--smtp-port={}", self.smtp_port),
            format!(
                "--smtp-tls={}",
                match mode {
                    SmtpMode::Starttls => "starttls",
                    SmtpMode::Implicit => "tls",
                }
            ),
            format!("--smtp-user={}", self.credentials.0),
            format!("--smtp-password-file={}", password.display()),
            format!("--smtp-ca={}", self.ca_path.display()),
            "--email-from=Chat <chat@chat.test>".into(),
            "--files-https-listen=127.0.0.1:0".into(),
        ]
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    async fn try_get(&self, path: &str) -> Option<serde_json::Value> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.http_port))
            .await
            .ok()?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .ok()?;
        tokio::spawn(conn);
        let request = hyper::Request::get(path)
            .header("host", format!("127.0.0.1:{}", self.http_port))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        self.try_get(path)
            .await
            .unwrap_or_else(|| panic!("mailpit GET {path} failed"))
    }

    /// Every message received, newest first.
    pub async fn messages(&self) -> Vec<Summary> {
        let list = self.get("/api/v1/messages?limit=500").await;
        list["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| Summary {
                id: m["ID"].as_str().unwrap_or_default().to_owned(),
                to: m["To"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|t| t["Address"].as_str().unwrap_or_default().to_owned())
                    .collect(),
                subject: m["Subject"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// The messages to `address`, newest first.
    pub async fn messages_to(&self, address: &str) -> Vec<Summary> {
        let mut all = self.messages().await;
        all.retain(|m| m.to.iter().any(|t| t == address));
        all
    }

    /// One message with its bodies and headers.
    pub async fn message(&self, id: &str) -> Mail {
        let m = self.get(&format!("/api/v1/message/{id}")).await;
        let headers = self.get(&format!("/api/v1/message/{id}/headers")).await;
        Mail {
            text: m["Text"].as_str().unwrap_or_default().to_owned(),
            html: m["HTML"].as_str().unwrap_or_default().to_owned(),
            headers: headers.as_object().cloned().unwrap_or_default(),
        }
    }
}
