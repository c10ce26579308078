//! The QUIC server: accept loop with the access rules ([`crate::access`]) and the connection
//! caps (counted by [`crate::conn::admission`]), and graceful drain.
//!
//! # Layout
//! - [`endpoint`]: TLS and transport configuration.
//! - [`resumption`]: the TLS session tickets that let a returning client resume, with 0-RTT.
//! - [`connection`]: one connection's state machine and request streams.
//! - [`drain`]: how a drain spreads its clients' reconnects.

pub mod connection;
pub mod drain;
pub mod endpoint;
pub mod resumption;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chatproto::error::CloseCode;
use tokio::sync::broadcast;
use tokio_util::task::TaskTracker;

use crate::access::Verdict;
use crate::conn::admission::{ConnectionCaps, ConnectionLimits};
use crate::state::AppState;
use drain::DrainPlan;

/// Serves `endpoint` until `shutdown` completes, then drains: every connection gets GoAway, no
/// new request stream is accepted, in-flight requests finish (within the configured grace), and
/// connections close with GOING_AWAY.
pub async fn run(
    state: Arc<AppState>,
    endpoint: quinn::Endpoint,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (drain_tx, _) = broadcast::channel::<DrainPlan>(1);
    let connections = TaskTracker::new();
    let settings = &state.settings;
    let limits = ConnectionLimits::new(ConnectionCaps {
        total: settings.max_connections,
        unauthenticated: settings.max_unauthenticated,
        unauthenticated_per_address: settings.max_unauthenticated_per_address,
        authenticated_per_address: settings.max_authenticated_per_address,
    });

    let handshaking = Handshaking::default();

    tokio::pin!(shutdown);
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
            () = &mut shutdown => break,
        };
        // Access rules before anything else: a refused address costs one packet, no handshake.
        let verdict = state.access.verdict(incoming.remote_address().ip());
        if verdict != Verdict::Admit {
            state.metrics.connection_rejected(verdict.label());
            tracing::debug!(addr = %incoming.remote_address(), verdict = verdict.label(), "connection refused by the access rules");
            incoming.refuse();
            continue;
        }
        // Under a load of handshakes, an address must answer a Retry before it gets one: a
        // flood from spoofed addresses then costs a stateless packet each (spec 11.6). A client
        // that answers it comes back validated and is let through.
        let incoming = if handshaking.count() >= settings.retry_above_handshakes
            && !incoming.remote_address_validated()
        {
            match incoming.retry() {
                Ok(()) => {
                    state.metrics.connection_retried();
                    continue;
                }
                Err(not_now) => not_now.into_incoming(),
            }
        } else {
            incoming
        };
        let state = state.clone();
        let drain = drain_tx.subscribe();
        let limits = limits.clone();
        let handshake = handshaking.begin();
        connections.spawn(async move {
            let opened = connection::open(incoming).await;
            drop(handshake);
            let Some(mut opened) = opened else {
                state.metrics.connection_rejected("handshake");
                return;
            };
            let admission = match limits.admit(opened.conn.remote_address().ip()) {
                Ok(admission) => admission,
                Err(refused) => {
                    state.metrics.connection_rejected(refused.label());
                    // A close before the handshake completed could not carry its code and
                    // reason (QUIC sends a bare APPLICATION_ERROR then): the client would see
                    // a failed handshake instead of SERVER_BUSY.
                    if opened.handshake_done().await {
                        opened.conn.close(
                            CloseCode::ServerBusy.code().into(),
                            refused.message().as_bytes(),
                        );
                    }
                    return;
                }
            };
            state.metrics.connection_opened();
            // The admission goes with the connection's context and is given back when the
            // connection's last piece is dropped, however it ends.
            connection::serve(state.clone(), opened, admission, drain).await;
            state.metrics.connection_closed();
        });
    }

    let plan = DrainPlan::new(limits.open(), state.settings.drain_reconnect_rate);
    tracing::info!(connections = limits.open(), spread = ?plan.spread(), "draining");
    // Refuse new connections from here on; established ones drain.
    endpoint.set_server_config(None);
    let _ = drain_tx.send(plan);
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

/// The handshakes in progress on this node: each counts from its first packet until the
/// connection is open (or its handshake failed).
#[derive(Debug, Default, Clone)]
struct Handshaking(Arc<AtomicUsize>);

/// One handshake in progress, counted until dropped.
struct Handshake(Arc<AtomicUsize>);

impl Handshaking {
    fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn begin(&self) -> Handshake {
        self.0.fetch_add(1, Ordering::Relaxed);
        Handshake(Arc::clone(&self.0))
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
