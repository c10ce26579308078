//! The update function, driven by actions as the app and the network task send them.

mod actions;
mod calls;
mod files;
mod history;
mod recovery;
mod screens;
mod signals;
mod two_factor;

use chatproto::client::HistoryRange;

use crate::effect::{Effect, NetCommand};
use crate::testing::commands;

pub(super) fn history_token(effects: &[Effect], wanted: HistoryRange) -> u64 {
    commands(effects)
        .iter()
        .find_map(|c| match c {
            NetCommand::LoadHistory { token, range, .. } if *range == wanted => Some(*token),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {wanted:?} request in {effects:?}"))
}

pub(super) fn shown_texts(m: &crate::model::Model) -> Vec<String> {
    m.view
        .as_ref()
        .map(|v| v.window.iter().map(|m| m.text.clone()).collect())
        .unwrap_or_default()
}
