//! SDK clients for the end-to-end suites: a [`TestUser`] is a registered account with a
//! connected [`Client`] whose events are collected in the background, so that a test can wait
//! for a condition on everything the user received, with a timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatproto::client::{Client, ClientConfig, ClientError, ClientEvent};
use chatproto::pb;
use tokio::sync::Notify;

pub use crate::client::PASSWORD;

/// Every event a client received, in order.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<Vec<ClientEvent>>,
    changed: Notify,
}

impl EventLog {
    fn push(&self, event: ClientEvent) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
        self.changed.notify_waiters();
    }

    /// A copy of every event so far.
    pub fn snapshot(&self) -> Vec<ClientEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `pick` returns `Some` for the events so far (it sees all of them, oldest
    /// first, each time something arrives), at most `timeout`. `pick` runs with the log locked:
    /// it must not call back into this log.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut pick: impl FnMut(&[ClientEvent]) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so an event pushed in between wakes us.
            let changed = self.changed.notified();
            if let Some(found) = pick(&self.events.lock().unwrap_or_else(|e| e.into_inner())) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }
}

/// A registered account with a connected client.
#[derive(Debug)]
pub struct TestUser {
    /// The username.
    pub name: String,
    /// The user id.
    pub id: u64,
    /// The client (shared with the event collector).
    pub client: Arc<Client>,
    /// Everything the client received.
    pub log: Arc<EventLog>,
}

impl TestUser {
    /// Connects with `config` and registers `name`.
    ///
    /// # Panics
    /// When connecting or registering fails.
    pub async fn register(config: ClientConfig, name: &str) -> TestUser {
        let client = connect(config).await;
        let auth = client
            .register_user(name, &format!("{name}@example.com"), PASSWORD, "e2e")
            .await
            .unwrap_or_else(|e| panic!("register {name}: {e}"));
        TestUser::collect(name, auth, client)
    }

    /// Connects with `config` and logs in as `name` (a second device of an existing account).
    ///
    /// # Panics
    /// When connecting or logging in fails.
    pub async fn login(config: ClientConfig, name: &str) -> TestUser {
        let client = connect(config).await;
        let auth = client
            .login(name, PASSWORD, "e2e")
            .await
            .unwrap_or_else(|e| panic!("login {name}: {e}"));
        TestUser::collect(name, auth, client)
    }

    fn collect(name: &str, auth: pb::AuthResult, client: Client) -> TestUser {
        let id = auth
            .user
            .map(|u| u.id)
            .unwrap_or_else(|| panic!("{name}: AuthResult without a user"));
        let client = Arc::new(client);
        let log = Arc::new(EventLog::default());
        let (c, l) = (client.clone(), log.clone());
        tokio::spawn(async move {
            while let Some(event) = c.next_event().await {
                l.push(event);
            }
        });
        TestUser {
            name: name.to_string(),
            id,
            client,
            log,
        }
    }

    /// The node serving the current connection (`Welcome.node_id`), if connected.
    pub fn node_id(&self) -> Option<String> {
        self.client.welcome().map(|w| w.node_id)
    }

    /// The `MessageCreated` events received for `chat_id`, as (seq, message), in arrival order.
    pub fn received_messages(&self, chat_id: u64) -> Vec<(u64, pb::Message)> {
        messages_in(&self.log.snapshot(), chat_id)
    }

    /// Waits until the events received for `chat_id` include a message with each of `texts`.
    ///
    /// # Panics
    /// When they do not arrive within `timeout`, listing what is missing.
    pub async fn expect_texts(&self, chat_id: u64, texts: &[String], timeout: Duration) {
        let found = self
            .log
            .wait_for(timeout, |events| {
                let got: Vec<String> = messages_in(events, chat_id)
                    .into_iter()
                    .map(|(_, m)| m.text)
                    .collect();
                texts.iter().all(|t| got.contains(t)).then_some(())
            })
            .await;
        if found.is_none() {
            let got: Vec<String> = self
                .received_messages(chat_id)
                .into_iter()
                .map(|(_, m)| m.text)
                .collect();
            let missing: Vec<&String> = texts.iter().filter(|t| !got.contains(t)).collect();
            panic!(
                "{} did not receive {missing:?} in chat {chat_id} within {timeout:?} (received {got:?})",
                self.name
            );
        }
    }

    /// Every message of `chat_id` from GetHistory, oldest first, paging until the start.
    ///
    /// # Errors
    /// The client error of a failed page.
    pub async fn history(&self, chat_id: u64) -> Result<Vec<pb::Message>, ClientError> {
        self.history_in_pages(chat_id, 100).await
    }

    /// Like [`history`](Self::history), asking for `limit` messages per page.
    ///
    /// # Errors
    /// The client error of a failed page.
    pub async fn history_in_pages(
        &self,
        chat_id: u64,
        limit: u32,
    ) -> Result<Vec<pb::Message>, ClientError> {
        let mut all = Vec::new();
        let mut before_seq = 0;
        loop {
            let page = self
                .client
                .get_history(pb::GetHistory {
                    chat_id,
                    before_seq,
                    after_seq: 0,
                    limit,
                })
                .await?;
            let Some(first) = page.messages.first() else {
                break;
            };
            before_seq = first.seq;
            let done = page.messages.len() < limit as usize;
            all.splice(0..0, page.messages);
            if done || before_seq <= 1 {
                break;
            }
        }
        Ok(all)
    }
}

/// The `MessageCreated` events for `chat_id` among `events`, as (seq, message), in order.
pub fn messages_in(events: &[ClientEvent], chat_id: u64) -> Vec<(u64, pb::Message)> {
    events
        .iter()
        .filter_map(|event| match event {
            ClientEvent::Chat(ev) if ev.chat_id == chat_id => match &ev.body {
                Some(pb::chat_event::Body::MessageCreated(m)) => Some((ev.seq, m.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Connects a client.
///
/// # Panics
/// When no server of `config` answers.
pub async fn connect(config: ClientConfig) -> Client {
    let servers = config.servers.clone();
    Client::connect(config)
        .await
        .unwrap_or_else(|e| panic!("connect to {servers:?}: {e}"))
}

/// A group titled `title` created by `owner` with `members`.
///
/// # Panics
/// When the server refuses.
pub async fn create_group(owner: &TestUser, title: &str, members: &[&TestUser]) -> pb::Chat {
    owner
        .client
        .create_group(pb::CreateGroup {
            kind: pb::ChatKind::Group as i32,
            title: title.to_string(),
            description: String::new(),
            member_ids: members.iter().map(|m| m.id).collect(),
        })
        .await
        .unwrap_or_else(|e| panic!("{} cannot create group {title}: {e}", owner.name))
}

/// Opens a QUIC connection from the local address `local` (any loopback address: Linux routes
/// all of 127.0.0.0/8 to `lo`) to `server`, says Hello and returns the Welcome. The SDK always
/// binds the wildcard address; this is how a test makes clients that come from different
/// addresses, e.g. to see where a load balancer hashes them.
///
/// # Errors
/// What failed, as text.
pub async fn hello_from(
    local: std::net::IpAddr,
    server: std::net::SocketAddr,
    verification: &chatproto::tls::Verification,
) -> Result<pb::Welcome, String> {
    let config = chatproto::tls::client_config(verification).map_err(|e| format!("tls: {e}"))?;
    let endpoint = quinn::Endpoint::client(std::net::SocketAddr::new(local, 0))
        .map_err(|e| format!("bind {local}: {e}"))?;
    let result = async {
        let connection = endpoint
            .connect_with(config, server, "localhost")
            .map_err(|e| format!("connect: {e}"))?
            .await
            .map_err(|e| format!("handshake with {server} from {local}: {e}"))?;
        let (mut send, recv) = connection
            .open_bi()
            .await
            .map_err(|e| format!("open stream: {e}"))?;
        let hello = pb::Request {
            request_id: 1,
            kind: Some(pb::request::Kind::Hello(pb::Hello {
                protocol_major: chatproto::PROTOCOL_MAJOR,
                protocol_minor: chatproto::PROTOCOL_MINOR,
                capabilities: Vec::new(),
                client_name: "e2e-hello".to_string(),
            })),
        };
        const MAX_FRAME: usize = 256 * 1024;
        chatproto::io::write_only(&mut send, &hello, MAX_FRAME)
            .await
            .map_err(|e| format!("write hello: {e}"))?;
        let response: pb::Response = chatproto::io::FrameReader::new(recv, MAX_FRAME)
            .read_only()
            .await
            .map_err(|e| format!("read welcome: {e}"))?;
        connection.close(0u32.into(), b"done");
        match response.result {
            Some(pb::response::Result::Welcome(welcome)) => Ok(welcome),
            other => Err(format!("Hello answered with {other:?}")),
        }
    };
    let result = tokio::time::timeout(Duration::from_secs(10), result)
        .await
        .unwrap_or_else(|_| Err("no Welcome within 10 s".to_string()));
    endpoint.wait_idle().await;
    result
}
