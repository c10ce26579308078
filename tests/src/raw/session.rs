//! A raw connection that signs in: one request per bidirectional stream, numbered in order, and
//! the server's event stream read in the background. Unlike the SDK it neither follows redirects
//! nor reconnects, so a test sees exactly what the server said and how it closed.

use std::time::{Duration, Instant};

use chatproto::io::FrameReader;
use chatproto::pb;
use chatproto::pb::request::Kind;
use chatproto::pb::response::Result as Answer;
use tokio::sync::mpsc;

use super::RawConn;
use crate::client::PASSWORD;
use crate::server::TestServer;

/// One connection to a server (see the module documentation).
pub struct RawSession {
    /// The connection.
    pub raw: RawConn,
    next_id: u64,
    events: mpsc::UnboundedReceiver<pb::Event>,
    events_tx: Option<mpsc::UnboundedSender<pb::Event>>,
    /// The user, once authenticated.
    pub user_id: u64,
    /// The session, once authenticated.
    pub session_id: u64,
}

impl RawSession {
    /// Connects (no Hello yet).
    pub async fn connect(server: &TestServer) -> RawSession {
        let raw = RawConn::connect(server.addr(), &server.fingerprint()).await;
        let (tx, rx) = mpsc::unbounded_channel();
        RawSession {
            raw,
            next_id: 0,
            events: rx,
            events_tx: Some(tx),
            user_id: 0,
            session_id: 0,
        }
    }

    /// The QUIC connection (to close it, or to see how the server closed it).
    pub fn conn(&self) -> &quinn::Connection {
        &self.raw.conn
    }

    /// Sends one request and returns the answer (errors included).
    pub async fn request(&mut self, kind: Kind) -> Answer {
        self.next_id += 1;
        let response = self.raw.call(self.next_id, kind).await;
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
            client_name: "raw-session".into(),
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
        let conn = self.raw.conn.clone();
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

    /// Takes the answer to Register or Login: records who we are and starts reading events.
    pub fn authenticated(&mut self, answer: Answer) -> pb::AuthResult {
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

    /// Connects, says Hello and registers `username` (with the test password).
    pub async fn register(server: &TestServer, username: &str) -> RawSession {
        let mut session = RawSession::connect(server).await;
        session.hello(&[]).await;
        let answer = session
            .request(Kind::Register(pb::Register {
                username: username.into(),
                email: format!("{username}@example.test"),
                password: PASSWORD.into(),
                device_name: "test".into(),
            }))
            .await;
        session.authenticated(answer);
        session
    }

    /// Connects, says Hello and logs in as `username`.
    pub async fn login(server: &TestServer, username: &str) -> RawSession {
        let mut session = RawSession::connect(server).await;
        session.hello(&[]).await;
        let answer = session
            .request(Kind::Login(pb::Login {
                username: username.into(),
                password: PASSWORD.into(),
                device_name: "test".into(),
                two_factor_code: String::new(),
            }))
            .await;
        session.authenticated(answer);
        session
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
        self.request(Kind::SendMessage(pb::SendMessage {
            chat_id,
            client_msg_id: chatproto::client::new_client_msg_id(),
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

/// `(chat, seq, text)` of a `message_created` chat event.
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

/// `(user, status)` of a presence event.
pub fn presence(event: &pb::Event) -> Option<(u64, pb::UserStatus)> {
    match &event.kind {
        Some(pb::event::Kind::Presence(p)) => Some((p.user_id, p.status())),
        _ => None,
    }
}
