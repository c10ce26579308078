//! What one connection of the HTTP servers may hold: how many there are at once, from one
//! address and in all, and how long one may go without moving a byte.
//!
//! hyper bounds the wait for request headers, not a response the client stops reading: its
//! writes then wait for the socket forever, holding the task, its buffers and (for a file) an
//! open blob. [`Watched`] stamps every byte that moves; [`stalled`] completes once none moved
//! for [`STALL_TIMEOUT`] (while a write waits, only a written byte counts: a client that sends
//! and never reads does not keep its response alive), and the server drops the connection.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::access::cidr::client_key;
use crate::places::Caps;

/// Most connections an HTTP server holds at once; one accepted beyond them is closed at once.
pub const MAX_HTTP_CONNECTIONS: usize = 1024;

/// Most connections an HTTP server holds from one address (an IPv6 /64 counts as one,
/// `client_key`): one client cannot take every place, and a CDN or reverse proxy fetching
/// signed file URLs from a few addresses keeps far fewer connections than this.
pub const MAX_HTTP_CONNECTIONS_PER_ADDRESS: usize = MAX_HTTP_CONNECTIONS / 4;

/// Longest a connection may move no byte while it is served: that of a file's QUIC stream.
pub const STALL_TIMEOUT: Duration = crate::files::TRANSFER_IDLE_TIMEOUT;

/// The caps on an HTTP server's connections: [`MAX_HTTP_CONNECTIONS`] in all,
/// [`MAX_HTTP_CONNECTIONS_PER_ADDRESS`] from one address.
pub const CAPS: Caps = Caps {
    total: MAX_HTTP_CONNECTIONS,
    per_key: MAX_HTTP_CONNECTIONS_PER_ADDRESS,
};

/// The places of one HTTP server's connections, by client address (an IPv6 /64 as one).
pub type Places = crate::places::Places<IpAddr>;

/// A connection's place among [`Places`].
pub type Place = crate::places::Place<IpAddr>;

/// A place for a connection from `peer`, or `None` when the server or that address holds all
/// it may ([`CAPS`]).
pub fn take_place(places: &Arc<Places>, peer: IpAddr) -> Option<Place> {
    places.try_take(client_key(peer), CAPS)
}

/// Refused connections, logged at most every [`REFUSALS_LOG_EVERY`]: a client that keeps
/// opening connections past its cap would otherwise write a line for each.
#[derive(Debug, Default)]
pub struct Refusals {
    unlogged: u64,
    logged_at: Option<Instant>,
}

/// How often refused HTTP connections are logged at most.
pub const REFUSALS_LOG_EVERY: Duration = Duration::from_secs(10);

impl Refusals {
    /// Notes a connection from `peer` refused for want of a place; logs a warning with the
    /// count since the last one when that is due, and says whether it did.
    pub fn note(&mut self, peer: std::net::SocketAddr) -> bool {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .logged_at
            .is_some_and(|at| now.duration_since(at) < REFUSALS_LOG_EVERY)
        {
            return false;
        }
        tracing::warn!(
            %peer,
            refused = self.unlogged,
            per_address = MAX_HTTP_CONNECTIONS_PER_ADDRESS,
            total = MAX_HTTP_CONNECTIONS,
            "http connections refused: no place left for them (the count is since the last line)"
        );
        self.unlogged = 0;
        self.logged_at = Some(now);
        true
    }
}

/// When a connection last moved a byte each way, in milliseconds since it was accepted, and
/// whether a write is waiting for the socket.
#[derive(Debug, Clone)]
pub struct Progress {
    start: Instant,
    read_ms: Arc<AtomicU64>,
    written_ms: Arc<AtomicU64>,
    write_waiting: Arc<AtomicBool>,
}

impl Progress {
    /// Progress of a connection accepted now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            read_ms: Arc::new(AtomicU64::new(0)),
            written_ms: Arc::new(AtomicU64::new(0)),
            write_waiting: Arc::new(AtomicBool::new(false)),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The last progress that counts now: a written byte while a write waits, else any.
    fn last(&self) -> Instant {
        let written = self.written_ms.load(Ordering::Relaxed);
        let ms = if self.write_waiting.load(Ordering::Relaxed) {
            written
        } else {
            written.max(self.read_ms.load(Ordering::Relaxed))
        };
        self.start + Duration::from_millis(ms)
    }
}

/// Completes once `progress` saw nothing that counts for `timeout`.
pub async fn stalled(progress: &Progress, timeout: Duration) {
    loop {
        let due = progress.last() + timeout;
        if Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

/// An I/O stream that stamps its [`Progress`] whenever a byte moves.
#[derive(Debug)]
pub struct Watched<T> {
    inner: T,
    progress: Progress,
}

impl<T> Watched<T> {
    /// Watches `inner`.
    pub fn new(inner: T, progress: Progress) -> Self {
        Self { inner, progress }
    }

    fn wrote(&self, polled: &Poll<io::Result<usize>>) {
        let p = &self.progress;
        match polled {
            Poll::Pending => p.write_waiting.store(true, Ordering::Relaxed),
            Poll::Ready(written) => {
                if matches!(written, Ok(n) if *n > 0) {
                    p.written_ms.store(p.now_ms(), Ordering::Relaxed);
                }
                p.write_waiting.store(false, Ordering::Relaxed);
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let p = &self.progress;
            p.read_ms.store(p.now_ms(), Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Real time with wide margins: a loaded machine only makes the sleeps longer.
    #[tokio::test]
    async fn bytes_moving_put_off_the_stall_but_reads_do_not_while_a_write_waits() {
        let (a, mut b) = tokio::io::duplex(64);
        let progress = Progress::new();
        let mut watched = Watched::new(a, progress.clone());
        let timeout = Duration::from_secs(2);
        let three_quarters = timeout * 3 / 4;
        tokio::time::sleep(three_quarters).await;
        watched.write_all(b"x").await.expect("write");
        let mut one = [0u8; 1];
        b.read_exact(&mut one).await.expect("read");
        tokio::time::sleep(three_quarters).await;
        b.write_all(b"y").await.expect("write");
        watched.read_exact(&mut one).await.expect("read");
        // Past the first timeout, and each byte put it off: a whole timeout from now.
        let started = Instant::now();
        stalled(&progress, timeout).await;
        assert!(started.elapsed() >= timeout / 2, "{:?}", started.elapsed());
        // A write that cannot go (the peer reads nothing) is no progress, and bytes read from
        // the peer meanwhile do not count either.
        let (mut reader, mut writer) = tokio::io::split(watched);
        writer.write_all(&[0u8; 64]).await.expect("fills the pipe");
        let blocked = tokio::time::timeout(timeout * 3 / 2, writer.write_all(b"z"));
        let peer_sends = async {
            tokio::time::sleep(timeout * 5 / 4).await;
            b.write_all(b"w").await.expect("write");
            reader.read_exact(&mut one).await.expect("read");
        };
        let (blocked, ()) = tokio::join!(blocked, peer_sends);
        assert!(blocked.is_err(), "the pipe is full");
        let started = Instant::now();
        stalled(&progress, timeout).await;
        assert!(started.elapsed() < timeout / 2, "{:?}", started.elapsed());
    }

    #[test]
    fn places_are_bounded_per_address_and_a_v6_64_is_one_address() {
        let places = Arc::new(Places::default());
        let one: IpAddr = "2001:db8::1".parse().expect("ip");
        let same_64: IpAddr = "2001:db8::2".parse().expect("ip");
        let other: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut held: Vec<Place> = (0..MAX_HTTP_CONNECTIONS_PER_ADDRESS)
            .map(|_| take_place(&places, one).expect("a place"))
            .collect();
        assert!(
            take_place(&places, same_64).is_none(),
            "the /64 has all it may hold"
        );
        let elsewhere = take_place(&places, other).expect("another address");
        held.pop();
        let again = take_place(&places, same_64).expect("a place was given back");
        assert_eq!(
            places.held(&client_key(one)),
            MAX_HTTP_CONNECTIONS_PER_ADDRESS,
            "counted by the /64"
        );
        drop((held, elsewhere, again));
        assert_eq!((places.held(&client_key(one)), places.held(&other)), (0, 0));
    }

    #[tokio::test]
    async fn refusals_are_logged_at_most_every_interval() {
        let peer: std::net::SocketAddr = "192.0.2.1:4000".parse().expect("addr");
        let mut refusals = Refusals::default();
        assert!(refusals.note(peer), "the first is logged");
        assert!(!refusals.note(peer) && !refusals.note(peer));
        assert_eq!(refusals.unlogged, 2, "counted for the next line");
        refusals.logged_at = Some(Instant::now() - REFUSALS_LOG_EVERY);
        assert!(refusals.note(peer), "due again");
        assert_eq!(refusals.unlogged, 0);
    }
}
