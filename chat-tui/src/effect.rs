//! Effects: what [`update`](crate::update::update) asks the outside world to do. The app carries
//! out the terminal ones (bell, notifications) and hands [`NetCommand`]s to the network task.

use chatproto::client::HistoryRange;
use chatproto::pb;

/// One effect of an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A request for the network task.
    Net(NetCommand),
    /// Ring the terminal bell.
    Bell,
    /// A desktop notification through the terminal.
    Notify {
        /// Title (the chat).
        title: String,
        /// Body (sender and text).
        body: String,
    },
    /// Store the composer's input history.
    SaveInputHistory(Vec<String>),
    /// Leave.
    Quit,
}

/// A user, by id or by username (the network task looks the name up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// Known id.
    Id(u64),
    /// A username, without `@`.
    Name(String),
}

/// Two-factor login of the signed-in user (protocol.md section 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwoFactorCommand {
    /// Begin turning it on, with the password.
    Begin {
        /// The account password.
        password: String,
    },
    /// Turn it on with a code of the new secret.
    Enable {
        /// The code.
        code: String,
    },
    /// Turn it off with a code or a recovery code.
    Disable {
        /// The code.
        code: String,
    },
    /// New recovery codes, with a code.
    NewRecoveryCodes {
        /// The code.
        code: String,
    },
}

/// The signed-in user's email address (protocol.md section 18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    /// Email a new verification code.
    RequestVerification,
    /// Verify the address with an emailed code.
    Verify {
        /// The code.
        code: String,
    },
    /// Change the address.
    ChangeEmail {
        /// The account password.
        password: String,
        /// The new address.
        new_email: String,
    },
}

/// Work for the network task.
#[derive(Debug, Clone, PartialEq)]
pub enum NetCommand {
    /// The user accepted (or refused) the server's fingerprint.
    Trust(bool),
    /// A step of turning two-factor login on or off.
    TwoFactor(TwoFactorCommand),
    /// Verifying or changing the email address.
    Account(AccountCommand),
    /// Forgot the password: email a reset code (on the sign-in screen).
    RequestReset {
        /// A username or an email address.
        account: String,
    },
    /// Set a new password with an emailed code (on the sign-in screen).
    ResetPassword {
        /// The same account as in the request.
        account: String,
        /// The code.
        code: String,
        /// The new password.
        new_password: String,
    },
    /// Sign in.
    SignIn {
        /// Username.
        username: String,
        /// Password.
        password: String,
        /// For an account with two-factor login: a current code or a recovery code; empty
        /// until the server asks for one.
        two_factor_code: String,
    },
    /// Create an account.
    Register {
        /// Username.
        username: String,
        /// Email.
        email: String,
        /// Password.
        password: String,
    },
    /// Every chat.
    LoadChats,
    /// One chat, with its members.
    LoadChat(u64),
    /// A page of history.
    LoadHistory {
        /// The chat.
        chat_id: u64,
        /// Matches the answer.
        token: u64,
        /// Which messages.
        range: HistoryRange,
    },
    /// Every member's receipts in a chat.
    LoadReceipts(u64),
    /// A group's live call, if it has one (capability `group_calls`).
    LoadGroupCall(u64),
    /// Profiles.
    LoadUsers(Vec<u64>),
    /// Queue a message in the outbox.
    Queue(pb::SendMessage),
    /// Edit a message.
    Edit {
        /// Chat.
        chat_id: u64,
        /// Message.
        seq: u64,
        /// New text.
        text: String,
    },
    /// Delete a message.
    Delete {
        /// Chat.
        chat_id: u64,
        /// Message.
        seq: u64,
        /// For everyone, or only for me.
        for_everyone: bool,
    },
    /// Add or remove my reaction.
    React {
        /// Chat.
        chat_id: u64,
        /// Message.
        seq: u64,
        /// The emoji.
        emoji: String,
        /// Remove instead of add.
        remove: bool,
    },
    /// Mark a chat read up to a message.
    MarkRead {
        /// Chat.
        chat_id: u64,
        /// Up to.
        seq: u64,
    },
    /// Say "typing".
    Typing(u64),
    /// Find users for a picker.
    SearchUsers {
        /// The picker's token.
        token: u64,
        /// Prefix.
        query: String,
    },
    /// Find messages.
    SearchMessages {
        /// The picker's token.
        token: u64,
        /// Words.
        query: String,
        /// 0: every chat.
        chat_id: u64,
    },
    /// Open (create) the private chat with a user.
    OpenPrivate(UserRef),
    /// Create a group or channel.
    CreateGroup {
        /// Group or channel.
        kind: pb::ChatKind,
        /// Title.
        title: String,
    },
    /// Invite users.
    Invite {
        /// Chat.
        chat_id: u64,
        /// Who.
        user: UserRef,
    },
    /// Remove a member.
    Kick {
        /// Chat.
        chat_id: u64,
        /// Who.
        user: UserRef,
    },
    /// Leave a chat (a private chat is deleted).
    Leave(u64),
    /// Promote or demote a member.
    SetRole {
        /// Chat.
        chat_id: u64,
        /// Who.
        user: UserRef,
        /// Admin or member.
        role: pb::MemberRole,
    },
    /// Hand the chat to another member.
    Transfer {
        /// Chat.
        chat_id: u64,
        /// Who.
        user: UserRef,
    },
    /// Pin, mute or archive.
    SetChatState {
        /// Chat.
        chat_id: u64,
        /// Pin.
        pinned: Option<bool>,
        /// Mute until (ms since the epoch; 0 unmutes, `i64::MAX` forever).
        muted_until_ms: Option<i64>,
        /// Archive.
        archived: Option<bool>,
    },
    /// Change my profile or status.
    UpdateProfile(pb::UpdateProfile),
    /// My contacts (shown in a picker).
    ListContacts {
        /// The picker's token.
        token: u64,
    },
    /// Add a contact.
    AddContact(UserRef),
    /// Remove a contact.
    RemoveContact(UserRef),
    /// Block a user.
    Block(UserRef),
    /// Unblock a user.
    Unblock(UserRef),
    /// The users I blocked (shown in a picker).
    ListBlocked {
        /// The picker's token.
        token: u64,
    },
    /// My sessions.
    ListSessions,
    /// Revoke one of my sessions.
    RevokeSession(u64),
    /// A user's profile, shown in a window.
    ShowProfile(UserRef),
    /// Sign out (revokes the session, forgets it).
    SignOut,
    /// Upload a local file; progress and the stored file come back with `token`.
    Upload {
        /// Names the transfer.
        token: u64,
        /// The path as typed (`~/` is the home directory; relative to the working directory).
        path: String,
    },
    /// Download a file into the download directory, under a name no existing file has.
    Download {
        /// Names the transfer.
        token: u64,
        /// The file (its id, name and size).
        file: pb::FileInfo,
    },
    /// Stop a transfer (a partial download is removed).
    CancelTransfer(u64),
    /// The calls a chat recorded with seqs in `after_seq < seq <= up_to_seq`.
    LoadCallRecords {
        /// The private chat.
        chat_id: u64,
        /// Above this seq.
        after_seq: u64,
        /// Up to this seq.
        up_to_seq: u64,
    },
    /// Call the other member of a private chat.
    StartCall {
        /// The private chat.
        chat_id: u64,
        /// Video, or audio only.
        video: bool,
    },
    /// Answer a ringing call on this device.
    AcceptCall(u64),
    /// Decline, cancel or hang up a call.
    EndCall(u64),
}
