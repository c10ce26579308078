//! The QUIC server: accept loop, connection cap, and graceful drain.
//!
//! # Layout
//! - [`endpoint`]: TLS and transport configuration.
//! - [`connection`]: one connection's state machine and request streams.

pub mod connection;
pub mod endpoint;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chatproto::error::CloseCode;
use tokio::sync::broadcast;
use tokio_util::task::TaskTracker;

use crate::state::AppState;

/// Serves `endpoint` until `shutdown` completes, then drains: every connection gets GoAway, no
/// new request stream is accepted, in-flight requests finish (within the configured grace), and
/// connections close with GOING_AWAY.
pub async fn run(
    state: Arc<AppState>,
    endpoint: quinn::Endpoint,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (drain_tx, _) = broadcast::channel::<()>(1);
    let connections = TaskTracker::new();
    let open = Arc::new(AtomicUsize::new(0));
    let max = state.settings.max_connections;

    tokio::pin!(shutdown);
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
            () = &mut shutdown => break,
        };
        let state = state.clone();
        let drain = drain_tx.subscribe();
        let open = open.clone();
        connections.spawn(async move {
            let conn = match incoming.await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!(error = %e, "handshake failed");
                    state.metrics.connection_rejected("handshake");
                    return;
                }
            };
            if open.fetch_add(1, Ordering::SeqCst) >= max {
                open.fetch_sub(1, Ordering::SeqCst);
                state.metrics.connection_rejected("busy");
                conn.close(CloseCode::ServerBusy.code().into(), b"server busy");
                return;
            }
            state.metrics.connection_opened();
            connection::serve(state.clone(), conn, drain).await;
            state.metrics.connection_closed();
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }

    tracing::info!(connections = open.load(Ordering::SeqCst), "draining");
    // Refuse new connections from here on; established ones drain.
    endpoint.set_server_config(None);
    let _ = drain_tx.send(());
    connections.close();
    // Connections use most of the grace period to finish requests (see connection::serve); the
    // rest is for closing, so the process exits within the configured grace.
    let grace = state.settings.shutdown_grace.mul_f32(0.9);
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period: closing them");
    }
    endpoint.close(CloseCode::GoingAway.code().into(), b"server shutting down");
    let _ = tokio::time::timeout(Duration::from_millis(500), endpoint.wait_idle()).await;
    Ok(())
}
