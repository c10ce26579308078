//! Key bindings: the one table that maps a key, in a context, to a [`Command`].
//!
//! The defaults are in [`DEFAULT_BINDINGS`]; the config file replaces the keys of single
//! commands (`[keys.<context>] <command> = "key"` or a list of keys). The `?` help overlay is
//! rendered from the same table, so what it shows is what the keys do.
//!
//! Lookup goes from the focused context to the contexts under it: a text input's own bindings,
//! then the editing keys every text input shares, then the global ones. Printable characters
//! typed into a text input are text unless that input's own context binds them.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A key with its modifiers, normalised so that `J` and `shift-j` are the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    code: KeyCode,
    ctrl: bool,
    alt: bool,
    shift: bool,
}

impl Key {
    /// A key without modifiers.
    pub const fn plain(code: KeyCode) -> Self {
        Self {
            code,
            ctrl: false,
            alt: false,
            shift: false,
        }
    }

    /// The key of a terminal key event.
    pub fn from_event(event: &KeyEvent) -> Self {
        let mut key = Self {
            code: event.code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
            alt: event.modifiers.contains(KeyModifiers::ALT),
            shift: event.modifiers.contains(KeyModifiers::SHIFT),
        };
        key.normalise();
        key
    }

    fn normalise(&mut self) {
        match self.code {
            // The character already says whether shift was held.
            KeyCode::Char(_) => self.shift = false,
            KeyCode::BackTab => {
                self.code = KeyCode::Tab;
                self.shift = true;
            }
            _ => {}
        }
        if let KeyCode::Char(c) = self.code
            && self.ctrl
        {
            // Terminals report ctrl-J and ctrl-j alike.
            self.code = KeyCode::Char(c.to_ascii_lowercase());
        }
    }

    /// A terminal key event for this key (tests drive the update function with them).
    pub fn to_event(self) -> KeyEvent {
        let mut modifiers = KeyModifiers::empty();
        modifiers.set(KeyModifiers::CONTROL, self.ctrl);
        modifiers.set(KeyModifiers::ALT, self.alt);
        modifiers.set(KeyModifiers::SHIFT, self.shift);
        let code = if self.code == KeyCode::Tab && self.shift {
            KeyCode::BackTab
        } else {
            self.code
        };
        KeyEvent::new(code, modifiers)
    }

    /// The character this key types into a text input, if it is a plain printable character.
    pub fn text(&self) -> Option<char> {
        match self.code {
            KeyCode::Char(c) if !self.ctrl && !self.alt => Some(c),
            _ => None,
        }
    }

    /// Parses `"ctrl-c"`, `"alt-enter"`, `"shift-tab"`, `"pageup"`, `"f1"`, `"?"`, `"J"`.
    ///
    /// # Errors
    /// A message naming the part that is not a key or modifier.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut key = Key::plain(KeyCode::Null);
        let mut rest = spec;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (flag, len) = if lower.starts_with("ctrl-") {
                (&mut key.ctrl, 5)
            } else if lower.starts_with("alt-") {
                (&mut key.alt, 4)
            } else if lower.starts_with("shift-") {
                (&mut key.shift, 6)
            } else {
                break;
            };
            if rest.len() == len {
                break;
            }
            *flag = true;
            rest = &rest[len..];
        }
        let named = match rest.to_ascii_lowercase().as_str() {
            "enter" | "return" => Some(KeyCode::Enter),
            "esc" | "escape" => Some(KeyCode::Esc),
            "tab" => Some(KeyCode::Tab),
            "backtab" => Some(KeyCode::BackTab),
            "backspace" => Some(KeyCode::Backspace),
            "delete" | "del" => Some(KeyCode::Delete),
            "insert" => Some(KeyCode::Insert),
            "up" => Some(KeyCode::Up),
            "down" => Some(KeyCode::Down),
            "left" => Some(KeyCode::Left),
            "right" => Some(KeyCode::Right),
            "home" => Some(KeyCode::Home),
            "end" => Some(KeyCode::End),
            "pageup" => Some(KeyCode::PageUp),
            "pagedown" => Some(KeyCode::PageDown),
            "space" => Some(KeyCode::Char(' ')),
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => f[1..]
                .parse()
                .ok()
                .filter(|n| (1..=24).contains(n))
                .map(KeyCode::F),
            _ => None,
        };
        key.code = match named {
            Some(code) => code,
            None => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(c),
                    _ => return Err(format!("{spec:?} is not a key")),
                }
            }
        };
        key.normalise();
        Ok(key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        if self.shift {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pageup"),
            KeyCode::PageDown => f.write_str("pagedown"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// Everywhere, unless the focused context binds the key.
    Global,
    /// The chat list.
    Chats,
    /// The message pane.
    Messages,
    /// The message composer.
    Composer,
    /// Every text input (composer, forms, filters): cursor movement and deletion.
    Edit,
    /// Lists in overlays: pickers, search results, help.
    List,
    /// The sign-in, registration and trust screens, and prompts.
    Form,
    /// The prompt of an incoming call.
    Call,
}

impl Context {
    /// Every context, in the order the help overlay lists them.
    pub const ALL: [Context; 8] = [
        Context::Global,
        Context::Chats,
        Context::Messages,
        Context::Composer,
        Context::Edit,
        Context::List,
        Context::Form,
        Context::Call,
    ];

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::Chats => "chats",
            Context::Messages => "messages",
            Context::Composer => "composer",
            Context::Edit => "edit",
            Context::List => "list",
            Context::Form => "form",
            Context::Call => "call",
        }
    }

    /// A heading for the help overlay.
    pub fn title(self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Chats => "Chat list",
            Context::Messages => "Messages",
            Context::Composer => "Composer",
            Context::Edit => "Text editing",
            Context::List => "Lists and pickers",
            Context::Form => "Forms",
            Context::Call => "Incoming call",
        }
    }
}

/// Defines [`Command`] with its config name and help text in one place.
macro_rules! commands {
    ($($variant:ident $name:literal $help:literal,)*) => {
        /// Something a key can do.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Command {
            $(#[doc = $help] $variant,)*
        }

        impl Command {
            /// The name used in the config file.
            pub fn name(self) -> &'static str {
                match self { $(Command::$variant => $name,)* }
            }

            /// What it does, for the help overlay.
            pub fn help(self) -> &'static str {
                match self { $(Command::$variant => $help,)* }
            }

            /// The command with this config name.
            pub fn from_name(name: &str) -> Option<Command> {
                match name { $($name => Some(Command::$variant),)* _ => None }
            }
        }
    };
}

commands! {
    Quit "quit" "Quit",
    Help "help" "Show the key bindings",
    FocusNext "focus_next" "Next pane",
    FocusPrev "focus_prev" "Previous pane",
    FocusComposer "focus_composer" "Write a message",
    Up "up" "Move up",
    Down "down" "Move down",
    PageUp "page_up" "Scroll up a page",
    PageDown "page_down" "Scroll down a page",
    Top "top" "First chat / oldest message",
    Bottom "bottom" "Last chat / latest message",
    Open "open" "Open / choose",
    Cancel "cancel" "Close / cancel / back",
    Filter "filter" "Filter the chat list by typing",
    ToggleArchived "toggle_archived" "Show or hide archived chats",
    NewChat "new_chat" "New private chat (pick a user)",
    NewGroup "new_group" "New group",
    Pin "pin" "Pin or unpin the chat",
    Mute "mute" "Mute or unmute the chat",
    Archive "archive" "Archive or unarchive the chat",
    Reply "reply" "Reply to the selected message",
    EditMessage "edit" "Edit the selected message",
    DeleteForMe "delete" "Delete the selected message for me",
    DeleteForEveryone "delete_everyone" "Delete the selected message for everyone",
    React "react" "React to the selected message",
    Forward "forward" "Forward the selected message",
    Upload "upload" "Send a file to this chat (asks for its path)",
    Download "download" "Save the file of the selected message",
    CancelTransfer "cancel_transfer" "Cancel the latest file transfer",
    HangUp "hang_up" "End the call (cancel it while it rings)",
    AcceptCall "accept_call" "Answer the incoming call",
    DeclineCall "decline_call" "Decline the incoming call",
    Search "search" "Search in this chat",
    ChatMenu "chat_menu" "This chat: members, invite, leave, pin, mute, archive",
    MeMenu "me_menu" "Me: status, profile, contacts, blocked users, sessions, sign out",
    SearchAll "search_all" "Search in every chat",
    Send "send" "Send the message",
    Newline "newline" "New line in the message",
    HistoryPrev "history_prev" "Previous message from input history",
    HistoryNext "history_next" "Next message from input history",
    Complete "complete" "Complete @mention, #chat or /command",
    Left "left" "Cursor left",
    Right "right" "Cursor right",
    WordLeft "word_left" "Cursor one word left",
    WordRight "word_right" "Cursor one word right",
    LineStart "line_start" "Cursor to line start",
    LineEnd "line_end" "Cursor to line end",
    Backspace "backspace" "Delete before the cursor",
    DeleteChar "delete_char" "Delete under the cursor",
    DeleteWord "delete_word" "Delete the word before the cursor",
    ClearLine "clear" "Delete everything before the cursor",
    NextField "next_field" "Next field",
    PrevField "prev_field" "Previous field",
    Submit "submit" "Submit",
    SwitchForm "switch_form" "Switch between sign-in and registration",
    ForgotPassword "forgot_password" "Forgot the password: reset it with an emailed code",
}

/// The default key bindings: `(context, key, command)`.
pub const DEFAULT_BINDINGS: &[(Context, &str, Command)] = &[
    (Context::Global, "ctrl-c", Command::Quit),
    (Context::Global, "?", Command::Help),
    (Context::Global, "f1", Command::Help),
    (Context::Global, "tab", Command::FocusNext),
    (Context::Global, "shift-tab", Command::FocusPrev),
    (Context::Global, "esc", Command::Cancel),
    (Context::Chats, "q", Command::Quit),
    (Context::Chats, "k", Command::Up),
    (Context::Chats, "up", Command::Up),
    (Context::Chats, "j", Command::Down),
    (Context::Chats, "down", Command::Down),
    (Context::Chats, "g", Command::Top),
    (Context::Chats, "home", Command::Top),
    (Context::Chats, "G", Command::Bottom),
    (Context::Chats, "end", Command::Bottom),
    (Context::Chats, "enter", Command::Open),
    (Context::Chats, "l", Command::Open),
    (Context::Chats, "right", Command::Open),
    (Context::Chats, "/", Command::Filter),
    (Context::Chats, "a", Command::ToggleArchived),
    (Context::Chats, "n", Command::NewChat),
    (Context::Chats, "N", Command::NewGroup),
    (Context::Chats, "p", Command::Pin),
    (Context::Chats, "m", Command::Mute),
    (Context::Chats, "A", Command::Archive),
    (Context::Chats, "i", Command::FocusComposer),
    (Context::Chats, "M", Command::ChatMenu),
    (Context::Chats, "o", Command::MeMenu),
    (Context::Chats, "H", Command::HangUp),
    (Context::Messages, "q", Command::Quit),
    (Context::Messages, "k", Command::Up),
    (Context::Messages, "up", Command::Up),
    (Context::Messages, "j", Command::Down),
    (Context::Messages, "down", Command::Down),
    (Context::Messages, "ctrl-u", Command::PageUp),
    (Context::Messages, "pageup", Command::PageUp),
    (Context::Messages, "ctrl-d", Command::PageDown),
    (Context::Messages, "pagedown", Command::PageDown),
    (Context::Messages, "g", Command::Top),
    (Context::Messages, "home", Command::Top),
    (Context::Messages, "G", Command::Bottom),
    (Context::Messages, "end", Command::Bottom),
    (Context::Messages, "h", Command::FocusPrev),
    (Context::Messages, "left", Command::FocusPrev),
    (Context::Messages, "i", Command::FocusComposer),
    (Context::Messages, "r", Command::Reply),
    (Context::Messages, "e", Command::EditMessage),
    (Context::Messages, "d", Command::DeleteForMe),
    (Context::Messages, "D", Command::DeleteForEveryone),
    (Context::Messages, "+", Command::React),
    (Context::Messages, "f", Command::Forward),
    (Context::Messages, "u", Command::Upload),
    (Context::Messages, "s", Command::Download),
    (Context::Messages, "x", Command::CancelTransfer),
    (Context::Messages, "H", Command::HangUp),
    (Context::Messages, "/", Command::Search),
    (Context::Messages, "S", Command::SearchAll),
    (Context::Messages, "p", Command::Pin),
    (Context::Messages, "m", Command::Mute),
    (Context::Messages, "M", Command::ChatMenu),
    (Context::Messages, "n", Command::NewChat),
    (Context::Messages, "N", Command::NewGroup),
    (Context::Messages, "o", Command::MeMenu),
    (Context::Composer, "enter", Command::Send),
    (Context::Composer, "alt-enter", Command::Newline),
    (Context::Composer, "ctrl-j", Command::Newline),
    (Context::Composer, "up", Command::HistoryPrev),
    (Context::Composer, "down", Command::HistoryNext),
    (Context::Composer, "tab", Command::Complete),
    (Context::Composer, "pageup", Command::PageUp),
    (Context::Composer, "pagedown", Command::PageDown),
    (Context::Edit, "left", Command::Left),
    (Context::Edit, "right", Command::Right),
    (Context::Edit, "ctrl-left", Command::WordLeft),
    (Context::Edit, "alt-b", Command::WordLeft),
    (Context::Edit, "ctrl-right", Command::WordRight),
    (Context::Edit, "alt-f", Command::WordRight),
    (Context::Edit, "home", Command::LineStart),
    (Context::Edit, "ctrl-a", Command::LineStart),
    (Context::Edit, "end", Command::LineEnd),
    (Context::Edit, "ctrl-e", Command::LineEnd),
    (Context::Edit, "backspace", Command::Backspace),
    (Context::Edit, "delete", Command::DeleteChar),
    (Context::Edit, "ctrl-w", Command::DeleteWord),
    (Context::Edit, "alt-backspace", Command::DeleteWord),
    (Context::Edit, "ctrl-u", Command::ClearLine),
    (Context::List, "up", Command::Up),
    (Context::List, "ctrl-p", Command::Up),
    (Context::List, "down", Command::Down),
    (Context::List, "ctrl-n", Command::Down),
    (Context::List, "pageup", Command::PageUp),
    (Context::List, "pagedown", Command::PageDown),
    (Context::List, "enter", Command::Open),
    (Context::Form, "tab", Command::NextField),
    (Context::Form, "down", Command::NextField),
    (Context::Form, "shift-tab", Command::PrevField),
    (Context::Form, "up", Command::PrevField),
    (Context::Form, "enter", Command::Submit),
    (Context::Form, "ctrl-r", Command::SwitchForm),
    (Context::Form, "f2", Command::SwitchForm),
    (Context::Form, "ctrl-f", Command::ForgotPassword),
    (Context::Form, "f3", Command::ForgotPassword),
    (Context::Call, "a", Command::AcceptCall),
    (Context::Call, "y", Command::AcceptCall),
    (Context::Call, "d", Command::DeclineCall),
    (Context::Call, "n", Command::DeclineCall),
];

/// One binding of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// Where it applies.
    pub context: Context,
    /// The key.
    pub key: Key,
    /// What it does.
    pub command: Command,
}

/// The key bindings in force: the defaults with the config file's replacements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

/// A key binding in the config file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[keys.{context}] {command}: {reason}")]
pub struct KeymapError {
    context: String,
    command: String,
    reason: String,
}

impl Default for Keymap {
    fn default() -> Self {
        let bindings = DEFAULT_BINDINGS
            .iter()
            .map(|&(context, key, command)| Binding {
                context,
                key: Key::parse(key).expect("default key bindings parse"),
                command,
            })
            .collect();
        Self { bindings }
    }
}

impl Keymap {
    /// The defaults with `overrides` (context name → command name → keys) applied: each listed
    /// command gets exactly the listed keys in that context.
    ///
    /// # Errors
    /// An unknown context, command or key.
    pub fn with_overrides(
        overrides: &BTreeMap<String, BTreeMap<String, Vec<String>>>,
    ) -> Result<Self, KeymapError> {
        let mut map = Self::default();
        for (context_name, commands) in overrides {
            let err = |command: &str, reason: String| KeymapError {
                context: context_name.clone(),
                command: command.to_string(),
                reason,
            };
            let context = Context::ALL
                .into_iter()
                .find(|c| c.name() == context_name)
                .ok_or_else(|| {
                    err(
                        "",
                        format!(
                            "unknown context; use one of {}",
                            Context::ALL.map(Context::name).join(", ")
                        ),
                    )
                })?;
            for (command_name, keys) in commands {
                let command = Command::from_name(command_name)
                    .ok_or_else(|| err(command_name, "unknown command".into()))?;
                let keys = keys
                    .iter()
                    .map(|k| Key::parse(k))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err(command_name, e))?;
                map.bindings
                    .retain(|b| !(b.context == context && b.command == command));
                // A key moved to this command leaves the command it had in this context.
                map.bindings
                    .retain(|b| !(b.context == context && keys.contains(&b.key)));
                map.bindings.extend(keys.into_iter().map(|key| Binding {
                    context,
                    key,
                    command,
                }));
            }
        }
        Ok(map)
    }

    /// The command of `key` in the first of `contexts` that binds it.
    pub fn lookup(&self, contexts: &[Context], key: Key) -> Option<Command> {
        contexts.iter().find_map(|&context| {
            self.bindings
                .iter()
                .find(|b| b.context == context && b.key == key)
                .map(|b| b.command)
        })
    }

    /// The keys of `command` in `context`, for hints ("r reply").
    pub fn keys_of(&self, context: Context, command: Command) -> Vec<Key> {
        self.bindings
            .iter()
            .filter(|b| b.context == context && b.command == command)
            .map(|b| b.key)
            .collect()
    }

    /// The bindings of `context`, grouped by command in table order: `(command, keys)`.
    pub fn commands_in(&self, context: Context) -> Vec<(Command, Vec<Key>)> {
        let mut out: Vec<(Command, Vec<Key>)> = Vec::new();
        for b in self.bindings.iter().filter(|b| b.context == context) {
            match out.iter_mut().find(|(c, _)| *c == b.command) {
                Some((_, keys)) => keys.push(b.key),
                None => out.push((b.command, vec![b.key])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_print_back() {
        for spec in [
            "ctrl-c",
            "alt-enter",
            "shift-tab",
            "pageup",
            "f1",
            "?",
            "G",
            "space",
        ] {
            assert_eq!(Key::parse(spec).unwrap().to_string(), spec);
        }
        assert_eq!(Key::parse("CTRL-X").unwrap(), Key::parse("ctrl-x").unwrap());
        assert_eq!(
            Key::parse("backtab").unwrap(),
            Key::parse("shift-tab").unwrap()
        );
        assert!(Key::parse("hyper-x").is_err());
        assert!(Key::parse("f99").is_err());
        // Terminals send shift with uppercase letters; the letter alone decides.
        let event = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&event), Key::parse("G").unwrap());
    }

    #[test]
    fn the_focused_context_wins_over_global() {
        let map = Keymap::default();
        let tab = Key::parse("tab").unwrap();
        assert_eq!(
            map.lookup(&[Context::Composer, Context::Edit, Context::Global], tab),
            Some(Command::Complete)
        );
        assert_eq!(
            map.lookup(&[Context::Chats, Context::Global], tab),
            Some(Command::FocusNext)
        );
        let j = Key::parse("j").unwrap();
        assert_eq!(map.lookup(&[Context::Composer, Context::Edit], j), None);
    }

    #[test]
    fn overrides_replace_keys_and_unknown_names_are_errors() {
        let mut o = BTreeMap::new();
        o.insert(
            "messages".to_string(),
            BTreeMap::from([(
                "reply".to_string(),
                vec!["R".to_string(), "ctrl-r".to_string()],
            )]),
        );
        let map = Keymap::with_overrides(&o).unwrap();
        let r = |s| Key::parse(s).unwrap();
        assert_eq!(
            map.lookup(&[Context::Messages], r("R")),
            Some(Command::Reply)
        );
        assert_eq!(map.lookup(&[Context::Messages], r("r")), None);
        assert_eq!(map.keys_of(Context::Messages, Command::Reply).len(), 2);

        o.insert(
            "messages".into(),
            BTreeMap::from([("fly".to_string(), vec!["x".to_string()])]),
        );
        let err = Keymap::with_overrides(&o).unwrap_err().to_string();
        assert_eq!(err, "[keys.messages] fly: unknown command");
        let o = BTreeMap::from([("nowhere".to_string(), BTreeMap::new())]);
        assert!(
            Keymap::with_overrides(&o)
                .unwrap_err()
                .to_string()
                .contains("unknown context")
        );
    }

    #[test]
    fn every_default_binding_is_unique_per_context() {
        let mut seen = std::collections::HashSet::new();
        for (context, key, _) in DEFAULT_BINDINGS {
            assert!(
                seen.insert((context, Key::parse(key).unwrap())),
                "{context:?} {key}"
            );
        }
    }
}
