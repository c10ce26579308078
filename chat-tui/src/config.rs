//! The config file (`config.toml`): theme, key bindings and notifications. Every setting has a
//! default that needs no editing, and a missing file is the defaults.
//!
//! ```toml
//! [theme]
//! accent = "cyan"            # colour names or "#rrggbb"
//! senders = ["lightblue", "lightgreen", "#ff8800"]
//!
//! [notifications]
//! bell = true                # ring the terminal bell for new messages not in view
//! desktop = false            # desktop notifications through the terminal (OSC 777 / OSC 9)
//! desktop_protocol = "osc777"
//!
//! [keys.messages]            # any context of the `?` overlay: global, chats, messages, ...
//! reply = "R"                # a key, or a list of keys
//! react = ["+", "ctrl-r"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr as _;

use ratatui::style::Color;
use serde::Deserialize;

use crate::keys::{Keymap, KeymapError};
use crate::theme::Theme;

/// The escape sequence desktop notifications use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesktopProtocol {
    /// `OSC 777;notify;title;body` (urxvt, foot, kitty, wezterm, VTE terminals).
    #[default]
    Osc777,
    /// `OSC 9;body` (iTerm2, Windows Terminal, ConEmu).
    Osc9,
}

/// The `[notifications]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notifications {
    /// Ring the bell for a new message in an unmuted chat that is not in view.
    pub bell: bool,
    /// Send a desktop notification through the terminal for such messages.
    pub desktop: bool,
    /// Which escape sequence.
    pub desktop_protocol: DesktopProtocol,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            bell: true,
            desktop: false,
            desktop_protocol: DesktopProtocol::Osc777,
        }
    }
}

/// The `[theme]` section: colour names (`"cyan"`, `"lightblue"`, `"#rrggbb"`, `"reset"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ThemeFile {
    accent: Option<String>,
    dim: Option<String>,
    error: Option<String>,
    ok: Option<String>,
    warn: Option<String>,
    mention: Option<String>,
    selection: Option<String>,
    senders: Option<Vec<String>>,
}

/// A key or a list of keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum Keys {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    theme: ThemeFile,
    notifications: Notifications,
    keys: BTreeMap<String, BTreeMap<String, Keys>>,
}

/// The configuration in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Colours.
    pub theme: Theme,
    /// Key bindings.
    pub keymap: Keymap,
    /// Bell and desktop notifications.
    pub notifications: Notifications,
}

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// It cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not valid TOML for this file.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and where.
        message: String,
    },
}

impl Config {
    /// Loads `path` (a missing file gives the defaults); `no_color` (the `NO_COLOR` convention)
    /// turns every colour off whatever the theme says.
    ///
    /// # Errors
    /// An unreadable file, or one with an unknown setting, a bad colour or a bad key.
    pub fn load(path: &Path, no_color: bool) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: shown,
                    source,
                });
            }
        };
        Self::parse(&text, no_color).map_err(|message| ConfigError::Invalid {
            path: shown,
            message,
        })
    }

    /// Parses the text of a config file.
    ///
    /// # Errors
    /// A message naming the setting that is wrong.
    pub fn parse(text: &str, no_color: bool) -> Result<Self, String> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut theme = if no_color {
            Theme::monochrome()
        } else {
            Theme::default()
        };
        let color = |name: &str, value: &str| {
            Color::from_str(value).map_err(|_| format!("[theme] {name}: {value:?} is not a colour"))
        };
        let t = &file.theme;
        for (name, value, slot) in [
            ("accent", &t.accent, &mut theme.accent),
            ("dim", &t.dim, &mut theme.dim),
            ("error", &t.error, &mut theme.error),
            ("ok", &t.ok, &mut theme.ok),
            ("warn", &t.warn, &mut theme.warn),
            ("mention", &t.mention, &mut theme.mention),
            ("selection", &t.selection, &mut theme.selection),
        ] {
            if let Some(value) = value {
                *slot = color(name, value)?;
            }
        }
        if let Some(senders) = &t.senders {
            theme.senders = senders
                .iter()
                .map(|v| color("senders", v))
                .collect::<Result<_, _>>()?;
        }
        let keys = file
            .keys
            .into_iter()
            .map(|(context, commands)| {
                let commands = commands
                    .into_iter()
                    .map(|(command, keys)| {
                        let keys = match keys {
                            Keys::One(k) => vec![k],
                            Keys::Many(ks) => ks,
                        };
                        (command, keys)
                    })
                    .collect();
                (context, commands)
            })
            .collect();
        let keymap = Keymap::with_overrides(&keys).map_err(|e: KeymapError| e.to_string())?;
        Ok(Self {
            theme,
            keymap,
            notifications: file.notifications,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Command, Context, Key};

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(Config::parse("", false).unwrap(), Config::default());
        let missing = Config::load(Path::new("/nonexistent/chat-tui/config.toml"), false).unwrap();
        assert_eq!(missing, Config::default());
    }

    #[test]
    fn every_section_is_read() {
        let config = Config::parse(
            r##"
            [theme]
            accent = "#ff8800"
            senders = ["red", "blue"]
            [notifications]
            bell = false
            desktop = true
            desktop_protocol = "osc9"
            [keys.messages]
            reply = "R"
            react = ["+", "ctrl-r"]
            "##,
            false,
        )
        .unwrap();
        assert_eq!(config.theme.accent, Color::Rgb(0xff, 0x88, 0));
        assert_eq!(config.theme.senders, [Color::Red, Color::Blue]);
        assert!(!config.notifications.bell);
        assert!(config.notifications.desktop);
        assert_eq!(config.notifications.desktop_protocol, DesktopProtocol::Osc9);
        let key = |s| Key::parse(s).unwrap();
        assert_eq!(
            config.keymap.lookup(&[Context::Messages], key("R")),
            Some(Command::Reply)
        );
        assert_eq!(
            config.keymap.lookup(&[Context::Messages], key("ctrl-r")),
            Some(Command::React)
        );
    }

    #[test]
    fn mistakes_are_named() {
        let err = Config::parse("[theme]\naccent = \"octarine\"\n", false).unwrap_err();
        assert!(err.contains("accent") && err.contains("octarine"), "{err}");
        let err = Config::parse("[notifications]\nbeep = true\n", false).unwrap_err();
        assert!(err.contains("beep"), "{err}");
        let err = Config::parse("[keys.chats]\nopen = \"hyper-o\"\n", false).unwrap_err();
        assert!(err.contains("open") && err.contains("hyper-o"), "{err}");
    }

    #[test]
    fn the_readme_example_is_a_valid_config() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("chat-tui/README.md");
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml example");
        let config = Config::parse(example, false).unwrap();
        assert!(config.notifications.desktop);
        let key = |s| Key::parse(s).unwrap();
        assert_eq!(
            config.keymap.lookup(&[Context::Messages], key("R")),
            Some(Command::Reply)
        );
    }

    #[test]
    fn no_color_wins_over_the_theme() {
        let config = Config::parse("[theme]\naccent = \"red\"\n", true).unwrap();
        assert!(config.theme.monochrome);
        assert_eq!(config.theme.accent().fg, None);
    }
}
