//! The protocol end to end against an in-process chatd: SDK clients (and raw connections where
//! the SDK would never send something) over real QUIC on loopback, one fresh server per test.
//!
//! One test binary per kind of setup rather than one per file: every binary links all of chatd,
//! and dozens of them cost minutes of linking and gigabytes of disk in CI.

mod support;

mod access;
mod accounts;
mod admin;
mod audit;
mod backup;
mod blocking;
mod broadcast;
mod call_edges;
mod calls;
mod chats;
mod closing;
mod connections;
mod delivery;
mod errors;
mod export;
mod files;
mod group_calls;
mod keys;
mod limits;
mod master_key;
mod membership;
mod membership_races;
mod messages;
mod migration;
mod moderation;
mod nodes;
mod notifications;
mod operations;
mod pages;
mod protocol;
mod reading;
mod realtime;
mod resumption;
mod sync;
mod tokens;
mod tui;
mod tui_calls;
mod tui_files;
mod tui_requests;
mod turn;
mod two_factor;
mod users;
mod webrtc;
