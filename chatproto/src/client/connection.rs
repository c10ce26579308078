//! Dialing and single requests: QUIC connect, Hello, redirects, failover across servers, and one
//! request/response exchange on its own stream.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::config::ClientConfig;
use super::error::{ClientError, RemoteError};
use crate::capability::Capability;
use crate::error::CloseCode;
use crate::frame::MAX_FRAME_BYTES;
use crate::io::{FrameReader, ReadFrameError};
use crate::pb;
use crate::session::RequestIds;

/// How many Welcome redirects in a row are followed before giving up (guards against loops).
const MAX_REDIRECTS: usize = 3;

/// The largest frame limit a server may announce that we are willing to buffer.
const MAX_ACCEPTED_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// A name that resolves to several addresses is tried on the next one when the previous has not
/// answered within this long, while the previous attempt goes on (RFC 8305's "connection attempt
/// delay"): an unreachable first address (an IPv6 `localhost` nobody listens on; QUIC gets no
/// refusal, only silence) must not stall the connection.
pub(crate) const ATTEMPT_STAGGER: Duration = Duration::from_millis(250);

/// One established connection that completed Hello.
#[derive(Debug)]
pub(crate) struct Link {
    pub conn: quinn::Connection,
    pub welcome: pb::Welcome,
    /// The `host:port` this connection went to.
    pub address: String,
    /// Counts connections of one client: answers and events of older ones are ignored.
    pub generation: u64,
    /// Datagrams were negotiated and the connection supports them.
    pub datagrams: bool,
    /// Its first requests went in 0-RTT data and the server accepted them.
    pub zero_rtt: bool,
    /// The largest request frame the server accepts (its announced limit).
    max_frame_bytes: usize,
    /// The largest frame read from the server: at least the 256 KiB every server may send
    /// (spec 4.1), and no more than [`MAX_ACCEPTED_FRAME_BYTES`] whatever it announced.
    max_receive_bytes: usize,
}

/// A connection that completed Hello, and the answers to the requests sent behind Hello in
/// 0-RTT data: `None` when they were not sent (no session ticket, 0-RTT turned off) or the
/// server refused the 0-RTT data; then the caller sends them now.
pub(crate) type Connected = (Link, Option<Vec<pb::Response>>);

/// Why one request failed below the level of a server answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The connection is gone.
    Lost(String),
    /// Only this stream failed (reset or stopped by the server); the connection is fine.
    Stream(String),
    /// The request could not be encoded within the frame limit.
    TooLarge(String),
    /// The server broke the protocol.
    Protocol(String),
}

impl From<CallError> for ClientError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Lost(m) => ClientError::ConnectionLost(m),
            CallError::Stream(m) => ClientError::Protocol(format!("request stream failed: {m}")),
            CallError::TooLarge(m) => ClientError::Config(format!("request too large: {m}")),
            CallError::Protocol(m) => ClientError::Protocol(m),
        }
    }
}

impl Link {
    /// Sends one request on a new stream and reads its one response.
    pub async fn call(
        &self,
        request_id: u64,
        kind: pb::request::Kind,
    ) -> Result<pb::Response, CallError> {
        self.send(&EncodedRequest::new(request_id, kind)?).await
    }

    /// The largest frame this connection reads from its server.
    pub fn max_receive_bytes(&self) -> usize {
        self.max_receive_bytes
    }

    /// Sends an already encoded request (see [`EncodedRequest`]) and reads its one response.
    pub async fn send(&self, request: &EncodedRequest) -> Result<pb::Response, CallError> {
        let recv = write_request(&self.conn, self.max_frame_bytes, request).await?;
        read_response(recv, self.max_receive_bytes).await
    }

    /// Like [`call`](Self::call), but an error answer becomes `Err(ClientError::Remote)`.
    pub async fn call_ok(
        &self,
        request_id: u64,
        kind: pb::request::Kind,
    ) -> Result<pb::response::Result, ClientError> {
        let response = self.call(request_id, kind).await?;
        into_result(response)
    }
}

/// Splits a response into its result, turning an error answer into a [`RemoteError`].
pub(crate) fn into_result(response: pb::Response) -> Result<pb::response::Result, ClientError> {
    match response.result {
        Some(pb::response::Result::Error(e)) => Err(RemoteError::from_pb(e).into()),
        Some(result) => Ok(result),
        None => Err(ClientError::Protocol("response without a result".into())),
    }
}

/// A request frame encoded once: each attempt of a retried request writes the same bytes (a
/// cheap reference-counted copy), so the request is moved into its encoding instead of being
/// cloned per attempt. Its `request_id` stays the same across attempts, which is what logs
/// correlating a retried request want.
#[derive(Debug, Clone)]
pub(crate) struct EncodedRequest {
    frame: bytes::Bytes,
    payload_len: usize,
}

impl EncodedRequest {
    /// Encodes within the largest frame any server may announce; [`Link::send`] checks the
    /// connection's own limit.
    pub fn new(request_id: u64, kind: pb::request::Kind) -> Result<Self, CallError> {
        let request = pb::Request {
            request_id,
            kind: Some(kind),
        };
        let payload_len = prost::Message::encoded_len(&request);
        let frame = crate::io::encode_frames([&request], MAX_ACCEPTED_FRAME_BYTES)
            .map_err(|e| CallError::TooLarge(e.to_string()))?;
        Ok(Self { frame, payload_len })
    }

    /// The encoded frame (a cheap reference-counted copy).
    pub fn frame(&self) -> bytes::Bytes {
        self.frame.clone()
    }
}

/// Sends `hello` (before any limit is announced) and reads its answer.
async fn send_hello(
    conn: &quinn::Connection,
    request: &EncodedRequest,
) -> Result<pb::Response, CallError> {
    let recv = write_request(conn, MAX_FRAME_BYTES, request).await?;
    read_response(recv, MAX_FRAME_BYTES).await
}

/// Opens a stream and writes `request` on it; the response comes on the returned stream.
async fn write_request(
    conn: &quinn::Connection,
    max_frame_bytes: usize,
    request: &EncodedRequest,
) -> Result<quinn::RecvStream, CallError> {
    if request.payload_len > max_frame_bytes {
        return Err(CallError::TooLarge(
            crate::frame::FrameError::Oversize {
                len: request.payload_len as u64,
                max: max_frame_bytes,
            }
            .to_string(),
        ));
    }
    let (mut send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| CallError::Lost(e.to_string()))?;
    send.write_chunk(request.frame.clone())
        .await
        .map_err(|e| match e {
            quinn::WriteError::ConnectionLost(c) => CallError::Lost(c.to_string()),
            w => CallError::Stream(w.to_string()),
        })?;
    // Finishing can only fail if the stream is already closed, which the write above reports.
    let _ = send.finish();
    Ok(recv)
}

/// Reads the one response of a request stream.
async fn read_response(
    recv: quinn::RecvStream,
    max_frame_bytes: usize,
) -> Result<pb::Response, CallError> {
    let mut reader = FrameReader::new(recv, max_frame_bytes);
    reader
        .read_only::<pb::Response>()
        .await
        .map_err(|e| match e {
            ReadFrameError::Read(quinn::ReadError::ConnectionLost(c)) => {
                CallError::Lost(c.to_string())
            }
            ReadFrameError::Read(r) => CallError::Stream(r.to_string()),
            e @ ReadFrameError::Idle(_) => CallError::Stream(e.to_string()),
            ReadFrameError::Finished => {
                CallError::Protocol("response stream finished without a response".into())
            }
            ReadFrameError::Frame(f) => CallError::Protocol(format!("bad response frame: {f}")),
        })
}

/// Opens connections to the configured servers. Holds the client endpoints (one per address
/// family, created on first use) and the TLS configuration.
#[derive(Debug)]
pub(crate) struct Dialer {
    config: ClientConfig,
    quic: quinn::ClientConfig,
    endpoints: Mutex<Endpoints>,
    ids: RequestIds,
    generation: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct Endpoints {
    v4: Option<quinn::Endpoint>,
    v6: Option<quinn::Endpoint>,
}

impl Dialer {
    pub fn new(config: ClientConfig, ids: RequestIds) -> Result<Self, ClientError> {
        if config.servers.is_empty() {
            return Err(ClientError::Config("no server address".into()));
        }
        let quic = crate::tls::client_config(&config.verification)?;
        Ok(Self {
            config,
            quic,
            endpoints: Mutex::new(Endpoints::default()),
            ids,
            generation: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Tries `addresses` (or the configured servers when empty), starting at index `start` and
    /// wrapping around, until one completes Hello. `flight` goes behind Hello in 0-RTT data
    /// when the connection can (see [`Connected`]). Returns the link, the flight's answers and the
    /// index that worked.
    pub async fn dial_any(
        &self,
        addresses: &[String],
        start: usize,
        flight: &[EncodedRequest],
    ) -> Result<(Connected, usize), ClientError> {
        let list = if addresses.is_empty() {
            &self.config.servers
        } else {
            addresses
        };
        let mut failures = Failures::default();
        for i in 0..list.len() {
            let index = (start + i) % list.len();
            let address = &list[index];
            match self.dial(address, flight).await {
                Ok(dialed) => return Ok((dialed, index)),
                Err(e) => {
                    tracing::debug!(%address, error = %e, "connect attempt failed");
                    failures.push(address, &e);
                }
            }
        }
        Err(failures.into_error("no server configured"))
    }

    /// Connects to one address and says Hello, following redirects (to the first of the
    /// redirect's addresses that answers).
    pub async fn dial(
        &self,
        address: &str,
        flight: &[EncodedRequest],
    ) -> Result<Connected, ClientError> {
        let timeout = self.config.retry.connect_timeout;
        // A redirect to an IP literal keeps the TLS name of the original connection (3.3).
        let original_name = match &self.config.server_name {
            Some(name) => name.clone(),
            None => split_host(address)?,
        };
        let mut candidates = vec![address.to_string()];
        for _ in 0..=MAX_REDIRECTS {
            let mut failures = Failures::default();
            let mut redirect = None;
            for candidate in &candidates {
                let name = match split_host(candidate) {
                    Ok(host) if host.parse::<std::net::IpAddr>().is_ok() => original_name.clone(),
                    Ok(host) => self.config.server_name.clone().unwrap_or(host),
                    Err(e) => {
                        failures.push(candidate, &e);
                        continue;
                    }
                };
                let dialed = self.dial_once(candidate, &name, flight);
                let (link, answers) = match tokio::time::timeout(timeout, dialed).await {
                    Ok(Ok(dialed)) => dialed,
                    Ok(Err(e)) => {
                        failures.push(candidate, &e);
                        continue;
                    }
                    Err(_) => {
                        let e = ClientError::Connect(format!("no answer within {timeout:?}"));
                        failures.push(candidate, &e);
                        continue;
                    }
                };
                match link.welcome.redirect.clone() {
                    Some(r)
                        if !r.addresses.is_empty() && self.config.offers(Capability::Redirect) =>
                    {
                        tracing::info!(
                            from = %candidate, to = ?r.addresses, reason = %r.reason, "redirected"
                        );
                        link.conn.close(CloseCode::NoError.into(), b"redirected");
                        redirect = Some(r.addresses);
                        break;
                    }
                    _ => return Ok((link, answers)),
                }
            }
            match redirect {
                Some(next) => candidates = next,
                None => return Err(failures.into_error("redirected to no address")),
            }
        }
        Err(ClientError::Connect(format!(
            "{address}: more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// Connects to `address`, checking its certificate for `server_name`, and says Hello.
    async fn dial_once(
        &self,
        address: &str,
        server_name: &str,
        flight: &[EncodedRequest],
    ) -> Result<Connected, ClientError> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host(address)
            .await
            .map_err(|e| ClientError::Connect(format!("{address}: cannot resolve: {e}")))?
            .collect();
        if self.config.verification.is_insecure() {
            tracing::warn!(
                %address,
                "connecting WITHOUT certificate verification (Verification::InsecureDangerous)"
            );
        }
        first_reachable(&resolved, ATTEMPT_STAGGER, |sock| {
            self.connect(sock, server_name, address, flight)
        })
        .await
        .map_err(|failures| failures.into_error(&format!("{address}: resolves to no address")))
    }

    async fn connect(
        &self,
        sock: SocketAddr,
        server_name: &str,
        address: &str,
        flight: &[EncodedRequest],
    ) -> Result<Connected, ClientError> {
        let endpoint = self.endpoint_for(sock)?;
        let connecting = endpoint
            .connect_with(self.quic.clone(), sock, server_name)
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let hello = pb::Hello {
            protocol_major: crate::PROTOCOL_MAJOR,
            protocol_minor: crate::PROTOCOL_MINOR,
            capabilities: self.config.capabilities.clone(),
            client_name: self.config.client_name.clone(),
        };
        let hello = EncodedRequest::new(self.ids.next_id(), pb::request::Kind::Hello(hello))
            .map_err(ClientError::from)?;
        let connecting = if self.config.zero_rtt {
            // Possible only with a session ticket of this server from an earlier connection.
            match connecting.into_0rtt() {
                Ok((conn, accepted)) => {
                    let early = send_early(&conn, accepted, &hello, flight).await;
                    return match early {
                        Some((Ok(mut answers), zero_rtt)) => {
                            let welcome = answers.remove(0);
                            let link = self.finish_hello(conn, Ok(welcome), address, zero_rtt)?;
                            Ok((link, Some(answers)))
                        }
                        Some((Err(e), _)) => {
                            let e = refused_busy(&conn, address).unwrap_or(e.into());
                            conn.close(CloseCode::NoError.into(), b"hello failed");
                            Err(e)
                        }
                        // Refused: the connection goes on after a full handshake, without
                        // what was sent early. Or the handshake failed.
                        None => {
                            if let Some(e) = conn.close_reason() {
                                return Err(refused_busy(&conn, address)
                                    .unwrap_or(ClientError::Connect(e.to_string())));
                            }
                            let answer = send_hello(&conn, &hello).await;
                            Ok((self.finish_hello(conn, answer, address, false)?, None))
                        }
                    };
                }
                Err(connecting) => connecting,
            }
        } else {
            connecting
        };
        let conn = connecting
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let answer = send_hello(&conn, &hello).await;
        Ok((self.finish_hello(conn, answer, address, false)?, None))
    }

    /// Checks Hello's answer on `conn` and makes the link.
    fn finish_hello(
        &self,
        conn: quinn::Connection,
        answer: Result<pb::Response, CallError>,
        address: &str,
        zero_rtt: bool,
    ) -> Result<Link, ClientError> {
        let answer = answer.map_err(ClientError::from).and_then(into_result);
        let welcome = match answer {
            Ok(pb::response::Result::Welcome(w)) => w,
            Ok(other) => {
                conn.close(CloseCode::NoError.into(), b"bad welcome");
                return Err(ClientError::Protocol(format!(
                    "Hello answered with {}",
                    other.name()
                )));
            }
            Err(e) => {
                // A server at a connection limit closes right after the handshake, so Hello
                // fails: say why, so that the caller backs off as 3.7 asks.
                if let Some(busy) = refused_busy(&conn, address) {
                    return Err(busy);
                }
                conn.close(CloseCode::NoError.into(), b"hello failed");
                return Err(e);
            }
        };
        if welcome.protocol_major != crate::PROTOCOL_MAJOR {
            conn.close(CloseCode::NoError.into(), b"protocol version");
            return Err(ClientError::Protocol(format!(
                "server speaks protocol {}.{}, this client {}.{}",
                welcome.protocol_major,
                welcome.protocol_minor,
                crate::PROTOCOL_MAJOR,
                crate::PROTOCOL_MINOR
            )));
        }
        let announced = welcome
            .limits
            .as_ref()
            .map_or(0, |l| l.max_frame_bytes as usize);
        let max_frame_bytes = if announced == 0 {
            MAX_FRAME_BYTES
        } else {
            announced.clamp(1024, MAX_ACCEPTED_FRAME_BYTES)
        };
        let max_receive_bytes = announced.clamp(MAX_FRAME_BYTES, MAX_ACCEPTED_FRAME_BYTES);
        let datagrams = Capability::Datagrams.is_in(&welcome.capabilities)
            && self.config.offers(Capability::Datagrams)
            && conn.max_datagram_size().is_some();
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        Ok(Link {
            conn,
            welcome,
            address: address.to_string(),
            generation,
            datagrams,
            zero_rtt,
            max_frame_bytes,
            max_receive_bytes,
        })
    }

    fn endpoint_for(&self, sock: SocketAddr) -> Result<quinn::Endpoint, ClientError> {
        if let Some(shared) = &self.config.endpoint
            && shared
                .local_addr()
                .is_ok_and(|local| local.is_ipv4() == sock.is_ipv4())
        {
            return Ok(shared.clone());
        }
        let mut endpoints = self
            .endpoints
            .lock()
            .map_err(|_| ClientError::Closed("endpoint lock poisoned".into()))?;
        let slot = if sock.is_ipv4() {
            &mut endpoints.v4
        } else {
            &mut endpoints.v6
        };
        if let Some(endpoint) = slot {
            return Ok(endpoint.clone());
        }
        let bind: SocketAddr = if sock.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let endpoint = crate::udp::client_endpoint(bind)
            .map_err(|e| ClientError::Connect(format!("cannot bind a UDP socket: {e}")))?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// Moves this client's own endpoints to new UDP sockets (new local ports, on whatever
    /// interface the system routes through now), as a device does when its network changes:
    /// the connections on them migrate (protocol.md 2.4) instead of being lost. A shared
    /// endpoint ([`ClientConfig::endpoint`](super::ClientConfig::endpoint)) is its owner's
    /// to rebind. Returns the new local addresses.
    pub fn rebind(&self) -> Result<Vec<SocketAddr>, ClientError> {
        let endpoints = self
            .endpoints
            .lock()
            .map_err(|_| ClientError::Closed("endpoint lock poisoned".into()))?;
        let mut rebound = Vec::new();
        for endpoint in [&endpoints.v4, &endpoints.v6].into_iter().flatten() {
            let failed = |e: std::io::Error| ClientError::Connect(format!("cannot rebind: {e}"));
            let family = endpoint.local_addr().map_err(failed)?;
            let any: SocketAddr = if family.is_ipv4() {
                SocketAddr::from(([0, 0, 0, 0], 0))
            } else {
                SocketAddr::from(([0u16; 8], 0))
            };
            let (socket, _) =
                crate::udp::bind(any, crate::udp::CLIENT_SOCKET_BUFFER).map_err(failed)?;
            endpoint.rebind(socket).map_err(failed)?;
            rebound.push(endpoint.local_addr().map_err(failed)?);
        }
        Ok(rebound)
    }

    /// Closes the endpoints (and with them every connection).
    pub fn close(&self) {
        if let Ok(endpoints) = self.endpoints.lock() {
            for endpoint in [&endpoints.v4, &endpoints.v6].into_iter().flatten() {
                endpoint.close(CloseCode::NoError.into(), b"client closed");
            }
        }
    }
}

/// Sends `hello` and then `flight` in 0-RTT data on `conn`, each on its own stream, opened in
/// this order (the server serves what an unauthenticated connection sends in 0-RTT data in
/// stream order, protocol.md 2.5), and reads their answers, with whether they went in 0-RTT
/// data. `None` when the server refused the 0-RTT data (`accepted` resolves when the handshake
/// completes and says whether it took it): nothing of the flight reached it.
async fn send_early(
    conn: &quinn::Connection,
    accepted: quinn::ZeroRttAccepted,
    hello: &EncodedRequest,
    flight: &[EncodedRequest],
) -> Option<(Result<Vec<pb::Response>, CallError>, bool)> {
    let exchange = async {
        let mut streams = Vec::with_capacity(flight.len() + 1);
        for request in std::iter::once(hello).chain(flight) {
            streams.push(write_request(conn, MAX_FRAME_BYTES, request).await?);
        }
        // When the handshake completed (the server refusing the 0-RTT data) before `hello`'s
        // stream was opened, the whole flight went as ordinary requests after it: the server
        // has them, and sending `hello` again would be refused as a second Hello.
        let after_handshake = streams.first().is_some_and(|recv| !recv.is_0rtt());
        let answers = futures_util::future::try_join_all(
            streams
                .into_iter()
                .map(|recv| read_response(recv, MAX_FRAME_BYTES)),
        )
        .await?;
        Ok((answers, after_handshake))
    };
    // Both end soon after the handshake: streams of refused 0-RTT data fail at once then.
    let (result, accepted) = tokio::join!(exchange, accepted);
    match result {
        Ok((answers, after_handshake)) if accepted || after_handshake => {
            Some((Ok(answers), accepted))
        }
        Err(e) if accepted => Some((Err(e), true)),
        // Refused: nothing of the flight counts, the caller sends Hello again.
        _ => None,
    }
}

/// Tries `addresses` in order, starting the next one whenever `stagger` passes without an
/// answer (or as soon as an attempt fails), and returns the first success; or, when all fail,
/// each failure, named by address.
pub(crate) async fn first_reachable<T, F, Fut>(
    addresses: &[SocketAddr],
    stagger: Duration,
    attempt: F,
) -> Result<T, Failures>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    use futures_util::StreamExt as _;
    use futures_util::stream::FuturesUnordered;
    let start = |sock: SocketAddr| {
        let future = attempt(sock);
        async move { (sock, future.await) }
    };
    let mut running = FuturesUnordered::new();
    let mut next = addresses.iter();
    let mut failures = Failures::default();
    loop {
        if running.is_empty() {
            match next.next() {
                Some(&sock) => running.push(start(sock)),
                None => return Err(failures),
            }
        }
        let more = next.len() > 0;
        tokio::select! {
            Some((sock, result)) = running.next() => match result {
                Ok(value) => return Ok(value),
                Err(e) => failures.push(&sock.to_string(), &e),
            },
            () = tokio::time::sleep(stagger), if more => {
                if let Some(&sock) = next.next() {
                    running.push(start(sock));
                }
            }
        }
    }
}

/// The failed attempts of one dial, for the error that reports them all.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Failures {
    reasons: Vec<String>,
    busy: bool,
}

impl Failures {
    /// Notes that the attempt at `address` failed with `e`.
    pub(crate) fn push(&mut self, address: &str, e: &ClientError) {
        self.busy |= matches!(e, ClientError::ServerBusy(_));
        self.reasons.push(reason(address, e));
    }

    /// [`ClientError::ServerBusy`] when a server refused at a connection limit (the caller
    /// should back off longer than after other failures), else [`ClientError::Connect`];
    /// `none` says what happened when there was no attempt at all.
    pub(crate) fn into_error(self, none: &str) -> ClientError {
        if self.reasons.is_empty() {
            return ClientError::Connect(none.to_string());
        }
        let reasons = self.reasons.join("; ");
        if self.busy {
            ClientError::ServerBusy(reasons)
        } else {
            ClientError::Connect(reasons)
        }
    }
}

/// One failed attempt for the list in [`ClientError::Connect`]: connect errors already name
/// their address; others get it prefixed.
fn reason(address: &str, e: &ClientError) -> String {
    match e {
        ClientError::Connect(m) | ClientError::ServerBusy(m) if m.starts_with(address) => m.clone(),
        ClientError::Connect(m) | ClientError::ServerBusy(m) => format!("{address}: {m}"),
        other => format!("{address}: {other}"),
    }
}

/// [`ClientError::ServerBusy`] when the server closed `conn` at one of its connection limits
/// (`SERVER_BUSY`, protocol.md 3.7), naming `address` and the server's reason.
fn refused_busy(conn: &quinn::Connection, address: &str) -> Option<ClientError> {
    match conn.close_reason()? {
        quinn::ConnectionError::ApplicationClosed(close)
            if CloseCode::from_code(close.error_code.into_inner())
                == Some(CloseCode::ServerBusy) =>
        {
            let why = String::from_utf8_lossy(&close.reason);
            Some(ClientError::ServerBusy(format!("{address}: {why}")))
        }
        _ => None,
    }
}

/// The host part of `host:port` (brackets of IPv6 literals removed).
pub(crate) fn split_host(address: &str) -> Result<String, ClientError> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| ClientError::Config(format!("address {address:?} has no port")))?;
    if port.parse::<u16>().is_err() {
        return Err(ClientError::Config(format!(
            "address {address:?} has an invalid port"
        )));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(ClientError::Config(format!(
            "address {address:?} has no host"
        )));
    }
    Ok(host.to_string())
}

/// A shareable link handle.
pub(crate) type SharedLink = Arc<Link>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_silent_first_address_does_not_stall_the_next() {
        let stagger = Duration::from_millis(50);
        let silent: SocketAddr = "[::1]:9".parse().unwrap();
        let good: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let refused: SocketAddr = "127.0.0.2:9".parse().unwrap();
        let attempt = |sock: SocketAddr| async move {
            if sock == silent {
                std::future::pending::<()>().await;
            }
            if sock == refused {
                return Err(ClientError::Connect("refused".into()));
            }
            Ok(sock)
        };
        let started = std::time::Instant::now();
        let won = first_reachable(&[silent, good], stagger, attempt).await;
        assert_eq!(won, Ok(good));
        let took = started.elapsed();
        assert!(took >= stagger && took < Duration::from_secs(5), "{took:?}");
        // A failure starts the next attempt at once; all failing lists every address.
        let won = first_reachable(&[refused, good], Duration::from_secs(60), attempt).await;
        assert_eq!(won, Ok(good));
        let lost = first_reachable(&[refused, refused], stagger, attempt).await;
        let lost = lost.unwrap_err().into_error("none");
        assert!(
            matches!(&lost, ClientError::Connect(m) if m == "127.0.0.2:9: refused; 127.0.0.2:9: refused"),
            "{lost}"
        );
        let none = first_reachable(&[], stagger, attempt).await;
        assert!(
            matches!(none.unwrap_err().into_error("none"), ClientError::Connect(m) if m == "none")
        );
    }

    #[test]
    fn a_busy_server_among_the_failures_makes_the_dial_busy() {
        let mut failures = Failures::default();
        failures.push("a:1", &ClientError::Connect("a:1: timed out".into()));
        failures.push("b:2", &ClientError::ServerBusy("b:2: server busy".into()));
        match failures.into_error("none") {
            ClientError::ServerBusy(m) => assert_eq!(m, "a:1: timed out; b:2: server busy"),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn hosts_are_split_from_addresses() {
        assert_eq!(split_host("chat.example:4433").unwrap(), "chat.example");
        assert_eq!(split_host("[::1]:4433").unwrap(), "::1");
        assert!(split_host("nohost").is_err());
        assert!(split_host("host:notaport").is_err());
        assert!(split_host(":4433").is_err());
    }
}
