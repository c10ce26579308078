//! The model: everything the screen shows, as plain data. Only [`update`](crate::update) changes
//! it, and rendering reads it by reference.
//!
//! # Layout
//! - [`chats`]: the chat list; [`view`] and [`window`]: the open chat and its messages;
//!   [`users`]: names and presence; [`typing`]: typing indicators; [`pending`]: the outbox as
//!   shown; [`transfers`]: file uploads and downloads in progress; [`calls`]: calls ringing,
//!   going on and recorded.
//! - The state of widgets (composer, pickers, forms) lives with their widget in
//!   [`widgets`](crate::widgets).

pub mod calls;
pub mod chats;
pub mod pending;
pub mod transfers;
pub mod typing;
pub mod users;
pub mod view;
pub mod window;

use chatproto::pb;

use crate::config::Config;
use crate::widgets::auth::AuthForm;
use crate::widgets::composer::Composer;
use crate::widgets::dialog::{Confirm, Info, Prompt};
use crate::widgets::picker::Picker;
use calls::Calls;
use chats::ChatList;
use pending::Pending;
use transfers::Transfers;
use typing::Typing;
use users::Users;
use view::ChatView;

/// Which screen is up.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    /// Dialing the server (before anything else can be shown).
    Connecting {
        /// What is happening ("connecting to …", the last error).
        detail: String,
        /// When the next attempt starts (ms since the epoch), if one is scheduled.
        retry_at_ms: Option<i64>,
    },
    /// First contact with a server: its fingerprint, to trust or not; or a changed one.
    Trust(TrustPrompt),
    /// Sign in or register.
    Auth(AuthForm),
    /// Chats, messages, composer.
    Main,
}

/// The certificate of a server to confirm (trust on first use), or one that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPrompt {
    /// The server's `host:port`.
    pub address: String,
    /// The SHA-256 fingerprint it presented, in hex.
    pub fingerprint: String,
    /// For a changed certificate: the fingerprint recorded before. Then the only way out is to
    /// quit.
    pub known: Option<String>,
    /// Where trusted servers are recorded.
    pub file: String,
}

/// Which pane of the main screen has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The chat list.
    Chats,
    /// The message pane.
    Messages,
    /// The composer.
    Composer,
}

/// The connection, as the status bar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Dialing.
    Connecting,
    /// Up.
    Connected {
        /// `host:port`.
        address: String,
    },
    /// Lost; the next attempt starts at `at_ms`.
    Reconnecting {
        /// When (ms since the epoch).
        at_ms: i64,
        /// Why the connection was lost.
        reason: String,
    },
    /// Stopped for good (signed out, revoked).
    Offline(String),
}

/// How a notice reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Neutral information.
    Info,
    /// Something succeeded.
    Ok,
    /// Something failed.
    Error,
}

/// Feedback in the status bar, shown until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text.
    pub text: String,
    /// Its kind.
    pub level: Level,
    /// When it disappears.
    pub until_ms: i64,
}

/// A window over the main screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// The key bindings and commands.
    Help {
        /// Rows scrolled.
        scroll: u16,
    },
    /// Pick something from a list (users, chats, emoji, results, sessions...).
    Picker(Picker),
    /// Type one line (a group title, a search).
    Prompt(Prompt),
    /// Yes or no before something that cannot be undone.
    Confirm(Confirm),
    /// Text to read (a profile).
    Info(Info),
}

/// Where unique ids come from: `client_msg_id`s and request tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    prefix: String,
    next: u64,
}

impl Ids {
    /// Ids `"{prefix}-1"`, `"{prefix}-2"`, ...: the prefix is random per run in the app, fixed
    /// in tests.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            next: 0,
        }
    }

    /// A new `client_msg_id`.
    pub fn client_msg_id(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.prefix, self.next)
    }

    /// A new request token.
    pub fn token(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

/// The time, as the last tick saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// Milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// The local time zone's offset from UTC, in seconds.
    pub utc_offset_s: i32,
}

/// Everything on screen.
#[derive(Debug, Clone)]
pub struct Model {
    /// The screen that is up.
    pub screen: Screen,
    /// The server's `host:port`, as given.
    pub server: String,
    /// The signed-in user.
    pub me: Option<pb::User>,
    /// Longest message text the server takes, in characters (its `Limits.max_text_chars`).
    pub max_text_chars: usize,
    /// The connection.
    pub conn: ConnState,
    /// The chat list.
    pub chats: ChatList,
    /// The open chat.
    pub view: Option<ChatView>,
    /// Names and presence.
    pub users: Users,
    /// Typing indicators.
    pub typing: Typing,
    /// Messages not acknowledged yet.
    pub pending: Pending,
    /// File transfers in progress.
    pub transfers: Transfers,
    /// Calls (signaling only).
    pub calls: Calls,
    /// The message being written.
    pub composer: Composer,
    /// The pane with the keyboard.
    pub focus: Focus,
    /// A window over the main screen.
    pub overlay: Option<Overlay>,
    /// Feedback in the status bar.
    pub notice: Option<Notice>,
    /// Theme, key bindings, notifications.
    pub config: Config,
    /// The time.
    pub clock: Clock,
    /// Unique ids.
    pub ids: Ids,
    /// When the bell last rang (it rings at most once a second).
    pub last_bell_ms: i64,
    /// When "typing" was last sent, and in which chat.
    pub last_typing: (u64, i64),
    /// Set when the user quits.
    pub quit: bool,
}

/// Longest message text, in characters, when the server does not say
/// (`Limits.max_text_chars` of the reference server).
pub const DEFAULT_MAX_TEXT_CHARS: usize = 4096;

impl Model {
    /// The first model: connecting to `server`.
    pub fn new(server: impl Into<String>, config: Config, ids: Ids, clock: Clock) -> Self {
        let server = server.into();
        Self {
            screen: Screen::Connecting {
                detail: format!("Connecting to {server}…"),
                retry_at_ms: None,
            },
            server,
            me: None,
            max_text_chars: DEFAULT_MAX_TEXT_CHARS,
            conn: ConnState::Connecting,
            chats: ChatList::default(),
            view: None,
            users: Users::default(),
            typing: Typing::default(),
            pending: Pending::default(),
            transfers: Transfers::default(),
            calls: Calls::default(),
            composer: Composer::default(),
            focus: Focus::Chats,
            overlay: None,
            notice: None,
            config,
            clock,
            ids,
            last_bell_ms: 0,
            last_typing: (0, 0),
            quit: false,
        }
    }

    /// My user id (0 before signing in).
    pub fn me_id(&self) -> u64 {
        self.me.as_ref().map_or(0, |u| u.id)
    }

    /// The id of the open chat.
    pub fn open_chat(&self) -> Option<u64> {
        self.view.as_ref().map(|v| v.chat_id)
    }

    /// Shows a notice for a few seconds (errors a little longer).
    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        let seconds = if level == Level::Error { 8 } else { 4 };
        self.notice = Some(Notice {
            text: text.into(),
            level,
            until_ms: self.clock.now_ms + seconds * 1000,
        });
    }
}
