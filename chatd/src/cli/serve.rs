//! `chatd` / `chatd serve`: run the server until SIGINT or SIGTERM (or an admin's
//! `admin_drain_node`), then drain and exit.

use anyhow::Context as _;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::daemon::Daemon;
use crate::ops::config::Config;

/// Starts the daemon, prints where it listens and how clients pin its certificate, and drains on
/// SIGINT or SIGTERM, or when an admin asks for it.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // The handlers go in before the daemon announces itself: a supervisor (or a test) may send
    // SIGTERM the moment it reads the listen address, and a signal that arrives before tokio
    // has registered its handler takes the default action and kills the process without a drain.
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let daemon = Daemon::start(config).await?;
    print!("{}", banner(&daemon));
    tokio::select! {
        () = wait_for_signal(&mut term, &mut int) => {
            tracing::info!("shutdown requested: draining");
        }
        () = daemon.drain_requested() => {
            tracing::info!("drain requested by an admin: draining");
        }
    }
    daemon.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}

/// What chatd prints on standard output once it serves: where, and the certificate fingerprint
/// in exactly the form clients accept for `--pin`. README.md shows it, and its test compares.
pub fn banner(daemon: &Daemon) -> String {
    let mut banner = format!(
        "chatd listening on {}\ncertificate sha256 fingerprint: {}\nadmin http on http://{}\n",
        daemon.addr, daemon.fingerprint, daemon.admin_addr
    );
    if let Some(addr) = daemon.files_https_addr {
        banner.push_str(&format!("https files on https://{addr}\n"));
    }
    banner
}

async fn wait_for_signal(term: &mut Signal, int: &mut Signal) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
