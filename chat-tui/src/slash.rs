//! Slash commands: the one table of every `/command` (for parsing, Tab completion and the help
//! overlay) and the parser that turns a composer line into a [`Slash`].

use crate::effect::UserRef;

/// Every slash command: `(name, arguments, what it does)`.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("dm", "USER", "open the private chat with USER"),
    ("new", "", "new private chat: pick a user by searching"),
    ("group", "TITLE", "create a group"),
    ("channel", "TITLE", "create a channel"),
    ("invite", "USER", "add USER to this chat"),
    ("kick", "USER", "remove USER from this chat"),
    ("leave", "", "leave this chat (a private chat is deleted)"),
    ("promote", "USER", "make USER an admin of this chat"),
    ("demote", "USER", "make the admin USER a member"),
    ("transfer", "USER", "make USER the owner of this chat"),
    ("members", "", "list the members of this chat"),
    ("reply", "TEXT", "reply to the selected message"),
    (
        "edit",
        "TEXT",
        "replace the text of the selected (or my last) message",
    ),
    ("delete", "", "delete the selected message for me"),
    ("delete-all", "", "delete the selected message for everyone"),
    (
        "react",
        "EMOJI",
        "react to the selected message (👍 or :thumbsup:)",
    ),
    ("unreact", "EMOJI", "take my reaction back"),
    ("forward", "CHAT", "forward the selected message to CHAT"),
    ("search", "WORDS", "search this chat"),
    ("searchall", "WORDS", "search every chat"),
    ("pin", "", "pin this chat"),
    ("unpin", "", "unpin this chat"),
    (
        "mute",
        "[30m|8h|1d|1w|forever]",
        "mute this chat (forever without a duration)",
    ),
    ("unmute", "", "unmute this chat"),
    ("archive", "", "archive this chat"),
    ("unarchive", "", "move this chat out of the archive"),
    ("status", "online|away|busy|invisible", "set my status"),
    ("name", "DISPLAY NAME", "set my display name"),
    ("bio", "TEXT", "set my bio"),
    ("profile", "[USER]", "show my (or USER's) profile"),
    ("contacts", "", "list my contacts"),
    ("addcontact", "USER", "add USER to my contacts"),
    ("rmcontact", "USER", "remove USER from my contacts"),
    ("block", "USER", "block USER"),
    ("unblock", "USER", "unblock USER"),
    ("blocked", "", "list the users I blocked"),
    ("sessions", "", "list my sessions (enter revokes one)"),
    ("logout", "", "sign out and forget the session"),
    ("help", "", "show keys and commands"),
    ("quit", "", "quit"),
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
    /// `/logout`
    Logout,
    /// `/help`
    Help,
    /// `/quit`
    Quit,
}

/// A duration like `30m`, `8h`, `1d`, `2w`, in milliseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok().filter(|&n| n > 0)?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
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
    let Some(&(_, args, _)) = COMMANDS.iter().find(|(n, _, _)| *n == name) else {
        return Some(Err(format!("unknown command /{name} (/help lists them)")));
    };
    let usage = |e: String| format!("{e} — usage: /{name} {args}");
    use Slash as S;
    let parsed = match name {
        "dm" => user(arg).map(S::Dm),
        "new" => Ok(S::New),
        "group" => text(arg, "the title").map(S::Group),
        "channel" => text(arg, "the title").map(S::Channel),
        "invite" => user(arg).map(S::Invite),
        "kick" => user(arg).map(S::Kick),
        "leave" => Ok(S::Leave),
        "promote" => user(arg).map(S::Promote),
        "demote" => user(arg).map(S::Demote),
        "transfer" => user(arg).map(S::Transfer),
        "members" => Ok(S::Members),
        "reply" => text(arg, "the text").map(S::Reply),
        "edit" => text(arg, "the text").map(S::Edit),
        "delete" => Ok(S::Delete),
        "delete-all" => Ok(S::DeleteAll),
        "react" => text(arg, "the emoji").map(S::React),
        "unreact" => text(arg, "the emoji").map(S::Unreact),
        "forward" => text(arg, "the chat").map(S::Forward),
        "search" => text(arg, "what to search").map(S::Search),
        "searchall" => text(arg, "what to search").map(S::SearchAll),
        "pin" => Ok(S::Pin(true)),
        "unpin" => Ok(S::Pin(false)),
        "mute" => match arg.trim() {
            "" | "forever" => Ok(S::Mute(None)),
            d => parse_duration(d)
                .map(|ms| S::Mute(Some(ms)))
                .ok_or_else(|| format!("{d:?} is not a duration")),
        },
        "unmute" => Ok(S::Unmute),
        "archive" => Ok(S::Archive(true)),
        "unarchive" => Ok(S::Archive(false)),
        "status" => match arg.trim() {
            "online" => Ok(S::Status(chatproto::pb::UserStatus::Online)),
            "away" => Ok(S::Status(chatproto::pb::UserStatus::Away)),
            "busy" => Ok(S::Status(chatproto::pb::UserStatus::Busy)),
            "invisible" | "offline" => Ok(S::Status(chatproto::pb::UserStatus::Offline)),
            other => Err(format!("{other:?} is not a status")),
        },
        "name" => text(arg, "the name").map(S::Name),
        "bio" => Ok(S::Bio(arg.trim().to_string())),
        "profile" if arg.trim().is_empty() => Ok(S::Profile(None)),
        "profile" => user(arg).map(|u| S::Profile(Some(u))),
        "contacts" => Ok(S::Contacts),
        "addcontact" => user(arg).map(S::AddContact),
        "rmcontact" => user(arg).map(S::RemoveContact),
        "block" => user(arg).map(S::Block),
        "unblock" => user(arg).map(S::Unblock),
        "blocked" => Ok(S::Blocked),
        "sessions" => Ok(S::Sessions),
        "logout" => Ok(S::Logout),
        "help" => Ok(S::Help),
        _ => Ok(S::Quit),
    };
    Some(parsed.map_err(usage))
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
        for (name, _, _) in COMMANDS {
            assert!(parse(&format!("/{name} @x")).is_some(), "{name}");
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
