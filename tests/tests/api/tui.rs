//! A headless chat-tui for the suites: the real network task and the real update function,
//! without a terminal, against a real chatd over QUIC. What the app's event loop does, minus
//! drawing.

use std::path::PathBuf;

use chat_tui::action::Action;
use chat_tui::effect::{Effect, NetCommand};
use chat_tui::model::{Clock, Focus, Ids, Model};
use chat_tui::net::NetConfig;
use chat_tui::paths::Paths;
use chat_tui::settings::Trust;
use chat_tui::update::update;
use chatproto::fingerprint::parse_fingerprint;
use tests::server::TestServer;
use tokio::sync::mpsc;

use crate::support::{PASSWORD, WAIT};

/// A key press as the terminal reports it.
pub(crate) fn key(spec: &str) -> Action {
    Action::Key(chat_tui::keys::Key::parse(spec).expect("a key").to_event())
}

/// One chat-tui without its terminal.
pub(crate) struct Tui {
    pub(crate) model: Model,
    actions: mpsc::Receiver<Action>,
    net: mpsc::UnboundedSender<NetCommand>,
    /// Where its downloads go.
    pub(crate) downloads: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tui {
    /// Starts the network task against `server` and registers `name`.
    pub(crate) async fn register(server: &TestServer, name: &str) -> Tui {
        Self::start(
            server,
            name,
            NetCommand::Register {
                username: name.into(),
                email: format!("{name}@example.test"),
                password: PASSWORD.into(),
            },
        )
        .await
    }

    /// Starts another chat-tui (its own state: a new device) for the registered `name`.
    pub(crate) async fn sign_in(server: &TestServer, name: &str) -> Tui {
        Self::start(
            server,
            name,
            NetCommand::SignIn {
                username: name.into(),
                password: PASSWORD.into(),
                two_factor_code: String::new(),
            },
        )
        .await
    }

    /// Starts another chat-tui for `name`, whose account has two-factor login: the user fills
    /// in the sign-in form, is asked for a code, and types `code`.
    pub(crate) async fn sign_in_with_code(server: &TestServer, name: &str, code: &str) -> Tui {
        let mut tui = Self::open(server, name).await;
        tui.type_keys(name);
        tui.apply(key("enter"));
        tui.type_keys(PASSWORD);
        tui.apply(key("enter"));
        tui.until("asked for a two-factor code", |m| match &m.screen {
            chat_tui::model::Screen::Auth(form) => form.field_index("Two-factor code"),
            _ => None,
        })
        .await;
        tui.type_keys(code);
        tui.apply(key("enter"));
        tui.until("signed in", |m| m.me.is_some().then_some(()))
            .await;
        tui
    }

    /// Types `text` key by key.
    pub(crate) fn type_keys(&mut self, text: &str) {
        for c in text.chars() {
            let spec = if c == ' ' {
                "space".to_owned()
            } else {
                c.to_string()
            };
            self.apply(key(&spec));
        }
    }

    async fn start(server: &TestServer, name: &str, sign_in: NetCommand) -> Tui {
        let mut tui = Self::open(server, name).await;
        let _ = tui.net.send(sign_in);
        tui.until("signed in", |m| m.me.is_some().then_some(()))
            .await;
        tui
    }

    /// Starts the network task against `server` and waits for the sign-in screen.
    pub(crate) async fn open(server: &TestServer, name: &str) -> Tui {
        let dir = tempfile::tempdir().expect("temp dir");
        let downloads = dir.path().join("downloads");
        let paths = Paths {
            config_dir: dir.path().join("config"),
            state_dir: dir.path().join("state"),
            download_dir: downloads.clone(),
        };
        let config = NetConfig {
            server: server.addr().to_string(),
            server_name: None,
            trust: Trust::Pin(parse_fingerprint(&server.fingerprint()).expect("fingerprint")),
            paths,
            device: "headless".into(),
            download_dir: downloads.clone(),
        };
        let (tx, actions) = mpsc::channel(1024);
        let net = chat_tui::net::spawn(config, tx);
        let clock = Clock {
            now_ms: chatd::testing::now_ms(),
            utc_offset_s: 0,
        };
        let model = Model::new(
            server.addr().to_string(),
            Default::default(),
            Ids::new(name),
            clock,
        );
        let mut tui = Tui {
            model,
            actions,
            net,
            downloads,
            _dir: dir,
        };
        tui.until("the sign-in screen", |m| {
            matches!(m.screen, chat_tui::model::Screen::Auth(_)).then_some(())
        })
        .await;
        tui
    }

    /// Applies an action and hands its network commands to the network task.
    pub(crate) fn apply(&mut self, action: Action) {
        for effect in update(&mut self.model, action) {
            if let Effect::Net(command) = effect {
                let _ = self.net.send(command);
            }
        }
    }

    /// Types a line into the composer and presses enter.
    pub(crate) fn type_line(&mut self, line: &str) {
        self.model.focus = Focus::Composer;
        self.model.composer.input.set(line);
        self.apply(key("enter"));
    }

    /// Applies what the network task reports until `check` finds what it looks for.
    pub(crate) async fn until<T>(
        &mut self,
        what: &str,
        mut check: impl FnMut(&Model) -> Option<T>,
    ) -> T {
        loop {
            if let Some(found) = check(&self.model) {
                return found;
            }
            let action = tokio::time::timeout(WAIT, self.actions.recv())
                .await
                .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
                .expect("the network task runs");
            self.apply(action);
        }
    }

    /// Opens the private chat with `peer` and waits for its history.
    pub(crate) async fn open_private(&mut self, peer: &str) {
        self.type_line(&format!("/dm @{peer}"));
        self.until("the chat is open", |m| {
            m.view
                .as_ref()
                .filter(|v| v.loads.is_empty() && m.chats.get(v.chat_id).is_some())
                .map(|_| ())
        })
        .await;
    }
}
