//! One module per subcommand; each takes its validated settings and prints its result.

mod audit;
mod backup;
mod bans;
mod broadcast;
mod chats;
mod db;
mod dlq;
mod export;
mod health;
mod keys;
mod login;
mod logout;
mod messages;
mod nodes;
mod stats;
mod users;

use crate::cli::Command;
use crate::error::Error;
use crate::settings::{Settings, Sources};

/// Runs `command` (not `completions`, which needs no server).
///
/// # Errors
/// Whatever failed, with context saying what.
pub async fn run(command: Command, sources: &Sources<'_>) -> anyhow::Result<()> {
    let Some(conn) = command.conn() else {
        return Ok(());
    };
    if let Command::Logout(conn) = &command
        && let Some(done) = logout::without_profile(conn, sources)?
    {
        return done;
    }
    let settings = Settings::resolve(conn, sources).map_err(|e| {
        // Without a server nor a profile, a command other than login lacks a login.
        let unsaved = e
            .downcast_ref::<Error>()
            .is_some_and(|e| matches!(e, Error::NoServer { .. }));
        if unsaved && !matches!(command, Command::Login(_)) {
            Error::NotLoggedIn {
                profile: conn.profile.clone(),
            }
            .into()
        } else {
            e
        }
    })?;
    match command {
        Command::Login(_) => login::run(&settings).await,
        Command::Logout(_) => logout::run(&settings).await,
        Command::Users(users) => users::run(users, &settings, sources).await,
        Command::Health(_) => health::run(&settings).await,
        Command::Chats(chats) => chats::run(chats, &settings).await,
        Command::Messages(messages) => messages::run(messages, &settings).await,
        Command::Stats(_) => stats::run(&settings).await,
        Command::Export(chat) => export::run(chat.chat, &settings).await,
        Command::Backup { path, yes, .. } => backup::run(&path, yes, &settings).await,
        Command::Broadcast { text, yes, .. } => broadcast::run(&text, yes, &settings).await,
        Command::Audit {
            actor,
            action,
            subject,
            since,
            limit,
            ..
        } => {
            let filter = audit::Filter {
                actor,
                action,
                subject,
                since,
            };
            audit::run(filter, limit, &settings).await
        }
        Command::Dlq(command) => dlq::run(command, &settings).await,
        Command::Nodes { command, .. } => nodes::run(command, &settings).await,
        Command::Bans(bans) => bans::run(bans, &settings).await,
        Command::Db(db) => db::run(db, &settings).await,
        Command::Keys(keys) => keys::run(keys, &settings).await,
        Command::Completions { .. } => Ok(()),
    }
}
