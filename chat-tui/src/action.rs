//! Actions: everything that can change the model, from the terminal (keys, mouse, resize), the
//! clock, the renderer (what is on screen) and the network task.

use chatproto::client::{ClientEvent, HistoryPage, HistoryRange};
use chatproto::pb;
use crossterm::event::KeyEvent;

use crate::model::Clock;

/// One input to [`update`](crate::update::update).
#[derive(Debug, Clone, PartialEq)]
// Network events are most of the traffic; boxing them would allocate per event to shrink a
// key press.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// A key press.
    Key(KeyEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    /// A mouse action, already located on screen.
    Mouse(MouseAction),
    /// Time passed (the app ticks a few times a second).
    Tick(Clock),
    /// The renderer drew the open chat's messages from `top` to `bottom` (seqs).
    Viewport {
        /// The chat.
        chat_id: u64,
        /// The oldest message on screen.
        top: u64,
        /// The newest message on screen.
        bottom: u64,
    },
    /// Something from the network task.
    Net(NetEvent),
}

/// A mouse action on something on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MouseAction {
    /// The wheel over the chat list: rows, negative up.
    ScrollChats(i32),
    /// The wheel over the messages: messages, negative up (older).
    ScrollMessages(i32),
    /// A click on a chat of the list.
    ClickChat(u64),
    /// A click on a message.
    ClickMessage(u64),
    /// A click in the composer.
    ClickComposer,
    /// A click on row `n` of a picker.
    ClickPicker(usize),
}

/// What the network task reports.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum NetEvent {
    /// Dialing failed; the next attempt starts after `retry_in_ms` (`None`: no next attempt).
    ConnectFailed {
        /// Why.
        error: String,
        /// Delay before the next attempt.
        retry_in_ms: Option<u64>,
    },
    /// A server seen for the first time: show its fingerprint and ask.
    TrustUnknown {
        /// `host:port`.
        address: String,
        /// Hex SHA-256 of its certificate.
        fingerprint: String,
        /// The known-servers file.
        file: String,
    },
    /// A server whose certificate changed: refuse.
    TrustChanged {
        /// `host:port`.
        address: String,
        /// What it presented.
        fingerprint: String,
        /// What was recorded.
        known: String,
        /// The known-servers file.
        file: String,
    },
    /// Connected, but no session: sign in or register. `reason` says why a saved session
    /// could not be used.
    NeedSignIn {
        /// Why, when a session existed.
        reason: Option<String>,
    },
    /// The password was right, and the account has two-factor login: ask for a code.
    NeedTwoFactorCode {
        /// What to tell the user (the code is missing, or wrong or used).
        error: String,
    },
    /// Sign-in or registration was refused.
    SignInFailed {
        /// The server's reason, readable.
        error: String,
    },
    /// Signed in; the outbox of this user (from an earlier run) is attached.
    SignedIn {
        /// Who.
        me: pb::User,
        /// Longest message text the server takes, in characters (0: it did not say).
        max_text_chars: usize,
        /// Messages left unsent by an earlier run.
        outbox: Vec<pb::SendMessage>,
    },
    /// An event of the SDK client.
    Client(ClientEvent),
    /// The whole chat list.
    Chats(Vec<pb::Chat>),
    /// One chat (with members).
    Chat(pb::Chat),
    /// A chat was created or opened by me: show it.
    ChatOpened(pb::Chat),
    /// A page of history.
    History {
        /// The chat.
        chat_id: u64,
        /// The request's token.
        token: u64,
        /// Which messages were asked for.
        range: HistoryRange,
        /// The answer.
        page: HistoryPage,
    },
    /// A history request failed.
    HistoryFailed {
        /// The chat.
        chat_id: u64,
        /// The request's token.
        token: u64,
        /// Why.
        error: String,
    },
    /// Profiles.
    Users(Vec<pb::User>),
    /// Receipts of a chat.
    Receipts {
        /// The chat.
        chat_id: u64,
        /// Every member's cursors.
        receipts: Vec<pb::MemberReceipt>,
    },
    /// Users found for a picker.
    UserResults {
        /// The picker's token.
        token: u64,
        /// Who.
        users: Vec<pb::User>,
    },
    /// Messages found.
    MessageResults {
        /// The picker's token.
        token: u64,
        /// What.
        messages: Vec<pb::Message>,
    },
    /// My sessions.
    Sessions(Vec<pb::Session>),
    /// My profile changed.
    Me(pb::User),
    /// A profile to show.
    Profile(pb::User),
    /// An outbox message was queued (stored).
    Queued(pb::SendMessage),
    /// An outbox message could not be stored: it was not queued.
    QueueFailed {
        /// Its id.
        client_msg_id: String,
        /// Its text, to give back to the composer.
        text: String,
        /// Why.
        error: String,
    },
    /// The server stored an outbox message.
    Sent {
        /// As queued.
        request: pb::SendMessage,
        /// As stored.
        message: pb::Message,
    },
    /// The server refused an outbox message.
    SendRefused {
        /// As queued.
        request: pb::SendMessage,
        /// Why, readable.
        error: String,
    },
    /// A file transfer moved on.
    TransferProgress {
        /// The transfer's token.
        token: u64,
        /// Bytes sent or received.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// An upload is stored on the server: send it into its chat.
    Uploaded {
        /// The transfer's token.
        token: u64,
        /// The stored file.
        file: pb::FileInfo,
    },
    /// A download is complete.
    Downloaded {
        /// The transfer's token.
        token: u64,
        /// Where the file is now.
        path: String,
    },
    /// A transfer failed.
    TransferFailed {
        /// The transfer's token.
        token: u64,
        /// Why, readable.
        error: String,
    },
    /// Calls a chat recorded (`call_ended` events), loaded with a page of its history.
    CallRecords {
        /// The chat.
        chat_id: u64,
        /// The events.
        events: Vec<pb::ChatEvent>,
    },
    /// The answer to `start_call`: ringing, or already ended (busy).
    CallStarted(pb::Call),
    /// The answer to `accept_call`: this device takes part.
    CallAccepted(pb::Call),
    /// The answer to `get_group_call`: a group's live call.
    GroupCall(pb::GroupCall),
    /// A call request was refused or failed.
    CallFailed {
        /// The call (0 for a call that could not be started).
        call_id: u64,
        /// Why, readable.
        error: String,
    },
    /// A request succeeded: feedback.
    Done(String),
    /// "Forgot password": the request went through (whether a code was sent is not told).
    ResetCodeSent {
        /// How long a code works.
        valid_for_seconds: u32,
    },
    /// "Forgot password": the new password is set.
    PasswordReset,
    /// Turning on two-factor login began: the new secret, to add to an authenticator app.
    TwoFactorSecret {
        /// Base32, for typing.
        secret: String,
        /// The `otpauth://` URI.
        uri: String,
    },
    /// New recovery codes (two-factor login was turned on, or they were replaced).
    RecoveryCodes(Vec<String>),
    /// A request failed: feedback.
    Failed(String),
    /// Signed out: the session is forgotten.
    SignedOut,
}

/// How long an emailed code works, in words (`valid_for_seconds` of protocol.md section 18).
pub fn lifetime(seconds: u32) -> String {
    match seconds {
        s if s >= 7200 && s % 3600 == 0 => format!("{} hours", s / 3600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}
