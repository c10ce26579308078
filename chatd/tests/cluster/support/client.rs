//! A raw chat/1 test client over QUIC: one request per bidirectional stream, events read from the
//! server's event stream in the background.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatproto::io::FrameReader;
use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::pb::response::Result as Answer;
use tokio::sync::mpsc;

/// Accepts any server certificate: the tests talk to their own daemons on loopback.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config() -> quinn::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("tls 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![chatproto::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("quic tls");
    quinn::ClientConfig::new(Arc::new(crypto))
}

/// One connection to a daemon.
pub struct Client {
    /// The QUIC connection.
    pub conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
    next_id: u64,
    events: mpsc::UnboundedReceiver<pb::Event>,
    events_tx: Option<mpsc::UnboundedSender<pb::Event>>,
    /// The user, once authenticated.
    pub user_id: u64,
    /// The session, once authenticated.
    pub session_id: u64,
}

impl Client {
    /// Connects (no Hello yet).
    pub async fn connect(addr: SocketAddr) -> Client {
        let mut endpoint =
            quinn::Endpoint::client("127.0.0.1:0".parse().expect("addr")).expect("client endpoint");
        endpoint.set_default_client_config(client_config());
        let conn = endpoint
            .connect(addr, "localhost")
            .expect("connect")
            .await
            .expect("handshake");
        let (tx, rx) = mpsc::unbounded_channel();
        Client {
            conn,
            _endpoint: endpoint,
            next_id: 0,
            events: rx,
            events_tx: Some(tx),
            user_id: 0,
            session_id: 0,
        }
    }

    /// Sends one request and returns the answer (errors included).
    pub async fn request(&mut self, kind: Kind) -> Answer {
        self.next_id += 1;
        let request = pb::Request {
            request_id: self.next_id,
            kind: Some(kind),
        };
        let (mut send, recv) = self.conn.open_bi().await.expect("open a request stream");
        chatproto::io::write_only(&mut send, &request, chatproto::frame::MAX_FRAME_BYTES)
            .await
            .expect("write request");
        let response: pb::Response = FrameReader::new(recv, chatproto::frame::MAX_FRAME_BYTES)
            .read_only()
            .await
            .expect("read response");
        assert_eq!(response.request_id, self.next_id);
        response.result.expect("a response carries a result")
    }

    /// Like [`request`](Self::request), panicking on an error answer.
    pub async fn ok(&mut self, kind: Kind) -> Answer {
        match self.request(kind).await {
            Answer::Error(e) => panic!("request failed: {e:?}"),
            other => other,
        }
    }

    /// Hello with `capabilities`.
    pub async fn hello(&mut self, capabilities: &[&str]) -> pb::Welcome {
        let hello = pb::Hello {
            protocol_major: chatproto::PROTOCOL_MAJOR,
            protocol_minor: chatproto::PROTOCOL_MINOR,
            capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
            client_name: "cluster-test".into(),
        };
        match self.request(Kind::Hello(hello)).await {
            Answer::Welcome(w) => w,
            other => panic!("hello: {other:?}"),
        }
    }

    fn start_event_reader(&mut self) {
        let Some(tx) = self.events_tx.take() else {
            return;
        };
        let conn = self.conn.clone();
        tokio::spawn(async move {
            let Ok(recv) = conn.accept_uni().await else {
                return;
            };
            let mut reader = FrameReader::new(recv, chatproto::frame::MAX_FRAME_BYTES);
            while let Ok(event) = reader.read::<pb::Event>().await {
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
    }

    fn authenticated(&mut self, answer: Answer) -> pb::AuthResult {
        match answer {
            Answer::Auth(auth) => {
                self.user_id = auth.user.as_ref().map(|u| u.id).unwrap_or(0);
                self.session_id = auth.session_id;
                self.start_event_reader();
                auth
            }
            other => panic!("authentication failed: {other:?}"),
        }
    }

    /// Connects, says Hello and registers `username` (password "password123").
    pub async fn register(addr: SocketAddr, username: &str) -> Client {
        let mut client = Client::connect(addr).await;
        client.hello(&[]).await;
        let answer = client
            .request(Kind::Register(pb::Register {
                username: username.into(),
                email: format!("{username}@example.com"),
                password: "password123".into(),
                device_name: "test".into(),
            }))
            .await;
        client.authenticated(answer);
        client
    }

    /// Connects, says Hello and logs in as `username`.
    pub async fn login(addr: SocketAddr, username: &str) -> Client {
        let mut client = Client::connect(addr).await;
        client.hello(&[]).await;
        let answer = client
            .request(Kind::Login(pb::Login {
                username: username.into(),
                password: "password123".into(),
                device_name: "test".into(),
            }))
            .await;
        client.authenticated(answer);
        client
    }

    /// The next event within `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Option<pb::Event> {
        tokio::time::timeout(wait, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// The first event within `wait` for which `pick` returns something; others are skipped.
    pub async fn wait_for<T>(
        &mut self,
        wait: Duration,
        mut pick: impl FnMut(&pb::Event) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.next_event(left).await?;
            if let Some(found) = pick(&event) {
                return Some(found);
            }
        }
    }

    /// Drops events already received.
    pub fn drain_events(&mut self) {
        while self.events.try_recv().is_ok() {}
    }

    /// Creates a group with `members`; returns its id.
    pub async fn create_group(&mut self, title: &str, members: &[u64]) -> u64 {
        match self
            .ok(Kind::CreateGroup(pb::CreateGroup {
                kind: pb::ChatKind::Group as i32,
                title: title.into(),
                description: String::new(),
                member_ids: members.to_vec(),
            }))
            .await
        {
            Answer::Chat(chat) => chat.id,
            other => panic!("create_group: {other:?}"),
        }
    }

    /// Sends a text message; returns the answer (message or error).
    pub async fn send_text(&mut self, chat_id: u64, text: &str) -> Answer {
        let client_msg_id = format!("m-{}-{}", self.user_id, rand_suffix());
        self.request(Kind::SendMessage(pb::SendMessage {
            chat_id,
            client_msg_id,
            kind: pb::MessageKind::Text as i32,
            text: text.into(),
            ..Default::default()
        }))
        .await
    }

    /// Users by id.
    pub async fn get_users(&mut self, ids: &[u64]) -> Vec<pb::User> {
        match self
            .ok(Kind::GetUsers(pb::GetUsers {
                user_ids: ids.to_vec(),
            }))
            .await
        {
            Answer::Users(list) => list.users,
            other => panic!("get_users: {other:?}"),
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The message text of a `message_created` chat event.
pub fn message_text(event: &pb::Event) -> Option<(u64, u64, String)> {
    match &event.kind {
        Some(pb::event::Kind::Chat(chat)) => match &chat.body {
            Some(pb::chat_event::Body::MessageCreated(m)) => {
                Some((chat.chat_id, chat.seq, m.text.clone()))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The (user, status) of a presence event.
pub fn presence(event: &pb::Event) -> Option<(u64, pb::UserStatus)> {
    match &event.kind {
        Some(pb::event::Kind::Presence(p)) => Some((p.user_id, p.status())),
        _ => None,
    }
}
