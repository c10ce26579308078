//! The command line of `chatctl`: one subcommand per admin task, each with the connection
//! options flattened in (no `global` flags: a subcommand's help shows what it takes).

use std::ffi::OsString;

use chat_cli::layers::LayerError;
use chat_cli::server::parse_server;
use chat_cli::{GenerateArgs, ServerArgs};
use clap::{Args, CommandFactory as _, Parser, Subcommand, ValueEnum};

/// The command line of `chatctl`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "chatctl",
    version = chat_cli::version!(),
    max_term_width = 100,
    arg_required_else_help = true,
    args_conflicts_with_subcommands = true,
    about = "Administer a chatd server from the shell and from scripts.",
    long_about = "Administer a chatd server from the shell and from scripts.\n\n\
        chatctl speaks chat/1 to chatd with an account that has the admin role, so the server \
        enforces every rule. Log in once (`chatctl login`): the profile and its refresh token are \
        kept (mode 0600) under $XDG_CONFIG_HOME/chatctl, so later commands need no password.",
    after_help = "Exit status: 0 success, 1 other failure, 2 usage error, 3 not logged in or not \
        allowed, 4 not found, 5 server unavailable."
)]
pub struct Cli {
    /// `--generate man|complete-SHELL`.
    #[command(flatten)]
    pub generate: GenerateArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Log in and save the server, the user and a refresh token as a profile
    #[command(
        after_help = "Example:\n  chatctl login --server chat.example.org:4433 --pin \"$FP\" \
        --user admin --password-stdin < admin-password.txt"
    )]
    Login(ConnArgs),
    /// End the profile's session on the server and forget it
    #[command(after_help = "Example:\n  chatctl logout --profile staging")]
    Logout(ConnArgs),
    /// Check that the server and what it depends on (its store; Redis in cluster mode) work:
    /// exit status 0 only when they all do, 5 otherwise
    #[command(after_help = "Example:\n  chatctl health --json")]
    Health(ConnArgs),
    /// Manage user accounts, roles and sessions
    #[command(subcommand)]
    Users(UsersCommand),
    /// List, inspect and moderate chats
    #[command(subcommand)]
    Chats(ChatsCommand),
    /// Moderate messages: delete one, or purge what a user sent
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Count users, chats and messages, with the answering node's connections, uptime, and
    /// messages per second over the last minute
    #[command(after_help = "Example:\n  chatctl stats --json")]
    Stats(ConnArgs),
    /// Print a chat's whole history as JSON Lines, oldest first, one message per line (deleted
    /// ones as tombstones); the server's audit log records the export
    #[command(after_help = "Example:\n  chatctl export 42 > chat-42.jsonl\n\n\
        Each line: seq, sender_id, sender (username; empty when unknown or deleted), sent_at_ms, \
        kind, text, reply_to, forwarded_from, edited, edited_at_ms, deleted, deleted_at_ms, \
        reactions, mention_ids, attachment.")]
    Export(ChatArgs),
    /// Copy the server's database to PATH while chatd runs: a consistent copy of the embedded
    /// default's SQLite database, written here (for MongoDB, use mongodump); the server's audit
    /// log records the backup
    #[command(after_help = "Example:\n  chatctl backup chat.db.bak\n\n\
        The copy goes to PATH.partial first, is checked against the size and SHA-256 the server \
        announced, synced, and renamed to PATH. To restore it, stop chatd, put it in the data \
        directory as chatd.sqlite3, remove chatd.sqlite3-wal and chatd.sqlite3-shm there, and \
        start chatd (README.md, \"Back up and restore\").")]
    Backup {
        /// Where to write the copy
        #[arg(value_name = "PATH")]
        path: std::path::PathBuf,
        /// Overwrite PATH when it exists (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// The audit log of admin changes (who, when, from where, what, on what, and how it was
    /// answered), newest first, with filters
    #[command(after_help = "Examples:\n  chatctl audit --since 24h\n  \
        chatctl audit --actor alice --action admin_delete_user --json")]
    Audit {
        /// Only what this user did
        #[arg(long, value_name = "USERNAME")]
        actor: Option<String>,
        /// Only this request kind, e.g. admin_set_role
        #[arg(long, value_name = "KIND")]
        action: Option<String>,
        /// Only actions on this subject as the log writes it, e.g. user:42 or chat:7/seq:3
        #[arg(long, value_name = "SUBJECT")]
        subject: Option<String>,
        /// Only this recent: a duration such as 90m, 24h or 7d
        #[arg(long, value_name = "DURATION", value_parser = chat_cli::duration::parse)]
        since: Option<std::time::Duration>,
        /// Print at most this many entries (default: all)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Send an announcement to every user: each active user gets it as a notification, live
    /// when connected and with their next sync otherwise; the server's audit log records it
    #[command(
        after_help = "Examples:\n  chatctl broadcast \"Maintenance tonight at 22:00 UTC; \
        expect a minute of reconnects.\"\n  chatctl broadcast --yes \"$(cat notice.txt)\""
    )]
    Broadcast {
        /// The announcement: 1-1000 characters, line breaks allowed
        #[arg(value_name = "TEXT")]
        text: String,
        /// Do not ask for confirmation (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Refuse connections from addresses and CIDR ranges (bans), or let in only listed ranges
    /// (allow-list mode); every node enforces them when a connection arrives
    #[command(subcommand)]
    Bans(BansCommand),
    /// The storage schema: its version and indexes, and the migrations and indexes chatd also
    /// applies when it starts
    #[command(subcommand)]
    Db(DbCommand),
    /// The server's rotating keys: access-token signing, the refresh-token pepper, the webhook
    /// and TURN secrets; rotate one with an overlap in which the old key still verifies
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Email and webhook deliveries that failed their last attempt (dead letters): list them,
    /// try them again, or delete them
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// List the live chatd nodes (one on the embedded default), or drain one
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "Examples:\n  chatctl nodes\n  chatctl nodes drain node-b --yes"
    )]
    Nodes {
        /// Drain a node instead of listing them
        #[command(subcommand)]
        command: Option<NodesCommand>,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  chatctl completions bash > ~/.local/share/bash-completion/completions/chatctl"
    )]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The shells of `chatctl completions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
    /// PowerShell
    Powershell,
    /// elvish
    Elvish,
}

impl Shell {
    /// The `--generate` kind that prints the same script.
    pub fn generate(self) -> chat_cli::Generate {
        use chat_cli::Generate as G;
        match self {
            Shell::Bash => G::CompleteBash,
            Shell::Zsh => G::CompleteZsh,
            Shell::Fish => G::CompleteFish,
            Shell::Powershell => G::CompletePowershell,
            Shell::Elvish => G::CompleteElvish,
        }
    }
}

/// `chatctl users ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum UsersCommand {
    /// List users, by username prefix
    #[command(
        after_help = "Examples:\n  chatctl users list\n  chatctl users list --prefix ann --json"
    )]
    List {
        /// Only users whose name starts with this
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Create an account (its password is printed, or read with --new-password-stdin)
    #[command(
        after_help = "Examples:\n  chatctl users create bob --email bob@example.org\n  \
        chatctl users create carol --email carol@example.org --admin --new-password-stdin < pw.txt"
    )]
    Create {
        /// The user
        #[command(flatten)]
        user: UserArgs,
        /// The account's email address
        #[arg(long, value_name = "ADDRESS")]
        email: String,
        /// Give the account the server admin role
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input instead of generating one
        #[arg(long, conflicts_with = "password_stdin")]
        new_password_stdin: bool,
    },
    /// Show one user
    #[command(after_help = "Example:\n  chatctl users show alice")]
    Show(UserArgs),
    /// Disable an account: its sessions are revoked and its connections closed at once
    #[command(after_help = "Example:\n  chatctl users disable mallory --yes")]
    Disable(ConfirmedUserArgs),
    /// Enable a disabled account
    #[command(after_help = "Example:\n  chatctl users enable mallory")]
    Enable(UserArgs),
    /// Delete an account for good (its messages stay; the name is not reused)
    #[command(after_help = "Example:\n  chatctl users delete mallory --yes")]
    Delete(ConfirmedUserArgs),
    /// Set a new password (printed, or read with --new-password-stdin) and revoke every session
    #[command(after_help = "Examples:\n  chatctl users reset-password alice\n  \
        chatctl users reset-password alice --new-password-stdin < new-password.txt")]
    ResetPassword {
        /// The user
        #[command(flatten)]
        user: ConfirmedUserArgs,
        /// Read the new password from standard input instead of generating one
        #[arg(long, conflicts_with = "password_stdin")]
        new_password_stdin: bool,
    },
    /// Create accounts from JSON Lines, one account a line: {"username", "email", "password"?,
    /// "role"?}; an account that exists is left as it is
    #[command(after_help = "Examples:\n  chatctl users import accounts.jsonl\n  \
        printf '%s\\n' '{\"username\":\"dave\",\"email\":\"dave@example.org\",\"role\":\"admin\"}' \
        | chatctl users import - --json\n\n\
        A line without \"password\" gets a generated one, printed only in the report; \"role\" is \
        \"user\" (the default) or \"admin\". The report has one line per input line, blank ones skipped (created, \
        exists, invalid or failed; with --json, JSON Lines), then a summary.\n\n\
        Exit status: 0 when every line was created or exists; 1 when some line was invalid or \
        failed (the others were imported); 3 or 5 when the server refused the admin or went away \
        (the lines before were imported).")]
    Import {
        /// The file, or - for standard input
        #[arg(value_name = "FILE")]
        file: String,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Make a user a server admin, or an ordinary user again
    #[command(after_help = "Example:\n  chatctl users set-role alice admin")]
    SetRole {
        /// The user
        #[command(flatten)]
        user: UserArgs,
        /// The role
        #[arg(value_enum)]
        role: Role,
    },
    /// Turn off a user's two-factor login (for one who lost their authenticator and recovery
    /// codes); they log in with their password alone until they turn it on again
    #[command(after_help = "Example:\n  chatctl users disable-two-factor alice --yes")]
    DisableTwoFactor(ConfirmedUserArgs),
    /// List a user's sessions
    #[command(after_help = "Example:\n  chatctl users sessions alice")]
    Sessions(UserArgs),
    /// Revoke one session of a user, or all of them
    #[command(
        after_help = "Examples:\n  chatctl users revoke-sessions alice --yes\n  \
        chatctl users revoke-sessions alice --session 42"
    )]
    RevokeSessions {
        /// The user
        #[command(flatten)]
        user: ConfirmedUserArgs,
        /// Only this session (an id from `chatctl users sessions`)
        #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
        session: Option<u64>,
    },
}

/// `chatctl chats ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum ChatsCommand {
    /// List every chat (member or not), by id, with filters
    #[command(after_help = "Examples:\n  chatctl chats list\n  \
        chatctl chats list --kind group --name team --member alice --json")]
    List {
        /// Only chats of this kind
        #[arg(long, value_enum)]
        kind: Option<ChatKind>,
        /// Only chats whose title contains this (ASCII letters in any case)
        #[arg(long, value_name = "TEXT")]
        name: Option<String>,
        /// Only chats this user is a member of
        #[arg(long, value_name = "USERNAME")]
        member: Option<String>,
        /// Print at most this many chats (default: all)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Show one chat (not its messages)
    #[command(after_help = "Example:\n  chatctl chats show 42")]
    Show(ChatArgs),
    /// List a chat's members with their roles
    #[command(after_help = "Example:\n  chatctl chats members 42 --json")]
    Members(ChatArgs),
    /// Delete a chat and its history for every member (any chat, as a server admin)
    #[command(after_help = "Example:\n  chatctl chats delete 42 --yes")]
    Delete {
        /// The chat
        #[command(flatten)]
        chat: ChatArgs,
        /// Do not ask for confirmation (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `chatctl messages ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum MessagesCommand {
    /// Delete one message for everyone, whoever sent it; members see an ordinary delete
    #[command(after_help = "Example:\n  chatctl messages delete 42 117 --yes")]
    Delete {
        /// The chat id
        #[arg(value_name = "CHAT", value_parser = clap::value_parser!(u64).range(1..))]
        chat: u64,
        /// The message's sequence number in the chat
        #[arg(value_name = "SEQ", value_parser = clap::value_parser!(u64).range(1..))]
        seq: u64,
        /// Do not ask for confirmation (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete for everyone every message a user sent, in one chat or in all of them (also a
    /// deleted user's)
    #[command(
        after_help = "Examples:\n  chatctl messages purge --sender mallory --yes\n  \
        chatctl messages purge --sender mallory --chat 42 --since 2h --yes --json"
    )]
    Purge {
        /// Whose messages (--user is the admin account that signs in)
        #[arg(long, value_name = "USERNAME")]
        sender: String,
        /// Only in this chat
        #[arg(long, value_name = "CHAT", value_parser = clap::value_parser!(u64).range(1..))]
        chat: Option<u64>,
        /// Only what was sent this recently: a duration such as 90m, 24h or 7d
        #[arg(long, value_name = "DURATION", value_parser = chat_cli::duration::parse)]
        since: Option<std::time::Duration>,
        /// Do not ask for confirmation (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `chatctl nodes ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum NodesCommand {
    /// Drain a node for a rolling restart: its clients are told to reconnect elsewhere, it stops
    /// accepting connections and its chatd process exits
    #[command(after_help = "Example:\n  chatctl nodes drain node-b --yes")]
    Drain {
        /// The node id (as `chatctl nodes` lists it)
        #[arg(value_name = "NODE")]
        node: String,
        /// Do not ask for confirmation (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `chatctl bans ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum BansCommand {
    /// The rules in force (bans first), whether allow-list mode is on, and your address as the
    /// server sees it
    #[command(after_help = "Example:\n  chatctl bans list --json")]
    List(ConnArgs),
    /// Ban an address or CIDR range (IPv4 or IPv6), or with --allow let it in under
    /// allow-list mode; adding the same range again replaces its rule
    #[command(
        after_help = "Examples:\n  chatctl bans add 203.0.113.0/24 --for 24h --reason \"credential \
        stuffing\"\n  chatctl bans add 2001:db8:42::/48 --allow --reason office"
    )]
    Add {
        /// An address (one host) or a CIDR range, e.g. 198.51.100.7 or 2001:db8::/32
        #[arg(value_name = "CIDR")]
        cidr: String,
        /// An allow rule (for allow-list mode) instead of a ban
        #[arg(long)]
        allow: bool,
        /// Only for this long, e.g. 90m, 24h or 7d (default: until removed)
        #[arg(
            long = "for",
            value_name = "DURATION",
            value_parser = chat_cli::duration::parse_nonzero
        )]
        duration: Option<std::time::Duration>,
        /// Why, for whoever reads the list (at most 200 characters)
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Remove the ban (or with --allow the allow rule) of an address or range
    #[command(after_help = "Example:\n  chatctl bans remove 203.0.113.0/24")]
    Remove {
        /// The address or range, as added (any spelling of the same range)
        #[arg(value_name = "CIDR")]
        cidr: String,
        /// Remove an allow rule instead of a ban
        #[arg(long)]
        allow: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Switch allow-list mode: `allow-list` lets in only ranges with an allow rule (and the
    /// server's exempt ranges, loopback by default); `open` lets in everyone not banned
    #[command(
        after_help = "Example:\n  chatctl bans add 192.0.2.0/24 --allow && chatctl bans mode \
        allow-list --yes\n\nThe server refuses a change that would shut out your own address."
    )]
    Mode {
        /// The mode
        #[arg(value_enum)]
        mode: AccessMode,
        /// Do not ask for confirmation (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// Who may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessMode {
    /// Everyone not banned
    Open,
    /// Only ranges with an allow rule
    AllowList,
}

/// `chatctl db ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// The schema version and indexes, and what is missing
    #[command(after_help = "Example:\n  chatctl db status")]
    Status(ConnArgs),
    /// Apply the migrations the database lacks, then create missing indexes (idempotent)
    #[command(after_help = "Example:\n  chatctl db migrate --json")]
    Migrate(ConnArgs),
    /// Create the schema's missing indexes (idempotent)
    #[command(after_help = "Example:\n  chatctl db ensure-indexes")]
    EnsureIndexes(ConnArgs),
}

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyKindArg {
    /// The keys that sign access tokens
    Tokens,
    /// The pepper of stored refresh-token hashes
    Refresh,
    /// The secret that signs webhook calls (shared with the receivers)
    Webhook,
    /// The secret of TURN credentials (shared with the TURN servers)
    Turn,
    /// The master key of encryption at rest (the server makes it; every node writes it to its
    /// --encryption-key-file)
    Master,
}

/// `chatctl keys ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Every key ring: each key's id, state, creation and end of its overlap; never a secret
    #[command(after_help = "Examples:\n  chatctl keys list\n  chatctl keys list --json")]
    List(ConnArgs),
    /// Make a new key current; the one before keeps verifying for the overlap. The server makes
    /// the tokens, refresh and master keys; give the new webhook or TURN secret in a file, once
    /// the receivers or TURN servers accept it
    #[command(after_help = "Examples:\n  chatctl keys rotate --kind tokens\n  \
        chatctl keys rotate --kind turn --secret-file /etc/chatd/turn.next\n  \
        chatctl keys rotate --kind master")]
    Rotate {
        /// Which key
        #[arg(long, value_enum)]
        kind: KeyKindArg,
        /// File holding the new webhook or TURN secret (16-256 bytes; a trailing newline is
        /// not part of it)
        #[arg(long, value_name = "FILE")]
        secret_file: Option<std::path::PathBuf>,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print the webhook or TURN secrets that verify, to give to the webhook receivers or TURN
    /// servers (after a scheduled rotation, the server made the new one); the server's own
    /// tokens and refresh keys are never given. Recorded in the audit log
    #[command(after_help = "Examples:\n  chatctl keys secrets --kind webhook\n  \
        chatctl keys secrets --kind turn --json")]
    Secrets {
        /// Which secrets: webhook or turn
        #[arg(long, value_enum)]
        kind: KeyKindArg,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// End the overlap now (after a key leaked): only the current key verifies; tokens and
    /// refresh tokens of the others are refused
    #[command(after_help = "Example:\n  chatctl keys retire --kind tokens --yes")]
    Retire {
        /// Which key
        #[arg(long, value_enum)]
        kind: KeyKindArg,
        /// Do not ask for confirmation (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// `chatctl dlq ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum DlqCommand {
    /// List the dead letters, oldest first: kind, user, target (address or webhook kind),
    /// attempts, when the last one failed and why
    #[command(after_help = "Examples:\n  chatctl dlq list\n  chatctl dlq list --json")]
    List {
        /// Print at most this many (default: all)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Try dead letters again, from their first attempt
    #[command(after_help = "Examples:\n  chatctl dlq retry 17 18\n  chatctl dlq retry --all")]
    Retry {
        /// The dead letters' ids (as `chatctl dlq list` shows them)
        #[arg(value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
        ids: Vec<u64>,
        /// Every dead letter
        #[arg(long)]
        all: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Delete dead letters for good
    #[command(
        after_help = "Examples:\n  chatctl dlq purge 17 --yes\n  chatctl dlq purge --all --yes"
    )]
    Purge {
        /// The dead letters' ids (as `chatctl dlq list` shows them)
        #[arg(value_name = "ID", value_parser = clap::value_parser!(u64).range(1..))]
        ids: Vec<u64>,
        /// Every dead letter
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation (required when standard input is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Connection options
        #[command(flatten)]
        conn: ConnArgs,
    },
}

/// A chat kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChatKind {
    /// A chat of two users
    Private,
    /// A group: every member posts
    Group,
    /// A channel: admins post, members read
    Channel,
}

/// A command about one chat.
#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// The chat id
    #[arg(value_name = "CHAT", value_parser = clap::value_parser!(u64).range(1..))]
    pub chat: u64,
    /// Connection options
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// A server role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// An ordinary user
    User,
    /// A server admin
    Admin,
}

/// A command about one user.
#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    /// The username
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Connection options
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// A destructive command about one user.
#[derive(Debug, Clone, Args)]
pub struct ConfirmedUserArgs {
    /// The user
    #[command(flatten)]
    pub user: UserArgs,
    /// Do not ask for confirmation (required when standard input is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// How to reach and sign in to the server, and how to print; every command takes them.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnArgs {
    /// The saved profile to use or (with login) to write
    #[arg(
        long,
        value_name = "NAME",
        env = "CHATCTL_PROFILE",
        default_value = "default"
    )]
    pub profile: String,
    /// The server, as HOST:PORT (default: the profile's)
    #[arg(long, value_name = "HOST:PORT", env = "CHATCTL_SERVER", value_parser = parse_server)]
    pub server: Option<String>,
    /// How the server certificate is checked (default: the profile's)
    #[command(flatten)]
    pub tls: ServerArgs,
    /// The admin account (default: the profile's)
    #[arg(long, value_name = "NAME", env = "CHATCTL_USER")]
    pub user: Option<String>,
    /// Read the password from the first line of standard input (else CHATCTL_PASSWORD; never an
    /// argument). With a password, a command logs in just for itself
    #[arg(long)]
    pub password_stdin: bool,
    /// With a password, for an account with two-factor login: the current code of its
    /// authenticator app, or one of its recovery codes
    #[arg(long, value_name = "CODE", env = "CHATCTL_TWO_FACTOR_CODE")]
    pub two_factor_code: Option<String>,
    /// Print JSON (stable field names) instead of tables and sentences
    #[arg(long)]
    pub json: bool,
}

impl Command {
    /// The connection options of the invoked command (`None` for `completions`).
    pub fn conn(&self) -> Option<&ConnArgs> {
        match self {
            Command::Login(c) | Command::Logout(c) | Command::Health(c) | Command::Stats(c) => {
                Some(c)
            }
            Command::Users(u) => Some(match u {
                UsersCommand::List { conn, .. } | UsersCommand::Import { conn, .. } => conn,
                UsersCommand::Show(u) | UsersCommand::Enable(u) | UsersCommand::Sessions(u) => {
                    &u.conn
                }
                UsersCommand::SetRole { user, .. } | UsersCommand::Create { user, .. } => {
                    &user.conn
                }
                UsersCommand::Disable(c)
                | UsersCommand::Delete(c)
                | UsersCommand::DisableTwoFactor(c) => &c.user.conn,
                UsersCommand::ResetPassword { user, .. }
                | UsersCommand::RevokeSessions { user, .. } => &user.user.conn,
            }),
            Command::Chats(c) => Some(match c {
                ChatsCommand::List { conn, .. } => conn,
                ChatsCommand::Show(c) | ChatsCommand::Members(c) => &c.conn,
                ChatsCommand::Delete { chat, .. } => &chat.conn,
            }),
            Command::Export(c) => Some(&c.conn),
            Command::Backup { conn, .. } | Command::Broadcast { conn, .. } => Some(conn),
            Command::Messages(
                MessagesCommand::Delete { conn, .. } | MessagesCommand::Purge { conn, .. },
            ) => Some(conn),
            Command::Audit { conn, .. } => Some(conn),
            Command::Dlq(
                DlqCommand::List { conn, .. }
                | DlqCommand::Retry { conn, .. }
                | DlqCommand::Purge { conn, .. },
            ) => Some(conn),
            Command::Bans(
                BansCommand::List(conn)
                | BansCommand::Add { conn, .. }
                | BansCommand::Remove { conn, .. }
                | BansCommand::Mode { conn, .. },
            ) => Some(conn),
            Command::Db(
                DbCommand::Status(conn) | DbCommand::Migrate(conn) | DbCommand::EnsureIndexes(conn),
            ) => Some(conn),
            Command::Keys(
                KeysCommand::List(conn)
                | KeysCommand::Rotate { conn, .. }
                | KeysCommand::Retire { conn, .. }
                | KeysCommand::Secrets { conn, .. },
            ) => Some(conn),
            Command::Nodes {
                command: Some(NodesCommand::Drain { conn, .. }),
                ..
            }
            | Command::Nodes { conn, .. } => Some(conn),
            Command::Completions { .. } => None,
        }
    }
}

/// The clap command as it parses (the environment variables named in the help): for
/// `--generate` and `completions`.
pub fn command() -> clap::Command {
    chat_cli::layers::without_env(Cli::command())
}

impl Cli {
    /// Parses `args` (program name first) over the environment lookup `env`; empty variables
    /// count as unset.
    ///
    /// # Errors
    /// A bad option or variable, named; [`LayerError::Cli`] also for `--help` and `--version`.
    pub fn load(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Cli, LayerError> {
        chat_cli::layers::parse_env_only(args, &env)
    }
}
