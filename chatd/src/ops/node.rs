//! This node as server admins see and steer it: when it started, where clients reach it, and
//! whether it was asked to drain. Shared by the handlers (through the state) and the cluster's
//! heartbeat, which carries out a drain asked through the node registry.

/// This node as server admins see and steer it (`admin_stats`, `admin_list_nodes`,
/// `admin_drain_node`).
#[derive(Debug)]
pub struct NodeControl {
    /// When the node started.
    pub started: std::time::Instant,
    /// The same, as a wall-clock time.
    pub started_at_ms: i64,
    /// Where clients reach it, set once the endpoint is bound.
    addr: std::sync::OnceLock<String>,
    /// Cancelled when the node is to drain: the server's accept loop stops on it.
    drain: tokio_util::sync::CancellationToken,
}

impl NodeControl {
    /// A node starting now.
    pub fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            started_at_ms: crate::clock::now_ms(),
            addr: std::sync::OnceLock::new(),
            drain: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Records where clients reach the node (the first call wins).
    pub fn set_addr(&self, addr: String) {
        let _ = self.addr.set(addr);
    }

    /// Where clients reach the node; empty before the endpoint is bound.
    pub fn addr(&self) -> &str {
        self.addr.get().map_or("", String::as_str)
    }

    /// Asks the node to drain (idempotent).
    pub fn drain(&self) {
        self.drain.cancel();
    }

    /// Whether a drain was asked for.
    pub fn draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Completes once a drain is asked for.
    pub async fn drained(&self) {
        self.drain.cancelled().await;
    }
}

impl Default for NodeControl {
    fn default() -> Self {
        Self::new()
    }
}
