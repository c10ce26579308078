//! Slash commands: the one table of every `/command` (for parsing, Tab completion and the help
//! overlay) and the parser that turns a composer line into a [`Slash`]. Each entry of the table
//! carries the reader of its argument, so a command's name is written once.

use crate::effect::UserRef;

/// One slash command.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Its name, without `/`.
    pub name: &'static str,
    /// Its arguments, as the usage shows them (empty: none).
    pub args: &'static str,
    /// What it does.
    pub help: &'static str,
    /// Reads the argument (the rest of the line).
    read: fn(&str) -> Result<Slash, String>,
}

impl Spec {
    /// `/name ARGS`, as the help shows it.
    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            format!("/{}", self.name)
        } else {
            format!("/{} {}", self.name, self.args)
        }
    }
}

const fn cmd(
    name: &'static str,
    args: &'static str,
    help: &'static str,
    read: fn(&str) -> Result<Slash, String>,
) -> Spec {
    Spec {
        name,
        args,
        help,
        read,
    }
}

use Slash as S;

/// Every slash command, in the order the help lists them.
pub const COMMANDS: &[Spec] = &[
    cmd("dm", "USER", "open the private chat with USER", |a| {
        user(a).map(S::Dm)
    }),
    cmd(
        "new",
        "",
        "new private chat: pick a user by searching",
        |_| Ok(S::New),
    ),
    cmd("group", "TITLE", "create a group", |a| {
        text(a, "the title").map(S::Group)
    }),
    cmd("channel", "TITLE", "create a channel", |a| {
        text(a, "the title").map(S::Channel)
    }),
    cmd("invite", "USER", "add USER to this chat", |a| {
        user(a).map(S::Invite)
    }),
    cmd("kick", "USER", "remove USER from this chat", |a| {
        user(a).map(S::Kick)
    }),
    cmd(
        "leave",
        "",
        "leave this chat (a private chat is deleted)",
        |_| Ok(S::Leave),
    ),
    cmd("promote", "USER", "make USER an admin of this chat", |a| {
        user(a).map(S::Promote)
    }),
    cmd("demote", "USER", "make the admin USER a member", |a| {
        user(a).map(S::Demote)
    }),
    cmd(
        "transfer",
        "USER",
        "make USER the owner of this chat",
        |a| user(a).map(S::Transfer),
    ),
    cmd("members", "", "list the members of this chat", |_| {
        Ok(S::Members)
    }),
    cmd("reply", "TEXT", "reply to the selected message", |a| {
        text(a, "the text").map(S::Reply)
    }),
    cmd(
        "edit",
        "TEXT",
        "replace the text of the selected (or my last) message",
        |a| text(a, "the text").map(S::Edit),
    ),
    cmd("delete", "", "delete the selected message for me", |_| {
        Ok(S::Delete)
    }),
    cmd(
        "delete-all",
        "",
        "delete the selected message for everyone",
        |_| Ok(S::DeleteAll),
    ),
    cmd(
        "react",
        "EMOJI",
        "react to the selected message (👍 or :thumbsup:)",
        |a| text(a, "the emoji").map(S::React),
    ),
    cmd("unreact", "EMOJI", "take my reaction back", |a| {
        text(a, "the emoji").map(S::Unreact)
    }),
    cmd(
        "forward",
        "CHAT",
        "forward the selected message to CHAT",
        |a| text(a, "the chat").map(S::Forward),
    ),
    cmd(
        "upload",
        "PATH",
        "send the file at PATH to this chat",
        |a| path(a).map(S::Upload),
    ),
    cmd(
        "download",
        "",
        "save the file of the selected (or latest) message",
        |_| Ok(S::Download),
    ),
    cmd("cancel", "", "cancel the latest file transfer", |_| {
        Ok(S::CancelTransfer)
    }),
    cmd(
        "call",
        "[video]",
        "call the other member of this private chat (signaling only)",
        |a| match a.trim() {
            "" | "audio" => Ok(S::Call { video: false }),
            "video" => Ok(S::Call { video: true }),
            other => Err(format!("{other:?} is not audio or video")),
        },
    ),
    cmd(
        "hangup",
        "",
        "end the call (cancel it while it rings, decline a ringing one)",
        |_| Ok(S::HangUp),
    ),
    cmd("search", "WORDS", "search this chat", |a| {
        text(a, "what to search").map(S::Search)
    }),
    cmd("searchall", "WORDS", "search every chat", |a| {
        text(a, "what to search").map(S::SearchAll)
    }),
    cmd("pin", "", "pin this chat", |_| Ok(S::Pin(true))),
    cmd("unpin", "", "unpin this chat", |_| Ok(S::Pin(false))),
    cmd(
        "mute",
        "[30m|8h|1d|1w|forever]",
        "mute this chat (forever without a duration)",
        |a| match a.trim() {
            "" | "forever" => Ok(S::Mute(None)),
            d => parse_duration(d)
                .map(|ms| S::Mute(Some(ms)))
                .ok_or_else(|| format!("{d:?} is not a duration")),
        },
    ),
    cmd("unmute", "", "unmute this chat", |_| Ok(S::Unmute)),
    cmd("archive", "", "archive this chat", |_| Ok(S::Archive(true))),
    cmd("unarchive", "", "move this chat out of the archive", |_| {
        Ok(S::Archive(false))
    }),
    cmd(
        "status",
        "online|away|busy|invisible",
        "set my status",
        |a| match a.trim() {
            "online" => Ok(S::Status(chatproto::pb::UserStatus::Online)),
            "away" => Ok(S::Status(chatproto::pb::UserStatus::Away)),
            "busy" => Ok(S::Status(chatproto::pb::UserStatus::Busy)),
            "invisible" | "offline" => Ok(S::Status(chatproto::pb::UserStatus::Offline)),
            other => Err(format!("{other:?} is not a status")),
        },
    ),
    cmd("name", "DISPLAY NAME", "set my display name", |a| {
        text(a, "the name").map(S::Name)
    }),
    cmd("bio", "TEXT", "set my bio", |a| {
        Ok(S::Bio(a.trim().to_string()))
    }),
    cmd("profile", "[USER]", "show my (or USER's) profile", |a| {
        if a.trim().is_empty() {
            Ok(S::Profile(None))
        } else {
            user(a).map(|u| S::Profile(Some(u)))
        }
    }),
    cmd("contacts", "", "list my contacts", |_| Ok(S::Contacts)),
    cmd("addcontact", "USER", "add USER to my contacts", |a| {
        user(a).map(S::AddContact)
    }),
    cmd("rmcontact", "USER", "remove USER from my contacts", |a| {
        user(a).map(S::RemoveContact)
    }),
    cmd("block", "USER", "block USER", |a| user(a).map(S::Block)),
    cmd("unblock", "USER", "unblock USER", |a| {
        user(a).map(S::Unblock)
    }),
    cmd("blocked", "", "list the users I blocked", |_| {
        Ok(S::Blocked)
    }),
    cmd(
        "sessions",
        "",
        "list my sessions (enter revokes one)",
        |_| Ok(S::Sessions),
    ),
    cmd(
        "2fa",
        "on|off|codes",
        "two-factor login: turn it on or off, or get new recovery codes",
        |a| match a.trim() {
            "on" => Ok(S::TwoFactor(TwoFactorStep::On)),
            "off" => Ok(S::TwoFactor(TwoFactorStep::Off)),
            "codes" => Ok(S::TwoFactor(TwoFactorStep::Codes)),
            _ => Err("say on, off or codes".into()),
        },
    ),
    cmd(
        "verify",
        "[CODE]",
        "verify my email address with the emailed CODE (without: email a new code)",
        |a| {
            let code = a.trim();
            Ok(S::Verify((!code.is_empty()).then(|| code.to_string())))
        },
    ),
    cmd(
        "email",
        "ADDRESS",
        "change my email address (asks my password; the new one gets a code)",
        |a| {
            let address = text(a, "the address")?;
            if address.matches('@').count() != 1 || address.contains(char::is_whitespace) {
                return Err(format!("{address:?} is not an email address"));
            }
            Ok(S::Email(address))
        },
    ),
    cmd("logout", "", "sign out and forget the session", |_| {
        Ok(S::Logout)
    }),
    cmd("help", "", "show keys and commands", |_| Ok(S::Help)),
    cmd("quit", "", "quit", |_| Ok(S::Quit)),
];

/// A parsed slash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slash {
    /// `/dm USER`
    Dm(UserRef),
    /// `/new`
    New,
    /// `/group TITLE`
    Group(String),
    /// `/channel TITLE`
    Channel(String),
    /// `/invite USER`
    Invite(UserRef),
    /// `/kick USER`
    Kick(UserRef),
    /// `/leave`
    Leave,
    /// `/promote USER`
    Promote(UserRef),
    /// `/demote USER`
    Demote(UserRef),
    /// `/transfer USER`
    Transfer(UserRef),
    /// `/members`
    Members,
    /// `/reply TEXT`
    Reply(String),
    /// `/edit TEXT`
    Edit(String),
    /// `/delete`
    Delete,
    /// `/delete-all`
    DeleteAll,
    /// `/react EMOJI`
    React(String),
    /// `/unreact EMOJI`
    Unreact(String),
    /// `/forward CHAT`
    Forward(String),
    /// `/upload PATH`: the path as typed (`~` is expanded where the file is opened).
    Upload(String),
    /// `/download`
    Download,
    /// `/cancel`
    CancelTransfer,
    /// `/call [video]`
    Call {
        /// Video, or audio only.
        video: bool,
    },
    /// `/hangup`
    HangUp,
    /// `/search WORDS`
    Search(String),
    /// `/searchall WORDS`
    SearchAll(String),
    /// `/pin`, `/unpin`
    Pin(bool),
    /// `/mute [DURATION]`: until (ms from now), `None` forever.
    Mute(Option<i64>),
    /// `/unmute`
    Unmute,
    /// `/archive`, `/unarchive`
    Archive(bool),
    /// `/status ...`
    Status(chatproto::pb::UserStatus),
    /// `/name ...`
    Name(String),
    /// `/bio ...`
    Bio(String),
    /// `/profile [USER]`
    Profile(Option<UserRef>),
    /// `/contacts`
    Contacts,
    /// `/addcontact USER`
    AddContact(UserRef),
    /// `/rmcontact USER`
    RemoveContact(UserRef),
    /// `/block USER`
    Block(UserRef),
    /// `/unblock USER`
    Unblock(UserRef),
    /// `/blocked`
    Blocked,
    /// `/sessions`
    Sessions,
    /// `/2fa on|off|codes`
    TwoFactor(TwoFactorStep),
    /// `/verify [CODE]`: verify my address with a code, or (`None`) ask for a new one.
    Verify(Option<String>),
    /// `/email ADDRESS`
    Email(String),
    /// `/logout`
    Logout,
    /// `/help`
    Help,
    /// `/quit`
    Quit,
}

/// What `/2fa` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorStep {
    /// Turn two-factor login on (asks the password, shows the key, asks a code).
    On,
    /// Turn it off (asks a code or recovery code).
    Off,
    /// New recovery codes (asks a code).
    Codes,
}

/// A positive duration like `30m`, `8h`, `1d`, `2w` (the syntax of every binary,
/// `chat_cli::duration`), in milliseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let parsed = chat_cli::duration::parse(text).ok()?;
    i64::try_from(parsed.as_millis()).ok().filter(|&ms| ms > 0)
}

fn user(arg: &str) -> Result<UserRef, String> {
    let name = arg.trim().trim_start_matches('@');
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err("name one user, e.g. @alice".into());
    }
    Ok(UserRef::Name(name.to_lowercase()))
}

fn text(arg: &str, what: &str) -> Result<String, String> {
    let arg = arg.trim();
    if arg.is_empty() {
        Err(format!("{what} is missing"))
    } else {
        Ok(arg.to_string())
    }
}

/// A path as typed: surrounding quotes (from a drag and drop, a copied path) are dropped.
///
/// # Errors
/// When there is no path.
pub fn path(arg: &str) -> Result<String, String> {
    let arg = arg.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| arg.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(arg);
    text(unquoted, "the path")
}

/// Parses a composer line starting with `/`. `None` when it is not a command (`//text` sends
/// `/text`).
///
/// # Errors
/// A message naming the unknown command or the missing or bad argument, with the usage.
pub fn parse(line: &str) -> Option<Result<Slash, String>> {
    let body = line.strip_prefix('/')?;
    if body.starts_with('/') {
        return None;
    }
    let (name, arg) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
    let Some(spec) = COMMANDS.iter().find(|c| c.name == name) else {
        return Some(Err(format!("unknown command /{name} (/help lists them)")));
    };
    Some((spec.read)(arg).map_err(|e| format!("{e} — usage: {}", spec.usage())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_their_arguments() {
        assert_eq!(parse("hello"), None);
        assert_eq!(parse("//not a command"), None);
        assert_eq!(
            parse("/dm @Bob"),
            Some(Ok(Slash::Dm(UserRef::Name("bob".into()))))
        );
        assert_eq!(
            parse("/group  The Team "),
            Some(Ok(Slash::Group("The Team".into())))
        );
        assert_eq!(
            parse("/mute 8h"),
            Some(Ok(Slash::Mute(Some(8 * 3_600_000))))
        );
        assert_eq!(parse("/mute"), Some(Ok(Slash::Mute(None))));
        assert_eq!(
            parse("/react :tada:"),
            Some(Ok(Slash::React(":tada:".into())))
        );
        assert_eq!(parse("/bio"), Some(Ok(Slash::Bio(String::new()))));
        assert_eq!(
            parse("/upload  '/tmp/a b.txt' "),
            Some(Ok(Slash::Upload("/tmp/a b.txt".into())))
        );
        for c in COMMANDS {
            assert!(parse(&format!("/{} @x", c.name)).is_some(), "{}", c.name);
        }
    }

    #[test]
    fn mistakes_say_how_to_use_the_command() {
        assert_eq!(
            parse("/dm"),
            Some(Err("name one user, e.g. @alice — usage: /dm USER".into()))
        );
        assert!(
            parse("/fly")
                .unwrap()
                .unwrap_err()
                .contains("unknown command /fly")
        );
        assert!(
            parse("/mute soon")
                .unwrap()
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(
            parse("/status sleepy")
                .unwrap()
                .unwrap_err()
                .contains("not a status")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(1_800_000));
        assert_eq!(parse_duration("1w"), Some(604_800_000));
        assert_eq!(parse_duration("0h"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("5y"), None);
    }
}
