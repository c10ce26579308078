//! File transfer helpers: contents, uploads and downloads through the SDK, upload streams on a
//! bare connection (for what the SDK would never send), an HTTPS client for signed download URLs,
//! and the memory of a process.

use std::io::Cursor;
use std::net::SocketAddr;

use chatproto::client::{Client, ClientError};
use chatproto::pb;
use sha2::{Digest as _, Sha256};

use crate::raw::RawConn;

/// `len` pseudo-random bytes (xorshift), different for each `seed`: incompressible, so nothing
/// on the way can shortcut them.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Uploads `bytes` through the SDK.
pub async fn upload(
    client: &Client,
    bytes: &[u8],
    name: &str,
    kind: pb::MessageKind,
) -> Result<pb::FileInfo, ClientError> {
    client
        .upload_reader(Cursor::new(bytes.to_vec()), name, kind, |_, _| {})
        .await
}

/// Shares uploaded file `file_id` in `chat_id` as a message of `kind`: the chat's members may
/// then download it.
pub async fn share(
    client: &Client,
    chat_id: u64,
    file_id: &str,
    kind: pb::MessageKind,
) -> Result<pb::Message, ClientError> {
    client
        .send_message(pb::SendMessage {
            chat_id,
            kind: kind as i32,
            file_id: file_id.to_owned(),
            ..Default::default()
        })
        .await
}

/// Downloads a file from `offset` through the SDK, into memory.
pub async fn download(client: &Client, file_id: &str, offset: u64) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    client
        .download_to_writer(file_id, offset, &mut out, |_, _| {})
        .await?;
    Ok(out)
}

/// A bare, authenticated connection that negotiated `files`, for upload streams the SDK would
/// never send.
pub struct UploadConn {
    /// The connection.
    pub raw: RawConn,
}

impl UploadConn {
    /// Connects with the SDK's transport settings (its keep-alive holds a connection that
    /// waits on a stream), says Hello with `files` and authenticates with `access_token`.
    pub async fn connect(addr: SocketAddr, fingerprint: &str, access_token: &str) -> UploadConn {
        let transport = chatproto::tls::transport_config();
        let raw = RawConn::connect_with(addr, fingerprint, transport).await;
        let welcome = raw
            .request(pb::request::Kind::Hello(pb::Hello {
                protocol_major: 1,
                protocol_minor: chatproto::PROTOCOL_MINOR,
                capabilities: vec!["files".into()],
                client_name: "raw-files".into(),
            }))
            .await;
        assert!(
            matches!(&welcome.result, Some(pb::response::Result::Welcome(w)) if w.capabilities == ["files"]),
            "files not negotiated: {welcome:?}"
        );
        let auth = raw
            .request(pb::request::Kind::Authenticate(pb::Authenticate {
                access_token: access_token.into(),
            }))
            .await;
        assert!(
            matches!(auth.result, Some(pb::response::Result::Auth(_))),
            "authenticate failed: {auth:?}"
        );
        UploadConn { raw }
    }

    /// Sends an upload stream the server should accept: the header `{upload_id, offset}` and
    /// `bytes`, then FIN, and waits until every byte is acknowledged.
    pub async fn send(&self, upload_id: &str, offset: u64, bytes: &[u8]) {
        let mut send = self.open(upload_id, offset).await;
        send.write_all(bytes).await.expect("upload bytes");
        send.finish().expect("finish");
        let outcome = send.stopped().await.expect("stream outcome");
        assert_eq!(outcome, None, "the server stopped the upload stream");
    }

    /// Sends an upload stream the server should refuse: the header and `bytes`, without FIN;
    /// returns the code the server stopped it with.
    pub async fn send_refused(&self, upload_id: &str, offset: u64, bytes: &[u8]) -> u64 {
        let send = self.open(upload_id, offset).await;
        stop_code(send, bytes).await
    }

    /// Opens an upload stream and writes its header.
    pub async fn open(&self, upload_id: &str, offset: u64) -> quinn::SendStream {
        let mut send = self.raw.conn.open_uni().await.expect("open upload stream");
        let frame = upload_header(upload_id, offset);
        send.write_all(&frame).await.expect("header");
        send
    }
}

/// The framed header of an upload stream: `{upload_id, offset}`.
pub fn upload_header(upload_id: &str, offset: u64) -> Vec<u8> {
    let header = pb::UploadStreamHeader {
        upload_id: upload_id.into(),
        offset,
    };
    chatproto::io::encode_frames([&header], 1024)
        .expect("header")
        .to_vec()
}

/// Writes `bytes` on `send` without finishing it and returns the code the peer stopped the
/// stream with (seen by the write, or by waiting for the stop).
pub async fn stop_code(mut send: quinn::SendStream, bytes: &[u8]) -> u64 {
    if let Err(quinn::WriteError::Stopped(code)) = send.write_all(bytes).await {
        return code.into_inner();
    }
    match tokio::time::timeout(std::time::Duration::from_secs(20), send.stopped()).await {
        Ok(Ok(Some(code))) => code.into_inner(),
        other => panic!("the peer did not stop the stream: {other:?}"),
    }
}

/// An HTTPS answer.
#[derive(Debug)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET url` (an `https://127.0.0.1:port/...` URL) with a real HTTP/1.1 client (hyper over
/// rustls) that trusts exactly the certificate with `fingerprint`.
pub async fn https_get(url: &str, fingerprint: &str, headers: &[(&str, &str)]) -> HttpReply {
    https_request(hyper::Method::GET, url, fingerprint, headers, "").await
}

/// `method url` with `body`, as [`https_get`] does a `GET`.
pub async fn https_request(
    method: hyper::Method,
    url: &str,
    fingerprint: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    use http_body_util::BodyExt as _;
    let uri: hyper::Uri = url.parse().expect("url");
    let authority = uri.authority().expect("authority").clone();
    let pin = chatproto::fingerprint::parse_fingerprint(fingerprint).expect("fingerprint");
    let mut tls = chatproto::tls::rustls_client_config(&chatproto::tls::Verification::Pin(pin))
        .expect("tls config");
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect(name, tcp)
        .await
        .expect("tls handshake");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("http handshake");
    tokio::spawn(conn);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().expect("path").as_str())
        .header("host", authority.as_str());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender
        .send_request(
            request
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    body.to_owned(),
                )))
                .expect("request"),
        )
        .await
        .expect("response");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    HttpReply {
        status,
        headers,
        body,
    }
}

/// A process's resident set size and its peak, in KiB (`VmRSS`, `VmHWM` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}
