//! [`Kick`]: the server's decision to close one connection, with the close code that tells the
//! client what to do next (protocol.md 6.4).
//!
//! Whoever decides (delivery's registry for a slow consumer or a revocation, the event stream
//! writer) calls [`Kick::close`]; the connection's own task waits on [`Kick::kicked`], finishes
//! what the reason allows (a revoked session's farewell event), and closes with
//! [`Kick::reason`]. The first reason wins: a connection kicked as a slow consumer and then
//! revoked still closes once.

use std::sync::{Arc, OnceLock};

use chatproto::error::CloseCode;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// A shared, one-shot close decision for one connection. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Kick {
    token: CancellationToken,
    reason: Arc<OnceLock<CloseCode>>,
}

impl Kick {
    /// A connection nobody has decided to close.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides to close the connection with `code`, unless a reason was already given. True
    /// when this call gave the reason.
    pub fn close(&self, code: CloseCode) -> bool {
        let first = self.reason.set(code).is_ok();
        self.token.cancel();
        first
    }

    /// Completes once [`close`](Self::close) was called.
    pub fn kicked(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// The close code decided, if any.
    pub fn reason(&self) -> Option<CloseCode> {
        self.reason.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_wins() {
        let kick = Kick::new();
        assert_eq!(kick.reason(), None);
        assert!(kick.clone().close(CloseCode::Resync));
        assert!(!kick.close(CloseCode::SessionRevoked));
        assert_eq!(kick.reason(), Some(CloseCode::Resync));
    }
}
