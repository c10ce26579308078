//! The event stream writer of one connection.

use std::sync::Arc;

use bytes::Bytes;
use chatproto::error::CloseCode;

use crate::delivery::kick::Kick;
use crate::delivery::outbox::{Outbox, WRITE_BATCH};

/// Opens the connection's event stream and drains its queue into it, coalescing whatever is
/// queued into one write. Once the queue is closed and drained (logout or connection end) it
/// finishes the stream and returns when the client acknowledged all of it. Closes the
/// connection (through `kick`) when the stream cannot be opened or the client stopped it.
pub async fn write_events(
    conn: quinn::Connection,
    outbox: Arc<Outbox>,
    kick: Kick,
    metrics: Arc<crate::ops::metrics::Metrics>,
) {
    let mut stream = match conn.open_uni().await {
        Ok(send) => chatproto::server::EventStream::new(send),
        Err(e) => {
            tracing::debug!(error = %e, "cannot open the event stream");
            outbox.close();
            kick.close(CloseCode::ProtocolViolation);
            return;
        }
    };
    // Grows with the first burst and keeps that capacity; an idle connection holds none.
    let mut batch: Vec<Bytes> = Vec::new();
    while outbox.next_batch(&mut batch, WRITE_BATCH).await {
        if let Err(e) = stream.write_frames(&mut batch).await {
            tracing::debug!(error = %e, "event stream closed");
            outbox.close();
            kick.close(CloseCode::ProtocolViolation);
            return;
        }
        metrics.events_sent(batch.len() as u64);
        batch.clear();
    }
    stream.finish().await;
}
