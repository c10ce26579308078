//! chat-tui, the terminal client of the chat system.
//!
//! A ratatui application over the `chatproto` SDK, built the way gitui and iamb are: a
//! [`Model`](model::Model) of plain data, [`Action`](action::Action)s, a pure
//! [`update`](update::update) that changes the model and returns [`Effect`](effect::Effect)s,
//! and rendering by reference ([`ui::render`]). The network runs in a background task
//! ([`net`]) that turns the SDK's answers and events into actions on a channel, so every piece
//! of UI logic is testable without a terminal or a server.
//!
//! # Layout
//! - [`app`]: the event loop (terminal input, network actions, ticks, rendering, effects).
//! - [`settings`]: the command line, validated. [`config`]: the TOML file (theme, keys,
//!   notifications). [`paths`]: XDG directories. [`keys`]: the key table. [`slash`]: the slash
//!   command table. [`theme`], [`emoji`].
//! - [`model`], [`action`], [`effect`], [`update`]: the state machine.
//! - [`ui`] and [`widgets`]: one module per screen or widget.
//! - [`net`]: connecting (trust on first use, the saved session), requests, the outbox, file
//!   transfers, call signaling.
//! - [`terminal`]: raw mode, the alternate screen, mouse, bell and desktop notifications.

pub mod action;
pub mod app;
pub mod config;
pub mod effect;
pub mod emoji;
pub mod keys;
pub mod model;
pub mod net;
pub mod paths;
pub mod settings;
pub mod slash;
pub mod terminal;
#[cfg(test)]
mod testing;
pub mod theme;
pub mod ui;
pub mod update;
pub mod widgets;

pub use app::run;
pub use settings::Settings;
